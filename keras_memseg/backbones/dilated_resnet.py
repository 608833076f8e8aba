"""Dilated ResNet-V1c (3x3 deep stem, PyTorch-style strides), spec section 1.1.

Layer names follow KerasHub's `ResNetBackbone` (`conv1_conv`, `stack2_block0_1_bn`,
...), so same-depth pretrained weights map by name, and dilation does not change
any weight shape.
"""

import keras

from keras_memseg.layers.conv_bn_act import BN_EPSILON, BN_MOMENTUM

_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
# output stride -> (strides, dilations) of the four stages
_OUTPUT_STRIDES = {
    8: ((1, 2, 1, 1), (1, 1, 2, 4)),
    16: ((1, 2, 2, 1), (1, 1, 1, 2)),
    32: ((1, 2, 2, 2), (1, 1, 1, 1)),
}


def _bn(name, sync):
    return keras.layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name,
        synchronized=sync and keras.backend.backend() == "tensorflow",
    )


def _conv(x, filters, kernel, stride, dilation, name):
    if stride > 1:  # PyTorch pads symmetrically; Keras "same" would not.
        x = keras.layers.ZeroPadding2D((kernel - 1) // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    return keras.layers.Conv2D(filters, kernel, strides=stride, dilation_rate=dilation,
                               padding=padding, use_bias=False, name=f"{name}_conv")(x)


def _block(x, kind, filters, stride, dilation, shortcut, name, sync):
    out_channels = filters * (4 if kind == "bottleneck" else 1)
    if shortcut:
        residual = keras.layers.Conv2D(out_channels, 1, strides=stride, use_bias=False,
                                       name=f"{name}_0_conv")(x)
        residual = _bn(f"{name}_0_bn", sync)(residual)
    else:
        residual = x
    if kind == "bottleneck":
        y = _conv(x, filters, 1, 1, 1, f"{name}_1")
        y = keras.layers.ReLU(name=f"{name}_1_relu")(_bn(f"{name}_1_bn", sync)(y))
        y = _conv(y, filters, 3, stride, dilation, f"{name}_2")
        y = keras.layers.ReLU(name=f"{name}_2_relu")(_bn(f"{name}_2_bn", sync)(y))
        y = _conv(y, out_channels, 1, 1, 1, f"{name}_3")
        y = _bn(f"{name}_3_bn", sync)(y)
    else:
        y = _conv(x, filters, 3, stride, dilation, f"{name}_1")
        y = keras.layers.ReLU(name=f"{name}_1_relu")(_bn(f"{name}_1_bn", sync)(y))
        y = _conv(y, filters, 3, 1, dilation, f"{name}_2")
        y = _bn(f"{name}_2_bn", sync)(y)
    y = keras.layers.Add(name=f"{name}_add")([residual, y])
    return keras.layers.ReLU(name=f"{name}_out")(y)


@keras.saving.register_keras_serializable(package="keras_memseg")
class DilatedResNetBackbone(keras.Model):
    """ResNet-V1c with output stride 8, 16 or 32 (contract dilation, no multi-grid).

    Outputs the KerasHub pyramid contract: a dict `{"P2": C1, "P3": C2, "P4": C3,
    "P5": C4}` (also available as `backbone.pyramid_outputs`). With output stride 8,
    P3..P5 are all at 1/8 of the input.

    Args:
        depth: 18, 34, 50 or 101.
        output_stride: 8, 16 or 32.
        base_channels: width of the first stage (64 for the standard nets; small
            values give tiny test models).
        stem_channels: width of the first two stem convs (the third has twice
            this); defaults to `base_channels // 2`.
        sync_batchnorm: synchronise BN statistics across replicas (TensorFlow).
        image_shape: input shape, `(None, None, 3)` by default.

    Example:
    >>> import numpy as np
    >>> net = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=8)
    >>> out = net(np.zeros((1, 32, 32, 3), "float32"))
    >>> {k: tuple(v.shape) for k, v in out.items()}["P5"]
    (1, 4, 4, 64)
    """

    def __init__(self, depth=50, output_stride=8, base_channels=64, stem_channels=None,
                 sync_batchnorm=False, image_shape=(None, None, 3), **kwargs):
        if depth not in _DEPTHS:
            raise ValueError(f"depth must be one of {sorted(_DEPTHS)}, got {depth}")
        if output_stride not in _OUTPUT_STRIDES:
            raise ValueError(
                f"output_stride must be one of {sorted(_OUTPUT_STRIDES)}, got {output_stride}")
        stem_channels = base_channels // 2 if stem_channels is None else stem_channels
        kind, counts = _DEPTHS[depth]
        expansion = 4 if kind == "bottleneck" else 1
        strides, dilations = _OUTPUT_STRIDES[output_stride]
        sync = bool(sync_batchnorm)

        inputs = keras.Input(shape=image_shape, name="images")
        x = _conv(inputs, stem_channels, 3, 2, 1, "conv1")
        for i, filters in enumerate((stem_channels, 2 * stem_channels), start=1):
            x = keras.layers.ReLU(name=f"conv{i}_relu")(_bn(f"conv{i}_bn", sync)(x))
            x = _conv(x, filters, 3, 1, 1, f"conv{i + 1}")
        x = keras.layers.ReLU(name="conv3_relu")(_bn("conv3_bn", sync)(x))
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)  # inputs >= 0 after ReLU
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

        pyramid = {}
        for stage, (count, stride, dilation) in enumerate(zip(counts, strides, dilations)):
            filters = base_channels * 2**stage
            for block in range(count):
                first = block == 0
                d = dilation // 2 if (first and dilation > 1) else dilation  # contract
                x = _block(
                    x, kind, filters, stride if first else 1, d,
                    # mmcv's rule: project when the stride or the width changes.
                    shortcut=first and (stride != 1 or x.shape[-1] != filters * expansion),
                    name=f"stack{stage}_block{block}", sync=sync,
                )
            pyramid[f"P{stage + 2}"] = x
        super().__init__(inputs=inputs, outputs=pyramid, **kwargs)
        self.pyramid_outputs = pyramid
        self.depth = depth
        self.output_stride = output_stride
        self.base_channels = base_channels
        self.stem_channels = stem_channels
        self.sync_batchnorm = sync
        self.image_shape = tuple(image_shape)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "depth": self.depth,
            "output_stride": self.output_stride,
            "base_channels": self.base_channels,
            "stem_channels": self.stem_channels,
            "sync_batchnorm": self.sync_batchnorm,
            "image_shape": self.image_shape,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
