"""PyTorch checkpoint -> Keras model: read the keys, build the architecture, load.

Three sources, told apart by their keys:
- the authors' segmentors (`backbone_net.*`, `memory_module.*`: MCIBI; `aspp_net.*`:
  their DeepLabV3 baseline) -> `MemorySegmenter` / `DeepLabV3`, memory included;
- backbone-only ResNet-V1c (open-mmlab, `stem.0.weight`, ...) -> `DilatedResNetBackbone`;
- torchvision ResNet (`conv1.weight`, `bn1.*`, ...) -> `DilatedResNetBackbone(stem="7x7")`.
The classifier of a backbone checkpoint (`fc.*`) is dropped.
"""

import os

import numpy as np

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.convert.metadata import apply_dataset
from keras_memseg.convert.resnet_keys import CLASSIFIER_PREFIX
from keras_memseg.convert.resnet_keys import backbone_entries
from keras_memseg.convert.resnet_keys import resnet_structure
from keras_memseg.convert.segmentor_keys import deeplabv3_config
from keras_memseg.convert.segmentor_keys import mcibi_config
from keras_memseg.convert.segmentor_keys import segmenter_entries
from keras_memseg.convert.segmentor_keys import segmentor_kind
from keras_memseg.convert.state_transfer import transfer
from keras_memseg.convert.torch_checkpoint import read_state_dict
from keras_memseg.models import DeepLabV3
from keras_memseg.models import MemorySegmenter

_BUILD_SHAPE = (1, 32, 32, 3)  # any size builds every weight


def checkpoint_kind(state):
    """`"mcibi"`, `"deeplabv3"` or `"resnet"` (a backbone-only checkpoint)."""
    return segmentor_kind(state) or "resnet"


def load_into_backbone(backbone, state, source="checkpoint"):
    """Loads a backbone-only ResNet state dict into an existing `DilatedResNetBackbone`.

    Checks the stem first (V1c `stem.*` vs torchvision `conv1`), then every key and
    shape (`transfer`): nothing is assigned unless all match. Returns the mapping table.
    """
    structure = resnet_structure(state, "", source)
    stem = getattr(backbone, "stem", "deep")
    if structure["stem"] != stem:
        names = {"deep": "a 3x3 deep stem (ResNet-V1c)", "7x7": "a 7x7 stem (torchvision)"}
        raise ValueError(
            f"{source} has {names[structure['stem']]} but backbone "
            f"{backbone.name!r} has {names[stem]} (stem={stem!r})"
        )
    return transfer(
        state,
        backbone_entries(backbone, "", ""),
        backbone,
        source,
        ignored_prefixes=(CLASSIFIER_PREFIX,),
    )


def convert_state_dict(
    state,
    source="checkpoint",
    output_stride=8,
    aspp_rates=(1, 12, 24, 36),
    ppm_bins=(1, 2, 3, 6),
    activation="relu",
    dropout=0.1,
    hard_aggregate=False,
    dataset=None,
):
    """Builds the Keras model that `state` describes and loads it.

    Args:
        state: `{key: array}` (`read_state_dict`).
        source: the checkpoint's name for messages.
        output_stride, aspp_rates, ppm_bins, activation, dropout, hard_aggregate:
            what the weights do not say; the defaults are the paper's.
        dataset: the dataset a segmentor was trained on (a name, a dataset folder, a
            `DatasetSpec`): its class names, palette, test resize and inference mode
            are saved with the model (`Segmenter.set_dataset_info`). None: the dataset
            that `source`'s file name names (`..._ade20k.pth`) when its class count
            matches the weights, else left unset with a one-line UserWarning.

    Returns `(model, mapping)`: a `MemorySegmenter`, `DeepLabV3` or
    `DilatedResNetBackbone`, and the `[(PyTorch key, Keras weight path)]` table.
    """
    kind = checkpoint_kind(state)
    if kind == "resnet":
        backbone = DilatedResNetBackbone(
            output_stride=output_stride, **resnet_structure(state, "", source)
        )
        return backbone, load_into_backbone(backbone, state, source)
    options = {
        "source": source,
        "output_stride": output_stride,
        "aspp_rates": aspp_rates,
        "ppm_bins": ppm_bins,
        "activation": activation,
        "dropout": dropout,
        "hard_aggregate": hard_aggregate,
    }
    if kind == "mcibi":
        backbone_args, config = mcibi_config(state, **options)
        cls = MemorySegmenter
    else:
        backbone_args, config = deeplabv3_config(state, **options)
        cls = DeepLabV3
    backbone = DilatedResNetBackbone(output_stride=output_stride, **backbone_args)
    model = cls(backbone, **config)
    model(np.zeros(_BUILD_SHAPE, "float32"))
    skipped = [model.memory.num_updates] if hasattr(model, "memory") else []
    mapping = transfer(state, segmenter_entries(model), model, source, unmapped_weights=skipped)
    apply_dataset(model, dataset, source)
    return model, mapping


def convert_checkpoint(path, **options):
    """`convert_state_dict(read_state_dict(path), ...)`: a PyTorch `.pth` as a Keras model.

    Example:
    >>> import os, tempfile, torch
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.convert.resnet_keys import torch_keys
    >>> reference = DilatedResNetBackbone(depth=18, base_channels=8)
    >>> state = {k: torch.rand(*w.shape[::-1]) if w.ndim != 4 else
    ...          torch.rand(w.shape[3], w.shape[2], w.shape[0], w.shape[1])
    ...          for k, w in zip(torch_keys(reference), reference.weights)}
    >>> path = os.path.join(tempfile.mkdtemp(), "r18_v1c.pth")
    >>> torch.save(state, path)
    >>> backbone, mapping = convert_checkpoint(path, output_stride=16)
    >>> backbone.depth, backbone.base_channels, backbone.output_stride, mapping[0]
    (18, 8, 16, ('stem.0.weight', 'conv1_conv/kernel'))
    """
    path = os.fspath(path)
    return convert_state_dict(read_state_dict(path), source=path, **options)
