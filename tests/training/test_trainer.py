"""Trainer end to end in subprocesses: exact resume after SIGKILL, MirroredStrategy on
two logical CPUs, MultiWorkerMirroredStrategy with two local workers."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from tests.training.corruption import flip_a_weight

WORKER = os.path.join(os.path.dirname(__file__), "_train_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(**extra):
    env = dict(
        os.environ,
        PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
    )
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(args, timeout=300, env=None):
    return subprocess.run(
        [sys.executable, WORKER, json.dumps(args)],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _check(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    # Dropout on: its random states are part of the backup, so resume is exact.
    base = {"determinism": True}
    base_config = {"dropout": 0.1}
    full = _run(
        {
            **base,
            "config": {**base_config, "run_dir": str(tmp_path / "a")},
            "dump": str(tmp_path / "a.npz"),
        }
    )
    _check(full)
    killed = _run({**base, "config": {**base_config, "run_dir": str(tmp_path / "b")}, "kill_at": 3})
    assert killed.returncode == -9, killed.stderr[-3000:]
    # A bit flipped on disk in the backup (issue #34): its checksum refuses it, and the
    # checkpoint of the same step, which holds the random states too, resumes exactly.
    flip_a_weight(tmp_path / "b" / "backup" / "step-00000002" / "state.weights.h5")
    resumed = _run(
        {
            **base,
            "config": {**base_config, "run_dir": str(tmp_path / "b")},
            "dump": str(tmp_path / "b.npz"),
        }
    )
    _check(resumed)
    assert "state.weights.h5 does not match its checksum" in resumed.stdout, resumed.stdout
    assert "resumed from" in resumed.stdout and "at step 2/6" in resumed.stdout
    assert "ckpt-0000002.weights.h5 at step 2/6" in resumed.stdout
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert int(a["iterations"]) == int(b["iterations"]) == 6
    assert int(a["num_updates"]) == int(b["num_updates"]) == 6
    assert np.abs(a["memory"]).sum() > 0
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == [
        "ckpt-0000004.json",
        "ckpt-0000004.weights.h5",
        "ckpt-0000006.json",
        "ckpt-0000006.weights.h5",
    ]

    # The same folder with another architecture: refused before any weight or file
    # changes (config.json, backups and checkpoints untouched).
    def stamps():  # every file of the run but the lock file (it names the current holder)
        return {
            p: p.stat().st_mtime_ns
            for p in (tmp_path / "b").rglob("*")
            if p.is_file() and p.name != ".lock"
        }

    before = stamps()
    other = _run(
        {**base, "config": {**base_config, "run_dir": str(tmp_path / "b"), "feats_channels": 24}}
    )
    assert other.returncode != 0
    assert "feats_channels: 16 -> 24" in other.stderr
    assert stamps() == before


def test_a_full_disk_ends_the_run_with_one_line_and_the_same_command_resumes(tmp_path):
    # Issue #34: a full disk crashed the run (exit 139) around the second checkpoint.
    config = {"run_dir": str(tmp_path), "max_steps": 4}
    full = _run({"config": config, "disk_full_at": 3})
    assert full.returncode == 1, full.stdout[-3000:] + full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no space left on the device of ") and "ckpt-0000004" in last
    assert last.endswith(f"it resumes from step 2 ({tmp_path / 'backup' / 'step-00000002'})")
    assert sorted(os.listdir(tmp_path / "checkpoints")) == [  # no partial file left
        "ckpt-0000002.json",
        "ckpt-0000002.weights.h5",
    ]
    again = _run({"config": config})
    _check(again)
    assert "at step 2/4" in again.stdout


def test_a_diverging_run_stops_with_a_clear_error_and_keeps_finite_backups(tmp_path):
    proc = _run(
        {
            "config": {
                "run_dir": str(tmp_path),
                "learning_rate": 1e12,
                "max_nonfinite_batches": 2,
                "max_steps": 12,
            }
        }
    )
    assert proc.returncode != 0
    assert "batches in a row had NaN/inf" in proc.stderr, proc.stderr[-3000:]
    from keras_memseg.training.callbacks import verify_weights_file

    for path in (tmp_path / "backup").rglob("*.weights.h5"):
        assert verify_weights_file(str(path)), path  # every backup written is finite


def test_a_diverged_run_that_reaches_its_end_writes_no_model(tmp_path):
    # More non-finite batches allowed than steps: the run reaches its end diverged, and
    # model.keras must not be written (issue #34).
    proc = _run(
        {
            "config": {
                "run_dir": str(tmp_path),
                "learning_rate": 1e38,  # finite; one step makes the weights ~1e37
                "max_nonfinite_batches": 100,
                "max_steps": 4,
            }
        }
    )
    assert proc.returncode != 0
    # Step 1 makes the weights ~1e37 (finite); steps 2-4 give NaN outputs, skipped.
    assert "training ended with its last 3 batches in a row NaN/inf" in proc.stderr, proc.stderr[
        -3000:
    ]
    assert not (tmp_path / "model.keras").exists()


def test_periodic_and_final_evaluations_share_one_traced_forward(tmp_path):
    # Evaluations at steps 2 and 4 (periodic) and after training (final): one compiled
    # forward for all of them, not a retrace of the model per evaluation.
    proc = _run(
        {
            "config": {"run_dir": str(tmp_path), "max_steps": 6, "eval_every": 2},
            "evaluate": True,
            "count_forwards": True,
        }
    )
    _check(proc)
    assert "step 2: val mIoU" in proc.stdout and "step 4: val mIoU" in proc.stdout
    assert "mIoU" in proc.stdout.split("step 4: val mIoU")[1]  # the final report
    assert "compiled forwards: 1" in proc.stdout, proc.stdout[-2000:]
    # The sample recipe's thread pools (one thread per op) were applied by `train`.
    assert "thread pools: inter 0 intra 1" in proc.stdout, proc.stdout[-2000:]


def test_thread_pools_that_cannot_apply_are_a_one_line_config_error(tmp_path):
    # The caller started TensorFlow's runtime with other pools (a strategy made first).
    proc = _run(
        {
            "strategy": "mirrored",
            "late_threads": 3,
            "config": {"run_dir": str(tmp_path), "max_steps": 2},
        }
    )
    assert proc.returncode != 0
    assert "--intra_op_parallelism_threads=3: TensorFlow's runtime has already started" in (
        proc.stderr
    ), proc.stderr[-3000:]
    assert not (tmp_path / "config.json").exists()  # refused before the run folder


def test_mirrored_strategy_two_logical_cpus(tmp_path):
    proc = _run(
        {
            "logical_cpus": 2,
            "strategy": "mirrored",
            "config": {"run_dir": str(tmp_path), "max_steps": 2, "global_batch_size": 4},
            "dump": str(tmp_path / "m.npz"),
        }
    )
    _check(proc)
    out = np.load(tmp_path / "m.npz")
    assert int(out["replicas"]) == 2 and bool(out["sync_batchnorm"])
    assert int(out["iterations"]) == 2 and int(out["num_updates"]) == 2
    assert np.isfinite(out["memory"]).all() and np.abs(out["memory"]).sum() > 0


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_multi_worker_mirrored_two_local_workers(tmp_path):
    cluster = {"worker": [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        args = {
            "strategy": "auto",
            "dump": str(tmp_path / f"w{index}.npz"),
            "config": {"run_dir": str(tmp_path / "run"), "max_steps": 2, "global_batch_size": 4},
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, WORKER, json.dumps(args)],
                env=_env(TF_CONFIG=tf_config),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=400))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (stdout, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stdout[-2000:] + stderr[-4000:]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert int(w0["replicas"]) == 2 and bool(w0["sync_batchnorm"])
    assert int(w0["iterations"]) == 2
    np.testing.assert_allclose(w0["memory"], w1["memory"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(w0["w0"], w1["w0"], rtol=1e-6, atol=1e-6)
    assert os.path.exists(tmp_path / "run" / "model.keras")  # the chief saved it
