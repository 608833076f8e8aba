"""CamVid (SegNet tutorial release), 11 classes; see `camvid_dataset_builder`."""

from keras_memseg.datasets.camvid.spec import SPEC
from keras_memseg.datasets.registry import register

register(SPEC)
