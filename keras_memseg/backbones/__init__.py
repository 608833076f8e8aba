"""Backbones: the dilated ResNet-V1c and its presets, adapters for KerasHub/KerasCV.

`DilatedResNetBackbone.from_preset(name_or_folder)` builds a named architecture
(`DilatedResNetBackbone.presets`) or loads a local preset folder.
`keras_memseg.convert.load_resnet_weights` copies same-structure ResNet weights (a
PyTorch `.pth`, a keras_memseg or KerasHub preset folder, or a `.weights.h5`) into a
dilated backbone; it lives above this package, which imports nothing of `convert`.
"""

from keras_memseg.backbones.adapters import pyramid_feature_model
from keras_memseg.backbones.resnet import DilatedResNetBackbone


def __getattr__(name):
    # `load_resnet_weights` moved to `keras_memseg.convert` (issue #28), the package that
    # reads PyTorch checkpoints: an import from here would make a circle, so the old
    # name says where it went instead of importing it.
    if name == "load_resnet_weights":
        raise AttributeError(
            "keras_memseg.backbones.load_resnet_weights moved to "
            "keras_memseg.convert.load_resnet_weights"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
