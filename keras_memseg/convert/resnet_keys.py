"""PyTorch ResNet state dicts <-> `DilatedResNetBackbone` layers.

Two key layouts, told apart by their stem (open-mmlab V1c, the reference's; and
torchvision's), mapped to the layers of the backbone:

| PyTorch module                                 | Keras layer                       |
|------------------------------------------------|-----------------------------------|
| V1c `stem.0`, `stem.1`; torchvision `conv1`, `bn1` | `conv1_conv`, `conv1_bn`      |
| V1c `stem.3`, `stem.4` / `stem.6`, `stem.7`    | `conv2_*` / `conv3_*`             |
| `layer{s+1}.{b}.conv{i}`, `.bn{i}`             | `stack{s}_block{b}_{i}_conv`, `_{i}_bn` |
| `layer{s+1}.{b}.downsample.0`, `.1`            | `stack{s}_block{b}_0_conv`, `_0_bn` |

The architecture (depth, widths, stem) is read from the keys and shapes; the
output stride is not in the weights and is chosen by the caller.
"""

import re

import keras

from keras_memseg.backbones.resnet import RESNET_DEPTHS
from keras_memseg.convert.state_transfer import Entry
from keras_memseg.convert.state_transfer import mapping_table

CLASSIFIER_PREFIX = "fc."  # ImageNet classifier of backbone checkpoints: dropped
_LAYER_KEY = re.compile(r"layer([1-4])\.(\d+)\.")
_STEM = re.compile(r"conv([1-3])_(conv|bn)")
_BLOCK = re.compile(r"stack(\d)_block(\d+)_(\d)_(conv|bn)")


def _require(state, key, source, what):
    if key not in state:
        raise ValueError(f"{source} has no {key!r}: not {what}")
    return state[key]


def resnet_structure(state, prefix="", source="checkpoint"):
    """`DilatedResNetBackbone` arguments read from a ResNet state dict.

    Args:
        state: `{key: array}` (`read_state_dict`).
        prefix: the backbone's key prefix (`"backbone_net."` in a segmentor).
        source: the checkpoint's name for messages.

    Returns `{"depth", "base_channels", "stem_channels", "stem"}`.

    Example:
    >>> import numpy as np
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> net = DilatedResNetBackbone(depth=18, base_channels=8)
    >>> state = {key: np.zeros(1) for key in torch_keys(net)}
    >>> state["layer1.0.conv1.weight"] = np.zeros((8, 8, 3, 3))
    >>> state["stem.0.weight"] = np.zeros((4, 3, 3, 3))
    >>> resnet_structure(state)
    {'depth': 18, 'base_channels': 8, 'stem_channels': 4, 'stem': 'deep'}
    """
    keys = [k[len(prefix) :] for k in state if k.startswith(prefix)]
    if f"{prefix}stem.0.weight" in state:
        stem, stem_channels = "deep", int(state[f"{prefix}stem.0.weight"].shape[0])
    elif f"{prefix}conv1.weight" in state:
        kernel = state[f"{prefix}conv1.weight"]
        width = int(kernel.shape[0])
        if tuple(kernel.shape[2:]) != (7, 7) or width % 2:
            raise ValueError(
                f"{source}: {prefix}conv1.weight has shape {tuple(kernel.shape)}; "
                "a torchvision ResNet stem is a 7x7 conv with an even width"
            )
        stem, stem_channels = "7x7", width // 2
    else:
        raise ValueError(
            f"{source} has neither {prefix}stem.0.weight (ResNet-V1c) nor "
            f"{prefix}conv1.weight (torchvision ResNet): not a ResNet checkpoint"
        )
    if any(".downsample.2." in k for k in keys):
        raise ValueError(
            f"{source} is a ResNet-vd (average-pool shortcut, "
            f"'{prefix}layerN.0.downsample.2'): only V1c and torchvision ResNet "
            "checkpoints are supported"
        )
    blocks = [set() for _ in range(4)]
    for key in keys:
        match = _LAYER_KEY.match(key)
        if match:
            blocks[int(match.group(1)) - 1].add(int(match.group(2)))
    counts = tuple(len(b) for b in blocks)
    kind = "bottleneck" if f"{prefix}layer1.0.conv3.weight" in state else "basic"
    depth = next((d for d, spec in RESNET_DEPTHS.items() if spec == (kind, counts)), None)
    if depth is None:
        raise ValueError(
            f"{source}: {kind} blocks per stage {counts} match no supported "
            f"ResNet depth ({', '.join(map(str, sorted(RESNET_DEPTHS)))})"
        )
    base = _require(state, f"{prefix}layer1.0.conv1.weight", source, "a ResNet checkpoint")
    return {
        "depth": depth,
        "base_channels": int(base.shape[0]),
        "stem_channels": stem_channels,
        "stem": stem,
    }


def torch_module(layer_name, stem="deep"):
    """The PyTorch module name of a weighted `DilatedResNetBackbone` layer.

    Example:
    >>> torch_module("stack2_block0_0_bn"), torch_module("conv3_conv")
    ('layer3.0.downsample.1', 'stem.6')
    >>> torch_module("conv1_bn", stem="7x7")
    'bn1'
    """
    match = _STEM.fullmatch(layer_name)
    if match:
        index, kind = int(match.group(1)), match.group(2)
        if stem == "7x7":
            return "conv1" if kind == "conv" else "bn1"
        return f"stem.{3 * (index - 1) + (kind == 'bn')}"
    match = _BLOCK.fullmatch(layer_name)
    if match:
        stage, block, index, kind = match.groups()
        head = f"layer{int(stage) + 1}.{block}"
        if index == "0":
            return f"{head}.downsample.{int(kind == 'bn')}"
        return f"{head}.{kind}{index}"
    raise ValueError(f"layer {layer_name!r} is not a DilatedResNetBackbone layer")


def backbone_entries(backbone, prefix="", keras_prefix="backbone/"):
    """The transfer entries of every weighted layer of a `DilatedResNetBackbone`."""
    if getattr(backbone, "shortcut", "conv") != "conv":
        raise ValueError(
            "PyTorch ResNet-vd checkpoints are not supported (the backbone has "
            f"shortcut={backbone.shortcut!r})"
        )
    stem = getattr(backbone, "stem", "deep")
    entries = []
    for layer in backbone.layers:
        if not layer.weights:
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            kind = "bn"
        elif isinstance(layer, keras.layers.Conv2D):
            kind = "conv"
        else:
            raise ValueError(
                f"unexpected weighted layer {layer.name!r} ({type(layer).__name__}) in the backbone"
            )
        entries.append(
            Entry(prefix + torch_module(layer.name, stem), layer, kind, keras_prefix + layer.name)
        )
    return entries


def torch_keys(backbone):
    """Every PyTorch parameter key the backbone expects (no prefix, no BN counters)."""
    return [key for key, _ in mapping_table(backbone_entries(backbone))]
