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
over classes (XLA/TPU friendly). The upsampling is done with separable bilinear
interpolation matrices, one chunk of output rows at a time, so the full
`(B, H, W, C)` upsampled tensor is never materialised.

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


def bilinear_resize_matrix(out_size, in_size):
    """(out_size, in_size) matrix of half-pixel bilinear interpolation weights.

    Equals `tf.image.resize(..., "bilinear")`, `torch.nn.functional.interpolate(
    ..., mode="bilinear", align_corners=False)` and `jax.image.resize(..., "bilinear")`
    for upsampling, applied along one axis.
    """
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = src - low
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
        chunk_elements: upper bound on the number of floats of one chunk of
            upsampled features per image (`rows * W * C`) in `"label"` mode.

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
        chunk_elements=2**24,
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
        self.chunk_elements = int(chunk_elements)
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
        acc = None
        for x, y in self._pixel_chunks(features, labels):
            part = self._chunk_statistics(x, y, memory)
            acc = part if acc is None else [a + p for a, p in zip(acc, part)]
        return acc

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
    def _pixel_chunks(self, features, labels):
        """Yields (pixels (N, C), labels (N,)) pairs covering the whole batch."""
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
            yield ops.reshape(features, (-1, c)), ops.reshape(labels, (-1,))
            return
        static = all(isinstance(v, int) for v in (h, w, big_h, big_w))
        if not static:
            # Dynamic shapes: upsample in one piece.
            up = bilinear_resize(features, ops.shape(labels)[1:3])
            yield ops.reshape(up, (-1, c)), ops.reshape(labels, (-1,))
            return
        if (h, w) == (big_h, big_w):
            yield ops.reshape(features, (-1, c)), ops.reshape(labels, (-1,))
            return
        rows_h = bilinear_resize_matrix(big_h, h)  # (H, h)
        cols_w = bilinear_resize_matrix(big_w, w)  # (W, w)
        # Columns first: (B, h, w, C) -> (B, h, W, C), then row chunks of (B, r, W, C).
        wide = ops.einsum("jd,badc->bajc", cols_w, features)
        rows = max(1, min(big_h, self.chunk_elements // max(1, big_w * c)))
        for start in range(0, big_h, rows):
            stop = min(big_h, start + rows)
            chunk = ops.einsum("ia,bajc->bijc", rows_h[start:stop], wide)
            yield ops.reshape(chunk, (-1, c)), ops.reshape(labels[:, start:stop], (-1,))

    def _chunk_statistics(self, x, y, memory):
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
                "chunk_elements": self.chunk_elements,
            }
        )
        return config
