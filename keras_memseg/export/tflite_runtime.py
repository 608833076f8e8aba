"""Running an exported `.tflite` file: the input contract, checked before the interpreter.

Uses `ai_edge_litert` (the standalone LiteRT runtime) when installed, else
`tf.lite.Interpreter`. Only NumPy is needed to prepare the inputs.
"""

import numpy as np


def _interpreter(path, num_threads=None):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # fall back on TensorFlow's bundled runtime
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(path), num_threads=num_threads)


def tflite_ops(path):
    """Sorted names of the ops in a `.tflite` file (flex ops start with "Flex").

    Example:
    >>> # tflite_ops("memseg.tflite") -> ['ARG_MAX', 'CONV_2D', ..., 'RESIZE_BILINEAR', ...]
    """
    details = _interpreter(path)._get_ops_details()
    return sorted({d["op_name"] for d in details})


def tflite_input_size(path):
    """(H, W) of the `images` input of an exported `.tflite` file."""
    runner = _interpreter(path).get_signature_runner()
    shape = runner.get_input_details()["images"]["shape"]
    return int(shape[1]), int(shape[2])


def check_images(images, input_size, path="the TFLite model"):
    """Float32 (B, H, W, 3) from `images`, or a ValueError/TypeError naming the problem
    (wrong type, wrong size, an empty batch, NaN/inf pixels: a TFLite graph has no
    run-time checks).

    Example:
    >>> check_images(np.zeros((8, 8, 3), "uint8"), (8, 8)).shape
    (1, 8, 8, 3)
    >>> check_images(np.full((8, 8, 3), np.nan), (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: the TFLite model: the images hold 192 NaN or inf pixel values; send finite RGB values (0-255)
    >>> check_images(np.zeros((1, 9, 8, 3)), (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: the TFLite model takes RGB images of shape (8, 8, 3) (the fixed input size chosen at export), got an image of shape (9, 8, 3); resize it first, or export with another input_size
    >>> check_images(np.zeros((0, 8, 8, 3)), (8, 8))
    Traceback (most recent call last):
    ...
    ValueError: the TFLite model takes RGB images of shape (8, 8, 3) (the fixed input size chosen at export), got an empty batch of shape (0, 8, 8, 3); send at least one image
    """
    height, width = input_size
    expected = f"RGB images of shape ({height}, {width}, 3) (the fixed input size chosen at export)"
    try:
        images = np.asarray(images)
    except ValueError:  # a list of images of different shapes
        shapes = sorted({tuple(np.shape(image)) for image in images})
        raise ValueError(
            f"{path} takes {expected}, got images of different shapes {shapes}; resize them first"
        ) from None
    if images.dtype == object or not (
        np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)
    ):
        raise TypeError(
            f"{path} takes numeric RGB images (uint8 or float 0-255), got dtype {images.dtype}"
        )
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or tuple(images.shape[1:]) != (height, width, 3):
        shape = tuple(images.shape[1:]) if images.ndim == 4 else tuple(images.shape)
        what = "an image" if images.ndim == 4 else "an array"
        raise ValueError(
            f"{path} takes {expected}, got {what} of shape {shape}; resize "
            "it first, or export with another input_size"
        )
    if not images.shape[0]:
        raise ValueError(
            f"{path} takes {expected}, got an empty batch of shape {images.shape}; "
            "send at least one image"
        )
    images = images.astype(np.float32)
    bad = images.size - int(np.count_nonzero(np.isfinite(images)))
    if bad:
        raise ValueError(
            f"{path}: the images hold {bad} NaN or inf pixel values; send finite RGB values (0-255)"
        )
    return images


def tflite_predict(path, images, num_threads=None):
    """Runs an exported `.tflite` on RGB images (0-255), one image at a time.

    Args:
        path: the `.tflite` file written by `export_tflite`.
        images: (H, W, 3) or (B, H, W, 3), uint8 or float, H, W = the export size.
        num_threads: interpreter threads (None: the runtime's default).

    Returns:
        dict of NumPy arrays: "labels" int32 (B, H, W), and "probabilities" /
        "logits" float32 (B, H, W, K) when exported.

    Example:
    >>> # out = tflite_predict("memseg.tflite", np.zeros((2, 64, 64, 3), "uint8"))
    >>> # out["labels"].shape -> (2, 64, 64)
    """
    runner = _interpreter(path, num_threads).get_signature_runner()
    shape = runner.get_input_details()["images"]["shape"]
    images = check_images(images, (int(shape[1]), int(shape[2])), path=str(path))
    results = [runner(images=image[None]) for image in images]
    return {key: np.concatenate([r[key] for r in results]) for key in results[0]}
