"""keras_memseg: MCIBI dataset-level feature memory for semantic segmentation.

Public namespaces: `keras_memseg.backbones`, `.layers`, `.models`, `.losses`,
`.metrics` (backend-agnostic, imported here) and `.datasets`, `.training`,
`.evaluation`, `.export` (TensorFlow-based; import them explicitly).
"""

from keras_memseg.console import quiet_startup_for_command_line
from keras_memseg.tensorflow_runtime import prefer_onednn

prefer_onednn()  # before TensorFlow is imported (by Keras or the next line); issue #34
quiet_startup_for_command_line()

from keras_memseg import backbones  # noqa: E402
from keras_memseg import layers  # noqa: E402
from keras_memseg import losses  # noqa: E402
from keras_memseg import metrics  # noqa: E402
from keras_memseg import models  # noqa: E402
from keras_memseg.version import __version__  # noqa: E402
