"""`python recipes/evaluate.py --model=... [--dataset=...]`: evaluates a trained model on a
dataset split, or writes a benchmark-server submission. The same command as
`keras-memseg evaluate`; its flags and their help live in
`keras_memseg/training/evaluate_cli.py`.
"""

import _console  # noqa: F401  (first: hides TensorFlow's start-up lines)

from keras_memseg.training.evaluate_cli import main  # noqa: F401  (the tests call it)
from keras_memseg.training.evaluate_cli import run

if __name__ == "__main__":
    run()
