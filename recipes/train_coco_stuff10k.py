"""MCIBI (DeepLabV3 + feature memory, ResNet-50 V1c D8) on cocostuff10k with the paper's recipe.

Every RecipeConfig field is a flag; `--config_only` prints the resolved config.
"""

from keras_memseg.training import run_recipe

if __name__ == "__main__":
    run_recipe("cocostuff10k")
