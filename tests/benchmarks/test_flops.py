"""benchmarks/flops.py: nominal vs computed multiply-adds, against hand counts."""

import keras
import pytest
from benchmark_scripts import load_script

from keras_memseg.layers.conv_policy import conv2d


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="counts a TF graph")
def test_nominal_and_computed_counts_of_a_dilated_conv():
    flops = load_script("flops")
    inputs = keras.Input((8, 8, 4))
    dilated = conv2d(3, 3, padding="same", dilation_rate=6, use_bias=False)(inputs)
    dense = conv2d(5, 1, use_bias=False)(dilated)
    model = keras.Model(inputs, dense)
    # Hand counts, 2 x multiply-adds: the 3x3 at its nominal 8*8 outputs x 9 taps x 4
    # inputs x 3 outputs, plus the 1x1 (8*8 x 3 x 5).
    one_by_one = 2 * 64 * 3 * 5
    nominal, _, _ = flops.model_flops(model, (1, 8, 8, 4))
    assert nominal == 2 * 64 * 9 * 4 * 3 + one_by_one
    # At rate 6 on 8 rows, taps at offsets -6/0/+6 overlap the map on 2/8/2 rows (and
    # columns): in-map outputs (2 + 8 + 2)^2 = 144 of the nominal 9 x 64.
    computed, _, _ = flops.model_flops(model, (1, 8, 8, 4), nominal=False)
    assert computed == 2 * 144 * 4 * 3 + one_by_one
