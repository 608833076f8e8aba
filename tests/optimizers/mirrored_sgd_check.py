"""Run as a script: TorchSGD's fused TensorFlow update under MirroredStrategy (2
logical CPUs) against a NumPy transcription of `torch.optim.SGD`.

Logical devices must be configured before TensorFlow initialises, hence a subprocess.
Prints one "max abs err" line per (nesterov, replica) and exits non-zero on a mismatch.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_memseg.optimizers import PolyDecay  # noqa: E402
from keras_memseg.optimizers import TorchSGD  # noqa: E402

STEPS, MOMENTUM, LR = 4, 0.9, 0.1


def gradients():
    """[step][replica] -> (ga, gb); step 2 has a NaN on replica 1 only."""
    rng = np.random.default_rng(0)
    out = [
        [(rng.normal(size=(3, 2)), rng.normal(size=(4,))) for _ in range(2)] for _ in range(STEPS)
    ]
    out = [[(a.astype("float32"), b.astype("float32")) for a, b in step] for step in out]
    out[2][1][0][1, 1] = np.nan
    return out


def numpy_sgd(w0, grads, nesterov):
    """torch.optim.SGD (momentum, dampening 0) on the replica-summed gradients; a step
    with any non-finite value is skipped whole."""
    schedule = PolyDecay(LR, total_steps=STEPS)
    w = [x.copy() for x in w0]
    b = [None, None]
    for t, per_replica in enumerate(grads):
        summed = [per_replica[0][i] + per_replica[1][i] for i in range(2)]
        if not all(np.isfinite(g).all() for g in summed):
            continue
        lr = float(schedule(t))
        for i, g in enumerate(summed):
            b[i] = g if b[i] is None else MOMENTUM * b[i] + g
            step = g + MOMENTUM * b[i] if nesterov else b[i]
            w[i] = w[i] - lr * step
    return w


def mirrored(w0, grads, nesterov):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        variables = [keras.Variable(x) for x in w0]
        optimizer = TorchSGD(PolyDecay(LR, total_steps=STEPS), momentum=MOMENTUM, nesterov=nesterov)
        optimizer.build(variables)

    @tf.function
    def step(per_replica):
        def fn(ga, gb):
            optimizer.apply([ga, gb], variables)

        strategy.run(fn, args=per_replica)

    for per_replica in grads:
        values = strategy.experimental_distribute_values_from_function(
            lambda ctx, pr=per_replica: pr[ctx.replica_id_in_sync_group]
        )
        step(values)
    return [[v.value.values[replica].numpy() for v in variables] for replica in range(2)]


def main():
    rng = np.random.default_rng(1)
    w0 = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    grads = gradients()
    ok = True
    for nesterov in (False, True):
        expected = numpy_sgd(w0, grads, nesterov)
        for replica, got in enumerate(mirrored(w0, grads, nesterov)):
            err = max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected))
            print(f"nesterov={nesterov} replica {replica}: max abs err {err:.3g}")
            ok = ok and err <= 1e-5
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
