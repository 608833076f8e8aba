"""Model presets: a directory with `config.json`, `model.weights.h5` and `metadata.json`.

The layout mirrors KerasHub presets, so a trained model (memory included: it is a
weight) can be shared as a folder and loaded without network access.
"""

import json
import os

import keras

from keras_memseg.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"


def save_to_preset(model, preset_dir, metadata=None):
    """Writes `model` (config + weights, the memory included) to `preset_dir`."""
    os.makedirs(preset_dir, exist_ok=True)
    with open(os.path.join(preset_dir, CONFIG_FILE), "w") as f:
        json.dump(keras.saving.serialize_keras_object(model), f, indent=2)
    model.save_weights(os.path.join(preset_dir, WEIGHTS_FILE))
    info = {"keras_memseg_version": __version__, "keras_version": keras.__version__,
            **(metadata or {})}
    with open(os.path.join(preset_dir, METADATA_FILE), "w") as f:
        json.dump(info, f, indent=2)


def load_from_preset(preset_dir, load_weights=True):
    """Rebuilds the model saved by `save_to_preset` (no download: a local folder)."""
    preset_dir = os.fspath(preset_dir)
    config_path = os.path.join(preset_dir, CONFIG_FILE)
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"{preset_dir} is not a keras_memseg preset: {CONFIG_FILE} is missing")
    with open(config_path) as f:
        config = json.load(f)
    model = keras.saving.deserialize_keras_object(config)
    if load_weights:
        weights = os.path.join(preset_dir, WEIGHTS_FILE)
        if not os.path.exists(weights):
            raise FileNotFoundError(f"preset {preset_dir} has no {WEIGHTS_FILE}")
        model.build_from_config(config.get("build_config") or {})
        if not model.built:
            raise ValueError(f"preset {preset_dir} lacks a build config; re-save the model "
                             "after calling it once")
        model.load_weights(weights)
    return model
