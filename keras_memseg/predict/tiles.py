"""The full-resolution part of a prediction, a tile of rows at a time: resize and argmax.

The class scores of an (H, W) image at its own size are (H, W, K) float32: 81 MP and
150 classes are 49 GB. A prediction never holds them: the model's scores stay at the
size it ran at, and each tile of output rows is resized, averaged over the test-time
runs and reduced to class ids before the next one. The resize is the arithmetic of
`tf.image.resize(x, size, "bilinear")` (half-pixel centres, no antialiasing, float32;
what `keras.ops.image.resize` runs on every backend), in NumPy.

Example:
>>> import numpy as np
>>> scores = np.zeros((2, 2, 3), np.float32)
>>> scores[:, 0, 0] = scores[:, 1, 2] = 1.0  # class 0 on the left column, 2 on the right
>>> upsampled_argmax([scores], (4, 6)).tolist()
[[0, 0, 0, 2, 2, 2], [0, 0, 0, 2, 2, 2], [0, 0, 0, 2, 2, 2], [0, 0, 0, 2, 2, 2]]
"""

import numpy as np

# One float32 tile of output rows (rows, W, C); a handful of tiles live at once.
TILE_BYTES = 32 * 2**20


def _axis(in_size, out_size, start, stop):
    """(low, high, frac) of output positions [start, stop): TF's half-pixel scaler
    `(i + 0.5) * in / out - 0.5` in float32, its neighbours clamped to the input."""
    scale = np.float32(in_size) / np.float32(out_size)
    source = (np.arange(start, stop, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(source)
    low = np.clip(floor, 0, in_size - 1).astype(np.intp)
    high = np.clip(np.ceil(source), 0, in_size - 1).astype(np.intp)
    return low, high, source - floor


def rows_per_tile(in_width, out_width, channels, budget=None):
    """Output rows per tile so that a float32 tile, and the (at most two per output row)
    input rows it is made from, stay within about `budget` bytes (`TILE_BYTES`)."""
    budget = TILE_BYTES if budget is None else budget
    per_row = 4 * int(channels) * (int(out_width) + 2 * int(in_width))
    return max(1, int(budget) // max(per_row, 1))


def resize_rows(x, size, start=0, stop=None):
    """Rows [start, stop) of `x` (h, w, C) resized bilinearly to `size` (H, W).

    Returns float32 (stop - start, W, C). Only the input rows these output rows read
    are converted to float32, so a uint8 image is never copied whole.
    """
    in_height, in_width = int(x.shape[0]), int(x.shape[1])
    out_height, out_width = (int(v) for v in size)
    stop = out_height if stop is None else min(int(stop), out_height)
    top, bottom, dy = _axis(in_height, out_height, start, stop)
    needed = np.unique(np.concatenate([top, bottom]))  # sorted input rows
    rows = np.asarray(x[needed], np.float32)  # (n, w, C)
    if in_width != out_width:
        left, right, dx = _axis(in_width, out_width, 0, out_width)
        first = rows[:, left]  # (n, W, C)
        rows = first + (rows[:, right] - first) * dx[None, :, None]
    upper = rows[np.searchsorted(needed, top)]  # (stop - start, W, C)
    if in_height == out_height:
        return upper
    lower = rows[np.searchsorted(needed, bottom)]
    return upper + (lower - upper) * dy[:, None, None]


def resize_bilinear(x, size):
    """`x` (h, w, C) resized bilinearly to `size` (H, W): float32 (H, W, C), made a tile
    of rows at a time (a uint8 image is read a few rows at a time, never cast whole).

    Example:
    >>> import numpy as np
    >>> resize_bilinear(np.array([[[0], [10]]], np.uint8), (1, 4))[0, :, 0].tolist()
    [0.0, 2.5, 7.5, 10.0]
    """
    height, width = (int(v) for v in size)
    channels = int(x.shape[2])
    out = np.empty((height, width, channels), np.float32)
    step = rows_per_tile(x.shape[1], width, channels)
    for start in range(0, height, step):
        out[start : start + step] = resize_rows(x, (height, width), start, start + step)
    return out


def upsampled_argmax(score_maps, size):
    """Class ids (H, W) int32: the argmax of the mean of `score_maps` resized to `size`.

    `score_maps` are (h_i, w_i, K) float32 arrays (one per test-time run, each at its
    own size). Equal to `argmax(mean_i resize(score_maps[i], size))`, but made a tile
    of output rows at a time: the (H, W, K) scores never exist at once.
    """
    height, width = (int(v) for v in size)
    channels = int(score_maps[0].shape[-1])
    labels = np.empty((height, width), np.int32)
    step = min(rows_per_tile(m.shape[1], width, channels) for m in score_maps)
    for start in range(0, height, step):
        stop = min(start + step, height)
        total = None
        for scores in score_maps:
            part = resize_rows(scores, (height, width), start, stop)  # (rows, W, K)
            total = part if total is None else np.add(total, part, out=total)
        if len(score_maps) > 1:
            total /= np.float32(len(score_maps))
        labels[start:stop] = np.argmax(total, axis=-1)
    return labels
