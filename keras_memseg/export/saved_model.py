"""SavedModel export for TF Serving: three signatures, versioned folders, memory included.

Layout written by `export_saved_model(model, "saved_models", name="memseg")`:

    saved_models/memseg/1/saved_model.pb, variables/   (next call: .../2/)

TF Serving (`--model_base_path=/models/memseg`) serves the highest version. A version
is written to a hidden temporary folder first and renamed when complete, so a
server polling the folder never loads a half-written model.
"""

import os
import shutil
import tempfile
import warnings

import keras
import tensorflow as tf

from keras_memseg.export.signatures import DEFAULT_OUTPUTS
from keras_memseg.export.signatures import SegmentationServer

SIGNATURES = ("serving_default", "serving_image_bytes", "serving_tf_example")
MEMORY_COLLECTION = "feature_memory"


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
    """Raises unless `model` is a built segmenter; warns when its memory is empty."""
    if not isinstance(model, keras.Model) or not hasattr(model, "num_classes"):
        raise TypeError(f"expected a keras_memseg segmenter (MemorySegmenter, DeepLabV3), "
                        f"got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"{type(model).__name__} is not built: call it on a batch of "
                         "images (or load trained weights) before exporting")
    if hasattr(model, "memory_is_empty") and model.memory_is_empty():
        warnings.warn("exporting a MemorySegmenter whose feature memory is all zero: the "
                      "exported model will give silently degraded results. Train it or "
                      "load trained weights first.", UserWarning, stacklevel=3)


def build_archive(model, outputs=DEFAULT_OUTPUTS, input_size=None):
    """A `keras.export.ExportArchive` with the three serving signatures.

    Signatures (all outputs at the input resolution, see `signatures.py`):
      * `serving_default`: `images` float32 (B, H, W, 3), RGB 0-255.
      * `serving_image_bytes`: `image_bytes` string (B,) encoded JPEG/PNG/GIF/BMP.
      * `serving_tf_example`: `examples` string (B,) serialized tf.Example with
        `image/encoded`.
    The feature memory is also saved as the variable collection `feature_memory`.
    """
    check_model(model)
    server = SegmentationServer(model, outputs=outputs, input_size=input_size)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn in (("serving_default", server.serve_images),
                     ("serving_image_bytes", server.serve_image_bytes),
                     ("serving_tf_example", server.serve_tf_example)):
        fn.get_concrete_function()  # trace now: ExportArchive takes traced tf.functions
        archive.add_endpoint(name, fn)
    if hasattr(model, "memory"):
        archive.add_variable_collection(MEMORY_COLLECTION, [model.memory.memory])
    return archive


def export_saved_model(model, path, name="memseg", version=None, outputs=DEFAULT_OUTPUTS,
                       input_size=None, overwrite=False):
    """Exports a segmenter as a TF Serving SavedModel under `path/name/version/`.

    The served graphs take raw RGB (0-255) images, normalise them in-graph and run
    the model in inference mode: the feature memory is saved with the model (as a
    variable, plus the collection `feature_memory`) and never updated by serving.

    Args:
        model: a built `MemorySegmenter` or `DeepLabV3` (input: normalised images).
        path: the model base folder, e.g. "saved_models".
        name: the model name (TF Serving's `MODEL_NAME`); None writes the version
            folder directly under `path`.
        version: integer version; None = next free integer (1 for a new model).
        outputs: which of "logits", "probabilities", "labels" to return ("labels"
            is always returned).
        input_size: None to run at the request's resolution, or (H, W) to resize
            each image to it before the model (logits resized back).
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
    >>> export_saved_model(model, root).endswith(os.path.join("memseg", "1"))
    True
    """
    model_dir = os.path.join(os.fspath(path), name) if name else os.fspath(path)
    version = next_version(model_dir) if version is None else int(version)
    if version < 0:
        raise ValueError(f"version must be a non-negative integer, got {version}")
    target = os.path.join(model_dir, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True or another version")
    os.makedirs(model_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_dir)
    try:
        archive = build_archive(model, outputs=outputs, input_size=input_size)
        archive.write_out(staging, verbose=False)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)
    return target
