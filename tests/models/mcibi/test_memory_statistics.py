"""The per-slot statistics behind the memory update, against explicit upsampling."""

import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.models.mcibi import memory_statistics as stats


def _batch(seed, feat_hw, label_hw, k=4, n=1, c=5):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(2, *feat_hw, c)).astype("float32")
    labels = rng.integers(0, k, size=(2, *label_hw)).astype("int32")
    labels[rng.random(labels.shape) < 0.2] = 255
    labels[0, 0, 0] = k + 3  # out of range: belongs to no slot
    memory = rng.normal(size=(k, n, c)).astype("float32")
    memory[1] = 0.0  # an empty class row
    return feats, labels, memory


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("shapes", [((4, 5), (16, 20)), ((3, 7), (17, 29))], ids=["x4", "odd"])
def test_upsampled_statistics_equal_those_of_explicitly_upsampled_pixels(n, shapes):
    feats, labels, memory = _batch(n, *shapes, n=n)
    up = tf.image.resize(feats, shapes[1], method="bilinear").numpy()  # TF as the oracle
    expected = stats.pixel_statistics(up.reshape(-1, 5), labels.reshape(-1), memory, 255)
    got = stats.upsampled_statistics(feats, labels, memory, 255)
    for name, e, g in zip(("count", "total", "weighted", "weight"), expected, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-4, atol=1e-4, err_msg=name)


def test_pixel_statistics_by_hand():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]], "float32")
    y = np.array([0, 0, 255], "int32")
    memory = np.array([[[1.0, 0.0]], [[0.0, 0.0]]], "float32")
    count, total, weighted, weight = (
        np.asarray(v) for v in stats.pixel_statistics(x, y, memory, 255)
    )
    np.testing.assert_allclose(count, [2.0, 0.0])
    np.testing.assert_allclose(total, [[1.0, 2.0], [0.0, 0.0]])
    # cos(x0, m) = 1 -> weight 0; cos(x1, m) = 0 -> weight 1.
    np.testing.assert_allclose(weight, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(weighted, [[0.0, 2.0], [0.0, 0.0]], atol=1e-6)


def test_dynamic_shapes_upsample_in_one_piece():
    feats, labels, memory = _batch(3, (4, 5), (16, 20))
    expected = stats.batch_statistics(feats, labels, memory, 255)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 5]),
            tf.TensorSpec([None, None, None], tf.int32),
        ]
    )
    def dynamic(f, y):
        return stats.batch_statistics(f, y, tf.constant(memory), 255)

    for e, g in zip(expected, dynamic(feats, labels)):
        np.testing.assert_allclose(g.numpy(), np.asarray(e), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="static spatial shapes"):
        tf.function(
            lambda f, y: stats.batch_statistics(f, y, memory, 255, "feature"),
            input_signature=dynamic.input_signature,
        )(feats, labels)


def test_nearest_indices_pick_half_pixel_centres():
    assert stats.nearest_indices(4, 16).tolist() == [2, 6, 10, 14]
    assert stats.nearest_indices(3, 7).tolist() == [1, 3, 5]
