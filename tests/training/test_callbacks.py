"""Backups and checkpoints: atomic, read back, only from a finite state, all-or-nothing
restore with fallback to older backups and checkpoints; the non-finite monitor."""

import os

import keras
import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import MemorySegmenter
from keras_memseg.training.callbacks import NonFiniteMonitor
from keras_memseg.training.callbacks import StepBackupAndRestore
from keras_memseg.training.callbacks import StepCheckpoint
from keras_memseg.training.callbacks import load_all_or_nothing
from tests.training.corruption import flip_a_weight


def _model(seed=0, feats=16):
    keras.utils.set_random_seed(seed)
    model = MemorySegmenter(
        DilatedResNetBackbone(depth=18, base_channels=4),
        3,
        feats_channels=feats,
        transform_channels=4,
        aux_channels=4,
        aspp_rates=(1, 2),
    )
    model.compile(jit_compile=False)
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.optimizer.build(model.trainable_variables)
    return model


def _values(model):
    return [
        keras.ops.convert_to_numpy(v).copy()
        for v in list(model.variables) + list(model.optimizer.variables)
    ]


def _step_to(model, step):
    model.optimizer.iterations.assign(step)


def test_backup_round_trip_includes_rng_and_restore_is_exact(tmp_path):
    model = _model()
    backup = StepBackupAndRestore(str(tmp_path / "backup"), 2, 10)
    backup.set_model(model)
    rng = [v for v in model.variables if "seed_generator" in v.path]
    assert rng, "the dropouts' seed states must be part of the backup"
    rng[0].assign(np.array([7, 9], dtype=rng[0].dtype))
    _step_to(model, 2)
    backup.on_train_batch_end(0)
    saved = _values(model)
    fresh = _model(seed=1)
    assert StepBackupAndRestore(str(tmp_path / "backup"), 2, 10).restore(fresh) == 2
    for a, b in zip(saved, _values(fresh)):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path / "backup")) == ["step-00000002"]


def _checkpointed_at_step_2(model, tmp_path):
    """A checkpoint (every 2 steps) and a backup tied to it; the checkpoint of step 2
    written, the backup not yet."""
    checkpoint = StepCheckpoint(str(tmp_path / "ckpt"), 2, 10)
    backup = StepBackupAndRestore(str(tmp_path / "backup"), 2, 10, checkpoint=checkpoint)
    for callback in (checkpoint, backup):
        callback.set_model(model)
    _step_to(model, 2)
    checkpoint.on_train_batch_end(0)
    return checkpoint, backup


def test_backup_at_a_checkpointed_step_copies_the_checkpoint_instead_of_saving_again(tmp_path):
    model = _model()
    saves = []
    save_weights = model.save_weights
    model.save_weights = lambda path, **kw: (saves.append(path), save_weights(path, **kw))
    checkpoint, backup = _checkpointed_at_step_2(model, tmp_path)
    backup.on_train_batch_end(0)
    assert len(saves) == 1  # the checkpoint's; the backup copied it
    state = tmp_path / "backup" / "step-00000002" / "state.weights.h5"
    ckpt = tmp_path / "ckpt" / "ckpt-0000002.weights.h5"
    assert state.read_bytes() == ckpt.read_bytes()
    saved = _values(model)
    fresh = _model(seed=1)
    assert StepBackupAndRestore(str(tmp_path / "backup"), 2, 10).restore(fresh) == 2
    for a, b in zip(saved, _values(fresh)):
        np.testing.assert_array_equal(a, b)
    # A step the checkpoint did not write (a non-chief worker's): the backup saves itself.
    checkpoint.enabled = False
    _step_to(model, 4)
    checkpoint.on_train_batch_end(0)
    backup.on_train_batch_end(0)
    assert len(saves) == 2 and (tmp_path / "backup" / "step-00000004").is_dir()


def test_a_torn_copy_of_the_checkpoint_is_caught_and_leaves_no_backup(tmp_path, monkeypatch):
    from keras_memseg.training import callbacks

    _, backup = _checkpointed_at_step_2(_model(), tmp_path)

    def torn_copy(source, target):  # a disk that took half the bytes
        with open(source, "rb") as f, open(target, "wb") as out:
            out.write(f.read()[: os.path.getsize(source) // 2])

    monkeypatch.setattr(callbacks.shutil, "copyfile", torn_copy)
    with pytest.raises(OSError, match="backup of step 2 did not read back"):
        backup.on_train_batch_end(0)
    assert os.listdir(tmp_path / "backup") == []  # no step folder, no staging folder


def test_keeps_the_newest_two_and_never_writes_a_non_finite_state(tmp_path):
    model = _model()
    backup = StepBackupAndRestore(str(tmp_path / "b"), 1, 10)
    backup.set_model(model)
    for step in (1, 2, 3):
        _step_to(model, step)
        backup.on_train_batch_end(0)
    assert sorted(os.listdir(tmp_path / "b")) == ["step-00000002", "step-00000003"]
    model.memory.memory.assign(np.full(model.memory.memory.shape, np.nan, "float32"))
    _step_to(model, 4)
    backup.on_train_batch_end(0)
    assert backup.skipped_nonfinite == [4]
    assert sorted(os.listdir(tmp_path / "b")) == ["step-00000002", "step-00000003"]


def test_unreadable_backups_fall_back_to_an_older_one_then_a_checkpoint(tmp_path):
    model = _model()
    backup = StepBackupAndRestore(str(tmp_path / "b"), 1, 10, checkpoint_dir=str(tmp_path / "c"))
    backup.set_model(model)
    checkpoint = StepCheckpoint(str(tmp_path / "c"), 1, 10, keep=0)
    checkpoint.set_model(model)
    for step in (1, 2):
        _step_to(model, step)
        checkpoint.on_train_batch_end(0)
        backup.on_train_batch_end(0)
    (tmp_path / "b" / "step-00000002" / "state.weights.h5").write_bytes(b"torn")
    fresh = _model(seed=3)
    assert StepBackupAndRestore(str(tmp_path / "b"), 1, 10).restore(fresh) == 1
    (tmp_path / "b" / "step-00000001" / "state.weights.h5").write_bytes(b"torn")
    fresh = _model(seed=4)
    restorer = StepBackupAndRestore(str(tmp_path / "b"), 1, 10, checkpoint_dir=str(tmp_path / "c"))
    assert restorer.restore(fresh) == 2
    assert restorer.restored_from.endswith("ckpt-0000002.weights.h5")
    for path in (tmp_path / "c").iterdir():
        path.write_bytes(b"torn")
    from keras_memseg.training.run_folder import RunFolderError

    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(RunFolderError, match="no usable backup or checkpoint.*Nothing was deleted"):
        StepBackupAndRestore(
            str(tmp_path / "b"), 1, 10, checkpoint_dir=str(tmp_path / "c")
        ).restore(_model(seed=5))
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == files


def _run_two_steps(tmp_path, model):
    backup = StepBackupAndRestore(str(tmp_path / "b"), 1, 10, checkpoint_dir=str(tmp_path / "c"))
    checkpoint = StepCheckpoint(str(tmp_path / "c"), 1, 10, keep=0)
    for callback in (checkpoint, backup):
        callback.set_model(model)
    rng = [v for v in model.variables if "seed_generator" in v.path]
    states = {}
    for step in (1, 2):
        _step_to(model, step)
        rng[0].assign(np.array([step, 11 * step], dtype=rng[0].dtype))
        checkpoint.on_train_batch_end(0)
        backup.on_train_batch_end(0)
        states[step] = _values(model)
    return states


def test_a_readable_but_changed_backup_is_passed_over_for_the_checkpoint_of_its_step(
    tmp_path, capsys
):
    states = _run_two_steps(tmp_path, _model())
    flip_a_weight(tmp_path / "b" / "step-00000002" / "state.weights.h5")
    fresh = _model(seed=3)
    restorer = StepBackupAndRestore(str(tmp_path / "b"), 1, 10, checkpoint_dir=str(tmp_path / "c"))
    assert restorer.restore(fresh) == 2
    out = capsys.readouterr().out
    assert "step-00000002 (state.weights.h5 does not match its checksum" in out
    # The checkpoint of the same step holds the RNG states too: the resume is exact.
    assert restorer.restored_from.endswith("ckpt-0000002.weights.h5")
    assert restorer.not_exact is None
    for a, b in zip(states[2], _values(fresh)):
        np.testing.assert_array_equal(a, b)
    # A changed checkpoint is passed over too, for the older backup.
    flip_a_weight(tmp_path / "c" / "ckpt-0000002.weights.h5")
    fresh = _model(seed=4)
    assert restorer.restore(fresh) == 1
    assert restorer.restored_from.endswith("step-00000001")
    for a, b in zip(states[1], _values(fresh)):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_without_its_sidecar_resumes_and_says_it_is_not_exact(tmp_path, capsys):
    _run_two_steps(tmp_path, _model())
    import shutil

    shutil.rmtree(tmp_path / "b")
    os.remove(tmp_path / "c" / "ckpt-0000002.json")  # as an older version wrote them
    restorer = StepBackupAndRestore(str(tmp_path / "b"), 1, 10, checkpoint_dir=str(tmp_path / "c"))
    assert restorer.restore(_model(seed=3)) == 2
    assert restorer.not_exact.startswith("resume not exact: resumed from checkpoint ")
    assert "\n" not in restorer.not_exact
    assert "warning: resume not exact" in capsys.readouterr().out


def test_a_backup_without_checksums_is_loaded_only_when_finite(tmp_path):
    model = _model()
    states = _run_two_steps(tmp_path, model)
    for step in (1, 2):  # as an older version wrote them
        os.remove(tmp_path / "b" / f"step-0000000{step}" / "checksums.json")
    import h5py

    with h5py.File(tmp_path / "b" / "step-00000002" / "state.weights.h5", "r+") as f:
        datasets = []
        f.visititems(lambda n, o: datasets.append(o) if isinstance(o, h5py.Dataset) else None)
        variable = [d for d in datasets if d.dtype.kind == "f"][0]  # e.g. a BN variance
        variable[...] = np.full(variable.shape, np.inf, variable.dtype)
    fresh = _model(seed=3)
    restorer = StepBackupAndRestore(str(tmp_path / "b"), 1, 10)
    assert restorer.restore(fresh) == 1  # the inf values of step 2 are refused
    for a, b in zip(states[1], _values(fresh)):
        np.testing.assert_array_equal(a, b)


def test_a_failed_load_leaves_the_model_untouched(tmp_path):
    wider = _model(feats=8)
    wider.save_weights(str(tmp_path / "other.weights.h5"))
    model = _model()
    before = _values(model)
    with pytest.raises(Exception):  # noqa: B017  (Keras' own shape-mismatch error)
        load_all_or_nothing(model, str(tmp_path / "other.weights.h5"))
    for a, b in zip(before, _values(model)):
        np.testing.assert_array_equal(a, b)


def test_checkpoints_keep_zero_means_all_and_old_ones_go_after_the_new_one(tmp_path):
    model = _model()
    keep_all = StepCheckpoint(str(tmp_path / "all"), 1, 10, keep=0)
    keep_two = StepCheckpoint(str(tmp_path / "two"), 1, 10, keep=2)
    for callback in (keep_all, keep_two):
        callback.set_model(model)
    for step in (1, 2, 3):
        _step_to(model, step)
        keep_all.on_train_batch_end(0)
        keep_two.on_train_batch_end(0)
    assert len(os.listdir(tmp_path / "all")) == 6  # 3 checkpoints, 3 sidecars
    assert sorted(os.listdir(tmp_path / "two")) == [
        "ckpt-0000002.json",
        "ckpt-0000002.weights.h5",
        "ckpt-0000003.json",
        "ckpt-0000003.weights.h5",
    ]
    with pytest.raises(ValueError, match="keep_checkpoints"):
        StepCheckpoint(str(tmp_path), 1, 10, keep=-1)


def test_non_finite_monitor_stops_after_a_run_of_bad_batches():
    monitor = NonFiniteMonitor(limit=3)
    model = _model()
    monitor.set_model(model)
    monitor.on_epoch_begin(0)
    counts = [0, 1, 1, 2, 3, 4]  # the epoch's running count: bad, good, bad, bad, bad
    for step, count in enumerate(counts, start=1):
        _step_to(model, step)
        monitor.on_train_batch_end(step, {"nonfinite_batches": float(count)})
    assert monitor.stopped_at == 6 and model.stop_training and monitor.total == 4


def test_no_room_for_a_checkpoint_is_refused_before_writing(tmp_path, monkeypatch):
    from keras_memseg.training import callbacks

    model = _model()
    checkpoint = StepCheckpoint(str(tmp_path / "c"), 1, 10)
    checkpoint.set_model(model)
    usage = callbacks.shutil.disk_usage
    monkeypatch.setattr(callbacks.shutil, "disk_usage", lambda p: usage(p)._replace(free=4096))
    _step_to(model, 1)
    with pytest.raises(callbacks.DiskFullError, match=r"to write \.tmp-ckpt-0000001.* needed"):
        checkpoint.on_train_batch_end(0)
    assert os.listdir(tmp_path / "c") == []


FULL_DISK_WRITE = """
import numpy as np, os, sys
from keras_memseg.training import callbacks
from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import DeepLabV3
model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), 3)
model.compile(jit_compile=False)
model(np.zeros((1, 32, 32, 3), "float32"))
with open(os.path.join(sys.argv[1], "filler"), "wb") as f:  # all but ~200 KiB
    f.write(b"0" * (callbacks.shutil.disk_usage(sys.argv[1]).free - 200 * 1024))
callbacks.ensure_space = lambda path, need: None  # the disk fills during the write
try:
    callbacks.save_weights_checked(model, os.path.join(sys.argv[1], "x.weights.h5"))
except callbacks.DiskFullError as error:
    print("DiskFullError:", error)
"""


def test_a_disk_that_fills_during_a_weights_write_is_an_error_not_a_crash(tmp_path):
    # HDF5 meeting a full disk half-way used to crash the interpreter at exit (139).
    import subprocess
    import sys

    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", FULL_DISK_WRITE, str(disk)],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "DiskFullError: no space left on the device while writing" in proc.stdout
        assert sorted(os.listdir(disk)) == ["filler"]  # the partial file is gone
    finally:
        subprocess.run(["umount", str(disk)], check=True)
