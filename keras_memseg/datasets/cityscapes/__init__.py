"""Cityscapes (gtFine), 19 train ids; see `cityscapes_dataset_builder`."""

from keras_memseg.datasets.cityscapes.spec import SPEC
from keras_memseg.datasets.registry import register

register(SPEC)
