"""`python recipes/train_cocostuff.py`: the name this command had first, kept as an alias of
`recipes/train_coco_stuff10k.py` (MCIBI on COCO-Stuff-10k, the paper's COCO-Stuff
setting). `--dataset=coco_stuff164k` trains COCO-Stuff-164k instead: its splits,
evaluation settings and 118,287 training images, the same hyperparameters, the run folder
runs/coco_stuff164k.

The same command as `keras-memseg train RECIPE`: every RecipeConfig field is a flag
(`--help` lists them), `--config_only` prints the resolved config.
"""

import sys

import _console  # noqa: F401  (first: hides TensorFlow's start-up lines)

from keras_memseg.training import run_recipe

if __name__ == "__main__":
    sys.exit(run_recipe("coco_stuff10k"))
