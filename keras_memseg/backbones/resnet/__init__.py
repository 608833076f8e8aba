"""The dilated ResNet-V1c family: backbone, presets table, pretrained-weight loading."""

from keras_memseg.backbones.resnet.dilated_resnet_backbone import DilatedResNetBackbone
from keras_memseg.backbones.resnet.resnet_depths import RESNET_DEPTHS
