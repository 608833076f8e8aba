"""Backbones by name."""

from keras_memseg.backbones.dilated_resnet import DilatedResNetBackbone

_NAMED = {
    "resnet18_v1c": 18,
    "resnet34_v1c": 34,
    "resnet50_v1c": 50,
    "resnet101_v1c": 101,
}


def available_backbones():
    """Names accepted by `get_backbone` and by `MemorySegmenter(backbone=...)`."""
    return sorted(_NAMED)


def get_backbone(name, output_stride=8, **kwargs):
    """Builds a named backbone, e.g. `get_backbone("resnet50_v1c", output_stride=8)`.

    Extra keyword arguments go to `DilatedResNetBackbone` (e.g. `base_channels`).
    """
    if name not in _NAMED:
        raise ValueError(
            f"unknown backbone {name!r}; known names: {', '.join(available_backbones())}, "
            "or pass a keras.Model with `pyramid_outputs` (KerasHub) or "
            "`pyramid_level_inputs` (KerasCV)"
        )
    return DilatedResNetBackbone(depth=_NAMED[name], output_stride=output_stride, **kwargs)
