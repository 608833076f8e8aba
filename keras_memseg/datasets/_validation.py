"""Decode and check one image/label pair on the Python side of `_generate_examples`.

Every failure raises `BadExampleError` naming the file and what is wrong.
"""

import io

import numpy as np
from PIL import Image
from PIL import ImageOps

from keras_memseg.datasets.errors import BadExampleError

_SINGLE_CHANNEL_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L")
_EXIF_ORIENTATION = 0x0112


def decode_image(data, where):
    """Decodes image bytes fully (truncation is caught here, not at training time).

    Any format PIL reads is accepted whatever the file's extension (a JPEG
    named `.png` too); CMYK, grey and palette images are converted to RGB.
    EXIF orientation is applied, as the references do: mmseg reads images with
    `mmcv.imfrombytes(flag="color")`, i.e. `cv2.imdecode(IMREAD_COLOR)`, which
    rotates by the EXIF tag (mmcv's pillow backend calls `exif_transpose`), and
    sssegmentation uses `cv2.imread`, which does the same. Labels are read
    unchanged (mmseg: `flag="unchanged"`), so a rotated image whose label was not
    rotated fails `check_same_size` with an error naming both files.

    Returns:
        (PIL image, value for a `tfds.features.Image`): the original bytes when
        they already are an unrotated RGB JPEG/PNG (TFDS decodes either with
        `tf.image.decode_image`, so nothing is re-encoded), else an RGB uint8 array.
    """
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        orientation = exif_orientation(image)
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
            image.info["exif_orientation"] = orientation
    except Exception as error:  # PIL raises many types for corrupt files.
        raise BadExampleError(f"cannot decode image {where}: {error}") from error
    if orientation == 1 and image.mode == "RGB" and image.format in ("JPEG", "PNG"):
        return image, data
    return image, np.asarray(image.convert("RGB"), dtype=np.uint8)


def exif_orientation(image):
    """The EXIF orientation tag of a PIL image (1 = none; invalid values count as none)."""
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    return orientation if orientation in range(2, 9) else 1


def decode_label_png(data, where):
    """Decodes a single-channel label PNG into an (H, W) integer array."""
    try:
        label = Image.open(io.BytesIO(data))
        label.load()
    except Exception as error:
        raise BadExampleError(f"cannot decode label {where}: {error}") from error
    if label.mode not in _SINGLE_CHANNEL_MODES:
        raise BadExampleError(
            f"label {where} has mode {label.mode} ({len(label.getbands())} channels); "
            "expected a single-channel map of class ids"
        )
    return np.asarray(label)


def describe_valid(table):
    """Compact text of the raw values a 256-entry table accepts, e.g. '0..11, 255'.

    Example:
    >>> describe_valid([0, 1, 2] + [-1] * 252 + [255])
    '0..2, 255'
    """
    valid = [value for value, mapped in enumerate(table) if mapped >= 0]
    parts, start = [], None
    for index, value in enumerate(valid):
        if start is None:
            start = value
        if index + 1 == len(valid) or valid[index + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}..{value}")
            start = None
    return ", ".join(parts)


def map_label(raw, table, where):
    """Maps raw ids through a 256-entry table; -1 entries are errors naming `where`.

    Returns:
        uint8 (H, W) array of training ids (255 = ignore).
    """
    raw = np.asarray(raw).astype(np.int64)
    lut = np.asarray(table, dtype=np.int64)
    out_of_table = (raw < 0) | (raw > 255)
    mapped = lut[np.clip(raw, 0, 255)]
    bad = out_of_table | (mapped < 0)
    if bad.any():
        values = np.unique(raw[bad])
        shown = ", ".join(str(v) for v in values[:10])
        raise BadExampleError(
            f"label {where} has values [{shown}] ({int(bad.sum())} pixels) outside the "
            f"valid raw range {describe_valid(table)} (255 = ignore)"
        )
    return mapped.astype(np.uint8)


def check_same_size(image, label, image_where, label_where):
    """Raises when the label map's H x W differs from the image's."""
    width, height = image.size
    if tuple(label.shape[:2]) != (height, width):
        rotated = image.info.get("exif_orientation")
        note = f" after applying its EXIF orientation {rotated}" if rotated else ""
        raise BadExampleError(
            f"label {label_where} is {label.shape[1]}x{label.shape[0]} (WxH) but image "
            f"{image_where} is {width}x{height}{note}; they must match"
        )


def encode_label_png(label):
    """Encodes an (H, W) uint8 map as PNG bytes for `tfds.features.Image`."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), mode="L").save(
        buffer, format="PNG"
    )
    return buffer.getvalue()
