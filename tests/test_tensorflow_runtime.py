"""`keras_memseg.tensorflow_runtime`: oneDNN on unless the user chose; the CPU thread pools.

Each case runs in a fresh interpreter (TensorFlow reads the setting once, at import),
and asks TensorFlow itself whether its oneDNN kernels are on.
"""

import os
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize(
    "first, env_value, expected",
    [
        ("import keras_memseg", None, ["True", "1"]),  # the package chooses oneDNN
        ("import keras_memseg", "0", ["False", "0"]),  # the user's choice is kept
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


ISA_PROBE = """
import os
import tensorflow as tf
import keras_memseg
from keras_memseg import tensorflow_runtime as runtime
# Pretend the CPU has AVX-512 (on one that has it, the import above already capped it);
# no TensorFlow op has run yet, so oneDNN has not read its ISA setting.
runtime.cap_onednn_isa(flags={"avx2", "avx512f"})
print("VARIABLE", os.environ.get("ONEDNN_MAX_CPU_ISA"), flush=True)
tf.linalg.matmul(tf.ones((2, 1, 3, 4)), tf.ones((4, 5)))  # a oneDNN matmul
"""


@pytest.mark.parametrize(
    "user_value, expected_variable, expected_isa",
    [
        (None, "AVX2", "isa:Intel AVX2"),  # capped after `import tensorflow`: still in time
        ("SSE41", "SSE41", "isa:Intel SSE4.1"),  # the user's choice is kept
    ],
)
def test_onednn_isa_cap_reaches_onednn(user_value, expected_variable, expected_isa):
    env = {
        k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
    }
    env.update(
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_ENABLE_ONEDNN_OPTS="1",
        ONEDNN_VERBOSE="1",
        PYTHONPATH=ROOT,
    )
    if user_value is not None:
        env["ONEDNN_MAX_CPU_ISA"] = user_value
    proc = subprocess.run(
        [sys.executable, "-c", ISA_PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"VARIABLE {expected_variable}" in proc.stdout
    isa = [line for line in proc.stdout.splitlines() if ",isa:" in line]
    assert isa and isa[0].endswith(expected_isa), isa


def test_cpu_flags_reads_the_flags_line(tmp_path):
    from keras_memseg.tensorflow_runtime import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "avx512f", "avx512_vnni"}
    assert cpu_flags(str(tmp_path / "missing")) == frozenset()
