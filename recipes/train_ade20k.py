"""MCIBI (DeepLabV3 + feature memory, ResNet-50 V1c D8) on ade20k with the paper's recipe.

The same command as `keras-memseg train RECIPE`: every RecipeConfig field is a flag
(`--help` lists them), `--config_only` prints the resolved config.
"""

import sys

import _console  # noqa: F401  (first: hides TensorFlow's start-up lines)

from keras_memseg.training import run_recipe

if __name__ == "__main__":
    sys.exit(run_recipe("ade20k"))
