"""Keras-side sources of pretrained ResNet weights for the dilated backbone.

Dilation and output stride change no weight shape, so a ResNet of the same depth,
width and structure loads into a `DilatedResNetBackbone` at any output stride:
- a preset folder: one of `DilatedResNetBackbone.save_to_preset` / `python -m
  keras_memseg.convert`, or a KerasHub `ResNetBackbone` preset (`save_to_preset`,
  or a downloaded `resnet_*` / `resnet_vd_*` preset), copied layer by layer by name;
- a `.weights.h5` saved from a `DilatedResNetBackbone` of the same architecture.

KerasHub's ResNet presets come in structures whose weights fit the V1c layers by
name and shape but compute something else (a 7x7 stem, the ResNet-vd average-pool
shortcut, pre-activation v2), so their `config.json` is read first and a preset of
another structure than the backbone is refused.

PyTorch checkpoints are read one package up: `keras_memseg.convert.load_resnet_weights`
takes every source (these and a `.pth`); backbones never import `convert`.
"""

import os
import stat

from keras_memseg import presets as preset_io
from keras_memseg.backbones.resnet.resnet_depths import RESNET_DEPTHS

_KERAS_HUB_RESNET = "ResNetBackbone"
_HUB_BLOCKS = {
    "basic_block": ("basic", "conv"),
    "bottleneck_block": ("bottleneck", "conv"),
    "basic_block_vd": ("basic", "avg_pool"),
    "bottleneck_block_vd": ("bottleneck", "avg_pool"),
}
TORCH_SUFFIXES = (".pth", ".pt", ".pth.tar", ".bin", ".ckpt")


def _weighted_layers(model):
    return {layer.name: layer for layer in model.layers if layer.weights}


def copy_weights_by_name(source, target):
    """Copies every weighted layer of `target` from the same-named layer of `source`.

    Raises ValueError naming each missing layer or shape mismatch; nothing is
    copied then.
    """
    src = _weighted_layers(source)
    problems = []
    pairs = []
    for name, layer in _weighted_layers(target).items():
        if name not in src:
            problems.append(f"{name}: missing in the source")
            continue
        src_shapes = [tuple(w.shape) for w in src[name].weights]
        dst_shapes = [tuple(w.shape) for w in layer.weights]
        if src_shapes != dst_shapes:
            problems.append(f"{name}: source shapes {src_shapes} != target shapes {dst_shapes}")
            continue
        pairs.append((src[name], layer))
    if problems:
        shown = "; ".join(problems[:8]) + (
            f"; ... ({len(problems)} in all)" if len(problems) > 8 else ""
        )
        raise ValueError(
            f"cannot load {source.name!r} into {target.name!r}: incompatible weights: {shown}"
        )
    for s, t in pairs:
        t.set_weights(s.get_weights())
    return len(pairs)


def is_keras_hub_resnet(serialized):
    """True when a preset's `config.json` content is a KerasHub `ResNetBackbone`."""
    return (
        isinstance(serialized, dict)
        and serialized.get("class_name") == _KERAS_HUB_RESNET
        and "keras_hub" in str(serialized.get("registered_name", serialized.get("module", "")))
    )


def keras_hub_structure(serialized, source="preset"):
    """`DilatedResNetBackbone` arguments of a KerasHub `ResNetBackbone` preset config.

    Args:
        serialized: the content of the preset's `config.json`.
        source: the preset's name for messages.

    Returns `{"depth", "base_channels", "stem_channels", "stem", "shortcut"}`; raises
    ValueError for what the dilated backbone cannot be: ResNetV2 (pre-activation),
    other stems, strides or stage widths, depths other than 18/34/50/101.

    Example:
    >>> config = {"class_name": "ResNetBackbone", "registered_name": "keras_hub>ResNetBackbone",
    ...           "config": {"input_conv_filters": [64], "input_conv_kernel_sizes": [7],
    ...                      "stackwise_num_filters": [64, 128, 256, 512],
    ...                      "stackwise_num_blocks": [3, 4, 6, 3],
    ...                      "stackwise_num_strides": [1, 2, 2, 2],
    ...                      "block_type": "bottleneck_block", "use_pre_activation": False}}
    >>> keras_hub_structure(config)
    {'depth': 50, 'base_channels': 64, 'stem_channels': 32, 'stem': '7x7', 'shortcut': 'conv'}
    """
    config = serialized.get("config", {})
    if config.get("use_pre_activation"):
        raise ValueError(
            f"{source} is a ResNetV2 (pre-activation) KerasHub preset, which "
            "DilatedResNetBackbone does not support"
        )
    block_type = config.get("block_type")
    if block_type not in _HUB_BLOCKS:
        raise ValueError(f"{source}: unsupported KerasHub block_type {block_type!r}")
    kind, shortcut = _HUB_BLOCKS[block_type]
    kernels = list(config.get("input_conv_kernel_sizes", []))
    filters = list(config.get("input_conv_filters", []))
    if kernels == [7] and filters and filters[0] % 2 == 0:
        stem, stem_channels = "7x7", filters[0] // 2
    elif (
        kernels == [3, 3, 3]
        and len(filters) == 3
        and filters[0] == filters[1]
        and filters[2] == 2 * filters[0]
    ):
        stem, stem_channels = "deep", filters[0]
    else:
        raise ValueError(
            f"{source}: KerasHub input convs {filters} with kernels {kernels} are "
            "neither a 7x7 stem nor the deep 3x3 stem (C, C, 2C)"
        )
    widths = list(config.get("stackwise_num_filters", []))
    if len(widths) != 4 or widths != [widths[0] * 2**i for i in range(4)]:
        raise ValueError(f"{source}: stage widths {widths} do not double per stage")
    if list(config.get("stackwise_num_strides", [])) != [1, 2, 2, 2]:
        raise ValueError(
            f"{source}: stage strides {config.get('stackwise_num_strides')} are "
            "not ResNet's (1, 2, 2, 2)"
        )
    counts = tuple(config.get("stackwise_num_blocks", ()))
    depth = next((d for d, spec in RESNET_DEPTHS.items() if spec == (kind, counts)), None)
    if depth is None:
        raise ValueError(
            f"{source}: {kind} blocks per stage {counts} match no supported depth "
            f"({', '.join(map(str, sorted(RESNET_DEPTHS)))})"
        )
    return {
        "depth": depth,
        "base_channels": widths[0],
        "stem_channels": stem_channels,
        "stem": stem,
        "shortcut": shortcut,
    }


def _describe(stem, shortcut):
    stems = {"deep": "the deep 3x3 stem", "7x7": "a 7x7 stem"}
    shortcuts = {"conv": "strided 1x1-conv shortcuts", "avg_pool": "average-pool (vd) shortcuts"}
    return f"{stems[stem]} and {shortcuts[shortcut]}"


def _check_structure(backbone, found, source):
    """Refuses a source whose stem or shortcut differs from the backbone's."""
    mine = (getattr(backbone, "stem", "deep"), getattr(backbone, "shortcut", "conv"))
    theirs = (found["stem"], found["shortcut"])
    if mine != theirs:
        raise ValueError(
            f"{source} is a ResNet with {_describe(*theirs)}, but backbone {backbone.name!r} "
            f"has {_describe(*mine)}: build it with stem={theirs[0]!r}, "
            f"shortcut={theirs[1]!r} (or DilatedResNetBackbone.from_preset({source!r}))"
        )


def load_preset_folder(backbone, folder):
    """Loads a keras_memseg or KerasHub ResNet preset folder into `backbone`; returns the
    number of layers loaded. A preset of another stem or shortcut is refused."""
    serialized = preset_io.read_config(folder)
    if is_keras_hub_resnet(serialized):
        _check_structure(backbone, keras_hub_structure(serialized, folder), folder)
        try:
            import keras_hub
        except ImportError:
            raise ImportError(
                'loading a KerasHub preset needs keras-hub: pip install "keras-memseg[hub]"'
            ) from None
        hub_backbone = keras_hub.models.Backbone.from_preset(folder)
        return copy_weights_by_name(hub_backbone, backbone)
    config = serialized.get("config") if isinstance(serialized, dict) else None
    if not isinstance(config, dict) or "depth" not in config:
        raise ValueError(
            f"{folder} holds neither a DilatedResNetBackbone nor a KerasHub "
            f"ResNetBackbone preset (class {serialized.get('class_name')!r})"
        )
    _check_structure(
        backbone,
        {"stem": config.get("stem", "deep"), "shortcut": config.get("shortcut", "conv")},
        folder,
    )
    return load_weights_file(backbone, os.path.join(folder, preset_io.WEIGHTS_FILE))


def load_weights_file(backbone, path):
    """Loads a `.weights.h5` of a `DilatedResNetBackbone` of the same architecture."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    try:
        backbone.load_weights(path)
    except Exception as err:  # Keras raises ValueError/KeyError with terse text
        raise ValueError(
            f"cannot load {path} into backbone {backbone.name!r} "
            f"(depth {getattr(backbone, 'depth', '?')}): {err}"
        ) from err
    return len(_weighted_layers(backbone))


def resolve_source(source):
    """`source` itself, or for a backbone preset name (`resnet50_v1c`) that is not a path,
    its converted folder `keras_memseg.presets.preset_home()/NAME`.

    Raises `FileNotFoundError` (one line: the file to download and the command) for a
    name that is not converted yet.

    Example:
    >>> resolve_source("weights/r50.pth")
    'weights/r50.pth'
    """
    from keras_memseg.backbones.resnet.dilated_resnet_presets import backbone_presets

    source = os.fspath(source)
    if source not in backbone_presets or os.path.exists(source):
        return source
    folder = os.path.join(preset_io.preset_home(), source)
    if os.path.isdir(folder):
        return folder
    url = backbone_presets[source]["source"]
    raise FileNotFoundError(
        f"backbone preset {source} is not converted yet: download {url}, then run: "
        f"keras-memseg convert {url.rsplit('/', 1)[-1]} --preset {source}"
    )


def check_source(source):
    """Refuses a `load_resnet_weights` source that cannot be one, without opening it.

    `source` must be a preset folder (with a `config.json`), a converted backbone preset's
    name (`resolve_source`), or a non-empty regular file
    named `.weights.h5` or as a PyTorch checkpoint (`.pth`, `.pt`, `.pth.tar`, `.bin`,
    `.ckpt`). Only `os.stat` is used: a FIFO, a device or a socket is never opened.

    Raises `FileNotFoundError` or `ValueError` with a one-line message naming `source`.

    Example:
    >>> check_source("/no/such/weights.pth")
    Traceback (most recent call last):
    ...
    FileNotFoundError: pretrained weights not found: /no/such/weights.pth
    """
    source = resolve_source(source)
    try:
        mode = os.stat(source).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"pretrained weights not found: {source}") from None
    except OSError as error:
        raise ValueError(f"cannot read {source}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        if not preset_io.is_preset_dir(source):
            raise ValueError(
                f"{source} is not a KerasHub preset or keras_memseg preset folder (no config.json)"
            )
        return
    if not stat.S_ISREG(mode):
        raise ValueError(
            f"{source} is not a regular file or a preset folder (a FIFO, device or "
            "socket is never opened)"
        )
    if not source.endswith((".weights.h5", *TORCH_SUFFIXES)):
        raise ValueError(
            f"unsupported pretrained source {source}: expected a PyTorch .pth, a preset "
            "folder (keras_memseg or KerasHub) or a .weights.h5 file"
        )
    if os.path.getsize(source) == 0:
        raise ValueError(f"{source} is empty (0 bytes)")
