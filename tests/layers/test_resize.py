import numpy as np
import tensorflow as tf

from keras_memseg.layers.resize import bilinear_resize


def test_static_and_dynamic_sizes_equal_tf_resize():
    x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype("float32")
    expected = tf.image.resize(x, (19, 23), method="bilinear").numpy()
    np.testing.assert_allclose(np.asarray(bilinear_resize(x, (19, 23))), expected, atol=1e-5)

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([2], tf.int32)]
    )
    def dynamic(images, size):
        return bilinear_resize(images, (size[0], size[1]))

    np.testing.assert_allclose(dynamic(x, tf.constant([19, 23])).numpy(), expected, atol=1e-5)
