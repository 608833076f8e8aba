"""embedding_statistics against a loop-by-loop NumPy transcription and known answers."""

import math

import numpy as np
import pytest

from keras_memseg.analysis import embedding_statistics


def transcription(features, labels, num_classes):
    """Plain loops over classes and pairs, straight from the definitions."""
    centres, compactness = {}, {}
    for k in range(num_classes):
        rows = [
            f / np.linalg.norm(f)
            for f, l in zip(features, labels)
            if l == k and np.linalg.norm(f) > 0
        ]
        if not rows:
            continue
        c = np.mean(rows, axis=0)
        c = c / np.linalg.norm(c)
        centres[k] = c
        compactness[k] = np.mean([1.0 - float(r @ c) for r in rows])
    present = sorted(centres)
    pairs = [
        1.0 - float(centres[a] @ centres[b])
        for i, a in enumerate(present)
        for b in present[i + 1 :]
    ]
    nearest = {}
    for a in present:
        others = [(1.0 - float(centres[a] @ centres[b]), b) for b in present if b != a]
        nearest[a] = min(others) if others else (math.nan, -1)
    dispersion = np.mean(pairs)
    mean_compactness = np.mean([compactness[k] for k in present])
    return compactness, nearest, dispersion, mean_compactness, dispersion / mean_compactness


def clustered(num_classes, channels, per_class, spread, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, channels))
    labels = np.repeat(np.arange(num_classes), per_class)
    features = centres[labels] + spread * rng.normal(size=(len(labels), channels))
    return features * rng.uniform(0.5, 3.0, size=(len(labels), 1)), labels  # norms vary


@pytest.mark.parametrize("spread", [0.05, 0.5, 2.0])
def test_matches_transcription(spread):
    features, labels = clustered(5, 8, 40, spread, seed=1)
    labels = labels.copy()
    labels[::7] = 255  # ignored
    features[3] = 0.0  # a zero vector: left out, counted
    s = embedding_statistics(features, labels, num_classes=6)  # class 5 absent
    compactness, nearest, dispersion, mean_compactness, ratio = transcription(features, labels, 6)
    for k in range(5):
        assert s.compactness[k] == pytest.approx(compactness[k], abs=1e-10)
        assert s.nearest_class_distance[k] == pytest.approx(nearest[k][0], abs=1e-10)
        assert s.nearest_class[k] == nearest[k][1]
    assert np.isnan(s.compactness[5]) and s.nearest_class[5] == -1 and s.num_pixels[5] == 0
    assert s.dispersion == pytest.approx(dispersion, abs=1e-10)
    assert s.mean_compactness == pytest.approx(mean_compactness, abs=1e-10)
    assert s.ratio == pytest.approx(ratio, rel=1e-10)
    assert s.num_pixels.sum() + s.zero_feature_pixels.sum() == np.sum(labels < 6)
    assert s.zero_feature_pixels[labels[3]] == (1 if labels[3] < 6 else 0)


def test_tight_clusters_on_orthogonal_centres():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    features = np.eye(4)[labels] * 5.0 + 1e-4 * rng.normal(size=(200, 4))
    s = embedding_statistics(features, labels, 4)
    assert np.all(s.compactness < 1e-6)
    assert s.dispersion == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(s.nearest_class_distance, 1.0, atol=1e-4)
    assert s.ratio > 1e5


def test_hand_computed_example():
    # class 0: directions (1, 0) and (0, 1) -> centre (1, 1)/sqrt(2), each at 1 - 1/sqrt(2)
    # class 1: (1, 1) twice -> centre (1, 1)/sqrt(2), compactness 0
    # class 2: (-1, 0) -> compactness 0
    features = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0], [4.0, 4.0], [-1.0, 0.0]])
    labels = np.array([0, 0, 1, 1, 2])
    s = embedding_statistics(features, labels, 3)
    d = 1.0 - 1.0 / math.sqrt(2.0)
    np.testing.assert_allclose(s.compactness, [d, 0.0, 0.0], atol=1e-12)
    # centre distances: 0-1: 0, 0-2: 1 + 1/sqrt(2), 1-2: 1 + 1/sqrt(2)
    far = 1.0 + 1.0 / math.sqrt(2.0)
    assert s.dispersion == pytest.approx((0.0 + far + far) / 3)
    assert s.mean_compactness == pytest.approx(d / 3)
    assert s.ratio == pytest.approx(((2 * far) / 3) / (d / 3))
    assert s.nearest_class.tolist() == [1, 0, 0]
    np.testing.assert_allclose(s.nearest_class_distance, [0.0, 0.0, far], atol=1e-12)


def test_one_class_and_json():
    s = embedding_statistics(np.array([[1.0, 0.0], [1.0, 0.1]]), np.array([1, 1]), 2)
    assert math.isnan(s.dispersion) and math.isnan(s.ratio)
    out = s.to_json(["a", "b"])
    assert out["dispersion"] is None and out["classes_present"] == 1
    assert out["per_class"]["a"]["compactness"] is None
    assert out["per_class"]["b"]["sampled_pixels"] == 2
    assert out["per_class"]["b"]["nearest_class"] is None


def test_bad_shapes():
    with pytest.raises(ValueError, match="features must be"):
        embedding_statistics(np.zeros((3, 2)), np.zeros(4), 2)
