"""COCO-Stuff (coco_stuff10k); see `coco_stuff10k_dataset_builder`."""

from keras_memseg.datasets.coco_stuff10k.spec import SPEC
from keras_memseg.datasets.registry import register

register(SPEC)
