"""`python recipes/train_cocostuff.py`: the name this command had first, kept as an alias of
`recipes/train_coco_stuff10k.py` (MCIBI on COCO-Stuff-10k, the paper's COCO-Stuff setting).

Every RecipeConfig field is a flag; `--config_only` prints the resolved config.
"""

import _console  # noqa: F401  (first: hides TensorFlow's start-up lines)

from keras_memseg.training import run_recipe

if __name__ == "__main__":
    run_recipe("coco_stuff10k")
