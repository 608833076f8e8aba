"""Layers: the building blocks the model families share (attention, context modules,
convolutions, normalisation). MCIBI's feature memory is `keras_memseg.models.FeatureMemory`."""

from keras_memseg.layers.aspp import ASPP
from keras_memseg.layers.conv_bn_act import ConvBNAct
from keras_memseg.layers.conv_policy import conv2d
from keras_memseg.layers.conv_policy import conv_path
from keras_memseg.layers.conv_policy import get_conv_path
from keras_memseg.layers.conv_policy import set_conv_path
from keras_memseg.layers.image_normalization import ImageNormalization
from keras_memseg.layers.ppm import PPM
from keras_memseg.layers.segmentation_decoder import SegmentationDecoder
from keras_memseg.layers.self_attention import SelfAttentionBlock

# Names that moved (issue #28): the old name says where it went. FeatureMemory lives in
# its model family (importing it here would make layers import models); MatmulConv2D,
# a Conv2D subclass, became plain Conv2D layers built by `conv2d` (old configs naming it
# still load, see `conv_policy`).
_MOVED = {
    "FeatureMemory": "keras_memseg.models.FeatureMemory",
    "MatmulConv2D": "keras_memseg.layers.conv2d (a keras.layers.Conv2D following the conv-path policy)",
}


def __getattr__(name):
    if name in _MOVED:
        raise AttributeError(f"keras_memseg.layers.{name} moved to {_MOVED[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
