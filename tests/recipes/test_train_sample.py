"""The README's main command, with a tiny step count: trains, evaluates, writes the run
folder; rerunning the same command resumes from the backup (nothing left to train)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "--max_steps=2",
    "--checkpoint_every=2",
    "--base_channels=8",
    "--feats_channels=16",
    "--transform_channels=8",
    "--aux_channels=8",
    "--crop_size=64,64",
    "--global_batch_size=2",
    "--max_eval_examples=2",
    "--eval_every=0",
]


def _run(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "train_sample.py"), *TINY],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )


def test_train_sample_end_to_end(tmp_path):
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "runs" / "sample"  # relative to the working directory
    for name in (
        "config.json",
        "model.keras",
        "eval.json",
        "backup",
        "logs",
        "overlays",
        "checkpoints/ckpt-0000002.weights.h5",
    ):
        assert (run / name).exists(), name
    assert json.loads((run / "config.json").read_text())["total_steps"] == 2
    result = json.loads((run / "eval.json").read_text())
    assert result["step"] == 2 and result["num_images"] == 2
    assert set(result["per_class"]) >= {"Sky", "Road", "Car"}
    assert "mIoU" in proc.stdout and "Sky" in proc.stdout  # the per-class table
    assert len(os.listdir(run / "overlays")) == 2
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run / "logs"))
    assert (tmp_path / "saved_models" / "sample" / "1" / "saved_model.pb").exists()

    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "at step 2/2" in again.stdout


def test_read_only_export_and_show_dirs_are_one_line_before_training(tmp_path):
    # A read-only mount (root refused too): one line per folder, exit 2, nothing trained.
    from tests.read_only import read_only_prefix

    folder = tmp_path / "mounted"
    folder.mkdir()
    prefix = read_only_prefix(folder)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [*prefix, sys.executable, os.path.join(ROOT, "recipes", "train_sample.py"), *TINY]
        + [
            f"--run_dir={tmp_path}/run",
            f"--export_dir={folder}/saved_models",
            f"--show_dir={folder}/overlays",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    not_writable = f"{folder} is not writable (a read-only location?)"
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: --export_dir='{folder}/saved_models': {not_writable}",
        f"error: --show_dir='{folder}/overlays': {not_writable}",
    ], proc.stderr[-2000:]
    assert not (tmp_path / "run").exists()
