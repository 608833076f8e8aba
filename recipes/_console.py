"""Imported first by every recipe script, before TensorFlow is: TensorFlow's C++ start-up
lines (CUDA probing: `cudart_stub.cc`, `cuInit`; XLA) are hidden unless `--verbose`
(evaluate.py; training recipes: `--verbose`, `--verbose=2` or `--verbose 2`) is given.
TensorFlow 2.19+ prints them whatever `TF_CPP_MIN_LOG_LEVEL` says
(tensorflow/tensorflow#100442), so the process's stderr is pointed at /dev/null while
TensorFlow is imported and probes its devices. `--help` imports nothing here: the help is
printed before TensorFlow is imported. The Python loggers are quieted by
`keras_memseg.console.quiet_libraries` once the flags are parsed."""

import sys

import keras_memseg  # noqa: F401  (chooses the oneDNN setting; imports no TensorFlow)
from keras_memseg.console import quiet_tensorflow_startup

quiet_tensorflow_startup(sys.argv[1:])
