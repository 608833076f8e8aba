"""Backbones: the dilated ResNet-V1c and its presets, adapters for KerasHub/KerasCV.

`DilatedResNetBackbone.from_preset(name_or_folder)` builds a named architecture
(`DilatedResNetBackbone.presets`) or loads a local preset folder;
`load_resnet_weights` copies same-structure ResNet weights (a PyTorch `.pth`, a
keras_memseg or KerasHub preset folder, or a `.weights.h5`) into a dilated backbone.
"""

from keras_memseg.backbones.adapters import pyramid_feature_model
from keras_memseg.backbones.dilated_resnet import DilatedResNetBackbone
from keras_memseg.backbones.pretrained import load_resnet_weights
