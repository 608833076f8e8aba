"""ADE20K SceneParsing (ADEChallengeData2016), 150 classes; see `ade20k_dataset_builder`."""

from keras_memseg.datasets.ade20k.spec import SPEC
from keras_memseg.datasets.registry import register

register(SPEC)
