"""absl entry point shared by the recipe scripts: every `RecipeConfig` field is a flag.

`python recipes/train_ade20k.py --global_batch_size=8 --crop_size=256,256 --config_only`
prints the resolved config; without `--config_only` it trains and evaluates.
Missing data prints where to put it (and how to run the sample) and exits 2.

A command line that cannot be taken as written exits 2 with one `error: ...` line per
problem, naming the flag, before anything is written: an unknown flag, a value of the
wrong type, a leftover argument (`--eval_flip false` would silently mean
`--eval_flip`: write `--eval_flip=false`), a bad value, a path flag that cannot work.
"""

import dataclasses
import os
import re
import sys

from keras_memseg.console import quiet_libraries
from keras_memseg.training.config import FLAG_NOTES
from keras_memseg.training.config import ConfigError
from keras_memseg.training.config import RecipeConfig
from keras_memseg.training.config import field_types
from keras_memseg.training.config import get_recipe


def _parse_tuple(name, text, default):
    text = text.strip()
    if not text:
        return ()
    kind = type(default[0]) if default else (float if "." in text else int)
    try:
        return tuple(kind(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ConfigError(
            [
                f"--{name}={text!r}: comma-separated {kind.__name__}s, e.g. "
                f"{','.join(str(v) for v in default) or '512,512'}"
            ]
        ) from None


def define_flags(config, flag_values):
    """Defines one absl flag per field of `config`, defaulting to its value."""
    from absl import flags

    for name, kind in field_types().items():
        value = getattr(config, name)
        help_text = f"RecipeConfig.{name}"
        if name in FLAG_NOTES:
            help_text += f": {FLAG_NOTES[name]}"
        if kind is bool:
            help_text += f" (write --{name}=false, not --{name} false)"
        if kind is bool:
            flags.DEFINE_bool(name, value, help_text, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(name, value, help_text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(name, value, help_text, flag_values=flag_values)
        elif kind is tuple:
            flags.DEFINE_string(
                name,
                ",".join(str(v) for v in value),
                help_text + " (comma-separated)",
                flag_values=flag_values,
            )
        else:
            flags.DEFINE_string(name, value, help_text, flag_values=flag_values)
    flags.DEFINE_bool(
        "config_only", False, "print the resolved config and exit", flag_values=flag_values
    )


def config_from_flags(base, flag_values):
    """The `RecipeConfig` of the parsed flags; `ConfigError` lists every bad flag."""
    changes, problems = {}, []
    for name, kind in field_types().items():
        value = flag_values[name].value
        if kind is tuple:
            try:
                value = _parse_tuple(name, value, getattr(base, name))
            except ConfigError as error:
                problems += error.problems
                continue
        changes[name] = value
    if problems:
        raise ConfigError(problems)
    return dataclasses.replace(base, **changes)


_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false"}


def _given_values(name, argv):
    """The texts given to `--name` in `argv` (`--name=...` or `--name VALUE`), in order."""
    out = []
    for i, arg in enumerate(argv):
        if arg.startswith((f"--{name}=", f"-{name}=")):
            out.append(arg.split("=", 1)[1])
        elif arg in (f"--{name}", f"-{name}") and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def flag_error_line(error, argv):
    """One line for an absl parsing error: the flag, then what is wrong with it."""
    from absl import flags

    message = " ".join(str(error).replace("ERROR:: ", "").split())
    if isinstance(error, flags.UnrecognizedFlagError):
        guess = re.search(r"Did you mean: (.+?) ?\?", message)
        hint = f"did you mean --{guess.group(1).split(',')[0].strip()}?" if guess else ""
        return f"{error.flagvalue}: unknown flag ({hint or '--helpfull lists the flags'})"
    match = re.match(r"flag --(\w+)=", message)
    if isinstance(error, flags.IllegalFlagValueError) and match:
        name = match.group(1)
        kind = field_types().get(name)
        # absl stops at the first bad value: the one its message quotes.
        value = next(
            (v for v in _given_values(name, argv) if message.startswith(f"flag --{name}={v}: ")),
            None,
        )
        if kind in _KIND_WORDS and value is not None:
            return f"--{name}={value!r}: {_KIND_WORDS[kind]}"
    return message


def leftover_argument_line(arg, argv, flag_values):
    """One line for an argument absl left over: its name and the `--flag=value` form.

    Example: `--eval_flip false` leaves `false` (absl reads `--eval_flip` as true) ->
    "unexpected argument 'false' (write --eval_flip=false)".
    """
    index = argv.index(arg, 1) if arg in argv[1:] else 0
    previous = argv[index - 1] if index > 1 else ""
    name = previous.lstrip("-")
    if previous.startswith("-") and "=" not in previous and name in flag_values:
        return f"unexpected argument {arg!r} (write --{name}={arg})"
    return f"unexpected argument {arg!r} (every setting is a flag: write --name=value)"


def parse_command_line(flag_values, argv):
    """Parses `argv` (program name first) into `flag_values`; returns `[argv[0]]`.

    Raises `ConfigError` with one line naming the flag for what absl refuses (an
    unknown flag, a value of the wrong type) and one line per leftover argument (absl
    keeps them for `main`, so `--eval_flip false` would silently be `--eval_flip`).
    """
    from absl import flags

    argv = list(argv)
    try:
        rest = flag_values(argv)
    except (flags.Error, ValueError) as error:
        raise ConfigError([flag_error_line(error, argv)]) from None
    problems = [leftover_argument_line(arg, argv, flag_values) for arg in rest[1:]]
    if problems:
        raise ConfigError(problems)
    return rest[:1]


def print_problems(problems):
    """Prints `error: <line>` on stderr for each problem."""
    print("\n".join(f"error: {line}" for line in problems), file=sys.stderr)


def run_recipe(name, argv=None):
    """Parses flags over `get_recipe(name)` and trains; the body of every recipe script."""
    from absl import app
    from absl import flags

    base = get_recipe(name)
    flag_values = flags.FLAGS
    define_flags(base, flag_values)

    def parse(args):
        try:
            return parse_command_line(flag_values, args)
        except ConfigError as error:
            print_problems(error.problems)
            sys.exit(2)

    def main(_):
        try:
            config = config_from_flags(base, flag_values)
        except ConfigError as error:
            print_problems(error.problems)
            return 2
        if flag_values.config_only:
            print(config.to_json())
            return 0
        quiet_libraries(config.verbose >= 2)
        return train_main(config)

    app.run(main, argv=argv, flags_parser=parse)


def train_main(config):
    """Trains `config`; prints the data-missing message, a bad example of the data, a bad
    flag or an unusable run folder as `error: ...` lines (exit 2) instead of a traceback.
    """
    from keras_memseg import datasets
    from keras_memseg.training import trainer
    from keras_memseg.training.callbacks import DiskFullError
    from keras_memseg.training.run_folder import RunFolderError

    try:
        result = trainer.train(config)
    except datasets.DatasetNotFoundError as error:
        print(
            f"\nNo data for {config.dataset!r}.\n{error}\n\n"
            "To see the whole pipeline run offline on the bundled CamVid sample:\n"
            "  python recipes/train_sample.py",
            file=sys.stderr,
        )
        return 2
    except datasets.BadExampleError as error:
        # The run folder is kept: the same command resumes once the data is fixed.
        print_problems([trainer.one_line(error)])
        return 2
    except ConfigError as error:
        print_problems(error.problems)
        return 2
    except RunFolderError as error:
        print_problems([trainer.one_line(error)])
        return 2
    except trainer.NonFiniteTrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except DiskFullError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    written = [
        name
        for name in ("model.keras", "eval.json", "iou.png", "overlays", "checkpoints", "logs")
        if os.path.exists(os.path.join(result.run_dir, name))
    ]
    print(f"wrote {result.run_dir}/: {', '.join(written)} (tensorboard --logdir {result.run_dir})")
    if result.resume_note:
        print(f"note: {result.resume_note}")  # the last line, where a reader looks
    return 0


__all__ = [
    "RecipeConfig",
    "run_recipe",
    "train_main",
    "define_flags",
    "config_from_flags",
    "parse_command_line",
]
