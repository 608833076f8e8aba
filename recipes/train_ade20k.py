"""MCIBI (DeepLabV3 + feature memory, ResNet-50 V1c D8) on ade20k with the paper's recipe.

Every RecipeConfig field is a flag; `--config_only` prints the resolved config.
"""

import _console  # noqa: F401  (first: hides TensorFlow's start-up lines)

from keras_memseg.training import run_recipe

if __name__ == "__main__":
    run_recipe("ade20k")
