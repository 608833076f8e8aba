import keras
import numpy as np
import pytest
from keras_testing import run_layer_test

from keras_memseg.layers import ConvBNAct


def test_layer_contract(tmp_path):
    run_layer_test(
        ConvBNAct,
        {"filters": 8, "kernel_size": 3, "dilation_rate": 2},
        np.random.default_rng(0).random((2, 5, 6, 3)).astype("float32"),
        (2, 5, 6, 8),
        tmp_path=tmp_path,
    )


def test_follows_the_reference_conventions():
    block = ConvBNAct(4, 3)
    block.build((None, 5, 5, 2))
    assert not block.conv.use_bias and block.bn.epsilon == 1e-5 and block.bn.momentum == 0.9
    assert isinstance(ConvBNAct(4, 1, activation="leaky_relu").act, keras.layers.LeakyReLU)
    with pytest.raises(ValueError, match="activation"):
        ConvBNAct(4, 1, activation="swish")
