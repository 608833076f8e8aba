"""DeepLabV3 baseline: the same backbone, ASPP and aux head, without the memory head.

Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation", 2017;
the reference's `deeplabv3_resnet50os8` config in SegmentationBLWX/sssegmentation.
"""

import keras

from keras_memseg.layers import ASPP
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.models.segmenter import Segmenter
from keras_memseg.models.segmenter import check_int


@keras.saving.register_keras_serializable(package="keras_memseg")
class DeepLabV3(Segmenter):
    """ASPP(1, 12, 24, 36) -> Dropout2d(0.1) -> conv1x1(K), plus the aux head (0.4).

    MCIBI minus the bottleneck, decoder stage 1, memory, attention blocks, fuse convs
    and the conv-BN-act of decoder stage 2: use it to measure what the memory buys and
    costs. The constructor takes the architecture (see `Segmenter` for `aux`,
    `aux_channels`, `dropout`, `activation`, `ignore_class`, `output_stride`,
    `sync_batchnorm`, `dtype`); `compile()` the training policy.

    Args:
        backbone: a backbone preset name (built with random weights: see
            `MemorySegmenter` for ImageNet ones) or a pyramid backbone model.
        num_classes: K.
        feats_channels: ASPP width (512).
        aspp_rates: ASPP dilations.

    Example:
    >>> import numpy as np
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), num_classes=3,
    ...                   feats_channels=16, aux_channels=8)
    >>> tuple(model(np.zeros((1, 32, 32, 3), "float32")).shape)
    (1, 32, 32, 3)
    """

    def __init__(
        self, backbone, num_classes, feats_channels=512, aspp_rates=(1, 12, 24, 36), **kwargs
    ):
        super().__init__(backbone, num_classes, **kwargs)
        self.feats_channels = check_int("feats_channels", feats_channels, 1)
        self.aspp_rates = tuple(aspp_rates)
        self.context_module = ASPP(
            self.feats_channels,
            self.aspp_rates,
            name="aspp",
            activation=self.activation,
            sync_batchnorm=self.sync_batchnorm,
            dtype=self.dtype_policy,
        )
        self.decoder = SegmentationDecoder(
            self.num_classes, None, dropout=self.dropout, name="decoder", dtype=self.dtype_policy
        )

    def forward_heads(self, images, training=False):
        """Feature-resolution outputs: `logits`, `aux` and `head_features` (ASPP output)."""
        pyramid = self.pyramid(images, training=training)
        context = self.context_module(pyramid["P5"], training=training)
        result = {"logits": self.decoder(context, training=training), "head_features": context}
        if self.aux_head is not None:
            result["aux"] = self.aux_head(pyramid["P4"], training=training)
        return result

    def get_config(self):
        config = super().get_config()
        config.update({"feats_channels": self.feats_channels, "aspp_rates": self.aspp_rates})
        return config
