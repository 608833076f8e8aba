import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's oneDNN CPU kernels, as `import keras_memseg` and the recipes choose
# (keras_memseg.tensorflow_runtime): the tests run what users run, whichever test
# module imports TensorFlow first.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# oneDNN kept on its AVX2 kernels on AVX-512 CPUs, as `import keras_memseg` does
# (`cap_onednn_isa`, issue #34), before any test module can run a TensorFlow op.
from keras_memseg.tensorflow_runtime import cap_onednn_isa  # noqa: E402

cap_onednn_isa()

# Grappler (TensorFlow's graph optimiser) off in the test processes: a test traces a
# fresh train step of a tiny model almost every time, and optimising its ~12k-node
# graph costs more than running it. Grappler only rewrites a graph into an equivalent
# one (fusions, folding); what users run, with it on, is covered by the tests that
# train in a subprocess (recipes, trainer, backends, benchmarks).
if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import tensorflow as _tf

    _tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="also run tests marked slow"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
