"""Classifier heads: [conv-BN-act] -> SpatialDropout2D -> conv1x1 (with bias)."""

import keras

from keras_memseg.layers.conv_bn_act import TORCH_CONV_INIT
from keras_memseg.layers.conv_bn_act import ConvBNAct
from keras_memseg.layers.conv_policy import conv2d


@keras.saving.register_keras_serializable(package="keras_memseg")
class SegmentationDecoder(keras.layers.Layer):
    """Decoder stage / auxiliary head of the reference.

    MCIBI decoder stages: `conv1x1-BN-act(channels) -> Dropout2d -> conv1x1(K)`;
    the auxiliary head: the same with a 3x3 first conv; the DeepLabV3 baseline
    decoder: `Dropout2d -> conv1x1(K)` (`channels=None`).

    Args:
        num_classes: K.
        channels: width of the conv-BN-act block, or None for no block.
        kernel_size: kernel of that block (1 or 3).
        dropout: channel dropout rate (`Dropout2d`, 0.1).
        activation: `"relu"` or `"leaky_relu"`.
        sync_batchnorm: synchronise BN statistics across replicas (TensorFlow).

    Example:
    >>> import numpy as np
    >>> head = SegmentationDecoder(num_classes=5, channels=8)
    >>> tuple(head(np.zeros((2, 4, 4, 6), "float32")).shape)
    (2, 4, 4, 5)
    """

    def __init__(
        self,
        num_classes,
        channels=512,
        kernel_size=1,
        dropout=0.1,
        activation="relu",
        sync_batchnorm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.channels = None if channels is None else int(channels)
        self.kernel_size = int(kernel_size)
        self.dropout = float(dropout)
        self.activation = activation
        self.sync_batchnorm = bool(sync_batchnorm)
        self.block = None
        if self.channels is not None:
            self.block = ConvBNAct(
                self.channels,
                self.kernel_size,
                activation=activation,
                sync_batchnorm=self.sync_batchnorm,
                name="block",
                dtype=self.dtype_policy,
            )
        self.drop = keras.layers.SpatialDropout2D(
            self.dropout, name="dropout", dtype=self.dtype_policy
        )
        self.classifier = conv2d(  # a keras.layers.Conv2D computed by the conv-path policy
            self.num_classes,
            1,
            kernel_initializer=TORCH_CONV_INIT,
            name="classifier",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.block is not None:
            self.block.build(shape)
            shape = shape[:-1] + (self.channels,)
        self.classifier.build(shape)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs if self.block is None else self.block(inputs, training=training)
        return self.classifier(self.drop(x, training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "channels": self.channels,
                "kernel_size": self.kernel_size,
                "dropout": self.dropout,
                "activation": self.activation,
                "sync_batchnorm": self.sync_batchnorm,
            }
        )
        return config
