"""`keras_memseg.tensorflow_runtime`: oneDNN on unless the user chose; the CPU thread pools.

Each case runs in a fresh interpreter (TensorFlow reads the setting once, at import),
and asks TensorFlow itself whether its oneDNN kernels are on.
"""

import os
import subprocess
import sys

import pytest

from keras_memseg.tensorflow_runtime import onednn_is_safe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = """
import os, sys
{first}
from tensorflow.python.util import _pywrap_util_port
print("ONEDNN", bool(_pywrap_util_port.IsMklEnabled()), os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
"""


def _probe(first, env_value):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("ONEDNN")][-1]
    return line.split()[1:]


# What the package chooses on this CPU: oneDNN, except on AVX-512 CPUs (issue #34).
CHOSEN = ["True", "1"] if onednn_is_safe() else ["False", "0"]


@pytest.mark.parametrize(
    "first, env_value, expected",
    [
        ("import keras_memseg", None, CHOSEN),  # the package chooses for this CPU
        ("import keras_memseg", "0", ["False", "0"]),  # the user's choice is kept
        ("import keras_memseg", "1", ["True", "1"]),
        # TensorFlow imported first: too late to choose, nothing is changed.
        ("import tensorflow; import keras_memseg", None, [None, "None"]),
    ],
)
def test_prefer_onednn(first, env_value, expected):
    enabled, variable = _probe(first, env_value)
    if expected[0] is not None:
        assert enabled == expected[0]
    assert variable == expected[1]


THREADS = """
import tensorflow as tf
from keras_memseg.tensorflow_runtime import set_thread_counts
t = tf.config.threading
set_thread_counts()  # nothing asked: TensorFlow's defaults stay
print("DEFAULT", t.get_inter_op_parallelism_threads(), t.get_intra_op_parallelism_threads())
set_thread_counts(inter_op=3, intra_op=1)
float(tf.reduce_sum(tf.ones((4, 4))))  # the runtime starts with those pools
print("SET", t.get_inter_op_parallelism_threads(), t.get_intra_op_parallelism_threads())
set_thread_counts(inter_op=3, intra_op=1)  # the same sizes again: fine
set_thread_counts(intra_op=1)  # 0 = no wish for the inter-op pool
try:
    set_thread_counts(intra_op=2)
except RuntimeError as error:
    print("LATE", error)
"""


def test_set_thread_counts_applies_before_the_runtime_and_refuses_after():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", THREADS], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["DEFAULT"] == "0 0"
    assert lines["SET"] == "3 1"
    assert lines["LATE"] == (
        "intra_op_parallelism_threads=2: TensorFlow's runtime has already started in this "
        "process with 1; set it before the first TensorFlow op runs"
    )


BFLOAT16 = """
import keras_memseg  # first, as the README says: it chooses before TensorFlow is imported
import numpy as np
import keras
from keras_memseg.layers import conv2d, conv_path
from tensorflow.python.util import _pywrap_util_port
keras.config.set_dtype_policy("mixed_bfloat16")
layer = conv2d(4, 3, padding="same", dilation_rate=2)
with conv_path("matmul"):
    y = layer(np.ones((2, 8, 8, 3), "float32"))  # bfloat16 matmuls
print("BF16", keras.backend.standardize_dtype(y.dtype), bool(_pywrap_util_port.IsMklEnabled()))
"""


def test_bfloat16_matmuls_run_with_the_kernels_the_package_chooses():
    # On an AVX-512 BF16 CPU, oneDNN capped at AVX2 (the first fix of issue #34) took
    # bfloat16 matmuls from TensorFlow without a kernel for them: exit 139.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
    }
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", BFLOAT16], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert f"BF16 bfloat16 {CHOSEN[0]}" in proc.stdout
