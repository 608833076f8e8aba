"""Training callbacks (TensorFlow): step-exact backup/restore, step checkpoints, the
non-finite monitor, TensorBoard scalars, periodic evaluation."""

import errno
import filecmp
import glob
import hashlib
import json
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf


def _step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _rng_variables(model):
    """The random-generator states of the model (dropout seeds): the variables that are
    not weights, so `save_weights` does not keep them."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _state_is_finite(model):
    return not model.nonfinite_weights() and all(
        np.all(np.isfinite(keras.ops.convert_to_numpy(v)))
        for v in model.optimizer.variables
        if "float" in str(v.dtype)
    )


def weights_file_arrays(path):
    """{dataset path: array} of an HDF5 weights file (`save_weights`' `.weights.h5`).

    Raises OSError or ValueError when `path` does not read as HDF5."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


def verify_weights_file(path):
    """True when `path` reads back as an HDF5 weights file whose arrays are all finite."""
    try:
        arrays = list(weights_file_arrays(path).values())
    except (OSError, ValueError):
        return False
    return bool(arrays) and all(
        np.all(np.isfinite(a)) for a in arrays if np.asarray(a).dtype.kind == "f"
    )


def sha256_of(path):
    """Hex SHA-256 of the file at `path`, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rng_state(model):
    """The dropout seed states as JSON-able [{"dtype", "value"}]."""
    arrays = [keras.ops.convert_to_numpy(v) for v in _rng_variables(model)]
    return [{"dtype": str(a.dtype), "value": a.tolist()} for a in arrays]


def _write_json(path, payload):
    with open(path, "w") as f:
        json.dump(payload, f)
        f.flush()
        os.fsync(f.fileno())


def _save_state(model, folder, step, weights_from=None):
    """Weights + optimizer (`state.weights.h5`), RNG states, the step and, last, the
    checksums of the three (`checksums.json`) into `folder`.

    `weights_from`: a `model.save_weights` file of this very state (the checkpoint
    just written at `step`), copied instead of saving the weights again."""
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, "state.weights.h5")
    if weights_from:
        ensure_space(target, os.path.getsize(weights_from) + 2**20)
        shutil.copyfile(weights_from, target)
    else:
        save_weights_checked(model, target)
    rng = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(_rng_variables(model))}
    np.savez(os.path.join(folder, "rng.npz"), **rng)
    with open(os.path.join(folder, "step.json"), "w") as f:
        json.dump({"step": int(step)}, f)
    _write_json(
        os.path.join(folder, CHECKSUMS),
        {name: sha256_of(os.path.join(folder, name)) for name in BACKUP_FILES},
    )


CHECKSUMS = "checksums.json"
BACKUP_FILES = ("state.weights.h5", "rng.npz", "step.json")


class CorruptStateError(ValueError):
    """A backup or checkpoint that reads but is not what was written (checksum, NaN)."""


def checkpoint_sidecar(weights_path):
    """`ckpt-0000100.weights.h5` -> `ckpt-0000100.json`: its checksum, step and RNG."""
    return weights_path[: -len(".weights.h5")] + ".json"


def step_of(path):
    """The step in a `step-00000100` / `ckpt-0000100.weights.h5` name (-1 if none)."""
    digits = "".join(ch for ch in os.path.basename(path).split(".")[0] if ch.isdigit())
    return int(digits) if digits else -1


def _verify_backup(folder):
    """Raises CorruptStateError when a file of the backup `folder` does not match its
    checksum; returns False for a backup without checksums (an older version's)."""
    path = os.path.join(folder, CHECKSUMS)
    if not os.path.exists(path):
        return False
    try:
        with open(path) as f:
            expected = json.load(f)
        if not isinstance(expected, dict) or set(expected) != set(BACKUP_FILES):
            raise ValueError("not a checksum list")
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise CorruptStateError(f"{path} does not read ({error})") from None
    for name in BACKUP_FILES:
        if sha256_of(os.path.join(folder, name)) != expected[name]:
            raise CorruptStateError(f"{name} does not match its checksum (the file changed)")
    return True


def _read_checkpoint_sidecar(weights_path):
    """The checkpoint's RNG states, after checking its checksum; None when it has no
    sidecar (an older version's checkpoint, or one copied without it)."""
    path = checkpoint_sidecar(weights_path)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            meta = json.load(f)
        expected, rng = meta["sha256"], meta["rng"]
        states = [np.asarray(r["value"], dtype=r["dtype"]) for r in rng]
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CorruptStateError(f"{path} does not read ({error})") from None
    if sha256_of(weights_path) != expected:
        raise CorruptStateError("the file does not match its checksum (it changed)")
    return states


def load_all_or_nothing(model, weights_path, rng_path=None, rng_states=None):
    """Loads `weights_path` (and RNG states) into `model`, or leaves it exactly as it was.

    Keras' `load_weights` assigns layer by layer and can fail half-way (a shape
    mismatch, a torn file): the previous values of every variable are put back then,
    and also when the loaded state holds NaN/inf (`CorruptStateError`).
    `rng_path`: a backup's `rng.npz`; `rng_states`: the arrays themselves.
    """
    variables = list(model.variables) + list(model.optimizer.variables)
    snapshot = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    try:
        model.load_weights(weights_path)
        states = rng_states
        if rng_path is not None:
            with np.load(rng_path) as rng:
                states = [rng[f"v{i}"] for i in range(len(rng.files))]
        if states is not None:
            targets = _rng_variables(model)
            if len(states) != len(targets):
                raise ValueError(
                    f"{rng_path or weights_path} holds {len(states)} RNG states, the model "
                    f"has {len(targets)}"
                )
            for variable, value in zip(targets, states):
                variable.assign(value)
        if not _state_is_finite(model):
            raise CorruptStateError("its weights or optimizer state hold NaN/inf")
    except Exception:
        for variable, value in zip(variables, snapshot):
            variable.assign(value)
        raise


def is_disk_full(error):
    """True for the OSError of a full disk or quota (or a file size limit)."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class DiskFullError(OSError):
    """No room to write a checkpoint, backup or model (one line: the file, the space)."""

    def __init__(self, message):
        super().__init__(errno.ENOSPC, message)

    def __str__(self):
        return self.strerror


def state_bytes(model):
    """Bytes of the model's and optimizer's variables: what a weights file holds."""
    variables = list(model.variables) + list(getattr(model.optimizer, "variables", []))
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def ensure_space(path, need):
    """Raises DiskFullError when the file system of `path` has under `need` bytes free.

    Checked before a weights file is written: HDF5 meeting a full disk half-way leaves
    its file handle in a state that crashes the interpreter later (exit 139)."""
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DiskFullError(
            f"no space left on the device of {folder} to write {os.path.basename(path)}: "
            f"{free / 2**20:.1f} MiB free, about {need / 2**20:.1f} MiB needed"
        )


def save_weights_checked(model, path):
    """`model.save_weights(path)` after checking the free space (the state's bytes plus
    HDF5's overhead); a full disk met anyway is a DiskFullError, the partial file gone."""
    ensure_space(path, int(state_bytes(model) * 1.25) + 2**20)
    try:
        model.save_weights(path)
    except OSError as error:
        _close_h5_files(path)
        if os.path.exists(path):
            os.remove(path)
        if is_disk_full(error):
            raise DiskFullError(
                f"no space left on the device while writing {path} ({error.strerror or error})"
            ) from None
        raise


def _close_h5_files(path):
    """Closes the HDF5 file Keras left open on `path` when a write failed (its store is
    not closed on errors). The file is emptied first: closing flushes metadata, which on
    a full disk fails again and leaves a handle that crashes the interpreter at exit."""
    import gc

    import h5py

    target = os.path.abspath(path)
    if os.path.exists(target):
        os.truncate(target, 0)
    for obj in gc.get_objects():
        try:
            if isinstance(obj, h5py.File) and obj.id.valid:
                if os.path.abspath(obj.filename) == target:
                    obj.close()
        except Exception:  # noqa: BLE001, S110 - best effort on a broken handle
            pass


class StepBackupAndRestore(keras.callbacks.Callback):
    """Step-keyed backups for exact resume: weights, optimizer, feature memory, step, RNG.

    Every `save_freq` optimizer steps (and at `total_steps`) it writes
    `backup_dir/step-<N>/` (`state.weights.h5`: model and optimizer variables, the
    memory and its update counter included; `rng.npz`: the dropout seed states;
    `step.json`; `checksums.json`: their SHA-256) into a hidden temporary folder, reads
    it back, and renames it into place; then the older backups beyond the newest two are
    removed. Nothing is written from a non-finite state (the last good backup survives).
    `restore()` tries the backups newest first, then the checkpoints of
    `checkpoint_dir`, each checked against its checksums and loaded all-or-nothing.

    `checkpoint`: the run's `StepCheckpoint`, placed before this callback. At a step it
    has just checkpointed, the backup's `state.weights.h5` is a copy of that file (the
    same `save_weights` of the same, already checked, state) instead of a second save.
    """

    def __init__(
        self, backup_dir, save_freq, total_steps, checkpoint_dir=None, keep=2, checkpoint=None
    ):
        super().__init__()
        self.backup_dir, self.save_freq = backup_dir, int(save_freq)
        self.total_steps, self.checkpoint_dir, self.keep = int(total_steps), checkpoint_dir, keep
        self.checkpoint = checkpoint
        self.skipped_nonfinite = []

    def _backups(self):
        if not os.path.isdir(self.backup_dir):
            return []
        return sorted(
            (d for d in os.listdir(self.backup_dir) if d.startswith("step-")), reverse=True
        )

    def candidates(self):
        """[(kind, description, weights path, rng path or None)], newest step first;
        kind is "backup" or "checkpoint"."""
        out = [
            (
                "backup",
                os.path.join(self.backup_dir, d),
                os.path.join(self.backup_dir, d, "state.weights.h5"),
                os.path.join(self.backup_dir, d, "rng.npz"),
            )
            for d in self._backups()
        ]
        if self.checkpoint_dir and os.path.isdir(self.checkpoint_dir):
            for path in glob.glob(os.path.join(self.checkpoint_dir, "ckpt-*.weights.h5")):
                out.append(("checkpoint", path, path, None))
        # Newest step first; at one step the backup (it also holds the RNG) first.
        return sorted(out, key=lambda c: (-step_of(c[1]), c[0] != "backup"))

    def _load(self, model, kind, weights, rng):
        """Loads one candidate after its checksum; returns whether it was checked."""
        if kind == "backup":
            checked = _verify_backup(os.path.dirname(weights))
            load_all_or_nothing(model, weights, rng)
            return checked
        states = _read_checkpoint_sidecar(weights)
        load_all_or_nothing(model, weights, rng_states=states)
        return states is not None

    def restore(self, model):
        """Loads the newest intact backup (or checkpoint) into `model`; returns its step.

        A candidate is loaded only when its files match the checksums written with them
        and its state is finite; otherwise the next older one is tried, and the resume
        says which were passed over. `not_exact` is a one-line note when the resume
        cannot reproduce an uninterrupted run (a checkpoint without random states),
        else None. Returns 0 when the folder holds none. Raises when it holds some but
        none is usable.
        """
        self.set_model(model)
        self.restored_from, self.not_exact = None, None
        candidates = self.candidates()
        problems = []
        for kind, where, weights, rng in candidates:
            try:
                checked = self._load(model, kind, weights, rng)
            except Exception as error:  # noqa: BLE001 - reported, then the next one
                reason = " ".join(str(error).split())[:200] or type(error).__name__
                problems.append(f"{where}: {type(error).__name__}: {reason}")
                print(f"warning: cannot restore {where} ({reason}); trying an older one")
                continue
            step = _step(model)
            self.restored_from = where
            if problems:
                print(
                    f"warning: resumed from {where} at step {step}: {len(problems)} newer "
                    "backup(s) or checkpoint(s) were unusable (see above); training goes "
                    f"on from step {step} as an uninterrupted run would"
                )
            if kind == "checkpoint" and not checked:
                self.not_exact = (
                    f"resume not exact: resumed from checkpoint {where} (step {step}), "
                    "which has no checksum or random states (an older version wrote it): "
                    "dropout draws differ from an uninterrupted run's from here on"
                )
                print(f"warning: {self.not_exact}")
            elif not checked:
                print(
                    f"warning: {where} has no checksums (an older version wrote it); "
                    "loaded because it reads whole and is finite"
                )
            return step
        if candidates:
            from keras_memseg.training.run_folder import RunFolderError

            run_dir = os.path.dirname(os.path.abspath(self.backup_dir))
            raise RunFolderError(
                f"cannot resume {run_dir}: no usable backup or checkpoint "
                f"({len(candidates)} tried, first problem: {problems[0]}). Nothing was "
                "deleted; move the run folder aside or pass another --run_dir to start again"
            )
        return 0

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step % self.save_freq and step != self.total_steps:
            return
        written = getattr(self.checkpoint, "last_written", None)
        copy_from = written[1] if written and written[0] == step else None
        if copy_from is None and not _state_is_finite(self.model):
            self.skipped_nonfinite.append(step)
            print(
                f"warning: step {step}: weights or optimizer state are not finite; "
                "no backup written (the previous one is kept)"
            )
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".tmp-", dir=self.backup_dir)
        try:
            _save_state(self.model, staging, step, weights_from=copy_from)
            written = os.path.join(staging, "state.weights.h5")
            # A copy of the checkpoint (read back when it was written) is checked byte
            # for byte against it; a fresh save is read back as HDF5.
            if not (
                filecmp.cmp(copy_from, written, shallow=False)
                if copy_from
                else verify_weights_file(written)
            ):
                raise OSError(f"backup of step {step} did not read back")
            target = os.path.join(self.backup_dir, f"step-{step:08d}")
            if os.path.exists(target):
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if os.path.exists(staging):
                shutil.rmtree(staging)
        for old in self._backups()[self.keep :]:
            shutil.rmtree(os.path.join(self.backup_dir, old), ignore_errors=True)


class StepCheckpoint(keras.callbacks.Callback):
    """Writes `ckpt-<step>.weights.h5` every `every` steps, keeping the last `keep` (0 =
    all). A checkpoint is written to a temporary file, read back and renamed; older ones
    are removed only after that, and nothing is written from a non-finite state.

    Beside each, `ckpt-<step>.json` holds the file's SHA-256, the step and the dropout
    random states, so that a resume from a checkpoint is checked and exact."""

    def __init__(self, directory, every, total_steps, keep=3, enabled=True):
        super().__init__()
        if int(keep) < 0:
            raise ValueError(f"keep_checkpoints must be >= 0 (0 = keep all), got {keep}")
        self.directory, self.every, self.keep = directory, int(every), int(keep)
        self.total_steps, self.enabled = int(total_steps), enabled
        self.last_written = None  # (step, path) of the newest checkpoint this run wrote

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if not self.enabled or (step % self.every and step != self.total_steps):
            return
        if not _state_is_finite(self.model):
            print(f"warning: step {step}: not finite; no checkpoint written")
            return
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"ckpt-{step:07d}.weights.h5")
        tmp = os.path.join(self.directory, f".tmp-ckpt-{step:07d}.weights.h5")
        sidecar = checkpoint_sidecar(path)
        try:
            save_weights_checked(self.model, tmp)
            if not verify_weights_file(tmp):
                raise OSError(f"checkpoint {path} did not read back")
            # The sidecar (checksum, step, random states) goes into place first: a
            # checkpoint is never visible without it.
            _write_json(
                sidecar + ".tmp",
                {"step": step, "sha256": sha256_of(tmp), "rng": _rng_state(self.model)},
            )
            os.replace(sidecar + ".tmp", sidecar)
            os.replace(tmp, path)
        finally:
            for leftover in (tmp, sidecar + ".tmp"):
                if os.path.exists(leftover):
                    os.remove(leftover)
        self.last_written = (step, path)
        if self.keep:
            old = sorted(glob.glob(os.path.join(self.directory, "ckpt-*.weights.h5")))
            for stale in old[: max(len(old) - self.keep, 0)]:
                os.remove(stale)
                if os.path.exists(checkpoint_sidecar(stale)):
                    os.remove(checkpoint_sidecar(stale))


class NonFiniteMonitor(keras.callbacks.Callback):
    """Stops training after `limit` batches in a row had NaN/inf images or outputs.

    Such batches change nothing (the model skips them and counts them in its
    `nonfinite_batches` metric); a run that keeps producing them is broken (bad data,
    a diverged model), so it stops and `stopped_at` holds the step.
    """

    def __init__(self, limit=10):
        super().__init__()
        self.limit, self.in_a_row, self.total, self.stopped_at = int(limit), 0, 0, None
        self._seen = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._seen = 0.0

    def on_train_batch_end(self, batch, logs=None):
        count = float(np.asarray((logs or {}).get("nonfinite_batches", self._seen)).reshape(-1)[0])
        new = count - self._seen
        self._seen = count
        if new > 0:
            self.in_a_row += 1
            self.total += 1
        else:
            self.in_a_row = 0
        if self.limit and self.in_a_row >= self.limit:
            self.stopped_at = _step(self.model)
            self.model.stop_training = True


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars against the global step: losses, LR, memory momentum, mIoU.

    Written with `tf.summary.scalar` (the `tensorboard` package), one event file
    under `log_dir`, so `tensorboard --logdir runs/` plots them. Every `every`
    optimizer steps the running means Keras reports for the epoch are written as
    `train/<name>` (`train/loss`, `train/loss_stage2`, ..., `train/memory_momentum`),
    with `train/learning_rate`: the schedule's value at the step just taken.
    `PeriodicEvaluation` and the trainer add `val/mIoU`, `val/aAcc`, `val/mAcc`
    through `write`. Non-scalar and non-finite values are skipped.
    """

    def __init__(self, log_dir, every, enabled=True):
        super().__init__()
        self.every, self.enabled = int(every), enabled
        if enabled and not hasattr(tf.summary, "scalar"):
            raise ImportError(
                "ScalarLogger needs the tensorboard package "
                "(tf.summary.scalar comes with it): pip install tensorboard"
            )
        self.writer = tf.summary.create_file_writer(log_dir) if enabled else None

    def learning_rate(self):
        # A wrapper (`FiniteStep`, Keras' LossScaleOptimizer) holds the schedule inside.
        optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        lr = optimizer.learning_rate
        schedule = getattr(optimizer, "_learning_rate", None)
        if callable(schedule):
            lr = schedule(_step(self.model) - 1)
        return float(keras.ops.convert_to_numpy(lr))

    def write(self, logs, step):
        """Writes each finite scalar of `logs` ({tag: value}) at `step`; flushes."""
        if not self.enabled:
            return
        with self.writer.as_default(step=int(step)):
            for tag, value in logs.items():
                value = np.asarray(keras.ops.convert_to_numpy(value), np.float64)
                # size 1: MultiWorkerMirroredStrategy gives the logs a leading axis of 1.
                if value.size == 1 and np.isfinite(value.reshape(())):
                    tf.summary.scalar(tag, float(value.reshape(())))
        self.writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if logs is not None:
            logs["learning_rate"] = self.learning_rate()
        if step % self.every == 0:
            self.write({f"train/{k}": v for k, v in (logs or {}).items()}, step)


class PeriodicEvaluation(keras.callbacks.Callback):
    """Runs `evaluate_fn(model) -> report` every `every` steps; logs val mIoU/aAcc/mAcc."""

    def __init__(self, evaluate_fn, every, scalar_logger=None, enabled=True, total_steps=None):
        super().__init__()
        self.total_steps = total_steps  # the trainer evaluates the final step itself
        self.evaluate_fn, self.every = evaluate_fn, int(every)
        self.scalar_logger, self.enabled = scalar_logger, enabled
        self.last_report = None

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if not self.every or step % self.every or step == self.total_steps:
            return
        report = self.evaluate_fn(self.model)
        self.last_report = report
        scores = {f"val/{k}": report[k] for k in ("mIoU", "aAcc", "mAcc")}
        print(
            f"\nstep {step}: val mIoU {100 * report['mIoU']:.2f}  "
            f"aAcc {100 * report['aAcc']:.2f}  mAcc {100 * report['mAcc']:.2f}"
        )
        if self.scalar_logger is not None and self.enabled:
            self.scalar_logger.write(scores, step)
