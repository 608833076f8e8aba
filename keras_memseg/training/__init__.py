"""Training: schedules (backend-agnostic); the TF trainer lives in `training.trainer`."""

from keras_memseg.training.schedules import PolyDecay
from keras_memseg.training.schedules import TiedMomentum
