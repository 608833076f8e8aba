"""LIP (Look Into Person), 20 classes; see `lip_dataset_builder`."""

from keras_memseg.datasets.lip.spec import SPEC
from keras_memseg.datasets.registry import register

register(SPEC)
