"""Run as a script: MirroredStrategy over 2 logical CPUs vs. single-device updates.

Logical devices must be configured before TensorFlow initialises, hence a subprocess.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from keras_memseg.models import FeatureMemory  # noqa: E402

K, C, MOMENTUM = 5, 6, 0.7


def initial_memory(feats_per_class):
    rng = np.random.default_rng(1)
    memory = rng.normal(size=(K, feats_per_class, C)).astype("float32")
    memory[1] = 0.0  # first seen in this step
    memory[3] = 0.0
    return memory


def batch():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(4, 4, 4, C)).astype("float32")
    labels = rng.integers(0, K, size=(4, 16, 16)).astype("int32")
    labels[rng.random(labels.shape) < 0.2] = 255
    labels[:2][labels[:2] == 3] = 0  # class 3 only on the second replica's images
    return feats, labels


def single_device(feats, labels, sync, feats_per_class):
    layer = FeatureMemory(K, C, feats_per_class=feats_per_class, sync=sync)
    layer.memory.assign(initial_memory(feats_per_class))
    layer.update(feats, labels, MOMENTUM)
    return layer.memory.numpy()


STRATEGY = None


def mirrored(feats, labels, sync, feats_per_class):
    global STRATEGY
    STRATEGY = STRATEGY or tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    strategy = STRATEGY
    with strategy.scope():
        layer = FeatureMemory(K, C, feats_per_class=feats_per_class, sync=sync)
    layer.memory.assign(initial_memory(feats_per_class))
    halves = strategy.experimental_distribute_values_from_function(
        lambda ctx: (
            feats[2 * ctx.replica_id_in_sync_group : 2 * ctx.replica_id_in_sync_group + 2],
            labels[2 * ctx.replica_id_in_sync_group : 2 * ctx.replica_id_in_sync_group + 2],
        )
    )

    @tf.function
    def step(values):
        strategy.run(lambda f, y: layer.update(f, y, MOMENTUM), args=values)

    step(halves)
    values = (
        [v.numpy() for v in layer.memory.value.values]
        if hasattr(layer.memory.value, "values")
        else [layer.memory.numpy()]
    )
    for v in values[1:]:
        assert np.array_equal(v, values[0]), "replicas disagree on the memory"
    return layer.memory.numpy()


def main():
    feats, labels = batch()
    failures = 0
    for n in (1, 3):
        got = mirrored(feats, labels, "global", n)
        want = single_device(feats, labels, "global", n)
        err = np.abs(got - want).max()
        print(f"global n={n}: max abs err vs one device on the global batch = {err:.2e}")
        failures += err > 1e-5
        got = mirrored(feats, labels, "replica_mean", n)
        want = 0.5 * (
            single_device(feats[:2], labels[:2], "global", n)
            + single_device(feats[2:], labels[2:], "global", n)
        )
        err = np.abs(got - want).max()
        print(f"replica_mean n={n}: max abs err vs mean of two half-batch updates = {err:.2e}")
        failures += err > 1e-5
        # The two semantics must actually differ here (else the test proves nothing).
        differ = np.abs(mirrored(feats, labels, "global", n) - got).max()
        print(f"n={n}: global vs replica_mean differ by {differ:.2e}")
        failures += differ < 1e-3
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
