"""Every public docstring example in the backend-agnostic core runs as written."""

import doctest
import importlib

import pytest

MODULES = [
    "keras_memseg.layers.feature_memory",
    "keras_memseg.layers.aspp",
    "keras_memseg.layers.ppm",
    "keras_memseg.layers.self_attention",
    "keras_memseg.layers.conv_bn_act",
    "keras_memseg.layers.segmentation_decoder",
    "keras_memseg.layers.image_normalization",
    "keras_memseg.backbones.dilated_resnet",
    "keras_memseg.models.memory_segmenter",
    "keras_memseg.models.deeplabv3",
    "keras_memseg.losses.segmentation_cross_entropy",
    "keras_memseg.training.schedules",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
