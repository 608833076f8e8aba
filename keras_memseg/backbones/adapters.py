"""Adapters that turn any pyramid backbone into the `{"P2": ..., "P5": ...}` contract."""

import keras

_LEVELS = ("P2", "P3", "P4", "P5")


def pyramid_feature_model(backbone):
    """A functional model mapping images to a dict of pyramid levels P2..P5.

    Accepts, unchanged:
    - keras_memseg's `DilatedResNetBackbone` and any KerasHub
      `FeaturePyramidBackbone` (attribute `pyramid_outputs`: level -> tensor);
    - any KerasCV backbone (attribute `pyramid_level_inputs`: level -> layer name).

    The returned model shares the backbone's layers and weights.
    """
    if isinstance(backbone, keras.Model) and isinstance(
        getattr(backbone, "pyramid_outputs", None), dict
    ):
        outputs = dict(backbone.pyramid_outputs)
    elif isinstance(backbone, keras.Model) and isinstance(
        getattr(backbone, "pyramid_level_inputs", None), dict
    ):
        outputs = {
            level: backbone.get_layer(layer_name).output
            for level, layer_name in backbone.pyramid_level_inputs.items()
        }
    else:
        raise TypeError(
            "backbone must be a keras.Model exposing `pyramid_outputs` (KerasHub, "
            "keras_memseg) or `pyramid_level_inputs` (KerasCV); got "
            f"{type(backbone).__name__}"
        )
    missing = [level for level in ("P4", "P5") if level not in outputs]
    if missing:
        raise ValueError(
            f"backbone {backbone.name!r} exposes pyramid levels {sorted(outputs)}, but the "
            f"segmentation head needs {missing} (P5 for the context module and the memory, "
            "P4 for the auxiliary head)"
        )
    outputs = {level: outputs[level] for level in _LEVELS if level in outputs}
    if outputs is getattr(backbone, "pyramid_outputs", None):
        return backbone
    return keras.Model(backbone.inputs, outputs, name=f"{backbone.name}_pyramid")
