"""DeepLabV3 baseline: the same backbone, ASPP and aux head, without the memory head."""

import keras

from keras_memseg.layers import ASPP
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.models.segmenter import SegmenterBase


@keras.saving.register_keras_serializable(package="keras_memseg")
class DeepLabV3(SegmenterBase):
    """ASPP(1, 12, 24, 36) -> Dropout2d(0.1) -> conv1x1(K), plus the aux head (0.4).

    The reference's `deeplabv3_resnet50os8` config: MCIBI minus the bottleneck,
    decoder stage 1, memory, attention blocks, fuse convs and the conv-BN-act of
    decoder stage 2. Use it to measure what the memory buys and costs.

    Example:
    >>> import numpy as np
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), num_classes=3,
    ...                   feats_channels=16, aux_channels=8)
    >>> tuple(model(np.zeros((1, 32, 32, 3), "float32")).shape)
    (1, 32, 32, 3)
    """

    def __init__(self, backbone, num_classes, feats_channels=512, aspp_rates=(1, 12, 24, 36),
                 **kwargs):
        super().__init__(backbone, num_classes, **kwargs)
        self.feats_channels = int(feats_channels)
        self.aspp_rates = tuple(aspp_rates)
        self.context_module = ASPP(self.feats_channels, self.aspp_rates, name="aspp",
                                   activation=self.activation,
                                   sync_batchnorm=self.sync_batchnorm)
        self.decoder = SegmentationDecoder(self.num_classes, None, dropout=self.dropout,
                                           name="decoder")

    def forward_heads(self, images, training=False):
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
