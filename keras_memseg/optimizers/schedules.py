"""The poly learning-rate schedule and the memory momentum tied to it.

The reference (`ssseg`'s `PolyScheduler`, MCIBI's `FeaturesMemory.update` with
`adjust_by_learning_rate=True`) sets both per iteration: the rate decays with power
0.9 to a floor of `0.01 * lr0`, and the memory momentum moves in step with it.

Both are plain functions of the step, written with `keras.ops`, so they run inside
the compiled training step on every backend (no callback mutates a variable).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_memseg")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`lr_t = (lr0 - lr_min) * (1 - t / T) ** power + lr_min`, `lr_min = min_ratio * lr0`.

    `t` is the 0-based step, clipped to `T`.

    Example:
    >>> schedule = PolyDecay(0.01, total_steps=100)
    >>> round(float(schedule(0)), 6), round(float(schedule(100)), 6)
    (0.01, 0.0001)
    """

    def __init__(
        self, initial_learning_rate, total_steps, power=0.9, min_ratio=0.01, name="poly_decay"
    ):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.min_ratio = float(min_ratio)
        self.name = name

    def __call__(self, step):
        step = ops.minimum(ops.cast(step, "float32"), float(self.total_steps))
        lr0 = self.initial_learning_rate
        lr_min = self.min_ratio * lr0
        return (lr0 - lr_min) * ops.power(1.0 - step / self.total_steps, self.power) + lr_min

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "power": self.power,
            "min_ratio": self.min_ratio,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="keras_memseg")
class TiedMomentum:
    """Memory momentum `m_t = base_momentum * lr_t / base_lr` (adjust_by_learning_rate).

    Args:
        learning_rate: the learning-rate schedule of the optimizer (or a float).
        base_momentum: 0.9 in every paper config.
        base_lr: the config's `base_lr_m` (e.g. 0.01 for ADE20K, 0.9 * lr0 for
            Cityscapes and COCO-Stuff, where m starts at 1.0).

    Example:
    >>> m = TiedMomentum(PolyDecay(0.01, 100), base_momentum=0.9, base_lr=0.01)
    >>> round(float(m(0)), 6), round(float(m(100)), 6)
    (0.9, 0.009)
    """

    def __init__(self, learning_rate, base_momentum=0.9, base_lr=None):
        if base_lr is None:
            base_lr = learning_rate(0) if callable(learning_rate) else learning_rate
            base_lr = float(ops.convert_to_numpy(base_lr))
        if base_lr <= 0:
            raise ValueError(f"base_lr must be positive, got {base_lr}")
        self.learning_rate = learning_rate
        self.base_momentum = float(base_momentum)
        self.base_lr = float(base_lr)

    def __call__(self, step):
        lr = self.learning_rate(step) if callable(self.learning_rate) else self.learning_rate
        return self.base_momentum * ops.cast(lr, "float32") / self.base_lr

    def get_config(self):
        lr = self.learning_rate
        if callable(lr):
            lr = keras.saving.serialize_keras_object(lr)
        return {"learning_rate": lr, "base_momentum": self.base_momentum, "base_lr": self.base_lr}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["learning_rate"], dict):
            config["learning_rate"] = keras.saving.deserialize_keras_object(config["learning_rate"])
        return cls(**config)
