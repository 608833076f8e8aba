"""`Segmenter.segment`: raw images in (arrays, PIL images, file paths), label maps out.

Each image is checked (one-line ValueError naming it), resized to the preprocessor's
test scale (bilinear, half-pixel), normalised, run whole or by sliding window at the
preprocessor's scales / flips (`inference.infer`, keras.ops: every backend), and its
scores are resized back to the image's own size before the argmax.
"""

import os

import numpy as np
from keras import ops

from keras_memseg.models.segmenter.inference import infer

_EXIF_ORIENTATION = 0x0112


def _read_path(path, name):
    """RGB uint8 (H, W, 3) of an image file, upright by its EXIF orientation."""
    from PIL import Image
    from PIL import UnidentifiedImageError

    from keras_memseg.file_kinds import special_file_kind

    path = os.fspath(path)
    if not os.path.isfile(path):
        special = special_file_kind(path) if os.path.exists(path) else None
        raise ValueError(f"{name}: {path}: {special or 'no such image file'}")
    try:
        with Image.open(path) as image:
            image.load()
            return _from_pil(image)
    except UnidentifiedImageError:
        raise ValueError(f"{name}: {path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as error:
        text = str(error).strip().splitlines()
        raise ValueError(
            f"{name}: {path}: unreadable image ({text[0] if text else type(error).__name__})"
        ) from None


def _from_pil(image):
    from PIL import ImageOps

    if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, np.uint8)


def _is_pil(value):
    return any(cls.__module__.startswith("PIL.") for cls in type(value).__mro__[:-1])


def _as_array(value, name):
    """A NumPy array of an array-like (NumPy, a backend tensor), checked for dtype."""
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise ValueError(
            f"{name}: expected an image array, a PIL image or a file path, got "
            f"{type(value).__name__}"
        )
    array = value if isinstance(value, np.ndarray) else np.asarray(ops.convert_to_numpy(value))
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{name}: images must be uint8 or float (0-255), got {array.dtype}; "
            "cast them to uint8 first"
        )
    return array


def _check_image(array, name, channels):
    if array.ndim != 3 or array.shape[-1] != channels or min(array.shape[:2]) < 1:
        raise ValueError(
            f"{name}: an image must be a (height, width, {channels}) array, got shape "
            f"{tuple(array.shape)}"
        )
    return array


def as_image_list(images, channels=3):
    """`(list of (H, W, C) arrays, kind)`, kind `"single"`, `"list"` or `"batch"`.

    Example:
    >>> images, kind = as_image_list(np.zeros((2, 8, 8, 3), "uint8"))
    >>> len(images), kind
    (2, 'batch')
    >>> as_image_list(np.zeros((8, 8), "uint8"))
    Traceback (most recent call last):
    ...
    ValueError: images: expected a (height, width, 3) image or a (batch, height, width, 3) array, got shape (8, 8)
    """
    if isinstance(images, (str, bytes, os.PathLike)):
        if isinstance(images, bytes):
            images = os.fsdecode(images)
        return [_check_image(_read_path(images, "images"), "images", channels)], "single"
    if _is_pil(images):
        return [_check_image(_from_pil(images), "images", channels)], "single"
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images: got an empty list; pass at least one image")
        out = []
        for index, item in enumerate(images):
            name = f"images[{index}]"
            if isinstance(item, (str, os.PathLike)):
                array = _read_path(item, name)
            elif _is_pil(item):
                array = _from_pil(item)
            else:
                array = _as_array(item, name)
            out.append(_check_image(array, name, channels))
        return out, "list"
    array = _as_array(images, "images")
    if array.ndim == 4 and array.shape[-1] == channels:
        if array.shape[0] == 0:
            raise ValueError(f"images: got an empty batch of shape {tuple(array.shape)}")
        return [_check_image(a, f"images[{i}]", channels) for i, a in enumerate(array)], "batch"
    if array.ndim == 3 and array.shape[-1] == channels:
        return [_check_image(array, "images", channels)], "single"
    raise ValueError(
        f"images: expected a (height, width, {channels}) image or a (batch, height, width, "
        f"{channels}) array, got shape {tuple(array.shape)}"
    )


def segment_one(model, image, full_size=False, return_probabilities=False):
    """(labels (H, W), probabilities (H, W, K) float32 or None) of one raw image."""
    pre = model.preprocessor
    height, width = int(image.shape[0]), int(image.shape[1])
    size = (height, width) if full_size else pre.resize_size(height, width)
    x = ops.cast(ops.convert_to_tensor(image[None]), "float32")  # (1, H, W, 3) 0-255
    if size != (height, width):
        x = ops.image.resize(x, size, interpolation="bilinear", antialias=False)

    def forward(batch):  # raw 0-255 crops -> logits at their size
        return model(pre(batch), training=False)

    config = pre.inference_config()
    scores = infer(forward, x, model.num_classes, config, output_size=(height, width))
    scores = scores[0]  # (H, W, K)
    labels = np.asarray(ops.convert_to_numpy(ops.argmax(scores, axis=-1)))
    labels = labels.astype(np.uint8 if model.num_classes <= 255 else np.int32)
    if not return_probabilities:
        return labels, None
    if not config.probs_before_resize:
        scores = ops.softmax(scores, axis=-1)
    return labels, np.asarray(ops.convert_to_numpy(scores), np.float32)


def segment(model, images, return_probabilities=False, full_size=False):
    """See `Segmenter.segment`."""
    model.check_finite("segment")
    arrays, kind = as_image_list(images, model.input_channels() or 3)
    results = [segment_one(model, a, full_size, return_probabilities) for a in arrays]
    labels = [r[0] for r in results]
    probs = [r[1] for r in results]
    if kind == "single":
        labels, probs = labels[0], probs[0]
    elif kind == "batch":
        labels, probs = np.stack(labels), np.stack(probs) if return_probabilities else None
    return (labels, probs) if return_probabilities else labels
