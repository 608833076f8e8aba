"""Subprocess body for the trainer tests: a tiny run on synthetic data, state dumped to .npz.

Usage: python _train_worker.py '<json>' where json has "config" (RecipeConfig overrides)
and optionally "logical_cpus", "determinism", "kill_at" (SIGKILL itself after that
optimizer step), "dump" (npz path), "strategy", "late_threads" (an intra-op pool
size the config asks for only after the strategy started the runtime), "evaluate",
"count_forwards" (print how many evaluation forwards the run compiled),
"disk_full_at" (from that optimizer step on, the disk reports 1 KiB free; a
`DiskFullError` is printed as the recipes print it, exit status 1).
"""

import json
import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

args = json.loads(sys.argv[1])
if args.get("logical_cpus"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * args["logical_cpus"]
    )
if args.get("determinism"):
    tf.config.experimental.enable_op_determinism()

import keras  # noqa: E402

keras.config.disable_traceback_filtering()

from keras_memseg.tensorflow_runtime import set_thread_counts  # noqa: E402
from keras_memseg.training import get_recipe  # noqa: E402
from keras_memseg.training import trainer  # noqa: E402
from keras_memseg.training.strategy import make_strategy  # noqa: E402

TINY = dict(
    backbone="resnet18_v1c",
    base_channels=8,
    feats_channels=16,
    transform_channels=8,
    aux_channels=8,
    crop_size=(32, 32),
    target_scale=(48, 32),
    ratio_range=(1.0, 1.0),
    global_batch_size=2,
    num_train_examples=8,
    epochs=1,
    max_steps=6,
    checkpoint_every=2,
    dropout=0.0,
    learning_rate=0.01,
    base_lr_m=0.01,
    eval_every=0,
    verbose=0,
    show_dir="none",
    max_eval_examples=2,
    export_dir="",
)


def synthetic(n=8, h=40, w=48, classes=11, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    if nan:  # float images with one NaN pixel each: every batch is non-finite
        images = images.astype("float32")
        images[:, 5, 5, 0] = np.nan
    labels = rng.integers(0, classes, (n, h, w), dtype=np.uint8)
    labels[:, :4] = 255  # some ignore pixels
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})


class AtStep(keras.callbacks.Callback):
    """Calls `action()` once the optimizer has taken step `step`."""

    def __init__(self, step, action):
        super().__init__()
        self.step, self.action = step, action

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            self.action()


def kill_now():
    os.kill(os.getpid(), signal.SIGKILL)  # like kill -9: no cleanup at all


def fill_the_disk():
    from keras_memseg.training import callbacks

    usage = callbacks.shutil.disk_usage
    callbacks.shutil.disk_usage = lambda p: usage(p)._replace(free=1024)


def main():
    config = get_recipe("sample").replace(
        **{**TINY, **{k: tuple(v) if isinstance(v, list) else v for k, v in args["config"].items()}}
    )
    # A strategy made here starts TensorFlow's runtime: the recipe's thread pools first.
    set_thread_counts(config.inter_op_parallelism_threads, config.intra_op_parallelism_threads)
    strategy = make_strategy(args.get("strategy", "default"))
    if args.get("late_threads"):  # pools asked for after the runtime started
        config = config.replace(intra_op_parallelism_threads=args["late_threads"])
    callbacks = [AtStep(args["kill_at"], kill_now)] if args.get("kill_at") else []
    if args.get("disk_full_at"):  # runs after the step's checkpoint and backup
        callbacks.append(AtStep(args["disk_full_at"], fill_the_disk))
    compiled = []
    if args.get("count_forwards"):
        original = trainer.compiled_forward

        def counting(model):
            compiled.append(model)
            return original(model)

        trainer.compiled_forward = counting
    from keras_memseg.training.callbacks import DiskFullError

    try:
        result = trainer.train(
            config,
            extra_callbacks=callbacks,
            evaluate=args.get("evaluate", False),
            strategy=strategy,
            train_data=synthetic(nan=args.get("nan", False)),
            eval_data=synthetic(4),
        )
    except DiskFullError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    model = result.model
    if args.get("count_forwards"):
        print(f"compiled forwards: {len(compiled)}")
    threading = tf.config.threading
    print(
        f"thread pools: inter {threading.get_inter_op_parallelism_threads()} "
        f"intra {threading.get_intra_op_parallelism_threads()}"
    )
    if args.get("dump"):
        arrays = {f"w{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.weights)}
        arrays["memory"] = keras.ops.convert_to_numpy(model.memory.memory)
        arrays["num_updates"] = keras.ops.convert_to_numpy(model.memory.num_updates)
        arrays["iterations"] = keras.ops.convert_to_numpy(model.optimizer.iterations)
        arrays["opt"] = np.concatenate(
            [np.ravel(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables]
        )
        arrays["replicas"] = np.array(strategy.num_replicas_in_sync)
        arrays["sync_batchnorm"] = np.array(model.sync_batchnorm)
        np.savez(args["dump"], **arrays)


if __name__ == "__main__":
    main()
