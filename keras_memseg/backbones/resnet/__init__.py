"""The dilated ResNet-V1c family: backbone, presets table, pretrained-weight loading."""

from typing import TYPE_CHECKING

from keras_memseg.backbones.resnet.resnet_depths import RESNET_DEPTHS
from keras_memseg.lazy import lazy_exports

# Imported on first use: the presets table is read without importing Keras.
if TYPE_CHECKING:
    from keras_memseg.backbones.resnet.dilated_resnet_backbone import DilatedResNetBackbone

__getattr__, _lazy_dir = lazy_exports(__name__, __file__)


def __dir__():
    return sorted(set(globals()) | set(_lazy_dir()))
