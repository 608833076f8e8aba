"""`keras-memseg`: one console command for every task of the library.

    keras-memseg train RECIPE [--flag=value ...]   train a recipe (`keras-memseg train` lists them)
    keras-memseg evaluate --model=... --dataset=...
    keras-memseg predict MODEL IMAGES... --out=...
    keras-memseg convert CHECKPOINT --out=...
    keras-memseg export MODEL --out=...
    keras-memseg analysis ...

Each subcommand is the command that already exists under another name, with the same
flags (`python recipes/train_<recipe>.py`, `python recipes/evaluate.py`, `python -m
keras_memseg.<predict|convert|export|analysis>`), so a non-editable install has all of
them. `keras-memseg SUBCOMMAND --help` shows a subcommand's flags.

Example:
>>> main(["no-such-command"])
error: unknown command 'no-such-command'; one of: train, evaluate, predict, convert, export, analysis
2
"""

import importlib
import sys

# name -> (module whose `main(argv)` runs it, one-line summary)
COMMANDS = {
    "train": ("keras_memseg.training.cli", "train a recipe with the paper's settings"),
    "evaluate": ("keras_memseg.training.evaluate_cli", "score a model on a dataset split"),
    "predict": ("keras_memseg.predict.__main__", "label your own images"),
    "convert": ("keras_memseg.convert.__main__", "the authors' PyTorch checkpoints -> presets"),
    "export": ("keras_memseg.export.__main__", "SavedModel (TF Serving) and TFLite"),
    "analysis": ("keras_memseg.analysis.__main__", "what the memory learned"),
}
# Names a recipe had before (`python recipes/train_cocostuff.py` is still a script too).
RECIPE_ALIASES = {"cocostuff": "coco_stuff10k"}


def usage():
    """The text of `keras-memseg --help`."""
    rows = [f"  {name:<9} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(
        ["usage: keras-memseg COMMAND [flags]  (keras-memseg COMMAND --help: its flags)", ""] + rows
    )


def _recipes():
    from keras_memseg.training.config import RECIPES

    return sorted(RECIPES) + sorted(RECIPE_ALIASES)


def _train(args):
    if not args or args[0].startswith("-"):
        names = ", ".join(_recipes())
        print(f"usage: keras-memseg train RECIPE [--flag=value ...]; recipes: {names}")
        return 0 if args[:1] in ([], ["--help"], ["-h"]) else 2
    name = RECIPE_ALIASES.get(args[0], args[0])
    if name not in _recipes():
        print(f"error: unknown recipe {args[0]!r}; one of: {', '.join(_recipes())}")
        return 2
    from keras_memseg.training.cli import run_recipe

    return run_recipe(name, argv=[f"keras-memseg train {args[0]}", *args[1:]])


def main(argv=None):
    """Runs `keras-memseg ARGV...`; returns the exit status (absl commands exit)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; one of: {', '.join(COMMANDS)}")
        return 2
    if command == "train":
        return _train(args)
    module = importlib.import_module(COMMANDS[command][0])
    if command == "evaluate":
        return module.run([f"keras-memseg {command}", *args])
    return module.main(args)


if __name__ == "__main__":
    sys.exit(main())
