"""TensorFlow, JAX and PyTorch: each backend's checks in its own process.

Keras fixes the backend at import, so every group of checks of
`tests/backends/backend_checks.py` runs in a fresh interpreter with
`KERAS_BACKEND` set; a test passes when that process exits with 0 and shows its
output otherwise. Checks are grouped per backend to pay the import (and JAX/XLA
compilation) cost once.

Speed settings of the child processes (not behaviour): XLA at backend
optimisation level 0 (TF's XLA step and JAX compile several times faster on a
2-core machine; the numbers checked do not depend on it), and one OpenMP thread
for torch (its CPU kernels slow down >10x when the cores are oversubscribed).
"""

import os
import subprocess
import sys

import pytest

CHECKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backend_checks.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(CHECKS)))
BACKENDS = ("tensorflow", "jax", "torch")
TRAINING = [
    "forward",
    "memory_update",
    "schedule_clock",
    "fit_eager",
    "fit_compiled",
    "callback",
    "save",
]
# TensorFlow's `nonfinite` check: the main suite's TF tests check the same two
# properties on the same kind of tiny model: tests/models/test_memory_segmenter.py
# test_a_non_finite_batch_changes_nothing_but_the_counter and
# test_memory_loss_before_its_start_leaves_no_trace.
EXTRA = {"tensorflow": ["fit_xla"], "jax": ["nonfinite"], "torch": ["nonfinite"]}


def run_checks(backend, checks, out=None, timeout=600, devices=None):
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "XLA_FLAGS": "--xla_backend_optimization_level=0",
        "PYTHONPATH": ROOT,
    }
    if devices:
        env["XLA_FLAGS"] += f" --xla_force_host_platform_device_count={devices}"
    if backend == "torch":
        env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, CHECKS, *checks] + (["--out", str(out)] if out else [])
    proc = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{backend} {checks} exited {proc.returncode}:\n{output[-8000:]}"
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == len(checks), output[-8000:]
    print(proc.stdout)
    return proc.stdout


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Runs the training group of every backend once; each saves its model under `out`."""
    out = tmp_path_factory.mktemp("saved_models")
    outcome = {}
    for backend in BACKENDS:
        try:
            outcome[backend] = run_checks(backend, TRAINING + EXTRA.get(backend, []), out)
        except AssertionError as error:
            outcome[backend] = error
    return out, outcome


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_group(saved, backend):
    """Forward shapes; memory update == NumPy; eager and compiled fit(); callback; save."""
    result = saved[1][backend]
    if isinstance(result, AssertionError):
        raise result


@pytest.mark.parametrize("backend", BACKENDS)
def test_load_other_backends_and_mixed_precision(saved, backend):
    """`.keras` / `.weights.h5` from the other backends: same logits (1e-4) and memory.

    Mixed precision runs after it in the same process (policies are global, the
    process is thrown away afterwards).
    """
    out, outcome = saved
    others = [b for b in BACKENDS if b != backend and not isinstance(outcome[b], AssertionError)]
    if not others:
        pytest.skip("no other backend saved a model")
    run_checks(backend, ["load", "mixed_precision"], out)


def test_jax_data_parallel_matches_one_device():
    """DataParallel over 2 CPU devices: memory after 2 steps equals one device (1e-5)."""
    run_checks("jax", ["data_parallel"], devices=2)
