"""MCIBI (Jin et al., ICCV 2021): the memory segmenter, its feature memory layer and the
memory's pure batch statistics."""

from keras_memseg.models.mcibi.feature_memory import FeatureMemory
from keras_memseg.models.mcibi.mcibi_segmenter import MemorySegmenter
