import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's oneDNN CPU kernels as `import keras_memseg` and the recipes choose them
# for this CPU (keras_memseg.tensorflow_runtime.prefer_onednn, issue #34), before any
# test module imports TensorFlow: the tests run what users run.
import keras_memseg  # noqa: E402, F401

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
