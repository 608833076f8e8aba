"""TFLite export: a fixed input size, normalisation in the graph, optional quantization.

The `.tflite` file has one signature, `serving_default`: input `images` float32
(1, H, W, 3) RGB 0-255, outputs `labels` int32 (1, H, W) and, if asked,
`probabilities` / `logits` float32 (1, H, W, K). Shapes are static (mobile
delegates need them): H, W are fixed at export; `tflite_predict` enforces it.

Upsampling is `tf.image.resize(..., "bilinear")`, which converts to the builtin
RESIZE_BILINEAR with `half_pixel_centers=True` (what the model was trained with;
supported by the XNNPACK and GPU delegates). Quantization:

    "none"     float32 weights and activations
    "fp16"     float16 weights, float32 compute (dequantized on load / by the GPU delegate)
    "dynamic"  int8 weights, float activations (dynamic-range quantization)
    "int8"     int8 weights and activations, calibrated on `representative_data`;
               input/output stay float32 (quantize/dequantize at the edges); ops
               without an int8 kernel fall back to float builtins.
"""

import os
import tempfile
import warnings

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from keras_memseg.export.contract import DEFAULT_OUTPUTS
from keras_memseg.export.saved_model import check_model
from keras_memseg.export.signatures import SegmentationServer
from keras_memseg.export.signatures import check_input_size
from keras_memseg.export.tflite_runtime import tflite_ops

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
_FILE_MODE = 0o644


def representative_images(data, input_size, num_samples=64):
    """Generator factory for the int8 calibration: [float32 (1, H, W, 3)] per sample.

    `data`: an iterable of images (H, W, 3) or batches (B, H, W, 3), uint8 or float
    0-255, or of dicts with an "image" key (a `keras_memseg.datasets.load` dataset).
    Each image is bilinearly resized to `input_size`.

    Example:
    >>> import numpy as np
    >>> images = [np.zeros((20, 30, 3), "uint8"), np.ones((1, 8, 8, 3), "float32")]
    >>> [tuple(x[0].shape) for x in representative_images(images, (16, 16))()]
    [(1, 16, 16, 3), (1, 16, 16, 3)]
    """
    height, width = check_input_size(input_size)

    def generate():
        count = 0
        for item in data:
            image = item["image"] if isinstance(item, dict) else item
            image = tf.cast(tf.convert_to_tensor(image), tf.float32)
            if image.shape.rank == 3:
                image = image[None]
            if image.shape.rank != 4 or image.shape[-1] != 3:
                raise ValueError(
                    f"representative_data: expected (H, W, 3) or (B, H, W, 3) "
                    f"RGB images, got shape {tuple(image.shape)}"
                )
            for one in tf.unstack(image):
                if count >= num_samples:
                    return
                yield [tf.image.resize(one[None], (height, width), "bilinear").numpy()]
                count += 1
        if count == 0:
            raise ValueError("representative_data yielded no image")

    return generate


def _default_representative_data():
    try:
        from keras_memseg.datasets import load

        return load("sample", split="train")
    except Exception as error:  # the datasets package is optional here
        raise ValueError(
            "quantization='int8' needs representative_data (an iterable of "
            "RGB images); the bundled sample dataset is not available: "
            f"{type(error).__name__}: {error}"
        ) from error


def _converter(model, input_size, outputs, workdir):
    server = SegmentationServer(model, outputs=outputs)
    spec = tf.TensorSpec([1, *input_size, 3], tf.float32, name="images")
    # The unchecked core: static shapes need no size checks, and TFLite has no Assert;
    # `tflite_predict` checks the images on the host.
    fn = tf.function(server.run_model, autograph=False, input_signature=[spec])
    concrete = fn.get_concrete_function()
    # Variables (weights and the feature memory) become constants of the graph;
    # the frozen graph is saved with a named signature so TFLite keeps the output keys.
    frozen = convert_variables_to_constants_v2(concrete)
    module = tf.Module()
    module.serve = tf.function(
        lambda images: tf.nest.pack_sequence_as(
            concrete.structured_outputs, tf.nest.flatten(frozen(images))
        ),
        input_signature=[spec],
    )
    tf.saved_model.save(module, workdir, signatures={"serving_default": module.serve})
    return tf.lite.TFLiteConverter.from_saved_model(workdir)


def export_tflite(
    model,
    path,
    input_size,
    quantization="none",
    representative_data=None,
    outputs=DEFAULT_OUTPUTS,
    num_calibration_samples=64,
    allow_flex=False,
    overwrite=False,
):
    """Converts a segmenter to a `.tflite` file with a fixed input size.

    Args:
        model: a built `MemorySegmenter` / `DeepLabV3` (input: normalised images).
        path: the `.tflite` file to write (folders are created).
        input_size: (H, W) of the TFLite input (static shapes).
        quantization: "none", "fp16", "dynamic" or "int8" (see the module docstring).
        representative_data: int8 only: iterable of RGB images (or dicts with
            "image"); default: `keras_memseg.datasets.load("sample", split="train")`.
        outputs: which of "logits", "probabilities", "labels" ("labels" always).
        num_calibration_samples: int8 only: images used for calibration.
        allow_flex: allow TF (flex) ops; the file then needs the flex delegate.
        overwrite: replace an existing file instead of raising `FileExistsError`.

    Returns:
        `path`, written to a temporary file beside it and renamed when complete (an
        interrupted export leaves no partial `.tflite`), mode 0644. Any non-builtin
        op is reported with a warning (see `tflite_ops`).

    Example:
    >>> import tempfile
    >>> import numpy as np
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import MemorySegmenter
    >>> model = MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), 3,
    ...                         feats_channels=16, transform_channels=8, aux_channels=8)
    >>> _ = model(np.zeros((1, 32, 32, 3), "float32"))
    >>> _ = model.memory.memory.assign(np.ones(model.memory.memory.shape, "float32"))
    >>> path = export_tflite(model, tempfile.mkdtemp() + "/m.tflite", input_size=(32, 32))
    >>> "RESIZE_BILINEAR" in tflite_ops(path)
    True
    """
    check_model(model)
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    input_size = check_input_size(input_size)
    if input_size is None:
        raise ValueError("export_tflite needs input_size=(H, W): TFLite shapes are static")
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True (CLI: --overwrite) or another path"
        )
    with tempfile.TemporaryDirectory() as workdir:
        converter = _converter(model, input_size, outputs, workdir)
        content = _convert(
            converter,
            quantization,
            representative_data,
            input_size,
            num_calibration_samples,
            allow_flex,
        )
    _write_atomically(path, content)
    custom = [op for op in tflite_ops(path) if op.startswith("Flex") or op == "CUSTOM"]
    if custom:
        warnings.warn(
            f"{path} uses non-builtin ops {custom}: it needs the flex delegate "
            "(tensorflow-lite-select-tf-ops) to run",
            UserWarning,
            stacklevel=2,
        )
    return path


def _write_atomically(path, content):
    """Writes `content` to a temporary file beside `path`, then renames it (mode 0644)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".tflite", dir=folder)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, _FILE_MODE)  # mkstemp makes 0600
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _convert(
    converter, quantization, representative_data, input_size, num_calibration_samples, allow_flex
):
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if representative_data is None:
            representative_data = _default_representative_data()
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_images(
            representative_data, input_size, num_calibration_samples
        )
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    return converter.convert()
