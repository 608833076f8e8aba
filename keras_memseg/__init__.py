"""keras_memseg: MCIBI dataset-level feature memory for semantic segmentation.

Public namespaces: `keras_memseg.backbones`, `.layers`, `.models`, `.losses`,
`.metrics` (backend-agnostic) and `.datasets`, `.training`, `.evaluation`, `.export`
(TensorFlow-based; import them explicitly).

The five backend-agnostic namespaces are imported on first use (PEP 562), so that
`keras-memseg --help` and the other command-line entry points print before Keras and
TensorFlow are imported: `keras_memseg.models.MemorySegmenter` and `from keras_memseg
import models` work as if they had been imported here.
"""

import importlib

from keras_memseg.console import quiet_startup_for_command_line
from keras_memseg.tensorflow_runtime import prefer_onednn

prefer_onednn()  # before TensorFlow is imported (by Keras, by any submodule); issue #34
quiet_startup_for_command_line()

from keras_memseg.version import __version__  # noqa: E402

_LAZY = ("backbones", "layers", "losses", "metrics", "models")


def __getattr__(name):
    """`keras_memseg.<namespace>`: imported (Keras, TensorFlow) the first time it is used."""
    if name in _LAZY:
        return importlib.import_module(f"keras_memseg.{name}")
    raise AttributeError(f"module 'keras_memseg' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", *_LAZY]
