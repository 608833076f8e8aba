"""`keras-memseg train`: the command line of a training recipe (argparse), shared by the
recipe scripts (`python recipes/train_<recipe>.py` is `keras-memseg train <recipe>`).

    keras-memseg train ade20k --global_batch_size=8 --crop_size=256,256 --config_only
    keras-memseg train --recipe sample --max_steps=20
    keras-memseg train --data path/to/my_dataset --epochs=50

Every `RecipeConfig` field is a flag whose default is the recipe's value (`--help` lists
them by group, with a description and an example; the texts are
`keras_memseg.training.flag_help`). `--config_only` prints the resolved config; without
it the recipe trains and evaluates. Missing data prints where to put it (and how to run
the sample) and exits 2.

Flags: `--flag=value` or `--flag value`; booleans `--flag`, `--flag=true|false`,
`--flag false`, `--noflag`; pairs and lists comma-separated (`--crop_size=512,512`,
`512x512` too). A command line that cannot be taken as written exits 2 with one
`error: ...` line per problem, naming the flag, before anything is written: an unknown
flag (with a "did you mean"), a value of the wrong type, a leftover argument, a bad
value, a path flag that cannot work.

Names that changed (the old ones still work): `--slide_window` (`--eval_crop_size`),
`--slide_stride` (`--eval_stride`), `--help` (`--helpfull`); `--test_scale` is
height,width on the command line (the config field keeps the datasets' width,height).
"""

import argparse
import dataclasses
import difflib
import os
import sys

from keras_memseg.console import quiet_libraries
from keras_memseg.datasets.registry import looks_like_path
from keras_memseg.training.config import ConfigError
from keras_memseg.training.flag_help import EXAMPLES
from keras_memseg.training.flag_help import FLAG_NAMES
from keras_memseg.training.flag_help import GROUPS
from keras_memseg.training.flag_help import HELP

# Names a recipe had before (`python recipes/train_cocostuff.py` is still a script too).
RECIPE_ALIASES = {"cocostuff": "coco_stuff10k", "cocostuff164k": "coco_stuff164k"}
# Options that are not config fields.
_OPTIONS = ("recipe", "data", "config_only")
_TRUE, _FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")
_PATHS = ("data_dir", "manual_dir", "pretrained", "run_dir", "export_dir", "show_dir")
_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false"}


def _config_module():
    """`keras_memseg.training.config` (the recipes, the field types)."""
    from keras_memseg.training import config

    return config


def recipe_names():
    """The recipes `--recipe` accepts: the registered ones, then the old names."""
    return sorted(_config_module().RECIPES) + sorted(RECIPE_ALIASES)


def resolve_recipe(name):
    """The registered name of a recipe or of its old name; `ConfigError` otherwise."""
    name = RECIPE_ALIASES.get(name, name)
    if name in _config_module().RECIPES:
        return name
    close = difflib.get_close_matches(name, recipe_names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError([f"unknown recipe {name!r}{hint}; one of: {', '.join(recipe_names())}"])


# ------------------------------------------------------------------ values of the flags
def _pair_text(value, swap=False):
    value = tuple(value)[::-1] if swap else tuple(value)
    return ",".join(str(v) for v in value)


def _default_text(field, kind, value):
    if kind is tuple:
        return _pair_text(value, swap=field == "test_scale") or "empty"
    if kind is bool:
        return str(value).lower()
    if kind is str and value == "":
        return "empty"
    return str(value)


def _to_bool(flag, text):
    if text is None:
        return True
    if str(text).lower() in _TRUE:
        return True
    if str(text).lower() in _FALSE:
        return False
    raise ConfigError([f"{flag}={text!r}: true or false"])


def _to_tuple(flag, text, default, field):
    text = text.strip()
    if not text:
        return ()
    kind = type(default[0]) if default else (float if "." in text else int)
    if field == "eval_scales" or field == "ratio_range":
        kind = float
    try:
        values = tuple(kind(v) for v in text.lower().replace("x", ",").split(",") if v.strip())
    except ValueError:
        example = _pair_text(default, swap=field == "test_scale") or EXAMPLES[field]
        raise ConfigError(
            [f"{flag}={text!r}: comma-separated {kind.__name__}s, e.g. {example}"]
        ) from None
    return values[::-1] if field == "test_scale" else values  # H,W -> the field's (W, H)


def _convert(field, kind, flag, text, default):
    """The value of `--flag=text` for `field`; `ConfigError` with one line if it has none."""
    if kind is bool:
        return _to_bool(flag, text)
    if kind is tuple:
        return _to_tuple(flag, text, default, field)
    if kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            raise ConfigError([f"{flag}={text!r}: {_KIND_WORDS[kind]}"]) from None
    return text


# ------------------------------------------------------------------ the parser
class _Collect(argparse.Action):
    """Appends `(the option as typed, its text)` to the field's list: every value is
    checked (absl stopped at the first bad one), the last one wins."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = list(getattr(namespace, self.dest, None) or [])
        given.append((option_string, self.const if values is None else values))
        setattr(namespace, self.dest, given)


class _Negate(argparse.Action):
    """`--noflag`: the absl spelling of `--flag=false`."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = list(getattr(namespace, self.dest, None) or [])
        given.append((option_string, "false"))
        setattr(namespace, self.dest, given)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # argparse: "argument --max_steps: expected one argument"
        if message.startswith("argument ") and ": expected one argument" in message:
            flag = message.split()[1].split("/")[0].rstrip(":")
            raise ConfigError([f"{flag}: a value is missing (write {flag}=VALUE)"])
        raise ConfigError([message])


def _metavar(field, kind):
    if kind is bool:
        return "true|false"
    if kind is tuple:
        if field in ("crop_size", "test_scale", "eval_crop_size", "eval_stride"):
            return "H,W"
        return "A,B" if field != "eval_scales" else "S,..."
    if field in _PATHS:
        return "PATH"
    return {int: "N", float: "X"}.get(kind, "NAME")


def _help(text):
    return text.replace("%", "%%")


def build_parser(base, prog="keras-memseg train", recipe=None):
    """The `ArgumentParser` of `keras-memseg train` whose defaults are `base`'s values.

    Every option stores a list of `(option as typed, text)` under its field's name
    (`parse_command_line` converts and checks them)."""
    config = _config_module()
    types = config.field_types()
    about = f"the {recipe!r} recipe's" if recipe else "the generic recipe's"
    parser = _Parser(
        prog=prog,
        usage=f"{prog} [--recipe NAME | --data ROOT] [--flag=value ...] [--config_only]",
        add_help=False,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Trains MCIBI (DeepLabV3 + a dataset-level feature memory) and evaluates it.\n"
            f"Defaults below are {about} values. Write --flag=value or --flag value;\n"
            "booleans --flag, --flag=false or --noflag; pairs as 512,512 or 512x512."
        ),
        epilog="recipes: " + ", ".join(recipe_names()) + "\n"
        "example: keras-memseg train sample --max_steps=20 --run_dir=runs/try",
    )
    top = parser.add_argument_group("recipe")
    top.add_argument("-h", "--help", "--helpfull", action="help", help="show this and exit")
    top.add_argument(
        "--recipe",
        metavar="NAME",
        help=_help(
            "the recipe: the paper's settings for a dataset (" + ", ".join(recipe_names()) + ")"
        ),
    )
    top.add_argument(
        "--data",
        metavar="ROOT",
        help="train on your own dataset folder (classes.txt, images/<split>/, "
        "labels/<split>/): the recipe's hyperparameters (default: a generic recipe), the "
        "folder's splits and size; e.g. --data=~/data/my_dataset",
    )
    top.add_argument(
        "--config_only",
        dest="config_only",
        action=_Collect,
        nargs="?",
        const=None,
        metavar="true|false",
        help="print the resolved config as JSON and exit (nothing is written)",
    )
    top.add_argument(
        "--noconfig_only", dest="config_only", action=_Negate, nargs=0, help=argparse.SUPPRESS
    )
    for title, fields in GROUPS.items():
        group = parser.add_argument_group(title)
        for field in fields:
            kind = types[field]
            names = [f"--{FLAG_NAMES[field]}"] if field in FLAG_NAMES else []
            names.append(f"--{field}")
            example = EXAMPLES[field]
            default = _default_text(field, kind, getattr(base, field))
            text = f"{HELP[field]} (default: {default}; e.g. {names[0]}={example})"
            extra = {}
            if kind is bool or field == "verbose":
                extra = dict(nargs="?", const="2" if field == "verbose" else None)
            group.add_argument(
                *names,
                dest=field,
                action=_Collect,
                metavar=_metavar(field, kind),
                help=_help(text),
                **extra,
            )
            if kind is bool:
                group.add_argument(
                    f"--no{field}", dest=field, action=_Negate, nargs=0, help=argparse.SUPPRESS
                )
    return parser


def flag_names():
    """Every flag `keras-memseg train` accepts, without dashes (tests/test_docs.py)."""
    parser = build_parser(_config_module().RecipeConfig())
    return {
        option.lstrip("-")
        for action in parser._actions  # noqa: SLF001 - argparse has no public list
        for option in action.option_strings
    }


def _unknown_lines(rest, parser):
    """One line per argument argparse left over: an unknown flag or a stray word."""
    known = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]  # noqa: SLF001
    out = []
    for i, arg in enumerate(rest):
        if arg == "--":
            continue  # argparse's end of the flags: what follows is a stray word
        if arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "--help lists the flags"
            out.append(f"{arg}: unknown flag ({hint})")
        elif (
            i > 0 and rest[i - 1].startswith("-") and rest[i - 1] != "--" and "=" not in rest[i - 1]
        ):
            continue  # the value of an unknown flag, already named
        else:
            out.append(f"unexpected argument {arg!r} (every setting is a flag: write --name=value)")
    return out


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pre_scan(argv):
    """`--recipe` and `--data` (they choose the defaults the full parser shows)."""
    scan = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    scan.add_argument("--recipe")
    scan.add_argument("--data")
    try:
        known, _ = scan.parse_known_args(argv)
    except SystemExit:  # "--recipe" without a value: the full parser says so
        return None, None
    return known.recipe, known.data


def base_config(recipe=None, data=None, flag="--data"):
    """The config the flags apply to: `recipe`'s (registered or old name), on the dataset
    folder `data` when given (`config.folder_recipe`), or `None` when neither is given."""
    config = _config_module()
    name = resolve_recipe(recipe) if recipe else None
    if data:
        try:
            return config.folder_recipe(os.path.expanduser(data), recipe=name)
        except ConfigError as error:
            raise ConfigError([f"{flag}={data!r}: {line}" for line in error.problems]) from None
        except (ValueError, OSError) as error:
            raise ConfigError([f"{flag}={data!r}: {' '.join(str(error).split())}"]) from None
    return config.get_recipe(name) if name else None


def on_dataset(base, dataset):
    """`base`'s hyperparameters on another dataset: its splits, evaluation settings and
    training-set size (those of the recipe of that name, if any), and its name when the
    recipe was named after its dataset. `--dataset=coco_stuff164k` on the COCO-Stuff-10k
    recipe gives the 164k splits and 118,287 training images."""
    config = _config_module()
    if dataset == base.dataset:
        return base
    if looks_like_path(dataset):
        return _rebased(base, base_config(data=dataset, flag="--dataset"))
    try:
        spec = config.get_info(dataset)
    except ValueError:
        return base.replace(dataset=dataset)  # refused with the other flags, by the config
    same = next((r for r in config.RECIPES.values() if r.dataset == spec.name), None)
    target = config.dataset_fields(spec)
    if same is not None:
        target["num_train_examples"] = same.num_train_examples
    name = spec.name if base.name == base.dataset else base.name
    return dataclasses.replace(base, name=name, **target)


def _rebased(base, folder):
    """`base` on the dataset of `folder` (a `folder_recipe`), named after it."""
    fields = (
        "dataset",
        "train_split",
        "eval_split",
        "num_train_examples",
        "eval_mode",
        "eval_crop_size",
        "eval_stride",
        "eval_scales",
        "eval_flip",
        "probs_before_resize",
    )
    changes = {f: getattr(folder, f) for f in fields}
    changes["global_batch_size"] = min(base.global_batch_size, folder.num_train_examples)
    return dataclasses.replace(base, name=folder.name, **changes)


def parse_command_line(argv, recipe=None, prog="keras-memseg train"):
    """`(config, config_only)` of a command line (`argv` without the program name).

    `recipe` is the default recipe (a recipe script's); `--recipe` and `--data` override
    it. Raises `ConfigError` with one line per problem, naming the flag; `SystemExit(0)`
    after printing `--help`; `SystemExit(2)` after printing the usage when no recipe is
    chosen.

    Example:
    >>> config, only = parse_command_line(["--max_steps=7", "--eval_flip", "false"], "sample")
    >>> config.max_steps, config.eval_flip, only
    (7, False, False)
    >>> parse_command_line(["--test_scale=512,2048"], "ade20k")[0].test_scale  # (w, h)
    (2048, 512)
    """
    argv = list(argv)
    wanted, data = _pre_scan(argv)
    name = wanted or recipe
    helping = any(a in ("-h", "--help", "--helpfull") for a in argv)
    try:
        base = base_config(name, data)
    except ConfigError:
        if not helping:
            raise
        base = None
    if base is None and not helping:
        usage = build_parser(_config_module().RecipeConfig(), prog).format_usage().rstrip()
        print(usage, file=sys.stderr)
        print(
            f"choose a recipe (--recipe NAME or {prog} NAME) or --data ROOT; recipes: "
            + ", ".join(recipe_names()),
            file=sys.stderr,
        )
        raise SystemExit(2)
    shown = resolve_recipe(name) if name and base is not None else None
    parser = build_parser(base or _config_module().RecipeConfig(), prog, shown)
    namespace, rest = parser.parse_known_args(argv)
    problems = _unknown_lines(rest, parser)
    if problems:
        raise ConfigError(problems)
    types = _config_module().field_types()
    changes = {}
    for field, kind in types.items():
        for flag, text in getattr(namespace, field, None) or []:
            try:
                changes[field] = _convert(field, kind, flag, text, getattr(base, field))
            except ConfigError as error:
                problems += error.problems
    only = False
    for flag, text in namespace.config_only or []:
        try:
            only = _to_bool(flag, text)
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    if "dataset" in changes:
        base = on_dataset(base, changes.pop("dataset"))
    return dataclasses.replace(base, **changes), only


def print_problems(problems):
    """Prints `error: <line>` on stderr for each problem."""
    print("\n".join(f"error: {line}" for line in problems), file=sys.stderr)


def main(argv=None, recipe=None, prog="keras-memseg train"):
    """`keras-memseg train ARGV...`; returns the exit status. A first argument that is
    not a flag names the recipe (`keras-memseg train ade20k`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and not argv[0].startswith("-") and recipe is None:
        recipe, argv = argv[0], argv[1:]
        prog = f"{prog} {recipe}"
    try:
        config, config_only = parse_command_line(argv, recipe, prog)
    except SystemExit as exit_:
        return exit_.code or 0
    except ConfigError as error:
        print_problems(error.problems)
        return 2
    if config_only:
        print(config.to_json())
        return 0
    quiet_libraries(config.verbose >= 2)
    return train_main(config)


def run_recipe(name, argv=None):
    """Parses `argv` (program name first; default `sys.argv`) over the recipe `name` and
    trains; returns the exit status. The body of every recipe script."""
    argv = sys.argv if argv is None else list(argv)
    prog = os.path.basename(argv[0]) if argv else name
    return main(argv[1:], recipe=name, prog=prog)


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
    "RECIPE_ALIASES",
    "build_parser",
    "flag_names",
    "main",
    "parse_command_line",
    "recipe_names",
    "run_recipe",
    "train_main",
]
