"""Colour overlays of ground truth and prediction with a dataset palette, and their legends (PNG).

NumPy + Pillow only (no TensorFlow): `overlay_panel` (image | GT | prediction, written
by `evaluate_dataset(show_dir=...)`), `overlay_image` (one image blended with its
prediction, written by `python -m keras_memseg.predict`), `legend_strip` (class name +
colour swatch for the classes present), `save_label_png` (a palette PNG whose pixel
values are the class ids).
"""

import os

import numpy as np

from keras_memseg.models.segmenter.metadata import default_palette as metadata_palette

IGNORE_COLOR = (0, 0, 0)
LEGEND_BACKGROUND = (255, 255, 255)
LEGEND_TEXT = (0, 0, 0)
_MIN_FONT_SIZE = 11
# Pixels per chunk of the full-resolution work (blending, class lists): a few float32
# copies of a chunk live at once, not of the whole image (81 MP would be 10 GB).
_CHUNK_PIXELS = 2**20


def colorize(label, palette, ignore_class=255):
    """(H, W) class ids -> (H, W, 3) uint8 RGB; ignore and out-of-range pixels black.

    Example:
    >>> colorize(np.array([[0, 1, 255]]), [(10, 20, 30), (40, 50, 60)])[0, 1].tolist()
    [40, 50, 60]
    """
    label = np.asarray(label).astype(np.int64)
    table = np.zeros((256 if ignore_class == 255 else max(256, ignore_class + 1), 3), np.uint8)
    table[: len(palette)] = np.asarray(palette, np.uint8)
    table[ignore_class] = IGNORE_COLOR
    valid = (label >= 0) & (label < len(palette))
    return np.where(valid[..., None], table[np.clip(label, 0, len(table) - 1)], 0).astype(np.uint8)


def default_palette(num_classes):
    """`num_classes` distinct, deterministic RGB colours for models used without class
    colours (`keras_memseg.models.segmenter.metadata.default_palette`: golden-angle hues,
    no black, which stays free for ignored pixels).

    Example:
    >>> palette = default_palette(20)
    >>> len(set(palette)), (0, 0, 0) in palette
    (20, False)
    """
    return metadata_palette(num_classes)


def denormalize(image, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)):
    """Normalised float (H, W, 3) -> uint8 RGB."""
    image = np.asarray(image, np.float32) * np.asarray(std) + np.asarray(mean)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def present_classes(*label_maps, num_classes, ignore_class=255):
    """Sorted class ids in [0, num_classes) found in any of `label_maps` (ignore excluded).

    Example:
    >>> present_classes(np.array([[2, 255]]), np.array([[0, 7]]), num_classes=3)
    [0, 2]
    """
    found = set()
    for ids in label_maps:
        flat = np.ravel(np.asarray(ids))
        for start in range(0, flat.size, _CHUNK_PIXELS):  # np.unique sorts a copy
            found.update(int(v) for v in np.unique(flat[start : start + _CHUNK_PIXELS]))
    return sorted(v for v in found if 0 <= v < num_classes and v != ignore_class)


def legend_font_size(height, width):
    """Default legend text height in pixels for an (H, W) image: 1/56 of its long side, >= 11."""
    return max(_MIN_FONT_SIZE, int(round(max(height, width) / 56)))


def load_font(size):
    """Pillow's bundled scalable font at `size` px (its fixed bitmap font on Pillow < 10.1)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=int(size))
    except TypeError:  # pragma: no cover - Pillow < 10.1 has one fixed-size font
        return ImageFont.load_default()


def _fit_text(draw, text, font, max_width):
    """`text`, shortened with an ellipsis until it is at most `max_width` px wide."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "...", font=font) > max_width:
        text = text[:-1]
    return text + "..." if text else ""


def legend_strip(class_ids, class_names, palette, width, font_size=_MIN_FONT_SIZE):
    """A white (h, width, 3) uint8 strip: a colour swatch and the name of each class.

    Entries run left to right and wrap onto new rows; a name wider than the strip
    is shortened with "...". An empty `class_ids` gives one row saying "(no class)".

    Args:
        class_ids: the class ids to list, in order.
        class_names: name of each class id.
        palette: RGB colour of each class id.
        width: strip width in pixels (the width of the picture it goes under).
        font_size: text height in pixels; swatches are as tall as the text.

    Example:
    >>> strip = legend_strip([0, 2], ("road", "car", "sky"), [(1, 2, 3), (4, 5, 6), (7, 8, 9)], 90)
    >>> strip.shape[1], strip.dtype.name
    (90, 'uint8')
    """
    from PIL import Image
    from PIL import ImageDraw

    width = int(width)
    font = load_font(font_size)
    pad = max(2, font_size // 3)
    row = font_size + 2 * pad
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    entries = [(palette[i], str(class_names[i])) for i in class_ids] or [(None, "(no class)")]
    # Layout first: (x, row index) per entry, so the strip height is known before drawing.
    placed, x, line = [], pad, 0
    for colour, name in entries:
        swatch = font_size if colour is not None else 0
        text = _fit_text(probe, name, font, max(width - 3 * pad - swatch, 1))
        entry = swatch + pad + int(np.ceil(probe.textlength(text, font=font)))
        if x > pad and x + entry > width - pad:
            x, line = pad, line + 1
        placed.append((x, line, colour, text))
        x += entry + 2 * pad
    strip = Image.new("RGB", (width, (line + 1) * row), LEGEND_BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for x, line, colour, text in placed:
        top = line * row + pad
        if colour is not None:
            draw.rectangle(
                [x, top, x + font_size - 1, top + font_size - 1],
                fill=tuple(int(c) for c in colour),
                outline=LEGEND_TEXT,
            )
            x += font_size + pad
        draw.text((x, top), text, fill=LEGEND_TEXT, font=font)  # anchor: left, ascender
    return np.asarray(strip, np.uint8)


def blend(image, ids, palette, alpha=0.5, ignore_class=255):
    """`image` (H, W, 3) uint8 mixed with the colours of `ids` (H, W); ignored pixels unchanged."""
    image = np.asarray(image, np.uint8)
    out = np.empty(image.shape, np.uint8)
    _blend_into(out, image, ids, palette, alpha, ignore_class)
    return out


def _blend_into(out, image, ids, palette, alpha, ignore_class):
    """`blend` written into `out` (H, W, 3) uint8, a chunk of rows at a time."""
    ids = np.asarray(ids)
    step = max(1, _CHUNK_PIXELS // max(int(image.shape[1]), 1))
    for start in range(0, int(image.shape[0]), step):
        rows = slice(start, start + step)
        part, part_ids = image[rows], ids[rows]
        color = colorize(part_ids, palette, ignore_class).astype(np.float32)
        mixed = (1 - alpha) * part.astype(np.float32) + alpha * color
        ignored = part_ids == ignore_class
        mixed[ignored] = part[ignored]
        out[rows] = np.clip(mixed, 0, 255).astype(np.uint8)


def overlay_panel(
    image, label, prediction, palette, alpha=0.5, ignore_class=255, class_names=None, font_size=None
):
    """Side-by-side uint8 panel: image | GT over image | prediction over image.

    `image` is uint8 (H, W, 3) at the size of `label` and `prediction`. With
    `class_names`, a legend strip (`legend_strip`) listing the classes present in
    the GT or the prediction is added under the three pictures: the panel is then
    (H + strip height, 3 W, 3); without, (H, 3 W, 3).

    Args:
        class_names: name of each class id; None: no legend.
        font_size: legend text height (default `legend_font_size(H, W)`).

    Example:
    >>> image = np.zeros((8, 10, 3), np.uint8)
    >>> ids = np.zeros((8, 10), np.int32)
    >>> overlay_panel(image, ids, ids, [(255, 0, 0)]).shape
    (8, 30, 3)
    >>> overlay_panel(image, ids, ids, [(255, 0, 0)], class_names=["road"]).shape[:2] > (8, 30)
    True
    """
    image = np.asarray(image, np.uint8)
    panels = [image] + [
        blend(image, ids, palette, alpha, ignore_class) for ids in (label, prediction)
    ]
    panel = np.concatenate(panels, axis=1)
    if class_names is None:
        return panel
    ids = present_classes(
        label,
        prediction,
        num_classes=min(len(palette), len(class_names)),
        ignore_class=ignore_class,
    )
    size = font_size or legend_font_size(*image.shape[:2])
    return np.concatenate(
        [panel, legend_strip(ids, class_names, palette, panel.shape[1], size)], axis=0
    )


def overlay_image(
    image, prediction, palette, class_names=None, alpha=0.5, ignore_class=255, font_size=None
):
    """`image` blended with the colours of `prediction`, a legend strip underneath.

    Returns uint8 (H + strip height, W, 3); the legend lists the classes present in
    `prediction` (names `class_<i>` when `class_names` is None).

    Example:
    >>> image = np.zeros((40, 60, 3), np.uint8)
    >>> out = overlay_image(image, np.ones((40, 60), np.int32), default_palette(3))
    >>> out.shape[1], out.shape[0] > 40
    (60, True)
    """
    image = np.asarray(image, np.uint8)
    names = class_names or tuple(f"class_{i}" for i in range(len(palette)))
    ids = present_classes(
        prediction, num_classes=min(len(palette), len(names)), ignore_class=ignore_class
    )
    height, width = image.shape[:2]
    strip = legend_strip(ids, names, palette, width, font_size or legend_font_size(height, width))
    out = np.empty((height + strip.shape[0], width, 3), np.uint8)  # one full-size copy
    _blend_into(out[:height], image, prediction, palette, alpha, ignore_class)
    out[height:] = strip
    return out


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


def save_label_png(path, label, palette):
    """Writes class ids (H, W) as a palette ("P" mode) PNG: pixel value = class id.

    The PNG's colour table is `palette` (padded with black to 256 entries), so
    image viewers show the colours while `np.asarray(Image.open(path))` gives
    back the ids. More than 256 classes do not fit a palette PNG: the ids are
    then written as a 16-bit greyscale PNG.

    Example:
    >>> import tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "label.png")
    >>> save_label_png(path, np.array([[0, 2], [1, 1]]), [(9, 9, 9), (1, 2, 3), (4, 5, 6)])
    >>> Image.open(path).mode, np.asarray(Image.open(path)).tolist()
    ('P', [[0, 2], [1, 1]])
    """
    from PIL import Image

    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() > 65535):
        raise ValueError(
            f"save_label_png({path}): class ids must be in [0, 65535], "
            f"got [{label.min()}, {label.max()}]"
        )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if len(palette) > 256 or (label.size and label.max() > 255):
        Image.fromarray(label.astype(np.uint16)).save(path)
        return
    table = np.zeros((256, 3), np.uint8)
    table[: len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    image = Image.fromarray(label.astype(np.uint8))  # mode "L"; putpalette makes it "P"
    image.putpalette(table.reshape(-1).tolist())
    image.save(path)
