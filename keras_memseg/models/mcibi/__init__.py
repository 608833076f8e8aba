"""MCIBI (Jin et al., ICCV 2021): the memory segmenter, its feature memory layer, the
memory's pure batch statistics and the named presets of the authors' checkpoints."""

from keras_memseg.models.mcibi.feature_memory import FeatureMemory
from keras_memseg.models.mcibi.mcibi_presets import mcibi_presets
from keras_memseg.models.mcibi.mcibi_segmenter import MemorySegmenter

# The presets table, registered once (KerasHub's `register_presets`): `from_preset(NAME)`.
MemorySegmenter.presets = mcibi_presets
