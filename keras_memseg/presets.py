"""Local preset folders: `config.json`, `model.weights.h5` and `metadata.json`.

The layout mirrors KerasHub presets, so a backbone or a trained segmenter (its feature
memory included: it is a weight) is shared as a folder and loaded without network
access. Named presets (`DilatedResNetBackbone.presets`, `MemorySegmenter.presets`)
describe architectures and where their published weights come from; once converted
(`keras-memseg convert FILE --preset NAME`), their folders live under `preset_home()`
(`named_preset_folder` finds them, or says which file to download and how to convert it).
"""

import json
import os
import warnings

import keras

from keras_memseg.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
HOME_ENV = "KERAS_MEMSEG_HOME"


def preset_home():
    """Where converted named presets live: `$KERAS_MEMSEG_HOME/presets` (default
    `~/.keras_memseg/presets`)."""
    home = os.environ.get(HOME_ENV) or os.path.join(os.path.expanduser("~"), ".keras_memseg")
    return os.path.join(home, "presets")


def unsupported_message(name, entry):
    """Why the named preset `name` (a presets-table entry) cannot be converted yet."""
    label = entry.get("backbone_label") or entry.get("backbone", "its")
    return f"preset {name!r}: the {label} backbone is not supported yet (issue #30)"


def not_converted_message(name, entry):
    """What to do before the named preset `name` (a presets-table entry) loads."""
    return (
        f"preset {name!r} is not converted yet (no {os.path.join(preset_home(), name)}): "
        f"download {entry['source']}, then run: {entry['convert_command']}"
    )


def named_preset_folder(preset, named, owner="model"):
    """The preset folder that `preset` means: an existing folder as it is, else the
    converted folder `preset_home()/preset` of a name of `named` (a presets table:
    name -> entry with `source`, `convert_command`, `convertible`). Nothing is downloaded.

    Raises:
        FileNotFoundError: a named preset not converted yet (the message names the file
            to download and the command to run), or a missing folder.
        ValueError: an unknown name (the message lists the known ones), or a named
            preset whose backbone cannot be converted yet.

    Example:
    >>> import tempfile
    >>> from unittest import mock
    >>> table = {"t": {"source": "https://x.org/t.pth", "convertible": True,
    ...                "convert_command": "keras-memseg convert t.pth --preset t"}}
    >>> with mock.patch.dict(os.environ, {HOME_ENV: tempfile.mkdtemp()}):
    ...     try:
    ...         named_preset_folder("t", table)
    ...     except FileNotFoundError as error:
    ...         print(str(error).split("): ")[1])
    ...     os.makedirs(os.path.join(preset_home(), "t"))
    ...     open(os.path.join(preset_home(), "t", CONFIG_FILE), "w").close()
    ...     named_preset_folder("t", table) == os.path.join(preset_home(), "t")
    download https://x.org/t.pth, then run: keras-memseg convert t.pth --preset t
    True
    """
    preset = os.fspath(preset)
    if os.path.isdir(preset):
        return preset
    if preset in named:
        entry = named[preset]
        if not entry.get("convertible", True):
            raise ValueError(unsupported_message(preset, entry))
        folder = os.path.join(preset_home(), preset)
        if not is_preset_dir(folder):
            raise FileNotFoundError(not_converted_message(preset, entry))
        return folder
    if os.path.exists(preset):
        raise FileNotFoundError(f"{preset} is a file, not a preset folder")
    if os.sep in preset or (os.altsep and os.altsep in preset):
        raise FileNotFoundError(f"preset folder not found: {preset}")
    known = ", ".join(sorted(named)) or "none"
    raise ValueError(
        f"unknown preset {preset!r}: not a preset folder, and not a named {owner} preset "
        f"(known: {known})"
    )


def is_preset_dir(path):
    """True when `path` is a folder holding a `config.json`."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONFIG_FILE))


def save_to_preset(model, preset_dir, metadata=None):
    """Writes `model` (config + weights, a memory included) to `preset_dir`."""
    os.makedirs(preset_dir, exist_ok=True)
    with open(os.path.join(preset_dir, CONFIG_FILE), "w") as f:
        json.dump(keras.saving.serialize_keras_object(model), f, indent=2)
    model.save_weights(os.path.join(preset_dir, WEIGHTS_FILE))
    info = {
        "keras_memseg_version": __version__,
        "keras_version": keras.__version__,
        **(metadata or {}),
    }
    with open(os.path.join(preset_dir, METADATA_FILE), "w") as f:
        json.dump(info, f, indent=2)


def read_config(preset_dir):
    """The serialized object in `preset_dir/config.json`."""
    preset_dir = os.fspath(preset_dir)
    config_path = os.path.join(preset_dir, CONFIG_FILE)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(
            f"{preset_dir} is not a keras_memseg preset: {CONFIG_FILE} is missing"
        )
    try:
        with open(config_path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_path} is not a valid JSON config: {error}") from None


def load_from_preset(preset_dir, load_weights=True, config=None):
    """Rebuilds the model saved by `save_to_preset` (a local folder, no download)."""
    preset_dir = os.fspath(preset_dir)
    config = read_config(preset_dir) if config is None else config
    model = keras.saving.deserialize_keras_object(config)
    if load_weights:
        weights = os.path.join(preset_dir, WEIGHTS_FILE)
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"preset {preset_dir} has no {WEIGHTS_FILE}")
        model.build_from_config(config.get("build_config") or {})
        if not model.built:
            raise ValueError(
                f"preset {preset_dir} lacks a build config; re-save the model after calling it once"
            )
        with warnings.catch_warnings():
            # A preset carries the model, not its optimizer: saved optimizer variables
            # (of a compiled model) are skipped on purpose.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(weights)
    return model
