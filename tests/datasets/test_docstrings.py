"""Runs the `Example:` blocks of the data-layer modules (STYLE.md habit 6)."""

import doctest
import importlib

import pytest

MODULES = [
    "keras_memseg.datasets.info", "keras_memseg.datasets.errors", "keras_memseg.datasets._palette",
    "keras_memseg.datasets._source", "keras_memseg.datasets._validation",
    "keras_memseg.datasets._coco_stuff_classes", "keras_memseg.datasets.transforms",
    "keras_memseg.datasets.pipeline", "keras_memseg.datasets.loader", "keras_memseg.datasets._sample",
    "keras_memseg.datasets.camvid.classes", "keras_memseg.datasets.cityscapes.classes",
    "keras_memseg.datasets.ade20k.classes", "keras_memseg.datasets.lip.classes",
    "keras_memseg.datasets.camvid.camvid_dataset_builder",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
