"""Pixel embeddings of a segmenter over a dataset split: a bounded, seeded sample per class.

Features come from `model.forward_heads(images, training=False)` (backend-agnostic:
`keras.ops` only), at the feature resolution (1/8 of the input at output stride 8).
The labels are brought to that resolution by nearest-neighbour downsampling with
half-pixel centres: feature cell `i` takes the label at row
`floor((i + 0.5) * H / h)` of the `(H, W)` label map, i.e. at the cell's centre
(the same rule as `FeatureMemory(update_resolution="feature")`). Pixels labelled
`ignore_class` (255) are skipped.

Sampling is uniform without replacement over all the split's pixels of a class,
in one pass and with bounded memory: every valid pixel gets a random key from a
seeded generator, and each class keeps the `max_pixels_per_class` pixels with the
smallest keys (bottom-k sampling, equivalent to reservoir sampling). The same
seed, data order and feature resolution give the same pixels, so two models with
the same output stride are measured on the same pixels.
"""

import dataclasses

import numpy as np
from keras import ops

from keras_memseg.analysis.statistics import embedding_statistics

IGNORE_CLASS = 255


def default_layers(model):
    """The layers to analyse: `("features", "head_features")` for a MemorySegmenter
    (F, what the memory is read with and updated from, and the classifier input after
    memory aggregation and context fusion), `("head_features",)` otherwise (the
    DeepLabV3 ASPP output)."""
    from keras_memseg.models import MemorySegmenter

    if isinstance(model, MemorySegmenter):
        return ("features", "head_features")
    return ("head_features",)


def nearest_downsample(labels, size):
    """Half-pixel nearest-neighbour resampling of (..., H, W) labels to `size` (h, w).

    Example:
    >>> nearest_downsample(np.arange(16).reshape(4, 4), (2, 2)).tolist()
    [[5, 7], [13, 15]]
    """
    labels = np.asarray(labels)
    in_h, in_w = labels.shape[-2:]
    out_h, out_w = int(size[0]), int(size[1])
    rows = np.minimum(np.floor((np.arange(out_h) + 0.5) * in_h / out_h).astype(np.int64), in_h - 1)
    cols = np.minimum(np.floor((np.arange(out_w) + 0.5) * in_w / out_w).astype(np.int64), in_w - 1)
    return labels[..., rows[:, None], cols[None, :]]


@dataclasses.dataclass
class PixelSample:
    """Sampled pixel features of one or more layers (the same pixels for each layer).

    Args:
        features: layer name -> (N, C) float32 features.
        labels: (N,) int64 class ids.
        image_index: (N,) int64 index of the image (in dataset order) of each pixel.
        pixels_seen: (K,) int64 valid pixels per class in the whole pass
            (at feature resolution) before sampling.
        num_images: images processed.
        max_pixels_per_class: the bound of the sample.
        seed: the sampling seed.
    """

    features: dict
    labels: np.ndarray
    image_index: np.ndarray
    pixels_seen: np.ndarray
    num_images: int
    max_pixels_per_class: int
    seed: int

    @property
    def num_classes(self):
        return len(self.pixels_seen)

    def statistics(self, layer):
        """`EmbeddingStatistics` of one sampled layer."""
        if layer not in self.features:
            raise ValueError(f"layer {layer!r} was not sampled; sampled: {sorted(self.features)}")
        return embedding_statistics(self.features[layer], self.labels, self.num_classes)


class PixelSampler:
    """Seeded bottom-k sampler: at most `max_pixels_per_class` pixels per class.

    Args:
        num_classes: K; labels outside [0, K) (255 included) are skipped.
        max_pixels_per_class: the bound per class.
        seed: seed of the keys.

    Example:
    >>> sampler = PixelSampler(num_classes=2, max_pixels_per_class=3, seed=0)
    >>> labels = np.array([0, 0, 0, 0, 1, 255])
    >>> sampler.add({"f": np.arange(12.0).reshape(6, 2)}, labels, image_index=0)
    >>> sample = sampler.result()
    >>> np.bincount(sample.labels).tolist(), sample.pixels_seen.tolist()
    ([3, 1], [4, 1])
    """

    def __init__(self, num_classes, max_pixels_per_class=2000, seed=0):
        if int(max_pixels_per_class) < 1:
            raise ValueError(f"max_pixels_per_class must be >= 1, got {max_pixels_per_class}")
        self.num_classes = int(num_classes)
        self.max_pixels = int(max_pixels_per_class)
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._keys = [np.zeros(0) for _ in range(self.num_classes)]
        self._features = [None] * self.num_classes  # class -> {layer: (n, C)}
        self._images = [np.zeros(0, np.int64) for _ in range(self.num_classes)]
        self._seen = np.zeros(self.num_classes, np.int64)
        self._layers = None
        self.num_images = 0

    def add(self, features, labels, image_index):
        """Offers pixels to the sample.

        Args:
            features: layer name -> (N, C) array (the same N pixels for every layer).
            labels: (N,) class ids.
            image_index: an int, or (N,) ints, the image of each pixel.
        """
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        layers = tuple(sorted(features))
        if self._layers is None:
            self._layers = layers
        elif layers != self._layers:
            raise ValueError(f"layers changed from {self._layers} to {layers}")
        image_index = np.broadcast_to(np.asarray(image_index, np.int64), labels.shape)
        valid = np.flatnonzero((labels >= 0) & (labels < self.num_classes))
        keys = self._rng.random(valid.size)  # one key per valid pixel, in pixel order
        valid_labels = labels[valid]
        features = {name: np.asarray(features[name], np.float32) for name in layers}
        for k in np.unique(valid_labels):
            chosen, new_keys = valid[valid_labels == k], keys[valid_labels == k]
            self._seen[k] += chosen.size
            all_keys = np.concatenate([self._keys[k], new_keys])
            if all_keys.size > self.max_pixels:
                keep = np.sort(np.argpartition(all_keys, self.max_pixels - 1)[: self.max_pixels])
            else:
                keep = np.arange(all_keys.size)
            old = self._keys[k].size
            keep_old, keep_new = keep[keep < old], keep[keep >= old] - old
            self._keys[k] = all_keys[keep]
            self._images[k] = np.concatenate(
                [self._images[k][keep_old], image_index[chosen[keep_new]]]
            )
            stored = self._features[k]
            merged = {}
            for name in layers:
                new = features[name][chosen[keep_new]]
                merged[name] = (
                    new if stored is None else np.concatenate([stored[name][keep_old], new], axis=0)
                )
            self._features[k] = merged

    def result(self):
        """The sample so far, as a `PixelSample` (pixels ordered by class)."""
        layers = self._layers or ()
        present = [k for k in range(self.num_classes) if self._features[k] is not None]
        features = {}
        for name in layers:
            parts = [self._features[k][name] for k in present]
            features[name] = np.concatenate(parts, axis=0) if parts else np.zeros((0, 0))
        labels = (
            np.concatenate([np.full(self._keys[k].size, k, np.int64) for k in present])
            if present
            else np.zeros(0, np.int64)
        )
        images = (
            np.concatenate([self._images[k] for k in present]) if present else np.zeros(0, np.int64)
        )
        return PixelSample(
            features=features,
            labels=labels,
            image_index=images,
            pixels_seen=self._seen.copy(),
            num_images=self.num_images,
            max_pixels_per_class=self.max_pixels,
            seed=self.seed,
        )


def _batches(dataset):
    for batch in dataset:
        if isinstance(batch, dict):
            yield batch["image"], batch["label"]
        else:
            yield batch[0], batch[1]


def sample_embeddings(
    model,
    dataset,
    layers=None,
    num_classes=None,
    max_pixels_per_class=2000,
    seed=0,
    max_images=None,
    ignore_class=IGNORE_CLASS,
    forward=None,
):
    """Runs `model.forward_heads` over a dataset and samples per-class pixel features.

    Args:
        model: a keras_memseg segmenter (`MemorySegmenter`, `DeepLabV3`).
        dataset: iterable of `{"image": (B, h, w, 3) normalised float32,
            "label": (B, H, W) int}` (e.g. `keras_memseg.datasets.eval_pipeline`
            with batch 1) or of `(images, labels)` tuples; the labels may be at
            any size (the original one) and are nearest-downsampled.
        layers: keys of `forward_heads` to sample, all at the same resolution
            (default: `default_layers(model)`).
        num_classes: K (default: `model.num_classes`).
        max_pixels_per_class: bound of the sample per class (2000).
        seed: sampling seed.
        max_images: stop after this many images (None: all).
        ignore_class: label value skipped (255).
        forward: `images -> dict` replacing the eager
            `model.forward_heads(images, training=False)`, e.g. a compiled one
            (`keras_memseg.analysis.tf_forward.compiled_forward_heads`).

    Returns:
        `PixelSample`.

    Example:
    >>> from keras_memseg.backbones import DilatedResNetBackbone
    >>> from keras_memseg.models import DeepLabV3
    >>> model = DeepLabV3(DilatedResNetBackbone(depth=18, base_channels=8), num_classes=3,
    ...                   feats_channels=16, aux_channels=8)
    >>> images = np.zeros((2, 32, 32, 3), "float32")
    >>> labels = np.random.default_rng(0).integers(0, 3, (2, 32, 32))
    >>> sample = sample_embeddings(model, [(images, labels)], max_pixels_per_class=5)
    >>> sample.features["head_features"].shape, int(sample.pixels_seen.sum())
    ((15, 16), 32)
    """
    layers = tuple(layers) if layers else default_layers(model)
    num_classes = int(num_classes if num_classes is not None else model.num_classes)
    sampler = PixelSampler(num_classes, max_pixels_per_class, seed)
    for images, labels in _batches(dataset):
        if max_images is not None and sampler.num_images >= max_images:
            break
        images = ops.convert_to_tensor(images, "float32")
        labels = np.asarray(ops.convert_to_numpy(labels))
        if labels.ndim == 4:
            labels = labels[..., 0]
        if max_images is not None:
            keep = max_images - sampler.num_images
            images, labels = images[:keep], labels[:keep]
        outputs = (
            forward(images) if forward is not None else model.forward_heads(images, training=False)
        )
        missing = [name for name in layers if name not in outputs]
        if missing:
            raise ValueError(
                f"{type(model).__name__}.forward_heads has no {missing}; "
                f"it returns {sorted(outputs)}"
            )
        arrays = {name: ops.convert_to_numpy(ops.cast(outputs[name], "float32")) for name in layers}
        sizes = {name: a.shape[1:3] for name, a in arrays.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(
                f"layers must share one resolution to sample the same pixels, got {sizes}"
            )
        batch, h, w = next(iter(arrays.values())).shape[:3]
        small = nearest_downsample(labels, (h, w)).astype(np.int64)  # (B, h, w)
        small[small == ignore_class] = -1
        flat = {name: a.reshape(batch * h * w, -1) for name, a in arrays.items()}
        image_index = sampler.num_images + np.repeat(np.arange(batch), h * w)
        sampler.add(flat, small.reshape(-1), image_index)
        sampler.num_images += batch
    return sampler.result()
