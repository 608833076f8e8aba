"""TensorFlow-only: TorchSGD's momentum update as TensorFlow's fused training op.

`tf.raw_ops.ResourceApplyMomentum` computes `b <- momentum * b + g; w <- w - lr * b`
(with `use_nesterov`: `w <- w - lr * (g + momentum * b)`), PyTorch's SGD step, in one
kernel per variable instead of the dozen graph ops `TorchSGD.update_step` builds from
`keras.ops`. XLA (`jit_compile=True`, TPUs) compiles it too. The skip of a non-finite
step stays exact: the gradient is replaced by zeros, the momentum factor by 1 and
the rate by 0, so `b <- 1 * b + 0` and `w <- w - 0 * b` leave both unchanged.
"""

import keras
import tensorflow as tf


def step_scalars(learning_rate, momentum, finite, dtype):
    """(rate, momentum factor) for this step: (0, 1) when the step is skipped."""
    lr = tf.cast(learning_rate, dtype)
    return (
        tf.where(finite, lr, tf.zeros_like(lr)),
        tf.where(finite, tf.constant(momentum, dtype), tf.constant(1.0, dtype)),
    )


def apply_momentum(variable, buffer, gradient, lr, momentum, finite, nesterov):
    """One fused update of `variable` and its momentum `buffer` (both TF variables, or
    Keras variables backed by them; distributed ones inside `Strategy.update`).

    `lr` and `momentum` come from `step_scalars`; `finite` is the step's decision."""
    gradient = tf.cast(gradient, variable.dtype)
    gradient = tf.where(finite, gradient, tf.zeros_like(gradient))
    return tf.raw_ops.ResourceApplyMomentum(
        var=_handle(variable),
        accum=_handle(buffer),
        lr=lr,
        grad=gradient,
        momentum=momentum,
        use_nesterov=nesterov,
    )


def _handle(variable):
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
