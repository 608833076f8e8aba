"""Layers: the feature memory, attention, context modules, normalisation."""

from keras_memseg.layers.aspp import ASPP
from keras_memseg.layers.conv_bn_act import ConvBNAct
from keras_memseg.layers.feature_memory import FeatureMemory
from keras_memseg.layers.image_normalization import ImageNormalization
from keras_memseg.layers.matmul_conv import MatmulConv2D
from keras_memseg.layers.ppm import PPM
from keras_memseg.layers.segmentation_decoder import SegmentationDecoder
from keras_memseg.layers.self_attention import SelfAttentionBlock
