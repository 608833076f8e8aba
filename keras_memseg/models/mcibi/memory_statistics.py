"""Per-(class, slot) statistics of one batch, from which `FeatureMemory` is updated.

Pure `keras.ops` functions (no state). For every memory slot `s` they return

    count_s  = number of pixels assigned to s
    total_s  = sum of those pixels' features                      (first-seen mean)
    wtotal_s = sum of (1 - cos(x, M_s)) * x                       (weighted class mean)
    weight_s = sum of (1 - cos(x, M_s))

A pixel belongs to its label's class; with several slots per class it goes to the
most cosine-similar slot (`assign_slots`). Pixels with the ignore label, or labels
outside [0, K), belong to no slot (a dummy last segment that is dropped). These are
sums, so statistics of several replicas add up (`sync="global"`).

Two resolutions, as `FeatureMemory(update_resolution=...)`:
- `"label"` (the reference): the features are bilinearly upsampled (half-pixel
  centres) to the label map. `upsampled_statistics` computes the statistics of the
  upsampled pixels exactly without materialising them, from feature-resolution
  quantities only (see its docstring);
- `"feature"`: the labels are nearest-downsampled to the features.
"""

import numpy as np
from keras import ops

from keras_memseg.layers.resize import bilinear_resize

COS_EPS = 1e-8  # torch.nn.functional.cosine_similarity's eps


def interpolation(out_size, in_size):
    """Half-pixel bilinear source cells and fraction along one axis (NumPy).

    Returns `(low, high, frac)`: output position i reads `(1 - frac[i])` of
    input `low[i]` and `frac[i]` of input `high[i]` (clamped at the borders), as
    `tf.image.resize(..., "bilinear")` and `torch.nn.functional.interpolate(...,
    mode="bilinear", align_corners=False)` do when upsampling.
    """
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * in_size / out_size - 0.5, 0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (src - low).astype("float32")


def nearest_indices(out_size, in_size):
    """Source indices of half-pixel nearest-neighbour resampling along one axis."""
    src = np.floor((np.arange(out_size) + 0.5) * in_size / out_size).astype("int32")
    return np.minimum(src, in_size - 1)


def class_ids(labels, num_classes, ignore_class):
    """`(valid, cls)`: which pixels count, and their class with invalid ones set to 0."""
    valid = (labels != ignore_class) & (labels >= 0) & (labels < num_classes)
    return valid, ops.where(valid, labels, 0)


def assign_slots(cos, valid, cls, feats_per_class, num_classes):
    """Slot of every pixel and its update weight, from its cosines to its class's slots.

    Args:
        cos: `(..., n)` cosine of each pixel with each slot of its own class.
        valid, cls: from `class_ids`.

    Returns `(segment, ones, omega)`: the flat slot index `cls * n + slot` (the dummy
    `K * n` for invalid pixels), 1 for valid pixels, and `1 - cos` with the chosen slot
    (0 for invalid pixels).
    """
    n = feats_per_class
    if n == 1:
        slot, sim = ops.zeros_like(cls), cos[..., 0]
    else:
        slot, sim = ops.cast(ops.argmax(cos, axis=-1), "int32"), ops.max(cos, axis=-1)
    segment = ops.where(valid, cls * n + slot, num_classes * n)
    ones = ops.cast(valid, "float32")
    return segment, ones, (1.0 - sim) * ones


def pixel_statistics(x, labels, memory, ignore_class):
    """Statistics of pixels `x` (N, C) with labels (N,) against `memory` (K, n, C)."""
    k, n, _ = memory.shape
    segments = k * n + 1  # the last one collects invalid pixels
    valid, cls = class_ids(labels, k, ignore_class)
    slots = ops.take(memory, cls, axis=0)  # (N, n, C)
    x_norm = ops.maximum(ops.sqrt(ops.sum(x * x, axis=-1)), COS_EPS)  # (N,)
    m_norm = ops.maximum(ops.sqrt(ops.sum(slots * slots, axis=-1)), COS_EPS)  # (N, n)
    cos = ops.einsum("nc,nsc->ns", x, slots) / (x_norm[:, None] * m_norm)
    segment, ones, omega = assign_slots(cos, valid, cls, n, k)
    count = ops.segment_sum(ones, segment, num_segments=segments)
    total = ops.segment_sum(x, segment, num_segments=segments)
    weighted = ops.segment_sum(x * omega[:, None], segment, num_segments=segments)
    weight = ops.segment_sum(omega, segment, num_segments=segments)
    return [count[:-1], total[:-1], weighted[:-1], weight[:-1]]


def _next_index(size):
    return np.minimum(np.arange(size) + 1, size - 1).astype("int32")


def upsampled_statistics(features, labels, memory, ignore_class):
    """`pixel_statistics` of `features` (B, h, w, C) bilinearly upsampled to `labels`
    (B, H, W), computed exactly without upsampling them (static shapes).

    An upsampled pixel is `x_p = sum_q w_pq F_q` over its 4 source cells, so
    - `x_p . M_s` is the same blend of `F_q . M_s` (one (B*h*w, C) x (C, K*n) matmul);
    - `|x_p|^2` is a blend of the 10 dot products among the 4 cells, read from 5
      maps of neighbour dot products at feature resolution;
    - per-slot sums `sum_p a_p x_p` are `A^T F` with `A[q, s] = sum_{p in s} a_p w_pq`,
      a scatter of 4 scalars per pixel.
    Per full-resolution pixel only scalars are touched, never C-vectors.
    """
    k, n, c = memory.shape
    segments = k * n + 1  # the last one collects invalid pixels
    batch = ops.shape(features)[0]
    h, w = features.shape[1], features.shape[2]
    rows_lo, rows_hi, row_frac = interpolation(labels.shape[1], h)
    cols_lo, cols_hi, col_frac = interpolation(labels.shape[2], w)

    # Dot products of each cell with its right/lower/diagonal neighbours (clamped).
    down = ops.take(features, _next_index(h), axis=1)
    right = ops.take(features, _next_index(w), axis=2)
    diag = ops.take(down, _next_index(w), axis=2)

    def gram(a, b):
        return ops.reshape(ops.sum(a * b, axis=-1), (-1,))  # (B*h*w,)

    g_self, g_right, g_down = gram(features, features), gram(features, right), gram(features, down)
    g_diag, g_anti = gram(features, diag), gram(right, down)
    slots = ops.reshape(memory, (k * n, c))
    proj = ops.reshape(ops.einsum("bhwc,sc->bhws", features, slots), (-1,))  # (B*h*w*K*n,)
    slot_norm = ops.maximum(ops.sqrt(ops.sum(slots * slots, axis=-1)), COS_EPS)

    # Flat cell index of each pixel's 4 source cells, (B, H, W); weights (1, H, W).
    base = ops.reshape(ops.arange(batch, dtype="int32") * (h * w), (-1, 1, 1))
    corners, weights = [], []
    for r, wr in ((rows_lo, 1.0 - row_frac), (rows_hi, row_frac)):
        for q, wq in ((cols_lo, 1.0 - col_frac), (cols_hi, col_frac)):
            cell = ops.convert_to_tensor((r[:, None] * w + q[None, :]).astype("int32")[None])
            corners.append(base + cell)
            weights.append(
                ops.convert_to_tensor((wr[:, None] * wq[None, :]).astype("float32")[None])
            )
    (i00, i01, i10, i11), (w00, w01, w10, w11) = corners, weights
    take = ops.take
    squared = (
        w00 * w00 * take(g_self, i00)
        + w01 * w01 * take(g_self, i01)
        + w10 * w10 * take(g_self, i10)
        + w11 * w11 * take(g_self, i11)
        + 2.0
        * (
            w00 * w01 * take(g_right, i00)
            + w10 * w11 * take(g_right, i10)
            + w00 * w10 * take(g_down, i00)
            + w01 * w11 * take(g_down, i01)
            + w00 * w11 * take(g_diag, i00)
            + w01 * w10 * take(g_anti, i00)
        )
    )
    x_norm = ops.maximum(ops.sqrt(ops.maximum(squared, 0.0)), COS_EPS)  # (B, H, W)

    valid, cls = class_ids(labels, k, ignore_class)
    cos = []
    for j in range(n):  # the cosine of each pixel with slot j of its own class
        seg = cls * n + j
        dots = sum(wt * take(proj, i * (k * n) + seg) for i, wt in zip(corners, weights))
        cos.append(dots / (x_norm * take(slot_norm, seg)))
    segment, ones, omega = assign_slots(ops.stack(cos, axis=-1), valid, cls, n, k)
    flat_segment = ops.reshape(segment, (-1,))
    count = ops.segment_sum(ops.reshape(ones, (-1,)), flat_segment, num_segments=segments)
    weight = ops.segment_sum(ops.reshape(omega, (-1,)), flat_segment, num_segments=segments)

    # Scatter each pixel's 4 interpolation weights onto (cell, segment).
    ids = ops.concatenate([ops.reshape(i * segments + segment, (-1,)) for i in corners], 0)
    wts = ops.concatenate([ops.reshape(wt * ones, (-1,)) for wt in weights], 0)
    wts_omega = ops.concatenate([ops.reshape(wt * omega, (-1,)) for wt in weights], 0)
    cells = batch * h * w * segments
    area = ops.reshape(ops.segment_sum(wts, ids, num_segments=cells), (-1, segments))
    area_omega = ops.reshape(ops.segment_sum(wts_omega, ids, num_segments=cells), (-1, segments))
    flat = ops.reshape(features, (-1, c))
    total = ops.einsum("ps,pc->sc", area, flat)
    weighted = ops.einsum("ps,pc->sc", area_omega, flat)
    return [count[:-1], total[:-1], weighted[:-1], weight[:-1]]


def batch_statistics(features, labels, memory, ignore_class, resolution="label"):
    """The statistics of one batch: features (B, h, w, C), labels (B, H, W) int32.

    `resolution="label"` upsamples the features to the labels (exactly, without
    materialising them, when the shapes are static; in one piece otherwise);
    `"feature"` nearest-downsamples the labels to the features (static shapes).
    """
    h, w, c = features.shape[1], features.shape[2], features.shape[3]
    big_h, big_w = labels.shape[1], labels.shape[2]
    static = all(isinstance(v, int) for v in (h, w, big_h, big_w))
    if resolution == "feature":
        if not static:
            raise ValueError(
                "update_resolution='feature' needs static spatial shapes, got "
                f"features {features.shape} and labels {labels.shape}"
            )
        labels = ops.take(labels, nearest_indices(h, big_h), axis=1)
        labels = ops.take(labels, nearest_indices(w, big_w), axis=2)
    elif not static:  # sizes known at run time only: upsample in one piece
        features = bilinear_resize(features, ops.shape(labels)[1:3])
    elif (h, w) != (big_h, big_w):
        return upsampled_statistics(features, labels, memory, ignore_class)
    return pixel_statistics(
        ops.reshape(features, (-1, c)), ops.reshape(labels, (-1,)), memory, ignore_class
    )
