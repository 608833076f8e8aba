"""Models, one folder per family: `mcibi/` (MemorySegmenter and its FeatureMemory),
`deeplab_v3/` (the DeepLabV3 baseline), on the shared base in `segmenter/` (with the
`SegmenterPreprocessor` saved in each model's config)."""

from keras_memseg.models.deeplab_v3 import DeepLabV3
from keras_memseg.models.loading import load_segmenter
from keras_memseg.models.mcibi import FeatureMemory
from keras_memseg.models.mcibi import MemorySegmenter
from keras_memseg.models.segmenter import Segmenter
from keras_memseg.models.segmenter import SegmenterPreprocessor
