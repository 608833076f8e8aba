"""`keras-memseg`: one console command for every task of the library.

    keras-memseg train RECIPE [--flag=value ...]   train a recipe (or --data ROOT: a folder)
    keras-memseg evaluate --model=... --dataset=...
    keras-memseg predict MODEL IMAGES... --out=...
    keras-memseg convert CHECKPOINT --out=...
    keras-memseg export MODEL --out=...
    keras-memseg analyze ...                        (also: analysis)
    keras-memseg datasets                           the datasets and their folders

Each subcommand is the `main(argv)` of a module of the package (the table `COMMANDS`), so
a non-editable install has all of them; `python recipes/train_<recipe>.py` and `python -m
keras_memseg.<module>` are the same commands. `keras-memseg SUBCOMMAND --help` shows a
subcommand's flags. Nothing here imports TensorFlow: the help is printed at once, and a
subcommand imports what it needs when it runs.

Example:
>>> import contextlib, io
>>> with contextlib.redirect_stderr(io.StringIO()) as err:
...     code = main(["no-such-command"])
>>> code, err.getvalue().split(";")[0]
(2, "error: unknown command 'no-such-command'")
"""

import difflib
import importlib
import sys

from keras_memseg.console import quiet_tensorflow_startup

# name -> (module whose `main(argv)` runs it, one-line summary)
COMMANDS = {
    "train": ("keras_memseg.training.cli", "train a recipe, or on your own dataset folder"),
    "evaluate": ("keras_memseg.training.evaluate_cli", "score a model on a dataset split"),
    "predict": ("keras_memseg.predict.__main__", "label your own images"),
    "export": ("keras_memseg.export.__main__", "SavedModel (TF Serving) and TFLite"),
    "convert": ("keras_memseg.convert.__main__", "the authors' PyTorch checkpoints -> presets"),
    "analyze": ("keras_memseg.analysis.__main__", "what the memory learned"),
    "datasets": ("keras_memseg.datasets.__main__", "the datasets, where their files go"),
}
# Other names of a command (the name it had before).
COMMAND_ALIASES = {"analysis": "analyze"}
# Names a recipe had before: `keras-memseg train cocostuff`. A copy of the table of
# `keras_memseg.training.cli` (importing that package reads the dataset registry);
# tests/test_cli.py checks that they agree.
RECIPE_ALIASES = {"cocostuff": "coco_stuff10k", "cocostuff164k": "coco_stuff164k"}


def usage():
    """The text of `keras-memseg --help`."""
    aliases = {target: name for name, target in COMMAND_ALIASES.items()}
    rows = [
        f"  {name:<9} {summary}" + (f" (also: {aliases[name]})" if name in aliases else "")
        for name, (_, summary) in COMMANDS.items()
    ]
    return "\n".join(
        ["usage: keras-memseg COMMAND [flags]  (keras-memseg COMMAND --help: its flags)", ""]
        + rows
        + ["", "example: keras-memseg train sample --max_steps=20 --run_dir=runs/try"]
    )


def main(argv=None):
    """Runs `keras-memseg ARGV...`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, args = COMMAND_ALIASES.get(argv[0], argv[0]), argv[1:]
    if command in ("-V", "--version", "version"):
        from keras_memseg.version import __version__

        print(f"keras-memseg {__version__}")
        return 0
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, [*COMMANDS, *COMMAND_ALIASES], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        print(
            f"error: unknown command {command!r}{hint}; one of: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    quiet_tensorflow_startup(args)
    module = importlib.import_module(COMMANDS[command][0])
    code = module.main(args, prog=f"keras-memseg {command}")
    return 0 if code is None else code


if __name__ == "__main__":
    sys.exit(main())
