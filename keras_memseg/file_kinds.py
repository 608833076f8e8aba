"""What a path is, found with `os.stat` only: used to refuse FIFOs, sockets and devices
before anything opens them (reading one may block forever). No package imports, so
every layer of the package (backbones, models, predict, export) can use it."""

import os
import stat

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_file_kind(path):
    """What `path` is when it exists but is neither a regular file nor a folder (a FIFO,
    a socket, a device: opening or reading it may block forever), else None.

    Example:
    >>> special_file_kind("/dev/null"), special_file_kind("/"), special_file_kind("/no/such")
    ('a character device', None, None)
    """
    try:
        mode = os.stat(os.fspath(path)).st_mode  # follows symbolic links, as open() does
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return "not a regular file"


# -- what `--model PATH` names (every command: evaluate, export, analysis, predict) --------
RUN_MODEL_FILE = "model.keras"  # what training writes at the end of a run
CONFIG_FILE = "config.json"  # a preset's Keras config, or a run's RecipeConfig
CHECKPOINTS = "checkpoints"  # a run's `ckpt-<step>.weights.h5`


def resolve_model_path(path, weights_ok=False):
    """The file or folder to load for `--model PATH`.

    `path` may be a `.keras` file, a preset folder (holds `config.json`: `save_to_preset`,
    `keras-memseg convert`), or a run folder written by training (holds `model.keras`,
    its `config.json` and `checkpoints/`): its `model.keras` is returned. Files are
    returned as given (the loader says what a file that is not a model holds);
    `weights_ok` also lets a run folder whose training has not finished (no
    `model.keras` yet) stand for its latest `checkpoints/ckpt-<step>.weights.h5`.

    Raises:
        ValueError: one line naming `path` and what it holds (nothing, a FIFO, a
            folder that is neither a preset nor a run).

    Example:
    >>> import os, tempfile
    >>> run = tempfile.mkdtemp()
    >>> for name in ("config.json", "model.keras"):
    ...     open(os.path.join(run, name), "w").close()
    >>> resolve_model_path(run) == os.path.join(run, "model.keras")
    True
    >>> os.remove(os.path.join(run, "model.keras")); resolve_model_path(run) == run
    True
    >>> resolve_model_path("/no/such.keras")
    Traceback (most recent call last):
    ...
    ValueError: model not found: /no/such.keras
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"model not found: {path}")
    kind = special_file_kind(path)
    if kind is not None:
        raise ValueError(
            f"{path} is {kind}, not a regular file or folder: pass the model file itself"
        )
    if not os.path.isdir(path):
        return path
    model_file = os.path.join(path, RUN_MODEL_FILE)
    if os.path.isfile(model_file):
        return model_file  # a run folder (or any folder holding one model.keras)
    if os.path.isdir(os.path.join(path, CHECKPOINTS)):
        checkpoint = latest_checkpoint(path)
        if weights_ok and checkpoint:
            return checkpoint
        hint = (
            f"evaluate its latest checkpoint with --model {checkpoint}"
            if checkpoint
            else "it holds no checkpoint yet"
        )
        raise ValueError(
            f"{path} is a run folder without {RUN_MODEL_FILE} (its training has not "
            f"finished): {hint}"
        )
    if os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return path  # a preset folder
    raise ValueError(
        f"{path} is a folder without {CONFIG_FILE} or {RUN_MODEL_FILE}: neither a preset "
        "folder (config.json + model.weights.h5) nor a run folder (model.keras, "
        "config.json, checkpoints/)"
    )


def latest_checkpoint(run_dir):
    """The run's `checkpoints/ckpt-<step>.weights.h5` with the largest step, else None."""
    folder = os.path.join(os.fspath(run_dir), CHECKPOINTS)
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    steps = []
    for name in names:
        stem = name[len("ckpt-") : -len(".weights.h5")]
        if name.startswith("ckpt-") and name.endswith(".weights.h5") and stem.isdigit():
            steps.append((int(stem), name))
    return os.path.join(folder, max(steps)[1]) if steps else None


def run_config_path(model_path):
    """The run's `config.json` for a resolved `--model` inside a run folder
    (`<run>/model.keras` or `<run>/checkpoints/ckpt-<step>.weights.h5`), else None.
    A preset folder's `config.json` (a Keras config) is not a run's."""
    model_path = os.path.abspath(os.fspath(model_path))
    if os.path.isdir(model_path):
        return None
    folder = os.path.dirname(model_path)
    if os.path.basename(folder) == CHECKPOINTS:
        folder = os.path.dirname(folder)
    candidate = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(candidate):
        return None
    return candidate if run_dataset(candidate) is not None else None


def run_dataset(config_path):
    """The `dataset` field of a run's `config.json` (a `RecipeConfig`), else None (not
    JSON, a preset's Keras config, unreadable)."""
    import json

    try:
        with open(config_path) as f:
            fields = json.load(f)
    except (OSError, ValueError):
        return None
    dataset = fields.get("dataset") if isinstance(fields, dict) else None
    return dataset if isinstance(dataset, str) and dataset else None
