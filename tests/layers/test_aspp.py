import numpy as np
import pytest
import tensorflow as tf
from keras_testing import run_layer_test

from keras_memseg.layers import ASPP


def test_layer_contract(tmp_path):
    run_layer_test(
        ASPP,
        {"filters": 8, "rates": (1, 2, 3)},
        np.random.default_rng(0).random((2, 6, 5, 4)).astype("float32"),
        (2, 6, 5, 8),
        tmp_path=tmp_path,
    )


def test_image_pool_equals_bilinear_upsampling_and_static_shapes():
    aspp = ASPP(filters=4, rates=(1, 2))
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype("float32")
    out = aspp(x).numpy()
    pooled = aspp.image_pool(x.mean(axis=(1, 2), keepdims=True)).numpy()
    upsampled = tf.image.resize(pooled, (5, 6), method="bilinear").numpy()
    cat = np.concatenate([b(x).numpy() for b in aspp.branches] + [upsampled], axis=-1)
    np.testing.assert_allclose(out, aspp.project(cat).numpy(), atol=1e-5)
    assert [b.kernel_size for b in aspp.branches] == [1, 3]
    fn = tf.function(lambda t: aspp(t), input_signature=[tf.TensorSpec((1, 8, 8, 3))])
    graph = fn.get_concrete_function().graph
    assert not [op for op in graph.get_operations() if "Resize" in op.type]


def test_bad_rates():
    with pytest.raises(ValueError, match="rates"):
        ASPP(4, rates=(0, 2))
