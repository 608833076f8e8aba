"""Imported first by every recipe script, before TensorFlow is: TensorFlow's C++ start-up
lines (CUDA probing: `cudart_stub.cc`, `cuInit`; XLA) are hidden unless `--verbose`
(evaluate.py) or `--verbose=2` (training recipes) is given. TensorFlow 2.19+ prints them
whatever `TF_CPP_MIN_LOG_LEVEL` says (tensorflow/tensorflow#100442), so the process's
stderr is pointed at /dev/null while TensorFlow is imported and probes its devices.
The Python loggers are quieted by `keras_memseg.console.quiet_libraries` once the flags
are parsed."""

import os
import sys


# TensorFlow's oneDNN CPU kernels for this CPU: `keras_memseg.tensorflow_runtime.
# prefer_onednn`, loaded from its file, since importing the package would import
# TensorFlow before the choice (the module imports nothing of keras_memseg).
def _prefer_onednn():
    import importlib.util

    package = importlib.util.find_spec("keras_memseg")
    path = os.path.join(os.path.dirname(package.origin), "tensorflow_runtime.py")
    spec = importlib.util.spec_from_file_location("_keras_memseg_tensorflow_runtime", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.prefer_onednn()


_prefer_onednn()

_VERBOSE = ("--verbose", "--verbose=true", "--verbose=True", "--verbose=2")

if not any(arg in _VERBOSE for arg in sys.argv[1:]):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    _saved, _null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(_null, 2)
    try:
        import tensorflow as _tf

        _tf.config.list_physical_devices()  # the CUDA probe, while stderr is muted
    finally:
        os.dup2(_saved, 2)
        os.close(_saved)
        os.close(_null)
