"""Intra-class compactness and inter-class dispersion of pixel embeddings (NumPy).

The MCIBI paper (Jin et al., ICCV 2021, "Mining Contextual Information Beyond
Image for Semantic Segmentation") argues that the dataset-level memory makes the
pixel representations of a class tighter and the classes further apart; this
module puts numbers on both, with the cosine distance `1 - cos(a, b)` (the
similarity the memory update itself uses).

Per class k, from its pixels' features `x_i` (zero vectors have no direction and
are left out, and counted):
    centre_k      = mean_i(x_i / |x_i|)   (the mean of the *normalised* features)
    compactness_k = mean_i(1 - cos(x_i, centre_k))
Between the classes present:
    dispersion    = mean over pairs k < l of (1 - cos(centre_k, centre_l))
    nearest_k     = min over l != k of (1 - cos(centre_k, centre_l))
    ratio         = dispersion / mean_k(compactness_k)   (higher: better separated)

Why the centre is the mean of the normalised features: the distance is a cosine,
so only directions count, and `mean_i(x_i / |x_i|)` points in the direction that
maximises `sum_i cos(x_i, c)` (the spherical mean): the compactness is then the
smallest mean cosine distance any centre achieves. The mean of the raw features
would be pulled towards the pixels with the largest norms, which the cosine
distance otherwise ignores.
"""

import dataclasses
import math

import numpy as np


def normalize_rows(x, eps=1e-12):
    """Rows of `x` scaled to unit L2 norm; all-zero rows stay zero.

    Example:
    >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norms > eps, x / np.maximum(norms, eps), 0.0)


def json_float(value, digits=6):
    """`value` rounded for JSON; NaN and inf (invalid JSON) become None.

    Example:
    >>> json_float(1 / 3), json_float(float("nan"))
    (0.333333, None)
    """
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True)
class EmbeddingStatistics:
    """Compactness and dispersion of one layer's pixel embeddings.

    Absent classes (no sampled pixel with a non-zero feature) have NaN entries
    and are left out of every mean.

    Args:
        compactness: (K,) mean cosine distance of a class's pixels to its centre.
        nearest_class: (K,) int, the class with the closest centre (-1 if none).
        nearest_class_distance: (K,) cosine distance to that centre.
        centre_distances: (K, K) cosine distances between the centres.
        centres: (K, C) unit-norm class centres.
        num_pixels: (K,) int, pixels used per class.
        zero_feature_pixels: (K,) int, sampled pixels left out (all-zero features).
        mean_compactness: unweighted mean of `compactness` over present classes.
        dispersion: mean pairwise centre distance over present classes.
        ratio: `dispersion / mean_compactness`.
    """

    compactness: np.ndarray
    nearest_class: np.ndarray
    nearest_class_distance: np.ndarray
    centre_distances: np.ndarray
    centres: np.ndarray
    num_pixels: np.ndarray
    zero_feature_pixels: np.ndarray
    mean_compactness: float
    dispersion: float
    ratio: float

    @property
    def present(self):
        """(K,) bool: the classes with at least one usable pixel."""
        return self.num_pixels > 0

    def to_json(self, class_names=None):
        """A JSON-ready dict (NaN and inf become None); `per_class` keyed by name."""
        k = len(self.compactness)
        names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
        per_class = {}
        for i, name in enumerate(names):
            nearest = int(self.nearest_class[i])
            per_class[name] = {
                "compactness": json_float(self.compactness[i]),
                "nearest_class": names[nearest] if nearest >= 0 else None,
                "nearest_class_distance": json_float(self.nearest_class_distance[i]),
                "sampled_pixels": int(self.num_pixels[i]),
                "zero_feature_pixels": int(self.zero_feature_pixels[i]),
            }
        return {
            "mean_compactness": json_float(self.mean_compactness),
            "dispersion": json_float(self.dispersion),
            "ratio": json_float(self.ratio),
            "classes_present": int(np.sum(self.present)),
            "per_class": per_class,
        }


def embedding_statistics(features, labels, num_classes):
    """Per-class compactness, between-class dispersion and their ratio.

    Args:
        features: (N, C) pixel features (any float dtype).
        labels: (N,) class ids in [0, num_classes); other values are skipped.
        num_classes: K.

    Returns:
        `EmbeddingStatistics` (definitions in the module docstring).

    Example:
    >>> x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    >>> s = embedding_statistics(x, np.array([0, 0, 1, 1]), num_classes=2)
    >>> s.compactness.tolist(), round(s.dispersion, 6), s.nearest_class.tolist()
    ([0.0, 0.0], 1.0, [1, 0])
    """
    features = np.asarray(features)
    labels = np.asarray(labels).reshape(-1)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"features must be (N, C) and labels (N,), got {features.shape} and {labels.shape}"
        )
    k = int(num_classes)
    unit = normalize_rows(features)
    nonzero = np.any(unit != 0.0, axis=-1)
    valid = (labels >= 0) & (labels < k)
    zero_counts = np.bincount(labels[valid & ~nonzero].astype(np.int64), minlength=k)[:k]
    keep = valid & nonzero
    unit, labels = unit[keep], labels[keep].astype(np.int64)
    counts = np.bincount(labels, minlength=k)[:k]
    present = counts > 0

    sums = np.zeros((k, unit.shape[1]))
    np.add.at(sums, labels, unit)  # (N, C) -> (K, C)
    centres = normalize_rows(sums / np.maximum(counts, 1)[:, None])
    # A class whose unit vectors cancel out (centre norm 0) has no direction either.
    present &= np.any(centres != 0.0, axis=-1)
    centres[~present] = np.nan

    cos_to_centre = np.einsum("nc,nc->n", unit, np.nan_to_num(centres)[labels])
    dist_sums = np.zeros(k)
    np.add.at(dist_sums, labels, 1.0 - cos_to_centre)
    compactness = np.where(present, dist_sums / np.maximum(counts, 1), np.nan)

    centre_distances = 1.0 - centres @ centres.T  # NaN rows/columns for absent classes
    others = np.where(
        np.eye(k, dtype=bool) | ~present[None, :] | ~present[:, None], np.inf, centre_distances
    )
    nearest = np.where(present & (present.sum() > 1), np.argmin(others, axis=1), -1)
    nearest_distance = np.where(nearest >= 0, others[np.arange(k), np.maximum(nearest, 0)], np.nan)

    idx = np.flatnonzero(present)
    pairs = centre_distances[np.ix_(idx, idx)][np.triu_indices(len(idx), 1)]
    dispersion = float(np.mean(pairs)) if pairs.size else math.nan
    mean_compactness = float(np.mean(compactness[idx])) if idx.size else math.nan
    if math.isnan(dispersion) or math.isnan(mean_compactness):
        ratio = math.nan
    elif mean_compactness > 0:
        ratio = dispersion / mean_compactness
    else:
        ratio = math.inf
    return EmbeddingStatistics(
        compactness=compactness,
        nearest_class=nearest.astype(np.int64),
        nearest_class_distance=nearest_distance,
        centre_distances=centre_distances,
        centres=centres,
        num_pixels=np.where(present, counts, 0).astype(np.int64),
        zero_feature_pixels=zero_counts.astype(np.int64),
        mean_compactness=mean_compactness,
        dispersion=dispersion,
        ratio=ratio,
    )
