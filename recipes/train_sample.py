"""Trains a small MCIBI model on the bundled CamVid sample (a few minutes on CPU), then
evaluates it, prints the per-class table and writes runs/sample/ (checkpoints, TensorBoard
logs, overlays, eval.json). Every RecipeConfig field is a flag (e.g. --max_steps=20).
"""

import sys

import _console  # noqa: F401  (first: hides TensorFlow's start-up lines)

from keras_memseg.training import run_recipe

if __name__ == "__main__":
    sys.exit(run_recipe("sample"))
