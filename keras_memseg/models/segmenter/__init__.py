"""The segmenter base class shared by every model family (one module per concern)."""

from keras_memseg.models.segmenter.checks import check_int
from keras_memseg.models.segmenter.preprocessor import SegmenterPreprocessor
from keras_memseg.models.segmenter.preprocessor import test_resize_size
from keras_memseg.models.segmenter.segmenter import Segmenter
from keras_memseg.models.segmenter.training_policy import split_inputs
