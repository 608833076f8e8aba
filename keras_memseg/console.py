"""What the command-line entry points print: their own lines, not the libraries'.

TensorFlow, XLA and absl log start-up and export chatter at INFO (hundreds of lines
when a SavedModel is written); the entry points call `quiet_libraries()` first, so only
warnings and errors of those libraries reach the console unless `--verbose`.
"""

import argparse
import contextlib
import logging
import os
import sys


def quiet_libraries(verbose=False):
    """TensorFlow / absl logging at WARNING (C++ at ERROR) unless `verbose`."""
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    for name in ("tensorflow", "absl", "h5py", "jax"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _probe_devices_muted()


def quiet_startup_for_command_line():
    """Called by `keras_memseg/__init__.py` before Keras imports TensorFlow: when the
    package is imported as the parent of `python -m keras_memseg.<command>` (runpy has
    not yet replaced `sys.argv[0] == "-m"`), `quiet_tensorflow_startup(sys.argv[1:])`."""
    if sys.argv[:1] == ["-m"]:
        quiet_tensorflow_startup(sys.argv[1:])


def asks_for_library_logs(argv):
    """Whether a command line asks for TensorFlow's own logs: `--verbose` (bare),
    `--verbose=2`, `--verbose 2` or `--verbose=true`.

    Example:
    >>> asks_for_library_logs(["--verbose", "2"]), asks_for_library_logs(["--verbose=1"])
    (True, False)
    """
    for i, arg in enumerate(argv):
        if arg in ("--verbose=2", "--verbose=true", "--verbose=True"):
            return True
        if arg == "--verbose":
            following = argv[i + 1] if i + 1 < len(argv) else ""
            if following not in ("0", "1"):
                return True
    return False


def quiet_tensorflow_startup(argv):
    """Imports TensorFlow and probes its devices with the process's stderr muted, so that
    its C++ start-up lines (`cudart_stub.cc`, `cuInit`) stay off the console of a command
    run with `argv`; a no-op when TensorFlow is imported already, when another Keras
    backend is chosen, when `argv` asks for help (printed before TensorFlow is needed) or
    for the libraries' logs (`asks_for_library_logs`). Python errors still propagate."""
    if "tensorflow" in sys.modules or asks_for_library_logs(argv):
        return
    if {"-h", "--help", "--helpfull"} & set(argv):
        return
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()


def _probe_devices_muted():
    """TensorFlow probes CUDA the first time it lists devices and prints `cuInit` errors
    from C++ whatever `TF_CPP_MIN_LOG_LEVEL` says (TF 2.19+): probe now, with the
    process's stderr pointed at /dev/null, so that the probe's lines never reach the
    console. A no-op when TensorFlow is not imported (JAX or torch backend)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return
    with _stderr_muted():
        tf.config.list_physical_devices()


@contextlib.contextmanager
def _stderr_muted():
    """The process's file descriptor 2 pointed at /dev/null (C++ logs included)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def progress_verbosity(verbose=1):
    """Keras `fit`'s `verbose`: a progress bar on a terminal, one line per epoch when the
    output goes to a file or a pipe (a bar there is carriage-return spam)."""
    if verbose == 1 and not sys.stdout.isatty():
        return 2
    return verbose


class OneLineErrorParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line on stderr (exit code 2), without
    the usage text: what every keras_memseg command prints for a bad flag."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# -- the flag vocabulary shared by the `keras-memseg` subcommands --------------------------
# Small argparse building blocks, imported before TensorFlow (this module imports nothing
# heavy at its top). Each command still writes `parser.add_argument("--flag", ...)` with
# the flag spelled out (tests/test_docs.py reads the flags from the source):
#   parser.add_argument("--slide_window", type=pair_hw, ...)      H,W values
#   parser.add_argument("--verbose", **verbose_option())          0/1/2, bare = 2
#   parser.add_argument("--flip", "--no-flip", action=BoolFlag)  absl-style booleans
#   parser.add_argument("--output", **alias_of(out_action))       a hidden old spelling
#   parser.add_argument("--dataset", **dataset_option("..."))     with "--data", **data_option()


def pair_hw(text):
    """argparse `type` of an `H,W` value (height first, as on every command line here):
    two positive integers -> `(h, w)`.

    Example:
    >>> pair_hw("512,1024")
    (512, 1024)
    """
    try:
        first, second = (int(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two integers H,W (e.g. 512,1024), got {text!r}"
        ) from None
    if first < 1 or second < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers H,W, got {text!r}")
    return first, second


def verbosity(text):
    """argparse `type` of `--verbose`: 0, 1 or 2 (absl's true / false: 2 / 0).

    Example:
    >>> verbosity("1"), verbosity("true"), verbosity("False")
    (1, 2, 0)
    """
    value = {"true": "2", "false": "0"}.get(str(text).lower(), str(text))
    if value not in ("0", "1", "2"):
        raise argparse.ArgumentTypeError(f"expected 0, 1 or 2, got {text!r}")
    return int(value)


def verbose_option(default=1):
    """The keyword arguments of `--verbose [0|1|2]`: 0 results and errors only, 1 also
    progress, 2 also TensorFlow's own log lines; a bare `--verbose` is 2."""
    return dict(
        type=verbosity,
        nargs="?",
        const=2,
        default=default,
        metavar="0|1|2",
        help="0: results and errors only; 1: also progress; 2: also TensorFlow's own log "
        f"lines (default: {default}; a bare --verbose is 2; e.g. --verbose 0)",
    )


def _truth(text):
    value = str(text).lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class BoolFlag(argparse.Action):
    """A boolean flag spelled `--name`, `--name=true|false` (absl's forms) or `--no-name`:
    `parser.add_argument("--flip", "--no-flip", action=BoolFlag, default=None)` (None:
    not given)."""

    def __init__(self, option_strings, dest, **kwargs):
        kwargs.setdefault("nargs", "?")
        kwargs.setdefault("metavar", "true|false")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string and option_string.startswith("--no-"):
            value = False
        elif values is None:
            value = True
        elif isinstance(values, bool):
            value = values
        else:
            try:
                value = _truth(values)
            except argparse.ArgumentTypeError as error:
                parser.error(f"argument {option_string}: {error}")
        setattr(namespace, self.dest, value)


class _Alias(argparse.Action):
    """A hidden old spelling: prints `note: --old is now --new` on stderr, then does what
    the new flag does."""

    def __init__(self, option_strings, dest, target=None, new=None, value=None, **kwargs):
        self.target, self.new, self.value = target, new, value
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"note: {option_string} is now {self.new}", file=sys.stderr)
        if self.nargs == 0 and self.target.nargs != 0:
            values = self.value
        self.target(parser, namespace, values, self.new)


_NO_VALUE = object()


def alias_of(target, new=None, value=_NO_VALUE):
    """The keyword arguments that keep an old spelling working as a hidden alias of the
    flag `target` (what `parser.add_argument` returned for the new one): it prints
    `note: --old is now --new` on stderr and parses as the new flag. `new`: the spelling
    the note names (default the target's first); `value`: the alias takes no value and
    stands for `new=value` (absl's `--noflip` is `--no-flip`).

    Example:
    >>> p = OneLineErrorParser(prog="x")
    >>> out = p.add_argument("--out", help="where the report goes (e.g. --out r.json)")
    >>> _ = p.add_argument("--output", **alias_of(out))
    >>> p.parse_args(["--output=a.json"]).out  # and `note: --output is now --out`
    'a.json'
    """
    kwargs = dict(
        action=_Alias,
        target=target,
        new=new or target.option_strings[0],
        dest=target.dest,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    if value is not _NO_VALUE:
        return dict(kwargs, nargs=0, value=value)
    for key in ("nargs", "type", "choices", "const", "metavar"):
        if getattr(target, key) is not None:
            kwargs[key] = getattr(target, key)
    return kwargs


DATASETS_TEXT = (
    "a dataset name (ade20k, camvid, cityscapes, coco_stuff10k, coco_stuff164k, lip, "
    "sample) or a folder dataset (classes.txt, images/<split>/, labels/<split>/)"
)


def dataset_option(default_text):
    """The keyword arguments of `--dataset NAME_OR_FOLDER`; `default_text` says what
    applies without it."""
    return dict(
        default=None,
        metavar="NAME_OR_FOLDER",
        help=f"{DATASETS_TEXT} (default: {default_text}; e.g. --dataset ade20k)",
    )


def data_option():
    """The keyword arguments of `--data ROOT`: a folder dataset, the same as
    `--dataset ROOT`. Read the choice with `chosen_dataset`."""
    return dict(
        default=None,
        metavar="ROOT",
        help="a folder dataset (classes.txt, images/<split>/, labels/<split>/): the same "
        "as --dataset ROOT (default: none; e.g. --data /data/my_set)",
    )


def chosen_dataset(parser, args):
    """What `--dataset` or `--data` names (None: neither); giving both is an error."""
    if args.dataset is not None and args.data is not None:
        parser.error("--data and --dataset both name the dataset: pass one of them")
    return args.data if args.data is not None else args.dataset
