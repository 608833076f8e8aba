"""The CamVid sample bundled with the package (offline runs and tests); see `reader`."""

from keras_memseg.datasets.registry import register
from keras_memseg.datasets.sample.spec import SPEC

register(SPEC)
