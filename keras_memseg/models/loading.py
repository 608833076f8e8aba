"""`load_segmenter(path)`: a trained MemorySegmenter / DeepLabV3 from a `.keras` file or a
preset folder, with an error that says what `path` is when it is neither."""

import os
import zipfile

import keras

from keras_memseg import presets
from keras_memseg.file_kinds import special_file_kind
from keras_memseg.models.segmenter import Segmenter
from keras_memseg.models.segmenter.new_classes import for_classes


class ModelFileError(ValueError):
    """`path` does not hold a keras_memseg segmenter; the message says what it holds."""


def check_not_special(path, what="model"):
    """Raises ModelFileError (one line naming `path`) when `path` is a FIFO, a socket or
    a device: checked before anything opens it, since reading one may never return."""
    kind = special_file_kind(path)
    if kind is not None:
        raise ModelFileError(
            f"{os.fspath(path)} is {kind}, not a regular file or folder: "
            f"pass the {what} file itself"
        )


def load_segmenter(path, num_classes=None, class_names=None):
    """Loads a segmenter saved with `model.save(...)` or `save_to_preset(...)`.

    With `num_classes` (or `class_names`) of another class count, the classifiers and the
    memory's rows start fresh for the new classes and every other weight is loaded: the
    start of a fine-tuning run (`keras-memseg train --init_from=PATH`).

    Args:
        path: a `.keras` file, or a preset folder (`config.json` + `model.weights.h5`,
            e.g. written by `python -m keras_memseg.convert`).

    Raises:
        FileNotFoundError: nothing at `path`.
        ModelFileError: `path` exists but is not a readable segmenter (a text file, a
            weights file without its config, a folder without `config.json`, another
            kind of model, a FIFO / socket / device: refused before it is opened, ...).

    Example:
    >>> import tempfile, numpy as np
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import DeepLabV3
    >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), 3,
    ...                   feats_channels=8, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> path = tempfile.mkdtemp() + "/m.keras"; model.save(path)
    >>> type(load_segmenter(path)).__name__
    'DeepLabV3'
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model not found: {path}")
    check_not_special(path)
    if os.path.isdir(path):
        if not presets.is_preset_dir(path):
            raise ModelFileError(
                f"{path} is a folder without {presets.CONFIG_FILE}: not a "
                "preset folder (expected config.json + model.weights.h5)"
            )
        try:
            model = presets.load_from_preset(path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelFileError(f"cannot load preset folder {path}: {error}") from None
    elif path.endswith(".weights.h5"):
        raise ModelFileError(
            f"{path} holds weights only: pass the run's model.keras, a preset folder, or "
            "(recipes/evaluate.py) --model=<weights> with --run_config=<run>/config.json"
        )
    elif not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a .keras model file (a .keras file is a zip "
            "archive written by model.save)"
        )
    else:
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as error:  # noqa: BLE001 - Keras raises many kinds here
            raise ModelFileError(f"cannot load {path}: {type(error).__name__}: {error}") from None
    if not isinstance(model, Segmenter):
        raise ModelFileError(
            f"{path} holds a {type(model).__name__}, not a keras_memseg "
            "segmenter (MemorySegmenter or DeepLabV3)"
        )
    return for_classes(model, num_classes, class_names)
