"""SavedModel export for TF Serving: four signatures, versioned folders, memory included.

Layout written by `export_saved_model(model, "saved_models", name="memseg")`:

    saved_models/memseg/1/saved_model.pb, variables/   (next call: .../2/)
    saved_models/memseg/1/assets/classes.json, labels.txt   (class names and palette)

TF Serving (`--model_base_path=/models/memseg`) serves the highest version. A version
is written to a hidden temporary folder first and renamed when complete, so a
server polling the folder never loads a half-written model. Its folders are made
world-readable (0755, files 0644) whatever the umask, so a server running as another
user can read them.
"""

import json
import os
import shutil
import tempfile
import warnings

import keras
import tensorflow as tf

from keras_memseg.export.contract import DEFAULT_MAX_BATCH_SIZE
from keras_memseg.export.contract import DEFAULT_MAX_INPUT_PIXELS
from keras_memseg.export.contract import DEFAULT_OUTPUTS
from keras_memseg.export.contract import DEFAULT_TEST_SCALE
from keras_memseg.export.contract import check_model_name
from keras_memseg.export.signatures import SegmentationServer

MEMORY_COLLECTION = "feature_memory"
CLASSES_ASSET = "classes.json"
LABELS_ASSET = "labels.txt"
_DIR_MODE = 0o755
_FILE_MODE = 0o644


def next_version(model_dir):
    """1 + the largest integer version folder under `model_dir` (1 when there is none).

    Example:
    >>> import tempfile, os
    >>> root = tempfile.mkdtemp()
    >>> next_version(root)
    1
    >>> os.makedirs(os.path.join(root, "7")); next_version(root)
    8
    """
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(d) for d in os.listdir(model_dir) if d.isdigit()]
    return max(versions, default=0) + 1


def check_model(model):
    """Raises unless `model` is a built segmenter with finite weights; warns when its
    memory is empty."""
    if not isinstance(model, keras.Model) or not hasattr(model, "num_classes"):
        raise TypeError(
            f"expected a keras_memseg segmenter (MemorySegmenter, DeepLabV3), "
            f"got {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(
            f"{type(model).__name__} is not built: call it on a batch of "
            "images (or load trained weights) before exporting"
        )
    bad = model.nonfinite_weights()
    if bad:
        raise ValueError(
            f"refusing to export {type(model).__name__}: these weights hold NaN "
            f"or inf values: {', '.join(bad)} (a diverged training run?)"
        )
    if hasattr(model, "memory_is_empty") and model.memory_is_empty():
        warnings.warn(
            "exporting a MemorySegmenter whose feature memory is all zero: the "
            "exported model will give silently degraded results. Train it or "
            "load trained weights first.",
            UserWarning,
            stacklevel=3,
        )


class ServingArchive:
    """What `export_saved_model` writes: traced signatures and the variables they read.

    The signatures are concrete functions, traced once (`build_archive`) and saved as
    they are: a `tf.function` handed to `tf.saved_model.save` is traced again there
    (its cache is keyed by the save context), and tracking the Keras model would add
    Keras' default `serving_default` trace of the model and of each sub-model.
    """

    def __init__(self, signatures, collections=None):
        self.signatures = dict(signatures)
        self.root = tf.__internal__.tracking.AutoTrackable()
        seen, variables = set(), []
        for fn in self.signatures.values():
            for v in fn.variables:
                if id(v) not in seen:
                    seen.add(id(v))
                    variables.append(v)
        # Tracked, so the SavedModel can save what the functions capture.
        self.root.variables = variables
        for name, fn in self.signatures.items():
            setattr(self.root, name, fn)  # `tf.saved_model.load(path).<name>(...)` too
        for name, values in (collections or {}).items():
            setattr(self.root, name, list(values))

    def write_out(self, path):
        tf.saved_model.save(self.root, path, signatures=self.signatures)


def build_archive(
    model,
    outputs=DEFAULT_OUTPUTS,
    test_scale=DEFAULT_TEST_SCALE,
    keep_ratio=True,
    input_size=None,
    max_input_pixels=DEFAULT_MAX_INPUT_PIXELS,
    max_batch_size=DEFAULT_MAX_BATCH_SIZE,
):
    """A `ServingArchive` with the serving signatures, traced (nothing written yet).

    Signatures (all outputs at the input resolution, see `signatures.py`):
      * `serving_default`: `images` float32 (B, H, W, 3), RGB 0-255.
      * `serving_image_bytes`: `image_bytes` string (B,) encoded JPEG/PNG/GIF/BMP.
      * `serving_tf_example`: `examples` string (B,) serialized tf.Example with
        `image/encoded`.
      * `serving_config`: `image_size` int32 (B, 2) -> `model_size` (B, 2), the
        size each image is resized to before the model, and the export settings.

    The network is traced once: the encoded-image signatures call the traced
    `serving_default`. The feature memory is also saved as the variable collection
    `feature_memory` (`tf.saved_model.load(path).feature_memory`).
    """
    check_model(model)
    server = SegmentationServer(
        model,
        outputs=outputs,
        test_scale=test_scale,
        keep_ratio=keep_ratio,
        input_size=input_size,
        max_input_pixels=max_input_pixels,
        max_batch_size=max_batch_size,
    )
    signatures = {
        name: fn.get_concrete_function()
        for name, fn in (
            ("serving_default", server.serve_images),
            ("serving_image_bytes", server.serve_image_bytes),
            ("serving_tf_example", server.serve_tf_example),
            ("serving_config", server.serve_config),
        )
    }
    collections = {MEMORY_COLLECTION: [model.memory.memory]} if hasattr(model, "memory") else {}
    return ServingArchive(signatures, collections)


def write_class_assets(model, folder):
    """Writes `assets/classes.json` (`{"class_names": [...], "palette": [[r, g, b], ...],
    "num_classes", "ignore_class", "test_scale", "keep_ratio", "mode", ...}`) and
    `assets/labels.txt` (one class name per line, line i = class id i) into the
    SavedModel `folder`: TF Serving clients read the names of the ids it returns."""
    assets = os.path.join(folder, "assets")
    os.makedirs(assets, exist_ok=True)
    info = (
        model.metadata() if hasattr(model, "metadata") else {"num_classes": int(model.num_classes)}
    )
    with open(os.path.join(assets, CLASSES_ASSET), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    names = info.get("class_names") or [f"class_{i}" for i in range(int(model.num_classes))]
    with open(os.path.join(assets, LABELS_ASSET), "w", encoding="utf-8") as f:
        f.write("".join(f"{' '.join(str(n).split())}\n" for n in names))


def _make_readable(folder):
    """Folders 0755 and files 0644 under `folder` (mkdtemp makes 0700; umask may mask)."""
    os.chmod(folder, _DIR_MODE)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), _DIR_MODE)
        for name in files:
            os.chmod(os.path.join(root, name), _FILE_MODE)


def _makedirs_readable(folder):
    """`os.makedirs(folder, exist_ok=True)`; the folders it creates get 0755."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for path in reversed(missing):
        os.makedirs(path, exist_ok=True)
        os.chmod(path, _DIR_MODE)


def export_saved_model(
    model,
    path,
    name="memseg",
    version=None,
    outputs=DEFAULT_OUTPUTS,
    test_scale=DEFAULT_TEST_SCALE,
    keep_ratio=True,
    input_size=None,
    max_input_pixels=DEFAULT_MAX_INPUT_PIXELS,
    max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    overwrite=False,
):
    """Exports a segmenter as a TF Serving SavedModel under `path/name/version/`.

    The served graphs take raw RGB (0-255) images, resize them to the model's
    evaluation scale, normalise them in-graph, run the model in inference mode and
    resize the logits back to the request's size: the feature memory is saved with
    the model (as a variable, plus the collection `feature_memory`) and never updated
    by serving. The export settings are readable from the `serving_config` signature.

    Args:
        model: a built `MemorySegmenter` or `DeepLabV3` (input: normalised images)
            whose weights are finite.
        path: the model base folder, e.g. "saved_models".
        name: the model name (TF Serving's `MODEL_NAME`): one folder name (no path
            separator, not "." or ".."; ValueError otherwise, before anything is
            written); None writes the version folder directly under `path`.
        version: integer version; None = next free integer (1 for a new model).
        outputs: which of "logits", "probabilities", "labels" to return ("labels"
            is always returned).
        test_scale: the evaluation `Resize` scale of the training dataset
            (`keras_memseg.datasets.augment_config_for(name).test_scale`: ADE20K
            (2048, 512), Cityscapes (2048, 1024), LIP (473, 473)); each image is
            resized to it (see `signatures.serving_size`), which bounds the model's
            memory. None runs at the request's size: memory then grows with the
            square of the image area (MCIBI's attention), unbounded.
        keep_ratio: keep the aspect ratio when resizing (the dataset's
            `test_keep_ratio`; LIP: False).
        input_size: (H, W) to run at a fixed size instead (replaces test_scale and
            keep_ratio).
        max_input_pixels: largest H*W per image a request may carry (None: no
            limit); bigger images fail with an error naming both numbers.
        max_batch_size: most images per request (None: no limit).
        overwrite: replace an existing version folder instead of raising.

    Returns:
        The version folder written, e.g. "saved_models/memseg/1".

    Example:
    >>> import numpy as np, tempfile
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import MemorySegmenter
    >>> model = MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), 3,
    ...                         feats_channels=16, transform_channels=8, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> _ = model.memory.memory.assign(np.ones(model.memory.memory.shape, "float32"))
    >>> root = tempfile.mkdtemp()
    >>> export_saved_model(model, root, test_scale=(64, 32)).endswith(
    ...     os.path.join("memseg", "1"))
    True
    """
    name = check_model_name(name)
    model_dir = os.path.join(os.fspath(path), name) if name else os.fspath(path)
    version = next_version(model_dir) if version is None else int(version)
    if version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version}")
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True or another version")
    # Checks and tracing before anything is written.
    archive = build_archive(
        model,
        outputs=outputs,
        test_scale=test_scale,
        keep_ratio=keep_ratio,
        input_size=input_size,
        max_input_pixels=max_input_pixels,
        max_batch_size=max_batch_size,
    )
    _makedirs_readable(model_dir)
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    old = None
    try:
        archive.write_out(staging)
        write_class_assets(model, staging)
        _make_readable(staging)
        if os.path.exists(target):  # overwrite: move the old version aside first
            old = tempfile.mkdtemp(prefix=f".old-{version}-", dir=model_dir)
            os.replace(target, os.path.join(old, "version"))
            try:
                os.replace(staging, target)
            except OSError:
                os.replace(os.path.join(old, "version"), target)
                raise
        else:
            os.replace(staging, target)
    finally:
        for folder in (staging, old):
            if folder and os.path.exists(folder):
                shutil.rmtree(folder)
    return target
