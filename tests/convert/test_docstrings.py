"""Every docstring example of the converter and the pretrained-weight loading runs."""

import doctest
import importlib

import pytest

MODULES = [
    "keras_memseg.convert.torch_checkpoint",
    "keras_memseg.convert.resnet_keys",
    "keras_memseg.convert.from_torch",
    "keras_memseg.backbones.resnet.resnet_pretrained",
    "keras_memseg.layers.torch_batch_norm",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
