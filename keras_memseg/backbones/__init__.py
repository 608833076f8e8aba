"""Backbones: the dilated ResNet-V1c, adapters for KerasHub/KerasCV, weight loading."""

from keras_memseg.backbones.adapters import pyramid_feature_model
from keras_memseg.backbones.dilated_resnet import DilatedResNetBackbone
from keras_memseg.backbones.pretrained import load_resnet_weights
from keras_memseg.backbones.registry import available_backbones
from keras_memseg.backbones.registry import get_backbone
