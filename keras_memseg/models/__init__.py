"""Models: MemorySegmenter (MCIBI) and the DeepLabV3 baseline."""

from keras_memseg.models.deeplabv3 import DeepLabV3
from keras_memseg.models.loading import load_segmenter
from keras_memseg.models.memory_segmenter import MemorySegmenter
from keras_memseg.models.segmenter import Segmenter
