"""Conv (no bias) + BatchNorm + activation, the building block of the head."""

import keras

from keras_memseg.layers.conv_policy import conv2d
from keras_memseg.layers.torch_batch_norm import TorchBatchNormalization

# PyTorch's default conv init (kaiming-uniform, a=sqrt(5)) is U(+-1/sqrt(fan_in)).
TORCH_CONV_INIT = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_in", "distribution": "uniform"},
}
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
_ACTIVATIONS = ("relu", "leaky_relu")


def batch_norm(name=None, sync_batchnorm=False, dtype=None):
    """BatchNormalization with PyTorch's epsilon, momentum and moving-variance update
    (`TorchBatchNormalization`; float32 statistics)."""
    if sync_batchnorm and keras.backend.backend() != "tensorflow":
        sync_batchnorm = False  # only TF distributes BN; other backends use global batches
    return TorchBatchNormalization(
        epsilon=BN_EPSILON,
        momentum=BN_MOMENTUM,
        synchronized=sync_batchnorm,
        name=name,
        dtype=dtype,
    )


def activation_layer(activation, name=None, dtype=None):
    if activation == "relu":
        return keras.layers.ReLU(name=name, dtype=dtype)
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.01, name=name, dtype=dtype)
    raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")


@keras.saving.register_keras_serializable(package="keras_memseg")
class ConvBNAct(keras.layers.Layer):
    """`act(BN(conv(x)))` with a bias-free conv, as every head block of the reference.

    Args:
        filters: output channels.
        kernel_size: 1 or 3 (square kernels).
        dilation_rate: dilation of the conv ("same" padding keeps the size).
        activation: `"relu"` or `"leaky_relu"` (slope 0.01, the LIP head).
        sync_batchnorm: synchronise BN statistics across replicas (TensorFlow).

    Example:
    >>> import numpy as np
    >>> tuple(ConvBNAct(8, 3)(np.zeros((1, 5, 5, 4), "float32")).shape)
    (1, 5, 5, 8)
    """

    def __init__(
        self,
        filters,
        kernel_size=1,
        dilation_rate=1,
        activation="relu",
        sync_batchnorm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.dilation_rate = int(dilation_rate)
        self.activation = activation
        self.sync_batchnorm = bool(sync_batchnorm)
        self.conv = conv2d(  # a keras.layers.Conv2D computed by the conv-path policy
            self.filters,
            self.kernel_size,
            padding="same",
            dilation_rate=self.dilation_rate,
            use_bias=False,
            kernel_initializer=TORCH_CONV_INIT,
            name="conv",
            dtype=self.dtype_policy,
        )
        self.bn = batch_norm("bn", self.sync_batchnorm, dtype=self.dtype_policy)
        self.act = activation_layer(activation, "act", dtype=self.dtype_policy)

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(tuple(input_shape[:-1]) + (self.filters,))
        self.built = True

    def call(self, inputs, training=None):
        return self.act(self.bn(self.conv(inputs), training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "activation": self.activation,
                "sync_batchnorm": self.sync_batchnorm,
            }
        )
        return config
