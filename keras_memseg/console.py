"""What the command-line entry points print: their own lines, not the libraries'.

TensorFlow, XLA and absl log start-up and export chatter at INFO (hundreds of lines
when a SavedModel is written); the entry points call `quiet_libraries()` first, so only
warnings and errors of those libraries reach the console unless `--verbose`.
"""

import argparse
import contextlib
import logging
import os
import sys


def quiet_libraries(verbose=False):
    """TensorFlow / absl logging at WARNING (C++ at ERROR) unless `verbose`."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    for name in ("tensorflow", "absl", "h5py", "jax"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _probe_devices_muted()


def quiet_startup_for_command_line():
    """Called by `keras_memseg/__init__.py` before Keras imports TensorFlow: when the
    package is imported as the parent of `python -m keras_memseg.<command>` (runpy has
    not yet replaced `sys.argv[0] == "-m"`) and `--verbose` is not given, TensorFlow is
    imported and probes its devices with stderr muted, so that its C++ start-up lines
    (`cudart_stub.cc`, `cuInit`) stay off the console. Python errors still propagate."""
    if "tensorflow" in sys.modules or sys.argv[:1] != ["-m"] or "--verbose" in sys.argv:
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()


def _probe_devices_muted():
    """TensorFlow probes CUDA the first time it lists devices and prints `cuInit` errors
    from C++ whatever `TF_CPP_MIN_LOG_LEVEL` says (TF 2.19+): probe now, with the
    process's stderr pointed at /dev/null, so that the probe's lines never reach the
    console. A no-op when TensorFlow is not imported (JAX or torch backend)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return
    with _stderr_muted():
        tf.config.list_physical_devices()


@contextlib.contextmanager
def _stderr_muted():
    """The process's file descriptor 2 pointed at /dev/null (C++ logs included)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def progress_verbosity(verbose=1):
    """Keras `fit`'s `verbose`: a progress bar on a terminal, one line per epoch when the
    output goes to a file or a pipe (a bar there is carriage-return spam)."""
    if verbose == 1 and not sys.stdout.isatty():
        return 2
    return verbose


class OneLineErrorParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line on stderr (exit code 2), without
    the usage text: what every keras_memseg command prints for a bad flag."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")
