"""Seeded, bounded per-class pixel sampling and the feature/label alignment of sample_embeddings."""

import numpy as np
import pytest

from keras_memseg.analysis import PixelSampler
from keras_memseg.analysis import default_layers
from keras_memseg.analysis import nearest_downsample
from keras_memseg.analysis import sample_embeddings


def test_nearest_downsample_takes_the_cell_centre():
    labels = np.arange(12 * 20).reshape(12, 20)
    out = nearest_downsample(labels, (3, 4))  # cells of 4 x 5 pixels: centres at 2, 2
    for i in range(3):
        for j in range(4):
            assert out[i, j] == labels[4 * i + 2, 5 * j + 2]
    assert nearest_downsample(labels[None], (3, 4)).shape == (1, 3, 4)


def bottom_k(labels, keys_seed, k, num_classes):
    """Independent oracle: one key per valid pixel in order, the k smallest per class."""
    valid = np.flatnonzero((labels >= 0) & (labels < num_classes))
    keys = np.random.default_rng(keys_seed).random(valid.size)
    chosen = {}
    for c in range(num_classes):
        mine = valid[labels[valid] == c]
        order = np.argsort(keys[labels[valid] == c], kind="stable")[:k]
        chosen[c] = set(mine[order].tolist())
    return chosen


def test_sampler_is_bottom_k_bounded_seeded_and_batch_independent():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 3000)
    labels[rng.random(3000) < 0.1] = 255
    labels[labels == 3] = 255  # class 3 absent
    features = {"f": np.arange(3000, dtype=np.float32)[:, None]}  # feature = pixel index

    def run(seed, chunks):
        sampler = PixelSampler(4, max_pixels_per_class=100, seed=seed)
        for part in np.array_split(np.arange(3000), chunks):
            sampler.add({"f": features["f"][part]}, labels[part], image_index=part // 100)
        return sampler.result()

    sample = run(seed=7, chunks=1)
    counts = np.bincount(sample.labels, minlength=4)
    assert counts.tolist() == [100, 100, 100, 0]
    np.testing.assert_array_equal(sample.pixels_seen[:3], np.bincount(labels[labels < 4]))
    picked = sample.features["f"][:, 0].astype(int)
    np.testing.assert_array_equal(labels[picked], sample.labels)  # features follow labels
    np.testing.assert_array_equal(sample.image_index, picked // 100)
    oracle = bottom_k(labels, 7, 100, 4)
    for c in range(3):
        assert set(picked[sample.labels == c].tolist()) == oracle[c]
    again = run(seed=7, chunks=13)  # same seed, other batching: the same pixels
    np.testing.assert_array_equal(np.sort(again.features["f"][:, 0]), np.sort(picked))
    other = run(seed=8, chunks=1)
    assert set(other.features["f"][:, 0].tolist()) != set(picked.tolist())


def test_sampler_keeps_everything_below_the_bound():
    sampler = PixelSampler(3, max_pixels_per_class=10, seed=0)
    sampler.add({"a": np.eye(5), "b": np.ones((5, 2))}, np.array([0, 1, 1, 255, 2]), 0)
    sample = sampler.result()
    assert sample.labels.tolist() == [0, 1, 1, 2]
    np.testing.assert_array_equal(sample.features["a"], np.eye(5)[[0, 1, 2, 4]])
    with pytest.raises(ValueError, match="layers changed"):
        sampler.add({"a": np.eye(5)}, np.zeros(5), 1)
    with pytest.raises(ValueError, match="max_pixels_per_class"):
        PixelSampler(3, max_pixels_per_class=0)


class CoordinateModel:
    """forward_heads returns, per feature cell of stride 4, (image id, row, col) of its centre."""

    num_classes = 5

    def forward_heads(self, images, training=False):
        images = np.asarray(images)
        b, h, w = images.shape[0], images.shape[1] // 4, images.shape[2] // 4
        ids = images[:, 0, 0, 0]
        grid = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1)
        coords = np.concatenate(
            [
                np.broadcast_to(ids[:, None, None, None], (b, h, w, 1)),
                np.broadcast_to(grid, (b, h, w, 2)),
            ],
            -1,
        ).astype("float32")
        return {"head_features": coords, "features": coords + 1.0, "logits": coords[..., :1]}


def test_sample_embeddings_aligns_features_with_downsampled_labels():
    rng = np.random.default_rng(0)
    batches, label_maps = [], []
    for i in range(3):
        images = np.full((2, 16, 24, 3), 0.0, "float32")
        images[:, 0, 0, 0] = [2 * i, 2 * i + 1]  # image ids
        labels = rng.integers(0, 5, (2, 30, 45))  # original size != 4 x feature size
        labels[:, :5] = 255
        batches.append({"image": images, "label": labels})
        label_maps.extend(labels)
    sample = sample_embeddings(
        CoordinateModel(),
        batches,
        layers=("head_features", "features"),
        max_pixels_per_class=20,
        seed=1,
        max_images=5,
    )
    assert sample.num_images == 5
    coords = sample.features["head_features"].astype(int)
    np.testing.assert_array_equal(sample.features["features"], coords + 1.0)  # same pixels
    for (image, row, col), label, index in zip(coords, sample.labels, sample.image_index):
        assert image == index < 5
        # feature cell (row, col) of a 4 x 6 grid over a 30 x 45 label map: its centre
        y, x = int((row + 0.5) * 30 / 4), int((col + 0.5) * 45 / 6)
        assert label_maps[image][y, x] == label
    small = nearest_downsample(np.stack(label_maps[:5]), (4, 6))
    assert sample.pixels_seen.sum() == np.sum(small != 255)
    assert np.bincount(sample.labels, minlength=5).max() <= 20
    with pytest.raises(ValueError, match="has no"):
        sample_embeddings(CoordinateModel(), batches, layers=("nope",))


def test_default_layers(tiny_models):
    assert default_layers(tiny_models["mcibi"]) == ("features", "head_features")
    assert default_layers(tiny_models["dlv3"]) == ("head_features",)
