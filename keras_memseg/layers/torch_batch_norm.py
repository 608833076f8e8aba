"""BatchNormalization whose moving variance follows PyTorch's `BatchNorm2d`."""

import math

import keras
from keras import ops

from keras_memseg import distribute


@keras.saving.register_keras_serializable(package="keras_memseg")
class TorchBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with PyTorch's moving-variance update.

    Both normalise a training batch with its biased variance (the mean squared
    deviation over the `n` values of a channel). PyTorch then moves `running_var`
    towards the unbiased variance `var * n / (n - 1)`, Keras towards the biased one.
    The reference trains with PyTorch's rule, and `n` is small in MCIBI: the memory
    loss runs decoder_stage2's BN on the K memory rows (n = K), the ASPP image-pool
    BN sees one value per image (n = batch size). With `synchronized=True` (TF), `n`
    counts the values of every replica. Inference and every other argument are
    those of `keras.layers.BatchNormalization`.

    Example:
    >>> import numpy as np
    >>> bn = TorchBatchNormalization(momentum=0.0)
    >>> x = np.array([[0.0], [2.0]], "float32")       # batch var 1, unbiased 2
    >>> _ = bn(x, training=True)
    >>> float(bn.moving_variance.numpy()[0])
    2.0
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or mask is not None or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        axis = self.axis % len(x.shape)
        gamma = ops.cast(self.gamma, x.dtype) if self.scale else None
        beta = ops.cast(self.beta, x.dtype) if self.center else None
        axes = [i for i in range(len(x.shape)) if i != axis]
        mean, variance = ops.moments(x, axes, synchronized=self.synchronized)
        count = _value_count(x, axes, self.synchronized)
        if isinstance(count, float):
            unbiased = variance * count / max(count - 1.0, 1.0)
        else:
            unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
        self._update_moving_statistics(mean, unbiased, x.dtype)
        outputs = ops.batch_normalization(
            x,
            mean=mean,
            variance=variance,
            axis=axis,
            offset=beta,
            scale=gamma,
            epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)

    def _update_moving_statistics(self, mean, unbiased, dtype):
        momentum = self.momentum
        self.moving_mean.assign(
            ops.cast(self.moving_mean, dtype) * momentum + mean * (1.0 - momentum)
        )
        self.moving_variance.assign(
            ops.cast(self.moving_variance, dtype) * momentum + unbiased * (1.0 - momentum)
        )


def _value_count(x, axes, synchronized):
    """The `n` values a channel's statistics average over (every replica's with
    `synchronized`): a Python float when the shape is static (no ops to trace)."""
    sizes = [x.shape[i] for i in axes]
    if not synchronized and all(s is not None for s in sizes):
        return float(math.prod(sizes))
    shape = ops.shape(x)
    count = ops.cast(ops.prod(ops.stack([ops.cast(shape[i], "int32") for i in axes])), "float32")
    return distribute.cross_replica_sum(count) if synchronized else count


# Keras keys the weights of layers held in a list (a functional model's `layers`) by
# their snake-cased class name, numbered: "batch_normalization", ... Answering to
# BatchNormalization's name keeps those paths, so `.weights.h5`, `.keras` files and
# presets written with `keras.layers.BatchNormalization` load unchanged (serialisation
# uses the registered name, "keras_memseg>TorchBatchNormalization").
TorchBatchNormalization.__name__ = "BatchNormalization"
