import numpy as np
import pytest
from keras_testing import run_layer_test

from keras_memseg.layers import ImageNormalization
from keras_memseg.layers.image_normalization import IMAGENET_MEAN
from keras_memseg.layers.image_normalization import IMAGENET_STD


def test_layer_contract(tmp_path):
    run_layer_test(
        ImageNormalization,
        {},
        np.full((1, 2, 3, 3), 100.0, "float32"),
        (1, 2, 3, 3),
        tmp_path=tmp_path,
    )


def test_imagenet_statistics():
    x = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    expected = (x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(ImageNormalization()(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="std must be positive"):
        ImageNormalization(std=(1.0, 0.0, 1.0))
