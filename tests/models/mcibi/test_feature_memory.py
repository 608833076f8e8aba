import numpy as np
import pytest
import tensorflow as tf
from keras_testing import run_layer_test
from memory_reference import reference_update

from keras_memseg.models import FeatureMemory
from keras_memseg.models.mcibi.memory_statistics import interpolation


def _random_batch(rng, num_classes, feat_hw=(4, 5), label_hw=(16, 20), channels=6, batch=2):
    feats = rng.normal(size=(batch, *feat_hw, channels)).astype("float32")
    # Classes 0..K-2 appear, class K-1 never does; ~15 % ignore pixels.
    labels = rng.integers(0, num_classes - 1, size=(batch, *label_hw)).astype("int32")
    labels[rng.random(labels.shape) < 0.15] = 255
    return feats, labels


def _upsampled_pixels(feats, label_hw):
    up = tf.image.resize(feats, label_hw, method="bilinear").numpy()
    return up.reshape(-1, feats.shape[-1])


def _resize_matrix(out_size, in_size):
    """(out_size, in_size) matrix of the cells and weights `interpolation` returns."""
    low, high, frac = interpolation(out_size, in_size)
    matrix = np.zeros((out_size, in_size))
    np.add.at(matrix, (np.arange(out_size), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(out_size), high), frac)
    return matrix


def test_interpolation_cells_match_tf_resize():
    x = np.random.default_rng(0).normal(size=(1, 5, 7, 3)).astype("float32")
    expected = tf.image.resize(x, (19, 23), method="bilinear").numpy()
    got = np.einsum("ia,jb,nabc->nijc", _resize_matrix(19, 5), _resize_matrix(23, 7), x)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("shapes", [((4, 5), (16, 20)), ((5, 7), (19, 23))], ids=["x4", "odd"])
@pytest.mark.parametrize("feats_per_class", [1, 3])
@pytest.mark.parametrize("momentum", [1.0, 0.9, 0.3, 0.009])
def test_update_matches_numpy_transcription(feats_per_class, momentum, shapes):
    rng = np.random.default_rng(int(momentum * 1000) + feats_per_class)
    num_classes, channels = 5, 6
    feat_hw, label_hw = shapes
    layer = FeatureMemory(num_classes, channels, feats_per_class=feats_per_class)
    expected = np.zeros((num_classes, feats_per_class, channels))
    # Several steps: the first fills rows (first-seen), later ones apply the EMA.
    for step in range(feats_per_class + 3):
        feats, labels = _random_batch(rng, num_classes, feat_hw, label_hw, channels=channels)
        feats += 3.0 * (step % 2)  # a shared offset: large norms, cosines near 1
        if step == 1:
            labels[labels == 2] = 255  # class 2 absent in this batch: its rows must not move
        expected = reference_update(
            expected, _upsampled_pixels(feats, labels.shape[1:]), labels.reshape(-1), momentum
        )
        layer.update(feats, labels, momentum)
        got = layer.memory.numpy()
        assert np.max(np.abs(got - expected)) <= 1e-5, f"step {step}"
    assert not np.any(got[num_classes - 1]), "a class never seen must keep a zero row"
    assert np.all(np.any(got[: num_classes - 1] != 0, axis=-1)), "seen classes fill every slot"


def test_first_seen_is_plain_mean_and_unseen_stays_zero():
    layer = FeatureMemory(num_classes=4, channels=3)
    feats = np.ones((1, 2, 2, 3), "float32") * np.array([1.0, 2.0, 3.0], "float32")
    labels = np.array([[[1, 1], [255, 255]]], "int32")
    layer.update(feats, labels, momentum=0.5)
    got = layer.memory.numpy()[:, 0]
    np.testing.assert_allclose(got[1], [1.0, 2.0, 3.0])
    assert not np.any(got[[0, 2, 3]])


def test_feature_resolution_mode_downsamples_labels():
    rng = np.random.default_rng(3)
    feats, labels = _random_batch(rng, 4, feat_hw=(4, 4), label_hw=(16, 16))
    layer = FeatureMemory(4, 6, update_resolution="feature")
    layer.update(feats, labels, 0.9)
    # Nearest half-pixel downsampling by 4 picks rows/cols 2, 6, 10, 14.
    small = labels[:, 2::4, 2::4].reshape(-1)
    expected = reference_update(np.zeros((4, 1, 6)), feats.reshape(-1, 6), small, 0.9)
    np.testing.assert_allclose(layer.memory.numpy(), expected, atol=1e-5)


def test_degenerate_inputs_give_no_nan():
    layer = FeatureMemory(num_classes=3, channels=4)
    constant = np.ones((2, 2, 2, 4), "float32")
    labels = np.zeros((2, 8, 8), "int32")
    for _ in range(3):  # equal to the memory row: sum(1 - cos) == 0 -> plain mean
        layer.update(constant, labels, 0.9)
    np.testing.assert_allclose(layer.memory.numpy()[0, 0], np.ones(4), atol=1e-6)
    layer.update(np.zeros((2, 2, 2, 4), "float32"), labels, 0.9)  # zero-norm features
    layer.update(constant, np.full((2, 8, 8), 255, "int32"), 0.9)  # all ignore
    assert np.all(np.isfinite(layer.memory.numpy()))


def test_read_soft_and_hard():
    layer = FeatureMemory(num_classes=2, channels=2, hard_aggregate=False)
    layer.memory.assign(np.array([[[1.0, 0.0]], [[0.0, 2.0]]], "float32"))
    probs = np.array([[[[0.25, 0.75]]]], "float32")
    np.testing.assert_allclose(layer(probs).numpy()[0, 0, 0], [0.25, 1.5])
    hard = FeatureMemory(num_classes=2, channels=2, hard_aggregate=True)
    hard.memory.assign(layer.memory.numpy())
    np.testing.assert_allclose(hard(probs).numpy()[0, 0, 0], [0.0, 2.0])


def test_read_has_no_gradient_into_memory_but_into_probs():
    layer = FeatureMemory(num_classes=2, channels=2)
    layer.memory.assign(np.array([[[1.0, 0.0]], [[0.0, 2.0]]], "float32"))
    probs = tf.Variable([[[[0.5, 0.5]]]])
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer(probs))
    grads = tape.gradient(out, [probs, layer.memory.value])
    assert grads[1] is None
    np.testing.assert_allclose(grads[0].numpy()[0, 0, 0], [1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sync": "local"}, "sync"),
        ({"update_resolution": "half"}, "update_resolution"),
        ({"feats_per_class": 0}, "feats_per_class"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {"num_classes": 3, "channels": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        FeatureMemory(**args)


@pytest.mark.parametrize("n, shape", [(1, (2, 3, 4, 8)), (2, (2, 3, 4, 2, 8))])
def test_layer_contract(n, shape, tmp_path):
    probs = np.full((2, 3, 4, 7), 1 / 7, "float32")
    run_layer_test(
        FeatureMemory,
        {
            "num_classes": 7,
            "channels": 8,
            "feats_per_class": n,
            "sync": "replica_mean",
            "update_resolution": "feature",
        },
        probs,
        shape,
        tmp_path=tmp_path,
    )


def test_legacy_ignore_index_config_loads():
    config = FeatureMemory(3, 4).get_config()
    config["ignore_index"] = config.pop("ignore_class")
    assert FeatureMemory.from_config(config).ignore_class == 255


def test_non_finite_updates_keep_the_old_rows():
    rng = np.random.default_rng(7)
    layer = FeatureMemory(num_classes=3, channels=4)
    feats, labels = _random_batch(rng, 3, feat_hw=(2, 2), label_hw=(2, 2), channels=4)
    labels[:] = 0
    labels[0, 0, 0] = 1
    layer.update(feats, labels, 0.9)
    before = layer.memory.numpy().copy()
    bad = feats.copy()
    bad[0, 0, 0, 0] = np.nan  # the one pixel of class 1 is NaN
    layer.update(bad, labels, 0.9)
    after = layer.memory.numpy()
    np.testing.assert_array_equal(after[1], before[1])  # class 1 kept
    assert np.all(np.isfinite(after)) and not np.allclose(after[0], before[0])
    layer.update(feats, labels, float("nan"))  # a NaN momentum (e.g. --learning_rate=nan)
    np.testing.assert_array_equal(layer.memory.numpy(), after)
