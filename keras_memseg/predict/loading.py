"""Loads a segmenter for prediction from a `.keras` file, a preset folder or a SavedModel.

Every kind becomes a `LoadedSegmenter` whose `forward` has one contract: raw RGB
images, float32 (B, H, W, 3) on the 0-255 scale, to class scores (B, H, W, K)
float32 at the input size. Keras models take ImageNet-normalised images, so their
`forward` normalises first (`IMAGENET_MEAN` / `IMAGENET_STD`); an exported
SavedModel normalises in its graph (`keras_memseg.export.signatures`), so its
`serving_default` signature gets the raw pixels. TensorFlow is imported only for
SavedModels (and, on the TensorFlow backend, to compile the Keras call).
"""

import dataclasses
import os
import zipfile

import numpy as np

from keras_memseg.layers.image_normalization import IMAGENET_MEAN
from keras_memseg.layers.image_normalization import IMAGENET_STD

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
RUN_MODEL_FILE = "model.keras"  # what training writes in its run folder
CLASSES_ASSET = os.path.join("assets", "classes.json")  # written by keras_memseg.export
_SEGMENTER_CLASSES = ("MemorySegmenter", "DeepLabV3")
_EXPECTED = (
    "expected a .keras file, a preset folder (config.json + model.weights.h5), "
    "a run folder (model.keras) or a SavedModel folder (saved_model.pb)"
)
# The log of a float32 softmax: floor the probabilities so that log never gives -inf.
_TINY = float(np.finfo(np.float32).tiny)


class ModelLoadError(ValueError):
    """The `--model` path is missing, not a model, or a model that cannot be used."""


class EmptyMemoryWarning(UserWarning):
    """A MemorySegmenter's feature memory is all zero: its predictions are degraded."""


def empty_memory_message(segmenter):
    """The one-line warning for a segmenter whose memory is all zero (None otherwise)."""
    if not segmenter.memory_empty:
        return None
    return (
        f"{segmenter.path}: the feature memory is all zero (untrained, or its weights "
        "were not restored): the predictions are silently degraded"
    )


@dataclasses.dataclass
class LoadedSegmenter:
    """A segmenter ready for `keras_memseg.predict.predict_files`.

    Args:
        kind: `"keras"` (a .keras file), `"preset"` or `"saved_model"`.
        path: where it was loaded from.
        num_classes: K.
        forward: raw RGB float32 (B, H, W, 3), 0-255 -> scores (B, H, W, K) float32.
            Keras models return logits; a SavedModel its logits when it exports
            them, else the log of its probabilities (the same argmax, and the same
            after bilinear resizing: log-softmax shifts every class by one value).
        memory_empty: True for a MemorySegmenter whose feature memory is all zero.
        model: the Keras model (None for a SavedModel).
        serving_scale: None when `forward` runs the model at the size it is given;
            for a SavedModel exported with a `test_scale` (its `serving_config`
            signature says so), `(test_scale, keep_ratio)`: it resizes every image
            to that scale itself and returns scores at the size it was given.
        class_names, palette: what the model knows of its classes (a Keras model's
            `class_names` / `palette` when it was given them; a SavedModel's
            `assets/classes.json`), else None.
        preprocessor: the Keras model's `SegmenterPreprocessor` (its test resize and
            inference mode), else None.
    """

    kind: str
    path: str
    num_classes: int
    forward: object
    memory_empty: bool = False
    model: object = None
    serving_scale: tuple = None
    class_names: tuple = None
    palette: tuple = None
    preprocessor: object = None


def _error(path, text):
    return ModelLoadError(f"{path}: {text}")


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _saved_model_version_dir(path):
    """The highest integer version folder holding a SavedModel (TF Serving's layout)."""
    versions = [
        int(d)
        for d in os.listdir(path)
        if d.isdigit()
        and any(os.path.isfile(os.path.join(path, d, name)) for name in SAVED_MODEL_FILES)
    ]
    return os.path.join(path, str(max(versions))) if versions else None


def detect_kind(path):
    """("keras" | "preset" | "saved_model", resolved path) of a `--model` path.

    A run folder (holding `model.keras`, as training writes it) is its `model.keras`.
    A SavedModel is a version folder (`saved_model.pb` inside), its
    `saved_model.pb` file, or a model base folder (`saved_models/memseg`: its
    highest integer version is used, as TF Serving does).

    Raises:
        ModelLoadError: a one-line message naming `path` when it is missing or
            not one of the three kinds (a FIFO, socket or device is refused
            before it is opened).

    Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> detect_kind(folder)
    Traceback (most recent call last):
    ...
    keras_memseg.predict.loading.ModelLoadError: ...: a folder without saved_model.pb, config.json or model.keras; ...
    """
    from keras_memseg.file_kinds import special_file_kind

    path = os.fspath(path)
    if not os.path.exists(path):
        raise _error(path, "no such file or folder")
    special = special_file_kind(path)
    if special is not None:  # refused before open(): reading a FIFO never returns
        raise _error(path, f"{special}, not a regular file or folder; {_EXPECTED}")
    if os.path.isdir(path):
        if any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES):
            return "saved_model", path
        # A run folder holds the run's config.json (a RecipeConfig) beside model.keras:
        # its model.keras is the model, not the folder as a preset.
        if os.path.isfile(os.path.join(path, RUN_MODEL_FILE)):
            return "keras", os.path.join(path, RUN_MODEL_FILE)
        if os.path.isfile(os.path.join(path, "config.json")):
            return "preset", path
        version = _saved_model_version_dir(path)
        if version is not None:
            return "saved_model", version
        raise _error(
            path,
            f"a folder without saved_model.pb, config.json or {RUN_MODEL_FILE}; {_EXPECTED}",
        )
    if os.path.basename(path) in SAVED_MODEL_FILES:
        return "saved_model", os.path.dirname(os.path.abspath(path))
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as error:
        raise _error(path, f"cannot be read ({_first_line(error)})") from None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if "config.json" in archive.namelist():
                return "keras", path
        raise _error(path, f"a zip file without config.json, not a .keras model; {_EXPECTED}")
    if head.startswith(b"\x89HDF"):
        raise _error(
            path,
            f"an HDF5 file (weights only?): prediction needs the architecture too; {_EXPECTED}",
        )
    what = "an empty file" if not head else "not a model file"
    raise _error(path, f"{what}; {_EXPECTED}")


def _check_weights(path, model):
    nonfinite = (
        model.nonfinite_weights()
        if hasattr(model, "nonfinite_weights")
        else [w.path for w in model.weights if not np.all(np.isfinite(np.asarray(w)))]
    )
    if nonfinite:
        shown = ", ".join(nonfinite[:3]) + (", ..." if len(nonfinite) > 3 else "")
        raise _error(
            path,
            f"{len(nonfinite)} weight(s) hold NaN or inf ({shown}); "
            "refusing to predict with this model",
        )


def _keras_forward(model):
    import keras
    from keras import ops

    if keras.backend.backend() == "tensorflow":
        from keras_memseg.evaluation import compiled_forward

        call = compiled_forward(model)  # a tf.function, retraced per input size
    else:

        def call(x):
            return model(x, training=False)

    pre = getattr(model, "preprocessor", None)
    mean = np.asarray(pre.mean if pre is not None else IMAGENET_MEAN, "float32")
    std = np.asarray(pre.std if pre is not None else IMAGENET_STD, "float32")

    def forward(images):  # (B, H, W, 3) 0-255 -> (B, H, W, K) logits
        x = (ops.cast(images, "float32") - mean) / std
        return ops.cast(call(x), "float32")

    return forward


def _from_keras_model(kind, path, model):
    if not hasattr(model, "num_classes") or not hasattr(model, "forward_heads"):
        raise _error(
            path,
            f"holds a {type(model).__name__}, not a keras_memseg segmenter "
            f"({' or '.join(_SEGMENTER_CLASSES)})",
        )
    if not model.built:
        raise _error(path, f"the {type(model).__name__} has no weights (not built)")
    _check_weights(path, model)
    empty = bool(model.memory_is_empty()) if hasattr(model, "memory_is_empty") else False
    known = bool(getattr(model, "has_class_names", False))
    return LoadedSegmenter(
        kind,
        path,
        int(model.num_classes),
        _keras_forward(model),
        empty,
        model,
        class_names=tuple(model.class_names) if known else None,
        palette=tuple(model.palette) if known else None,
        preprocessor=getattr(model, "preprocessor", None),
    )


def _saved_model_classes(path, num_classes):
    """(class_names, palette) of a SavedModel's `assets/classes.json`, or (None, None)."""
    import json

    try:
        with open(os.path.join(path, CLASSES_ASSET), encoding="utf-8") as f:
            info = json.load(f)
        names, palette = info.get("class_names"), info.get("palette")
    except (OSError, ValueError, AttributeError):
        return None, None
    if not isinstance(names, list) or len(names) != num_classes:
        return None, None
    if not isinstance(palette, list) or len(palette) != num_classes:
        palette = None
    return tuple(str(n) for n in names), palette and tuple(
        tuple(int(v) for v in c) for c in palette
    )


def _load_keras_or_preset(kind, path):
    from keras_memseg.models import load_segmenter as load_keras_segmenter

    try:
        model = load_keras_segmenter(path)
    except (OSError, ValueError) as error:  # ModelFileError is a ValueError
        raise _error(path, _first_line(error)) from None
    return _from_keras_model(kind, path, model)


def _load_saved_model(path):
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # noqa: BLE001
        raise _error(path, f"cannot load the SavedModel ({_first_line(error)})") from None
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise _error(path, "the SavedModel has no serving_default signature")
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if "images" not in inputs:
        raise _error(
            path,
            f"serving_default takes {sorted(inputs)}, not `images` (export it "
            "with keras_memseg.export)",
        )
    key = "logits" if "logits" in outputs else "probabilities"
    if key not in outputs:
        raise _error(
            path,
            "serving_default returns no logits or probabilities (only "
            f"{sorted(outputs)}); re-export with --outputs probabilities,labels",
        )
    num_classes = outputs[key].shape[-1]
    if num_classes is None:
        raise _error(path, f"serving_default's `{key}` has no static class count")
    variables = list(getattr(loaded, "variables", []))
    nonfinite = [v.name for v in variables if not np.all(np.isfinite(v.numpy()))]
    if nonfinite:
        raise _error(
            path,
            f"{len(nonfinite)} variable(s) hold NaN or inf "
            f"({', '.join(nonfinite[:3])}); refusing to predict with this model",
        )
    memory = list(getattr(loaded, "feature_memory", []))
    empty = bool(memory) and not any(np.any(v.numpy()) for v in memory)
    serving_scale = None
    config = loaded.signatures.get("serving_config")
    if config is not None:  # exports that resize to their test_scale in the graph
        settings = config(image_size=tf.constant([[1, 1]], tf.int32))
        test_scale = tuple(int(v) for v in settings["test_scale"].numpy())
        if test_scale != (0, 0):
            serving_scale = (test_scale, bool(settings["keep_ratio"].numpy()))

    def forward(images):  # (B, H, W, 3) 0-255 -> (B, H, W, K) scores, as NumPy
        out = signature(images=tf.constant(np.asarray(images, np.float32)))[key]
        if key == "probabilities":
            out = tf.math.log(tf.maximum(out, _TINY))
        return out.numpy()

    names, palette = _saved_model_classes(path, int(num_classes))
    return LoadedSegmenter(
        "saved_model",
        path,
        int(num_classes),
        forward,
        empty,
        None,
        serving_scale,
        class_names=names,
        palette=palette,
    )


def load_predictor(path):
    """Loads a `.keras` file, a preset folder, a run folder (its `model.keras`) or a
    SavedModel as a `LoadedSegmenter`.

    Refuses (ModelLoadError, one line naming the path) a missing path, a file or
    folder that is not one of the three, and a model with NaN/inf weights.

    Example:
    >>> import numpy as np, tempfile, os
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import DeepLabV3
    >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), 3,
    ...                   feats_channels=16, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> model.save(path)
    >>> segmenter = load_predictor(path)
    >>> segmenter.kind, segmenter.num_classes
    ('keras', 3)
    >>> tuple(segmenter.forward(np.zeros((1, 24, 40, 3), "float32")).shape)
    (1, 24, 40, 3)
    """
    kind, resolved = detect_kind(path)
    if kind == "saved_model":
        return _load_saved_model(resolved)
    return _load_keras_or_preset(kind, resolved)


def wrap_model(model):
    """A built Keras segmenter (MemorySegmenter, DeepLabV3) as a `LoadedSegmenter`."""
    return _from_keras_model("keras", f"<{type(model).__name__}>", model)
