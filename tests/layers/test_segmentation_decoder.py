import keras
import numpy as np
from keras_testing import run_layer_test

from keras_memseg.layers import SegmentationDecoder


def test_layer_contract(tmp_path):
    x = np.random.default_rng(0).random((2, 4, 5, 6)).astype("float32")
    run_layer_test(
        SegmentationDecoder, {"num_classes": 3, "channels": 8}, x, (2, 4, 5, 3), tmp_path=tmp_path
    )
    run_layer_test(SegmentationDecoder, {"num_classes": 3, "channels": None}, x, (2, 4, 5, 3))


def test_follows_the_reference_conventions():
    decoder = SegmentationDecoder(3, channels=4)
    decoder.build((None, 5, 5, 2))
    assert decoder.classifier.use_bias
    assert isinstance(decoder.drop, keras.layers.SpatialDropout2D)
    assert decoder.block.conv.kernel_size == (1, 1)
