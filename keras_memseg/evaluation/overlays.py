"""Colour overlays of ground truth and prediction with a dataset palette (PNG)."""

import os

import numpy as np

IGNORE_COLOR = (0, 0, 0)


def colorize(label, palette, ignore_label=255):
    """(H, W) class ids -> (H, W, 3) uint8 RGB; ignore and out-of-range pixels black.

    Example:
    >>> colorize(np.array([[0, 1, 255]]), [(10, 20, 30), (40, 50, 60)])[0, 1].tolist()
    [40, 50, 60]
    """
    label = np.asarray(label).astype(np.int64)
    table = np.zeros((256 if ignore_label == 255 else max(256, ignore_label + 1), 3), np.uint8)
    table[: len(palette)] = np.asarray(palette, np.uint8)
    table[ignore_label] = IGNORE_COLOR
    valid = (label >= 0) & (label < len(palette))
    return np.where(valid[..., None], table[np.clip(label, 0, len(table) - 1)], 0).astype(np.uint8)


def denormalize(image, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)):
    """Normalised float (H, W, 3) -> uint8 RGB."""
    image = np.asarray(image, np.float32) * np.asarray(std) + np.asarray(mean)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def overlay_panel(image, label, prediction, palette, alpha=0.5, ignore_label=255):
    """Side-by-side uint8 panel: image | GT over image | prediction over image.

    `image` is uint8 (H, W, 3) at the size of `label` and `prediction`.
    """
    image = np.asarray(image, np.uint8)
    panels = [image]
    for ids in (label, prediction):
        color = colorize(ids, palette, ignore_label).astype(np.float32)
        mixed = (1 - alpha) * image.astype(np.float32) + alpha * color
        ignored = np.asarray(ids) == ignore_label
        mixed[ignored] = image[ignored]
        panels.append(np.clip(mixed, 0, 255).astype(np.uint8))
    return np.concatenate(panels, axis=1)


def save_png(path, array):
    """Writes a uint8 (H, W, 3) or (H, W) array as PNG (PIL, else tf.io)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    array = np.asarray(array, np.uint8)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - PIL is in the venv
        import tensorflow as tf

        data = array if array.ndim == 3 else array[..., None]
        tf.io.write_file(path, tf.io.encode_png(data))
        return
    Image.fromarray(array).save(path)
