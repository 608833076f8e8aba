"""Dilated ResNet-V1c: the backbone of every MCIBI paper config.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, in the "V1c"
form of open-mmlab (3x3 deep stem; the stride on the 3x3 conv, "pytorch" style), made
dilated as in the reference's `ResNet` (`ssseg/modules/models/backbones/resnet.py` in
SegmentationBLWX/sssegmentation): output stride 8 with dilations (1, 1, 2, 4) and the
dilation of each stage's first block contracted.

Layer names follow KerasHub's `ResNetBackbone` (`conv1_conv`, `stack2_block0_1_bn`,
...), so same-depth pretrained weights map by name, and dilation does not change
any weight shape. Two more structures load published weights: the 7x7 stem of
torchvision's ResNet (`stem="7x7"`) and the average-pool shortcut of ResNet-vd
(`shortcut="avg_pool"`, KerasHub's `*_block_vd`).
"""

import os

import keras

from keras_memseg import presets as preset_io
from keras_memseg.backbones.resnet import resnet_pretrained as pretrained
from keras_memseg.backbones.resnet.dilated_resnet_presets import backbone_presets
from keras_memseg.backbones.resnet.resnet_depths import RESNET_DEPTHS
from keras_memseg.layers.conv_bn_act import BN_EPSILON
from keras_memseg.layers.conv_bn_act import BN_MOMENTUM
from keras_memseg.layers.conv_policy import conv2d
from keras_memseg.layers.torch_batch_norm import TorchBatchNormalization

STEMS = ("deep", "7x7")
SHORTCUTS = ("conv", "avg_pool")
# output stride -> (strides, dilations) of the four stages
_OUTPUT_STRIDES = {
    8: ((1, 2, 1, 1), (1, 1, 2, 4)),
    16: ((1, 2, 2, 1), (1, 1, 1, 2)),
    32: ((1, 2, 2, 2), (1, 1, 1, 1)),
}


def _bn(name, sync, dtype=None):
    return TorchBatchNormalization(  # PyTorch's moving-variance update, as the reference
        epsilon=BN_EPSILON,
        momentum=BN_MOMENTUM,
        name=name,
        dtype=dtype,
        synchronized=sync and keras.backend.backend() == "tensorflow",
    )


def _conv(x, filters, kernel, stride, dilation, name, dtype=None):
    if stride > 1:  # PyTorch pads symmetrically; Keras "same" would not.
        x = keras.layers.ZeroPadding2D((kernel - 1) // 2, name=f"{name}_pad", dtype=dtype)(x)
        padding = "valid"
    else:
        padding = "same"
    # A keras.layers.Conv2D computed by the conv-path policy; `from_config` re-runs this
    # constructor, so loaded backbones get it too.
    return conv2d(
        filters,
        kernel,
        strides=stride,
        dilation_rate=dilation,
        padding=padding,
        use_bias=False,
        name=f"{name}_conv",
        dtype=dtype,
    )(x)


def _relu(name, dtype):
    return keras.layers.ReLU(name=name, dtype=dtype)


def _block(
    x,
    kind,
    filters,
    stride,
    dilation,
    shortcut,
    name,
    sync,
    dtype=None,
    avg_pool=False,
    legacy_basic_dilation=False,
):
    out_channels = filters * (4 if kind == "bottleneck" else 1)
    if shortcut:
        residual, conv_stride = x, stride
        if avg_pool and stride > 1:  # ResNet-vd: pool, then an unstrided 1x1 conv
            residual = keras.layers.AveragePooling2D(
                stride, strides=stride, padding="same", name=f"{name}_0_pool", dtype=dtype
            )(residual)
            conv_stride = 1
        residual = conv2d(
            out_channels, 1, strides=conv_stride, use_bias=False, name=f"{name}_0_conv", dtype=dtype
        )(residual)
        residual = _bn(f"{name}_0_bn", sync, dtype)(residual)
    else:
        residual = x
    if kind == "bottleneck":
        y = _conv(x, filters, 1, 1, 1, f"{name}_1", dtype)
        y = _relu(f"{name}_1_relu", dtype)(_bn(f"{name}_1_bn", sync, dtype)(y))
        y = _conv(y, filters, 3, stride, dilation, f"{name}_2", dtype)
        y = _relu(f"{name}_2_relu", dtype)(_bn(f"{name}_2_bn", sync, dtype)(y))
        y = _conv(y, out_channels, 1, 1, 1, f"{name}_3", dtype)
        y = _bn(f"{name}_3_bn", sync, dtype)(y)
    else:
        y = _conv(x, filters, 3, stride, dilation, f"{name}_1", dtype)
        y = _relu(f"{name}_1_relu", dtype)(_bn(f"{name}_1_bn", sync, dtype)(y))
        # The second conv of a basic block is never dilated (the reference's and
        # mmcv's `BasicBlock`: padding 1, dilation 1); keras_memseg < 0.2 dilated it.
        y = _conv(y, filters, 3, 1, dilation if legacy_basic_dilation else 1, f"{name}_2", dtype)
        y = _bn(f"{name}_2_bn", sync, dtype)(y)
    y = keras.layers.Add(name=f"{name}_add", dtype=dtype)([residual, y])
    return _relu(f"{name}_out", dtype)(y)


@keras.saving.register_keras_serializable(package="keras_memseg")
class DilatedResNetBackbone(keras.Model):
    """ResNet-V1c with output stride 8, 16 or 32 (contract dilation, no multi-grid).

    Outputs the KerasHub pyramid contract: a dict `{"P2": C1, "P3": C2, "P4": C3,
    "P5": C4}` (also available as `backbone.pyramid_outputs`). With output stride 8,
    P3..P5 are all at 1/8 of the input.

    Structures (all with the stride on the 3x3 conv, "pytorch" style):
    - `stem="deep", shortcut="conv"`: ResNet-V1c, the paper's (open-mmlab weights,
      KerasHub `basic_block`/`bottleneck_block` with three 3x3 input convs);
    - `stem="7x7"`: torchvision's ResNet and KerasHub's `resnet_*_imagenet`;
    - `shortcut="avg_pool"`: ResNet-vd as KerasHub's `*_block_vd` (`resnet_vd_*`):
      a strided first block pools its shortcut with `AveragePooling2D(2, 2,
      padding="same")` before an unstrided 1x1 conv, and the first block of every
      stage projects its shortcut (KerasHub's rule, also where the width does not
      change). TensorFlow's "same" average pooling excludes the padding from the
      mean, so for a 2x2 window with stride 2 it equals PyTorch/mmcv's
      `AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)` on odd sizes too;
      KerasHub's form is followed because it is the one whose weights load by name.

    Args:
        depth: 18, 34, 50 or 101.
        output_stride: 8, 16 or 32.
        base_channels: width of the first stage (64 for the standard nets; small
            values give tiny test models).
        stem_channels: width of the first two stem convs (the third has twice
            this); defaults to `base_channels // 2`. The stem outputs
            `2 * stem_channels` channels, also with the 7x7 stem.
        stem: `"deep"` (three 3x3 convs, V1c) or `"7x7"` (one 7x7 conv).
        shortcut: `"conv"` (a strided 1x1 conv) or `"avg_pool"` (ResNet-vd).
        legacy_basic_dilation: dilate the second conv of a basic block (ResNet-18/34)
            too, as keras_memseg < 0.2 did; the reference does not. Set by
            `from_config` for models saved by those versions, so they keep computing
            what they were trained to compute.
        sync_batchnorm: synchronise BN statistics across replicas (TensorFlow).
        image_shape: input shape, `(None, None, 3)` by default.

    Example:
    >>> import numpy as np
    >>> net = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=8)
    >>> out = net(np.zeros((1, 32, 32, 3), "float32"))
    >>> {k: tuple(v.shape) for k, v in out.items()}["P5"]
    (1, 4, 4, 64)
    """

    presets = backbone_presets

    def __init__(
        self,
        depth=50,
        output_stride=8,
        base_channels=64,
        stem_channels=None,
        sync_batchnorm=False,
        image_shape=(None, None, 3),
        dtype=None,
        stem="deep",
        shortcut="conv",
        legacy_basic_dilation=False,
        **kwargs,
    ):
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}")
        if output_stride not in _OUTPUT_STRIDES:
            raise ValueError(
                f"output_stride must be one of {sorted(_OUTPUT_STRIDES)}, got {output_stride!r}"
            )
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        stem_channels = base_channels // 2 if stem_channels is None else stem_channels
        for arg, value in (("base_channels", base_channels), ("stem_channels", stem_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive integer, got {value!r}")
        kind, counts = RESNET_DEPTHS[depth]
        expansion = 4 if kind == "bottleneck" else 1
        strides, dilations = _OUTPUT_STRIDES[output_stride]
        sync = bool(sync_batchnorm)
        if isinstance(dtype, dict):
            dtype = keras.dtype_policies.deserialize(dtype)

        inputs = keras.Input(shape=image_shape, name="images")
        if stem == "7x7":  # symmetric padding 3, as PyTorch
            x = _conv(inputs, 2 * stem_channels, 7, 2, 1, "conv1", dtype)
            x = _relu("conv1_relu", dtype)(_bn("conv1_bn", sync, dtype)(x))
        else:
            x = _conv(inputs, stem_channels, 3, 2, 1, "conv1", dtype)
            for i, filters in enumerate((stem_channels, 2 * stem_channels), start=1):
                x = _relu(f"conv{i}_relu", dtype)(_bn(f"conv{i}_bn", sync, dtype)(x))
                x = _conv(x, filters, 3, 1, 1, f"conv{i + 1}", dtype)
            x = _relu("conv3_relu", dtype)(_bn("conv3_bn", sync, dtype)(x))
        x = keras.layers.ZeroPadding2D(1, name="pool1_pad", dtype=dtype)(x)  # x >= 0 (ReLU)
        x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool", dtype=dtype)(x)

        pyramid = {}
        for stage, (count, stride, dilation) in enumerate(zip(counts, strides, dilations)):
            filters = base_channels * 2**stage
            for block in range(count):
                first = block == 0
                d = dilation // 2 if (first and dilation > 1) else dilation  # contract
                x = _block(
                    x,
                    kind,
                    filters,
                    stride if first else 1,
                    d,
                    # mmcv's rule: project when the stride or the width changes;
                    # ResNet-vd (KerasHub): the first block of every stage projects.
                    shortcut=first
                    and (
                        stride != 1 or x.shape[-1] != filters * expansion or shortcut == "avg_pool"
                    ),
                    name=f"stack{stage}_block{block}",
                    sync=sync,
                    dtype=dtype,
                    avg_pool=shortcut == "avg_pool",
                    legacy_basic_dilation=bool(legacy_basic_dilation),
                )
            pyramid[f"P{stage + 2}"] = x
        super().__init__(inputs=inputs, outputs=pyramid, **kwargs)
        if dtype is not None:  # a functional model does not keep it (KerasHub's Backbone)
            self.dtype_policy = keras.dtype_policies.get(dtype)
        self.pyramid_outputs = pyramid
        self.depth = depth
        self.output_stride = output_stride
        self.base_channels = base_channels
        self.stem_channels = stem_channels
        self.sync_batchnorm = sync
        self.image_shape = tuple(image_shape)
        self.stem = stem
        self.shortcut = shortcut
        self.legacy_basic_dilation = bool(legacy_basic_dilation)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "depth": self.depth,
            "output_stride": self.output_stride,
            "base_channels": self.base_channels,
            "stem_channels": self.stem_channels,
            "sync_batchnorm": self.sync_batchnorm,
            "image_shape": self.image_shape,
            "stem": self.stem,
            "shortcut": self.shortcut,
            "legacy_basic_dilation": self.legacy_basic_dilation,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "stem" not in config and "name" in config and "trainable" in config:
            # Saved by keras_memseg < 0.2 (its get_config had no `stem`): that
            # version dilated both convs of a basic block.
            config["legacy_basic_dilation"] = True
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A backbone from a preset name (`DilatedResNetBackbone.presets`) or folder.

        Args:
            preset: a name such as `"resnet50_v1c"`, or a local preset folder written
                by `save_to_preset` or by `python -m keras_memseg.convert`, or a
                KerasHub `ResNetBackbone` preset folder (its structure: 7x7 or deep
                stem, vd shortcut; ResNetV2 is refused).
            load_weights: load the preset's weights. A named preset's weights are the
                published ImageNet weights converted once with `python -m
                keras_memseg.convert` into `keras_memseg.presets.preset_home()`;
                nothing is downloaded. `False` builds the architecture with random
                weights.
            **kwargs: constructor overrides. With weights, only those that change no
                weight: `output_stride`, `sync_batchnorm`, `image_shape`, `dtype`, `name`.

        Example:
        >>> net = DilatedResNetBackbone.from_preset("resnet18_v1c", load_weights=False,
        ...                                         output_stride=16)
        >>> net.depth, net.output_stride
        (18, 16)
        """
        preset = os.fspath(preset)
        keras_hub = False
        if preset in cls.presets:
            config = dict(cls.presets[preset]["config"])
            folder = os.path.join(preset_io.preset_home(), preset)
        elif preset_io.is_preset_dir(preset):
            serialized, folder = preset_io.read_config(preset), preset
            keras_hub = pretrained.is_keras_hub_resnet(serialized)
            config = (
                pretrained.keras_hub_structure(serialized, preset)
                if keras_hub
                else serialized.get("config")
            )
            if not isinstance(config, dict) or "depth" not in config:
                raise ValueError(f"{preset} holds no DilatedResNetBackbone config")
        else:
            raise ValueError(
                f"unknown backbone preset {preset!r}: not a folder with config.json, and not "
                f"one of {sorted(cls.presets)}; or pass a keras.Model with "
                "`pyramid_outputs` (KerasHub) or `pyramid_level_inputs` (KerasCV)"
            )
        if load_weights:
            fixed = sorted(set(kwargs) - _WEIGHTLESS_ARGS)
            if fixed:
                raise ValueError(
                    f"{fixed} change the weights of preset {preset!r}; only "
                    f"{sorted(_WEIGHTLESS_ARGS)} can be overridden when loading "
                    "its weights (or pass load_weights=False)"
                )
            weights = os.path.join(folder, preset_io.WEIGHTS_FILE)
            if not os.path.isfile(weights):
                source = cls.presets.get(preset, {}).get("source", "")
                raise FileNotFoundError(
                    f"no converted weights for preset {preset!r} in {folder}. "
                    + (
                        f"Download {source} and run `python -m keras_memseg.convert <file> "
                        f"--preset {preset}` (nothing is downloaded for you), "
                        if source
                        else ""
                    )
                    + "or pass load_weights=False for random weights"
                )
        config.update(kwargs)
        backbone = cls.from_config(config)
        if load_weights and keras_hub:  # KerasHub's layer graph: copied by layer name
            pretrained.load_preset_folder(backbone, folder)
        elif load_weights:
            backbone.load_weights(weights)
        return backbone

    def save_to_preset(self, preset_dir, metadata=None):
        """Writes config and weights as a local preset folder (`from_preset` reads it)."""
        preset_io.save_to_preset(self, preset_dir, metadata)


_WEIGHTLESS_ARGS = {"output_stride", "sync_batchnorm", "image_shape", "dtype", "name"}
