"""Training: recipe configs and the `keras-memseg train` command line (light imports).

The TensorFlow trainer lives in `keras_memseg.training.trainer` (`train(config)`),
strategy selection in `keras_memseg.training.strategy`; import them explicitly.
"""

from keras_memseg.training.cli import run_recipe
from keras_memseg.training.config import RECIPES
from keras_memseg.training.config import RecipeConfig
from keras_memseg.training.config import get_recipe
