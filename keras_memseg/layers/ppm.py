"""Pyramid pooling module: Zhao et al., "Pyramid Scene Parsing Network" (PSPNet), CVPR
2017, with PyTorch's adaptive-pool bins as the reference's `PyramidPoolingModule`."""

import keras
from keras import ops

from keras_memseg.layers.conv_bn_act import ConvBNAct
from keras_memseg.layers.resize import bilinear_resize


def adaptive_pool_matrix(bins, size):
    """(bins, size) averaging matrix of `torch.nn.AdaptiveAvgPool` along one axis.

    Bin i covers `[floor(i * size / bins), ceil((i + 1) * size / bins))`. `size`
    may be a tensor (dynamic shapes).
    """
    size_f = ops.cast(size, "float32")
    i = ops.cast(ops.arange(bins), "float32")[:, None]
    start = ops.floor(i * size_f / bins)
    end = ops.ceil((i + 1.0) * size_f / bins)
    idx = ops.cast(ops.arange(size), "float32")[None, :]
    mask = ops.cast((idx >= start) & (idx < end), "float32")
    return mask / ops.sum(mask, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="keras_memseg")
class PPM(keras.layers.Layer):
    """Adaptive average pools at several bin counts, conv1x1-BN-act each, bilinear
    upsampling, concatenation with the input and a 3x3 conv-BN-act fuse.

    Args:
        filters: channels of each pooled branch and of the output (512).
        bins: pooled grid sizes (1, 2, 3, 6).
        activation: `"relu"` or `"leaky_relu"`.
        sync_batchnorm: synchronise BN statistics across replicas (TensorFlow).

    Example:
    >>> import numpy as np
    >>> ppm = PPM(filters=4, bins=(1, 2))
    >>> tuple(ppm(np.zeros((1, 5, 7, 3), "float32")).shape)
    (1, 5, 7, 4)
    """

    def __init__(
        self, filters=512, bins=(1, 2, 3, 6), activation="relu", sync_batchnorm=False, **kwargs
    ):
        super().__init__(**kwargs)
        bins = tuple(int(b) for b in bins)
        if not bins or min(bins) < 1:
            raise ValueError(f"PPM bins must be positive integers, got {bins}")
        self.filters = int(filters)
        self.bins = bins
        self.activation = activation
        self.sync_batchnorm = bool(sync_batchnorm)
        kw = {
            "activation": activation,
            "sync_batchnorm": self.sync_batchnorm,
            "dtype": self.dtype_policy,
        }
        self.branches = [ConvBNAct(self.filters, 1, name=f"bin_{b}", **kw) for b in bins]
        self.project = ConvBNAct(self.filters, 3, name="project", **kw)

    def build(self, input_shape):
        for b, branch in zip(self.bins, self.branches):
            branch.build((input_shape[0], b, b, input_shape[-1]))
        channels = input_shape[-1] + len(self.bins) * self.filters
        self.project.build(tuple(input_shape[:-1]) + (channels,))
        self.built = True

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        h, w = shape[1], shape[2]
        outs = [inputs]
        for b, branch in zip(self.bins, self.branches):
            pooled = ops.einsum("ih,bhwc->biwc", adaptive_pool_matrix(b, h), inputs)
            pooled = ops.einsum("jw,biwc->bijc", adaptive_pool_matrix(b, w), pooled)
            pooled = branch(pooled, training=training)
            outs.append(bilinear_resize(pooled, (h, w)))
        return self.project(ops.concatenate(outs, axis=-1), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "bins": self.bins,
                "activation": self.activation,
                "sync_batchnorm": self.sync_batchnorm,
            }
        )
        return config
