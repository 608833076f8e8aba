"""Loading same-depth ResNet weights into the dilated backbone.

Dilation and output stride change no weight shape, so a plain ResNet-V1c of the
same depth (a KerasHub `ResNetBackbone` preset directory with the deep 3x3 stem,
or a `.weights.h5` saved from any `DilatedResNetBackbone`) loads into the dilated
variant layer by layer, matched by name.
"""

import os

import keras


def _weighted_layers(model):
    return {layer.name: layer for layer in model.layers if layer.weights}


def copy_weights_by_name(source, target):
    """Copies every weighted layer of `target` from the same-named layer of `source`.

    Raises ValueError naming each missing layer or shape mismatch.
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
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems)} in all)" if len(problems) > 8 else "")
        raise ValueError(
            f"cannot load {source.name!r} into {target.name!r}: incompatible weights: {shown}"
        )
    for s, t in pairs:
        t.set_weights(s.get_weights())
    return len(pairs)


def load_resnet_weights(backbone, source):
    """Loads pretrained ResNet weights into `backbone` (a `DilatedResNetBackbone`).

    Args:
        backbone: the target backbone (any output stride).
        source: a KerasHub preset directory (holding `config.json` of a
            `ResNetBackbone` and its weights) or a `.weights.h5` file saved from a
            `DilatedResNetBackbone` of the same depth and width.

    Returns the number of layers loaded. Nothing is downloaded.
    """
    source = os.fspath(source)
    if not os.path.exists(source):
        raise FileNotFoundError(f"pretrained weights not found: {source}")
    if source.endswith(".weights.h5"):
        try:
            backbone.load_weights(source)
        except Exception as err:  # Keras raises ValueError/KeyError with terse text
            raise ValueError(
                f"cannot load {source} into backbone {backbone.name!r} "
                f"(depth {getattr(backbone, 'depth', '?')}): {err}"
            ) from err
        return len(_weighted_layers(backbone))
    if os.path.isdir(source):
        if not os.path.exists(os.path.join(source, "config.json")):
            raise ValueError(f"{source} is not a KerasHub preset directory (no config.json)")
        try:
            import keras_hub
        except ImportError as err:
            raise ImportError("loading a KerasHub preset needs `pip install keras-hub`") from err
        hub_backbone = keras_hub.models.Backbone.from_preset(source)
        return copy_weights_by_name(hub_backbone, backbone)
    raise ValueError(
        f"unsupported pretrained source {source}: expected a KerasHub preset directory "
        "or a .weights.h5 file"
    )
