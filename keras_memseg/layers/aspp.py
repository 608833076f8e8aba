"""Atrous spatial pyramid pooling: Chen et al., "Rethinking Atrous Convolution for
Semantic Image Segmentation" (DeepLabV3), 2017; the reference's `ASPP` in
SegmentationBLWX/sssegmentation (`ssseg/modules/models/segmentors/deeplabv3/`)."""

import keras
from keras import ops

from keras_memseg.layers.conv_bn_act import ConvBNAct


@keras.saving.register_keras_serializable(package="keras_memseg")
class ASPP(keras.layers.Layer):
    """Parallel dilated convs + image pooling, concatenated and fused by a 3x3 conv.

    A rate of 1 is a 1x1 conv branch; other rates are 3x3 convs with that
    dilation. The image-pooling branch (global mean, conv1x1-BN-act) is broadcast
    back to the input size: the bilinear upsampling of a 1x1 map with half-pixel
    centres is a constant, so the broadcast is exact and exports with static shapes.

    Args:
        filters: channels of every branch and of the output (512 in the paper).
        rates: dilation rates (default 1/12/24/36; 1/6/12/18 for ViT configs).
        activation: `"relu"` or `"leaky_relu"`.
        sync_batchnorm: synchronise BN statistics across replicas (TensorFlow).

    Example:
    >>> import numpy as np
    >>> aspp = ASPP(filters=8, rates=(1, 2))
    >>> tuple(aspp(np.zeros((1, 6, 6, 4), "float32")).shape)
    (1, 6, 6, 8)
    """

    def __init__(
        self, filters=512, rates=(1, 12, 24, 36), activation="relu", sync_batchnorm=False, **kwargs
    ):
        super().__init__(**kwargs)
        rates = tuple(int(r) for r in rates)
        if not rates or min(rates) < 1:
            raise ValueError(f"ASPP rates must be positive integers, got {rates}")
        self.filters = int(filters)
        self.rates = rates
        self.activation = activation
        self.sync_batchnorm = bool(sync_batchnorm)
        kw = {
            "activation": activation,
            "sync_batchnorm": self.sync_batchnorm,
            "dtype": self.dtype_policy,
        }
        self.branches = [
            ConvBNAct(self.filters, 1 if r == 1 else 3, dilation_rate=r, name=f"branch_{i}", **kw)
            for i, r in enumerate(rates)
        ]
        self.image_pool = ConvBNAct(self.filters, 1, name="image_pool", **kw)
        self.project = ConvBNAct(self.filters, 3, name="project", **kw)

    def build(self, input_shape):
        for branch in self.branches:
            branch.build(input_shape)
        self.image_pool.build((input_shape[0], 1, 1, input_shape[-1]))
        self.project.build(tuple(input_shape[:-1]) + ((len(self.rates) + 1) * self.filters,))
        self.built = True

    def call(self, inputs, training=None):
        outs = [branch(inputs, training=training) for branch in self.branches]
        pooled = ops.mean(inputs, axis=(1, 2), keepdims=True)
        pooled = self.image_pool(pooled, training=training)  # (B, 1, 1, F)
        outs.append(pooled * ops.ones_like(outs[0]))
        return self.project(ops.concatenate(outs, axis=-1), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "rates": self.rates,
                "activation": self.activation,
                "sync_batchnorm": self.sync_batchnorm,
            }
        )
        return config
