"""Training callbacks (TensorFlow): step-exact backup/restore, step checkpoints, scalars, eval."""

import glob
import json
import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class StepBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` keyed on the global step instead of (epoch, batch).

    Saves weights + optimizer state (+ the feature memory and its update counter,
    which are model variables) every `save_freq` optimizer steps and at
    `total_steps`. The trainer calls `restore()` before `fit` (it needs the step
    to position the data stream), so `on_train_begin` does not load again.
    The backup is kept after training (`delete_checkpoint=False`), so rerunning
    a finished command skips straight to evaluation.
    """

    def __init__(self, backup_dir, save_freq, total_steps):
        super().__init__(backup_dir, save_freq=int(save_freq), double_checkpoint=True,
                         delete_checkpoint=False)
        self.total_steps = int(total_steps)

    def restore(self, model):
        """Loads the latest backup into `model` (built, optimizer built); returns its step."""
        self.set_model(model)
        for path in (self._weights_path, self._prev_weights_path):
            if not os.path.exists(path):
                continue
            try:
                if path.endswith(".h5"):
                    model.load_weights(path)
                else:
                    _load_bkp(model, path)
                return _step(model)
            except (OSError, ValueError, KeyError) as error:  # torn write: try the older one
                print(f"warning: could not read backup {path}: {error}")
        return 0

    def on_train_begin(self, logs=None):
        pass  # restored by the trainer before fit (see `restore`)

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step % self.save_freq == 0 or step == self.total_steps:
            self._save_model()
            with open(self._training_metadata_path, "w") as f:
                json.dump({"step": step}, f)


def _load_bkp(model, path):
    # `latest.weights.h5.bkp` does not end in .h5; keras wants the suffix.
    tmp = path[: -len(".bkp")] + ".restore.weights.h5"
    tf.io.gfile.copy(path, tmp, overwrite=True)
    try:
        model.load_weights(tmp)
    finally:
        os.remove(tmp)


class StepCheckpoint(keras.callbacks.Callback):
    """Writes `ckpt-<step>.weights.h5` every `every` steps, keeping the last `keep`."""

    def __init__(self, directory, every, total_steps, keep=3, enabled=True):
        super().__init__()
        self.directory, self.every, self.keep = directory, int(every), int(keep)
        self.total_steps, self.enabled = int(total_steps), enabled

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if not self.enabled or (step % self.every and step != self.total_steps):
            return
        os.makedirs(self.directory, exist_ok=True)
        self.model.save_weights(os.path.join(self.directory, f"ckpt-{step:07d}.weights.h5"))
        old = sorted(glob.glob(os.path.join(self.directory, "ckpt-*.weights.h5")))
        for path in old[: max(len(old) - self.keep, 0)]:
            os.remove(path)


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars against the global step: losses, LR, memory momentum, mIoU.

    The running means Keras reports are written every `every` steps; `lr` is
    the schedule's value at the step just taken.
    """

    def __init__(self, log_dir, every, enabled=True):
        super().__init__()
        self.every, self.enabled = int(every), enabled
        self.writer = tf.summary.create_file_writer(log_dir) if enabled else None

    def learning_rate(self):
        optimizer = self.model.optimizer
        lr = optimizer.learning_rate
        schedule = getattr(optimizer, "_learning_rate", None)
        if callable(schedule):
            lr = schedule(_step(self.model) - 1)
        return float(keras.ops.convert_to_numpy(lr))

    def write(self, logs, step):
        if not self.enabled:
            return
        values = [summary_pb2.Summary.Value(tag=key, simple_value=float(value))
                  for key, value in logs.items()
                  if np.ndim(value) == 0 and np.isfinite(float(value))]
        with self.writer.as_default():
            # A raw `Summary` proto: TensorBoard reads it, and writing it does not
            # need the tensorboard package (tf.summary.scalar does).
            tf.summary.experimental.write_raw_pb(
                summary_pb2.Summary(value=values).SerializeToString(), step=int(step))
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
        print(f"\nstep {step}: val mIoU {100 * report['mIoU']:.2f}  "
              f"aAcc {100 * report['aAcc']:.2f}  mAcc {100 * report['mAcc']:.2f}")
        if self.scalar_logger is not None and self.enabled:
            self.scalar_logger.write(scores, step)
