"""absl entry point shared by the recipe scripts: every `RecipeConfig` field is a flag.

`python recipes/train_ade20k.py --global_batch_size=8 --crop_size=256,256 --config_only`
prints the resolved config; without `--config_only` it trains and evaluates.
Missing data prints where to put it (and how to run the sample) and exits 2.
"""

import dataclasses
import os
import sys

from keras_memseg.console import quiet_libraries
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


def run_recipe(name, argv=None):
    """Parses flags over `get_recipe(name)` and trains; the body of every recipe script."""
    from absl import app
    from absl import flags

    base = get_recipe(name)
    flag_values = flags.FLAGS
    define_flags(base, flag_values)

    def main(_):
        try:
            config = config_from_flags(base, flag_values)
        except ConfigError as error:
            print("\n".join(f"error: {line}" for line in error.problems), file=sys.stderr)
            return 2
        if flag_values.config_only:
            print(config.to_json())
            return 0
        quiet_libraries(config.verbose >= 2)
        return train_main(config)

    app.run(main, argv=argv)


def train_main(config):
    """Trains `config`; prints the data-missing message instead of a traceback."""
    from keras_memseg import datasets
    from keras_memseg.training import trainer
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
    except ConfigError as error:
        print("\n".join(f"error: {line}" for line in error.problems), file=sys.stderr)
        return 2
    except RunFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except trainer.NonFiniteTrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    written = [
        name
        for name in ("model.keras", "eval.json", "iou.png", "overlays", "checkpoints", "logs")
        if os.path.exists(os.path.join(result.run_dir, name))
    ]
    print(f"wrote {result.run_dir}/: {', '.join(written)} (tensorboard --logdir {result.run_dir})")
    return 0


__all__ = ["RecipeConfig", "run_recipe", "train_main", "define_flags", "config_from_flags"]
