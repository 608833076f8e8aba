"""Every docstring example in the package runs as written (found by walking the package,
so a new module's examples are tested without being listed here)."""

import doctest
import importlib
import pkgutil

import pytest

import keras_memseg

SKIP = ("__main__",)  # command-line entry points: tested by running them


def _modules():
    names = []
    for info in pkgutil.walk_packages(keras_memseg.__path__, "keras_memseg."):
        if not info.name.endswith(SKIP):
            names.append(info.name)
    return sorted(names)


MODULES = _modules()
# The public classes whose docstrings must carry a runnable example.
MUST_HAVE_EXAMPLES = [
    "keras_memseg.models.mcibi.feature_memory",
    "keras_memseg.layers.aspp",
    "keras_memseg.layers.ppm",
    "keras_memseg.layers.self_attention",
    "keras_memseg.layers.conv_bn_act",
    "keras_memseg.layers.segmentation_decoder",
    "keras_memseg.layers.image_normalization",
    "keras_memseg.backbones.resnet.dilated_resnet_backbone",
    "keras_memseg.models.mcibi.mcibi_segmenter",
    "keras_memseg.models.deeplab_v3.deeplab_v3_segmenter",
    "keras_memseg.models.loading",
    "keras_memseg.losses.segmentation_cross_entropy",
    "keras_memseg.optimizers.schedules",
    "keras_memseg.optimizers.torch_sgd",
    "keras_memseg.datasets.registry",
    "keras_memseg.datasets.spec",
    "keras_memseg.datasets.pipeline",
]


def test_the_walk_finds_the_package():
    assert set(MUST_HAVE_EXAMPLES) <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    if name in MUST_HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
