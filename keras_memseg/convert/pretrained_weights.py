"""`load_resnet_weights`: pretrained ResNet weights from any source into the dilated
backbone, PyTorch checkpoints included (read and mapped by this package, which sits
above `backbones` and `models`)."""

import os

from keras_memseg.backbones.resnet.resnet_pretrained import check_source
from keras_memseg.backbones.resnet.resnet_pretrained import load_preset_folder
from keras_memseg.backbones.resnet.resnet_pretrained import load_weights_file
from keras_memseg.convert.from_torch import load_into_backbone
from keras_memseg.convert.segmentor_keys import segmentor_kind
from keras_memseg.convert.torch_checkpoint import read_state_dict


def _weighted_layer_count(backbone):
    return len([layer for layer in backbone.layers if layer.weights])


def _load_torch(backbone, path):
    state = read_state_dict(path)
    if segmentor_kind(state):
        raise ValueError(
            f"{path} is a whole segmentor checkpoint; convert it with `python -m "
            "keras_memseg.convert` and load the preset folder instead"
        )
    if getattr(backbone, "shortcut", "conv") != "conv":
        raise ValueError(
            f"backbone {backbone.name!r} has average-pool (vd) shortcuts; PyTorch "
            "checkpoints load into V1c (stem='deep') or torchvision "
            "(stem='7x7') backbones"
        )
    load_into_backbone(backbone, state, path)
    return _weighted_layer_count(backbone)


def load_resnet_weights(backbone, source):
    """Loads pretrained ResNet weights into `backbone` (a `DilatedResNetBackbone`).

    Args:
        backbone: the target backbone (any output stride).
        source: a PyTorch `.pth` (open-mmlab ResNet-V1c or torchvision ResNet), a
            preset folder (keras_memseg or KerasHub `ResNetBackbone`), or a
            `.weights.h5` saved from a `DilatedResNetBackbone` of the same
            architecture. Recipes pass `--pretrained=PATH` here.

    Returns the number of layers loaded. Nothing is downloaded and no code is run:
    PyTorch files are read with `torch.load(..., weights_only=True)` (a pickle payload
    is refused), the others are HDF5 and JSON. A source of another structure, depth or
    width raises ValueError naming what differs, and leaves the backbone unchanged; a
    path that is not a regular file or a preset folder is refused unopened
    (`check_source`).

    Example:
    >>> import os, tempfile
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.convert import load_resnet_weights
    >>> source = DilatedResNetBackbone(depth=18, output_stride=32, base_channels=8)
    >>> folder = os.path.join(tempfile.mkdtemp(), "r18")
    >>> source.save_to_preset(folder)
    >>> dilated = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=8)
    >>> loaded = load_resnet_weights(dilated, folder)
    >>> loaded == len([layer for layer in dilated.layers if layer.weights])
    True
    """
    source = os.fspath(source)
    check_source(source)
    if os.path.isdir(source):
        return load_preset_folder(backbone, source)
    if source.endswith(".weights.h5"):
        return load_weights_file(backbone, source)
    return _load_torch(backbone, source)
