"""The MCIBI dataset-level feature memory: state, read, and update from labels.

Jin et al., "Mining Contextual Information Beyond Image for Semantic Segmentation",
ICCV 2021; the reference is `FeaturesMemory` in SegmentationBLWX/sssegmentation
(`ssseg/modules/models/segmentors/mcibi/memory.py`).

The memory `M` is a non-trainable float32 weight of shape
`(num_classes, feats_per_class, channels)`, zero at start.

Read (every forward pass): `R_p = sum_k W_pk M_k` with `W = softmax(P1)` (or its
one-hot argmax with `hard_aggregate=True`). `M` is read through `stop_gradient`.

Update (training only, after the forward pass, from ground truth), per class `c`
present in the batch (labels equal to `ignore_class` are skipped):

    if all channels of M_c are exactly 0:      M_c <- mean_i X_c[i]       (first seen)
    else:  s_i = cos(X_c[i], M_c);  w_i = (1 - s_i) / sum_j (1 - s_j)
           M_c <- (1 - m) M_c + m * sum_i w_i X_c[i]

where `X` are the features bilinearly upsampled to the label resolution
(`update_resolution="label"`, the reference) or the labels nearest-downsampled to
the features (`"feature"`, ~64x cheaper at output stride 8), and `m` is the momentum
of this step (tied to the learning rate by the model's `compile`). The batch enters
only through per-slot sums (`keras_memseg.models.mcibi.memory_statistics`): static shapes,
no loop over classes, XLA/TPU friendly.

Replicas: with `sync="global"` the statistics are summed over replicas before the
update (equal to one device on the global batch); with `sync="replica_mean"` each
replica updates from its own images and the memories are averaged afterwards (the
reference's DDP behaviour).

Multi-slot memory (`feats_per_class = n > 1`): a class with an all-zero slot
initialises its first zero slot with the class mean and changes nothing else; a
class whose slots are all filled sends each pixel to its most cosine-similar slot
and updates each slot that received pixels with the weighted rule above. A slot
that received no pixels is left unchanged (the reference scales it by `1 - m`).

Safety: where every pixel of a slot equals its direction (sum of `1 - cos` is 0) the
slot moves to the plain mean instead of NaN, and a row whose update is not finite
(NaN/inf features or momentum) keeps its old value.
"""

import keras
from keras import ops

from keras_memseg import distribute
from keras_memseg.models.mcibi.memory_statistics import batch_statistics

SYNC_MODES = ("global", "replica_mean")
RESOLUTIONS = ("label", "feature")


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
        ignore_class: label value skipped by the update.

    Call: `memory(probs)` with `probs` of shape `(B, h, w, K)` returns the
    aggregated memory `(B, h, w, C)` (or `(B, h, w, n, C)` when n > 1).
    `memory.next_state(features, labels, momentum)` computes the updated memory
    without writing it; `memory.update(...)` writes it too (the layer used alone).
    `num_updates` counts the updates written (informational: schedules follow the
    optimizer's step).

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
        ignore_class=255,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("num_classes", num_classes),
            ("channels", channels),
            ("feats_per_class", feats_per_class),
        ):
            if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, got {sync!r}")
        if update_resolution not in RESOLUTIONS:
            raise ValueError(
                f"update_resolution must be one of {RESOLUTIONS}, got {update_resolution!r}"
            )
        self.num_classes = int(num_classes)
        self.channels = int(channels)
        self.feats_per_class = int(feats_per_class)
        self.hard_aggregate = bool(hard_aggregate)
        self.sync = sync
        self.update_resolution = update_resolution
        self.ignore_class = int(ignore_class)
        # float32 under any mixed-precision policy (autocast=False on the read).
        self.memory = self.add_weight(
            shape=(self.num_classes, self.feats_per_class, self.channels),
            initializer="zeros",
            trainable=False,
            dtype="float32",
            aggregation="only_first_replica",
            autocast=False,
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
    def next_state(self, features, labels, momentum):
        """The memory after an update from `features` (B, h, w, C) and `labels`
        (B, H, W): a pure function of the current memory and its arguments (no
        variable is written, no gradient flows). Replicas are reduced per `sync`.

        `MemorySegmenter` assigns the result once per training step, after its
        finiteness and label checks (`MemorySegmenter.compute_loss`).
        """
        features = ops.stop_gradient(ops.cast(features, "float32"))
        labels = ops.convert_to_tensor(labels)
        if len(labels.shape) == 4:
            labels = labels[..., 0]
        labels = ops.cast(labels, "int32")
        memory = ops.convert_to_tensor(self.memory)
        stats = batch_statistics(
            features, labels, memory, self.ignore_class, self.update_resolution
        )
        if self.sync == "global":
            stats = [distribute.cross_replica_sum(s) for s in stats]
        new_memory = self.apply_statistics(memory, stats, ops.cast(momentum, "float32"))
        if self.sync == "replica_mean":
            new_memory = distribute.cross_replica_mean(new_memory)
        return new_memory

    def update(self, features, labels, momentum):
        """`next_state`, assigned, and the update counter advanced: the layer used on
        its own. Returns the new memory. (`MemorySegmenter` never calls this.)"""
        new_memory = self.next_state(features, labels, momentum)
        self.assign_state(new_memory, advanced=True)
        return new_memory

    def assign_state(self, new_memory, advanced):
        """Writes `new_memory` and advances `num_updates` by one where `advanced` (a
        bool or a scalar bool tensor): the one write of the memory's state."""
        self.memory.assign(new_memory)
        self.num_updates.assign(self.num_updates + ops.cast(advanced, "float32"))

    def apply_statistics(self, memory, stats, momentum):
        """The new memory from the old one and (reduced) per-slot statistics.

        `stats = (count, total, weighted_total, weight)` with shapes `(K*n,)`,
        `(K*n, C)`, `(K*n, C)`, `(K*n,)` (see `memory_statistics`).
        """
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
        finite = ops.all(ops.isfinite(new), axis=-1, keepdims=True)
        return ops.where(finite, new, memory)

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
                "ignore_class": self.ignore_class,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "ignore_index" in config:  # keras_memseg < 0.2
            config["ignore_class"] = config.pop("ignore_index")
        return cls(**config)
