"""The MCIBI dataset-level feature memory: read and update (spec sections 1.5, 1.6, 1.12, 2).

The memory `M` is a non-trainable float32 weight of shape
`(num_classes, feats_per_class, channels)`, zero at start.

Read (every forward pass): `R_p = sum_k W_pk M_k` with `W = softmax(P1)` (or its
one-hot argmax with `hard_aggregate=True`). `M` is read through `stop_gradient`.

Update (training only, after the forward pass, from ground truth), per class `c`
present in the batch (labels equal to `ignore_index` are skipped):

    if all channels of M_c are exactly 0:      M_c <- mean_i X_c[i]       (first seen)
    else:  s_i = cos(X_c[i], M_c);  w_i = (1 - s_i) / sum_j (1 - s_j)
           M_c <- (1 - m) M_c + m * sum_i w_i X_c[i]

where `X` are the features bilinearly upsampled to the label resolution
(`update_resolution="label"`, the reference) or the labels nearest-downsampled to
the feature resolution (`"feature"`, ~64x cheaper at output stride 8), and `m` is
the momentum of this step (tied to the learning rate by the caller).

The computation is the vectorised form of spec section 2.5: per-class counts and
sums are `segment_sum`s over the label ids, so shapes are static and nothing loops
over classes (XLA/TPU friendly). In `"label"` mode the upsampled features are never
materialised: bilinear upsampling is linear, so dot products, norms and class sums
of the upsampled pixels are computed exactly from feature-resolution quantities
(see `_upsampled_statistics`); the full-resolution work is a few scalars per pixel.

Replica semantics: with `sync="global"` the per-class statistics are summed over
replicas before the update (equal to one device on the global batch); with
`sync="replica_mean"` each replica updates from its own images and the memories
are averaged afterwards (the reference's DDP behaviour, spec section 2.4).

Multi-slot memory (`feats_per_class = n > 1`): a class with an all-zero slot
initialises its first zero slot with the class mean and changes nothing else; a
class whose slots are all filled sends each pixel to its most cosine-similar slot
and updates each slot that received pixels with the weighted rule above. A slot
that received no pixels is left unchanged (the reference scales it by `1 - m`).
"""


import keras
import numpy as np
from keras import ops

from keras_memseg import distribute
from keras_memseg.layers.resize import bilinear_resize

_SYNC_MODES = ("global", "replica_mean")
_RESOLUTIONS = ("label", "feature")
_COS_EPS = 1e-8


def _interpolation(out_size, in_size):
    """Half-pixel bilinear source cells and fraction along one axis (as the matrix)."""
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * in_size / out_size - 0.5, 0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, (src - low).astype("float32")


def _next_index(size):
    return np.minimum(np.arange(size) + 1, size - 1).astype("int32")


def bilinear_resize_matrix(out_size, in_size):
    """(out_size, in_size) matrix of half-pixel bilinear interpolation weights.

    Equals `tf.image.resize(..., "bilinear")`, `torch.nn.functional.interpolate(
    ..., mode="bilinear", align_corners=False)` and `jax.image.resize(..., "bilinear")`
    for upsampling, applied along one axis. Built from `_interpolation`, the cells
    and weights the label-resolution update uses.
    """
    low, high, frac = _interpolation(out_size, in_size)
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix.astype("float32")


def nearest_indices(out_size, in_size):
    """Source indices of half-pixel nearest-neighbour resampling along one axis."""
    src = np.floor((np.arange(out_size) + 0.5) * in_size / out_size).astype("int32")
    return np.minimum(src, in_size - 1)


@keras.saving.register_keras_serializable(package="keras_memseg")
class FeatureMemory(keras.layers.Layer):
    """Dataset-level class memory of MCIBI (read every pass, updated from labels).

    Args:
        num_classes: K, the number of classes.
        channels: C, the feature width of a memory row.
        feats_per_class: n, the memory slots per class (1 in every paper config).
        hard_aggregate: read with the one-hot argmax of the class probabilities
            instead of the probabilities themselves.
        sync: `"global"` (statistics summed over replicas, device-count
            independent) or `"replica_mean"` (per-replica update, then the mean of
            the memories, as the reference).
        update_resolution: `"label"` (features upsampled to the labels, as the
            reference) or `"feature"` (labels nearest-downsampled to the features).
        ignore_index: label value skipped by the update.

    Call: `memory(probs)` with `probs` of shape `(B, h, w, K)` returns the
    aggregated memory `(B, h, w, C)` (or `(B, h, w, n, C)` when n > 1).
    `memory.update(features, labels, momentum)` updates the state in place.

    Example:
    >>> import numpy as np
    >>> memory = FeatureMemory(num_classes=3, channels=4)
    >>> feats = np.random.rand(1, 2, 2, 4).astype("float32")
    >>> labels = np.array([[[0, 0, 1, 1]] * 4], "int32")   # (1, 4, 4)
    >>> _ = memory.update(feats, labels, momentum=0.9)
    >>> [bool(np.any(memory.memory.numpy()[k])) for k in range(3)]
    [True, True, False]
    >>> tuple(memory(np.full((1, 2, 2, 3), 1 / 3, "float32")).shape)
    (1, 2, 2, 4)
    """

    def __init__(
        self,
        num_classes,
        channels,
        feats_per_class=1,
        hard_aggregate=False,
        sync="global",
        update_resolution="label",
        ignore_index=255,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if int(channels) < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if int(feats_per_class) < 1:
            raise ValueError(f"feats_per_class must be >= 1, got {feats_per_class}")
        if sync not in _SYNC_MODES:
            raise ValueError(f"sync must be one of {_SYNC_MODES}, got {sync!r}")
        if update_resolution not in _RESOLUTIONS:
            raise ValueError(
                f"update_resolution must be one of {_RESOLUTIONS}, got {update_resolution!r}"
            )
        self.num_classes = int(num_classes)
        self.channels = int(channels)
        self.feats_per_class = int(feats_per_class)
        self.hard_aggregate = bool(hard_aggregate)
        self.sync = sync
        self.update_resolution = update_resolution
        self.ignore_index = int(ignore_index)
        self.memory = self.add_weight(
            shape=(self.num_classes, self.feats_per_class, self.channels),
            initializer="zeros",
            trainable=False,
            dtype="float32",
            aggregation="only_first_replica",
            autocast=False,  # read in float32 under any mixed-precision policy
            name="memory",
        )
        self.num_updates = self.add_weight(
            shape=(),
            initializer="zeros",
            trainable=False,
            dtype="float32",
            aggregation="only_first_replica",
            name="num_updates",
        )
        self.built = True

    # ------------------------------------------------------------------ read
    def call(self, probs):
        # (B, h, w, K) x (K, n, C) -> (B, h, w, n, C)
        out_dtype = probs.dtype
        probs = ops.cast(probs, "float32")
        if self.hard_aggregate:
            probs = ops.one_hot(ops.argmax(probs, axis=-1), self.num_classes)
        # A snapshot, not a view: on PyTorch the variable is updated in place later in
        # the same step (`update`), which would invalidate a view saved for backward.
        # The weight is created with autocast=False, so this read is float32 under
        # any mixed-precision policy, like `probs`.
        memory = ops.stop_gradient(ops.copy(self.memory))
        out = ops.einsum("bhwk,knc->bhwnc", probs, memory)
        if self.feats_per_class == 1:
            out = out[..., 0, :]
        return ops.cast(out, out_dtype)

    def compute_output_shape(self, input_shape):
        if self.feats_per_class == 1:
            return tuple(input_shape[:-1]) + (self.channels,)
        return tuple(input_shape[:-1]) + (self.feats_per_class, self.channels)

    # ---------------------------------------------------------------- update
    def update(self, features, labels, momentum):
        """Updates the memory from `features` (B, h, w, C) and `labels` (B, H, W).

        Returns the new memory value. Runs without gradients.
        """
        features = ops.stop_gradient(ops.cast(features, "float32"))
        labels = ops.convert_to_tensor(labels)
        if len(labels.shape) == 4:
            labels = labels[..., 0]
        labels = ops.cast(labels, "int32")
        momentum = ops.cast(momentum, "float32")
        memory = ops.convert_to_tensor(self.memory)
        stats = self.compute_statistics(features, labels, memory)
        if self.sync == "global":
            stats = [distribute.cross_replica_sum(s) for s in stats]
        new_memory = self.apply_statistics(memory, stats, momentum)
        if self.sync == "replica_mean":
            new_memory = distribute.cross_replica_mean(new_memory)
        self.memory.assign(new_memory)
        self.num_updates.assign(self.num_updates + 1.0)
        return new_memory

    def compute_statistics(self, features, labels, memory):
        """Per-slot sufficient statistics of one batch.

        Returns `(count, total, weighted_total, weight)` with shapes
        `(K*n,)`, `(K*n, C)`, `(K*n, C)`, `(K*n,)`: pixel counts, feature sums,
        sums of `(1 - cos) * x` and sums of `(1 - cos)` per (class, slot).
        """
        h, w = features.shape[1], features.shape[2]
        big_h, big_w = labels.shape[1], labels.shape[2]
        static = all(isinstance(v, int) for v in (h, w, big_h, big_w))
        if self.update_resolution == "label" and static and (h, w) != (big_h, big_w):
            return self._upsampled_statistics(features, labels, memory)
        x, y = self._pixels(features, labels)
        return self._pixel_statistics(x, y, memory)

    def apply_statistics(self, memory, stats, momentum):
        """The new memory from the old one and (reduced) statistics."""
        k, n, c = self.num_classes, self.feats_per_class, self.channels
        count, total, weighted_total, weight = stats
        count = ops.reshape(count, (k, n))
        total = ops.reshape(total, (k, n, c))
        weighted_total = ops.reshape(weighted_total, (k, n, c))
        weight = ops.reshape(weight, (k, n))

        class_count = ops.sum(count, axis=1)  # (K,)
        class_mean = ops.sum(total, axis=1) / ops.maximum(class_count, 1.0)[:, None]
        slot_mean = total / ops.maximum(count, 1.0)[..., None]
        # Where every pixel equals the memory direction, sum(1 - cos) is 0: use the mean.
        safe_weight = ops.where(weight > 0, weight, 1.0)
        slot_target = ops.where(
            (weight > 0)[..., None], weighted_total / safe_weight[..., None], slot_mean
        )
        ema = (1.0 - momentum) * memory + momentum * slot_target

        zero_slot = ops.all(ops.equal(memory, 0.0), axis=-1)  # (K, n)
        has_zero = ops.any(zero_slot, axis=1)  # (K,)
        first_zero = ops.one_hot(ops.argmax(ops.cast(zero_slot, "int32"), axis=1), n)
        present = class_count > 0
        init_mask = (present & has_zero)[:, None] & (first_zero > 0)
        update_mask = (present & ~has_zero)[:, None] & (count > 0)
        new = ops.where(update_mask[..., None], ema, memory)
        new = ops.where(init_mask[..., None], class_mean[:, None, :], new)
        return new

    # ------------------------------------------------------------ internals
    def _pixels(self, features, labels):
        """(pixels (N, C), labels (N,)) at one common resolution."""
        b, h, w, c = ops.shape(features)
        big_h, big_w = labels.shape[1], labels.shape[2]
        if self.update_resolution == "feature":
            if h is None or w is None or big_h is None or big_w is None:
                raise ValueError(
                    "update_resolution='feature' needs static spatial shapes, got "
                    f"features {features.shape} and labels {labels.shape}"
                )
            labels = ops.take(labels, nearest_indices(h, big_h), axis=1)
            labels = ops.take(labels, nearest_indices(w, big_w), axis=2)
        elif (h, w) != (big_h, big_w):  # dynamic shapes: upsample in one piece
            features = bilinear_resize(features, ops.shape(labels)[1:3])
        return ops.reshape(features, (-1, c)), ops.reshape(labels, (-1,))

    def _upsampled_statistics(self, features, labels, memory):
        """`_pixel_statistics` of the bilinearly upsampled features, computed exactly
        without upsampling them.

        An upsampled pixel is `x_p = sum_q w_pq F_q` over its 4 source cells, so
        - `x_p . M_s` is the same blend of `F_q . M_s` (one (B*h*w, C) x (C, K*n) matmul);
        - `|x_p|^2` is a blend of the 10 dot products among the 4 cells, read from 5
          maps of neighbour dot products at feature resolution;
        - per-segment sums `sum_p a_p x_p` are `A^T F` with `A[q, s] = sum_{p in s} a_p w_pq`,
          a scatter of 4 scalars per pixel.
        Per full-resolution pixel only scalars are touched, never C-vectors.
        """
        k, n = self.num_classes, self.feats_per_class
        segments = k * n + 1  # the last one collects ignored pixels
        batch = ops.shape(features)[0]
        h, w, c = features.shape[1], features.shape[2], features.shape[3]
        big_h, big_w = labels.shape[1], labels.shape[2]
        rows_lo, rows_hi, row_frac = _interpolation(big_h, h)
        cols_lo, cols_hi, col_frac = _interpolation(big_w, w)

        # Dot products of each cell with its right/lower/diagonal neighbours (clamped).
        down = ops.take(features, _next_index(h), axis=1)
        right = ops.take(features, _next_index(w), axis=2)
        diag = ops.take(down, _next_index(w), axis=2)

        def gram(a, b):
            return ops.reshape(ops.sum(a * b, axis=-1), (-1,))  # (B*h*w,)

        g_self, g_right, g_down = gram(features, features), gram(features, right), gram(features, down)
        g_diag, g_anti = gram(features, diag), gram(right, down)
        slots = ops.reshape(memory, (k * n, c))
        proj = ops.reshape(ops.einsum("bhwc,sc->bhws", features, slots), (-1,))
        slot_norm = ops.maximum(ops.sqrt(ops.sum(slots * slots, axis=-1)), _COS_EPS)

        # Flat cell index of each pixel's 4 source cells, (B, H, W); weights (1, H, W).
        base = ops.reshape(ops.arange(batch, dtype="int32") * (h * w), (-1, 1, 1))
        corners, weights = [], []
        for r, wr in ((rows_lo, 1.0 - row_frac), (rows_hi, row_frac)):
            for q, wq in ((cols_lo, 1.0 - col_frac), (cols_hi, col_frac)):
                cell = ops.convert_to_tensor((r[:, None] * w + q[None, :]).astype("int32")[None])
                corners.append(base + cell)
                weights.append(ops.convert_to_tensor(
                    (wr[:, None] * wq[None, :]).astype("float32")[None]))
        (i00, i01, i10, i11), (w00, w01, w10, w11) = corners, weights
        take = ops.take
        squared = (w00 * w00 * take(g_self, i00) + w01 * w01 * take(g_self, i01)
                   + w10 * w10 * take(g_self, i10) + w11 * w11 * take(g_self, i11)
                   + 2.0 * (w00 * w01 * take(g_right, i00) + w10 * w11 * take(g_right, i10)
                            + w00 * w10 * take(g_down, i00) + w01 * w11 * take(g_down, i01)
                            + w00 * w11 * take(g_diag, i00) + w01 * w10 * take(g_anti, i00)))
        x_norm = ops.maximum(ops.sqrt(ops.maximum(squared, 0.0)), _COS_EPS)  # (B, H, W)

        valid = (labels != self.ignore_index) & (labels >= 0) & (labels < k)
        cls = ops.where(valid, labels, 0)
        cos = []
        for j in range(n):
            seg = cls * n + j
            dots = sum(wt * take(proj, i * (k * n) + seg) for i, wt in zip(corners, weights))
            cos.append(dots / (x_norm * take(slot_norm, seg)))
        if n == 1:
            slot, sim = ops.zeros_like(cls), cos[0]
        else:
            cos = ops.stack(cos, axis=-1)
            slot, sim = ops.cast(ops.argmax(cos, axis=-1), "int32"), ops.max(cos, axis=-1)
        segment = ops.where(valid, cls * n + slot, k * n)  # (B, H, W)
        ones = ops.cast(valid, "float32")
        omega = (1.0 - sim) * ones
        flat_segment = ops.reshape(segment, (-1,))
        count = ops.segment_sum(ops.reshape(ones, (-1,)), flat_segment, num_segments=segments)
        weight = ops.segment_sum(ops.reshape(omega, (-1,)), flat_segment, num_segments=segments)

        # Scatter each pixel's 4 interpolation weights onto (cell, segment).
        ids = ops.concatenate([ops.reshape(i * segments + segment, (-1,)) for i in corners], 0)
        wts = ops.concatenate([ops.reshape(wt * ones, (-1,)) for wt in weights], 0)
        wts_omega = ops.concatenate([ops.reshape(wt * omega, (-1,)) for wt in weights], 0)
        cells = batch * h * w * segments
        area = ops.reshape(ops.segment_sum(wts, ids, num_segments=cells), (-1, segments))
        area_omega = ops.reshape(ops.segment_sum(wts_omega, ids, num_segments=cells),
                                 (-1, segments))
        flat = ops.reshape(features, (-1, c))
        total = ops.einsum("ps,pc->sc", area, flat)
        weighted = ops.einsum("ps,pc->sc", area_omega, flat)
        return [count[:-1], total[:-1], weighted[:-1], weight[:-1]]

    def _pixel_statistics(self, x, y, memory):
        k, n = self.num_classes, self.feats_per_class
        num_segments = k * n + 1  # the last segment collects ignored pixels
        valid = (y != self.ignore_index) & (y >= 0) & (y < k)
        cls = ops.where(valid, y, 0)
        slots = ops.take(memory, cls, axis=0)  # (N, n, C)
        x_norm = ops.maximum(ops.sqrt(ops.sum(x * x, axis=-1)), _COS_EPS)  # (N,)
        m_norm = ops.maximum(ops.sqrt(ops.sum(slots * slots, axis=-1)), _COS_EPS)
        cos = ops.einsum("nc,nsc->ns", x, slots) / (x_norm[:, None] * m_norm)  # (N, n)
        if n == 1:
            slot = ops.zeros_like(cls)
            sim = cos[:, 0]
        else:
            slot = ops.cast(ops.argmax(cos, axis=-1), "int32")
            sim = ops.max(cos, axis=-1)
        segment = ops.where(valid, cls * n + slot, k * n)
        ones = ops.cast(valid, "float32")
        omega = (1.0 - sim) * ones
        count = ops.segment_sum(ones, segment, num_segments=num_segments)
        total = ops.segment_sum(x, segment, num_segments=num_segments)
        weighted = ops.segment_sum(x * omega[:, None], segment, num_segments=num_segments)
        weight = ops.segment_sum(omega, segment, num_segments=num_segments)
        return [count[:-1], total[:-1], weighted[:-1], weight[:-1]]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "channels": self.channels,
                "feats_per_class": self.feats_per_class,
                "hard_aggregate": self.hard_aggregate,
                "sync": self.sync,
                "update_resolution": self.update_resolution,
                "ignore_index": self.ignore_index,
            }
        )
        return config
