"""Local preset folders: `config.json`, `model.weights.h5` and `metadata.json`.

The layout mirrors KerasHub presets, so a backbone or a trained segmenter (its feature
memory included: it is a weight) is shared as a folder and loaded without network
access. Named presets (`DilatedResNetBackbone.presets`) describe architectures and
where their published weights come from; once converted (`python -m
keras_memseg.convert`), their folders live under `preset_home()`.
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
