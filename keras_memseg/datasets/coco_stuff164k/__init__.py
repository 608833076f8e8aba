"""COCO-Stuff (coco_stuff164k); see `coco_stuff164k_dataset_builder`."""

from keras_memseg.datasets.coco_stuff164k.spec import SPEC
from keras_memseg.datasets.registry import register

register(SPEC)
