"""keras_memseg: MCIBI dataset-level feature memory for semantic segmentation.

Public namespaces: `keras_memseg.backbones`, `.layers`, `.models`, `.losses`,
`.metrics` (backend-agnostic, imported here) and `.datasets`, `.training`,
`.evaluation`, `.export` (TensorFlow-based; import them explicitly).
"""

from keras_memseg import backbones
from keras_memseg import layers
from keras_memseg import losses
from keras_memseg import metrics
from keras_memseg import models
from keras_memseg.version import __version__
