"""Backbones: the dilated ResNet-V1c and its presets, adapters for KerasHub/KerasCV.

`DilatedResNetBackbone.from_preset(name_or_folder)` builds a named architecture
(`DilatedResNetBackbone.presets`) or loads a local preset folder.
`keras_memseg.convert.load_resnet_weights` copies same-structure ResNet weights (a
PyTorch `.pth`, a keras_memseg or KerasHub preset folder, or a `.weights.h5`) into a
dilated backbone; it lives above this package, which imports nothing of `convert`.
"""

from typing import TYPE_CHECKING

from keras_memseg.lazy import lazy_exports

# Imported on first use (PEP 562): the presets table and the package's structure are
# read by the command-line parsers without importing Keras.
if TYPE_CHECKING:
    from keras_memseg.backbones.adapters import pyramid_feature_model
    from keras_memseg.backbones.resnet.dilated_resnet_backbone import DilatedResNetBackbone

_lazy_getattr, __dir__ = lazy_exports(__name__, __file__)


def __getattr__(name):
    # `load_resnet_weights` moved to `keras_memseg.convert` (issue #28), the package that
    # reads PyTorch checkpoints: an import from here would make a circle, so the old
    # name says where it went instead of importing it.
    if name == "load_resnet_weights":
        raise AttributeError(
            "keras_memseg.backbones.load_resnet_weights moved to "
            "keras_memseg.convert.load_resnet_weights"
        )
    return _lazy_getattr(name)
