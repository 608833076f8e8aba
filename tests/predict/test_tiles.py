"""keras_memseg.predict.tiles against the NumPy float64 transcription of TensorFlow's
bilinear resize (tests/predict/conftest.resize_bilinear), with tiles of a few rows."""

import numpy as np
import pytest

from keras_memseg.predict import tiles
from keras_memseg.predict.tiles import resize_bilinear
from keras_memseg.predict.tiles import resize_rows
from keras_memseg.predict.tiles import rows_per_tile
from keras_memseg.predict.tiles import upsampled_argmax
from tests.predict.conftest import resize_bilinear as oracle_resize

SIZES = [
    ((7, 9), (30, 41)),  # up
    ((84, 112), (168, 224)),  # x2, the predict tests' model size
    ((168, 224), (84, 112)),  # down
    ((33, 17), (8, 100)),  # down in height, up in width
    ((50, 60), (50, 61)),  # one axis unchanged
    ((5, 5), (5, 5)),  # identity
]


@pytest.fixture
def small_tiles(monkeypatch):
    monkeypatch.setattr(tiles, "TILE_BYTES", 4096)  # a few rows per tile


@pytest.mark.parametrize("in_size, out_size", SIZES)
def test_resize_matches_the_transcription(small_tiles, in_size, out_size):
    x = np.random.default_rng(0).normal(size=(*in_size, 4)).astype(np.float32) * 3
    assert rows_per_tile(in_size[1], out_size[1], 4) < out_size[0] or out_size[0] <= 5
    # TF (and so this) computes the source coordinates in float32: off by up to ~1e-6
    # per pixel of the input size, times the step between neighbours (|x| ~ 10 here).
    expected = oracle_resize(x, out_size)
    np.testing.assert_allclose(resize_bilinear(x, out_size), expected, rtol=0, atol=1e-4)
    rows = resize_rows(x, out_size, 2, 4)  # any band of rows on its own
    np.testing.assert_allclose(rows, expected[2:4], rtol=0, atol=1e-4)


@pytest.mark.parametrize("in_size, out_size", SIZES)
def test_resize_is_tensorflows(small_tiles, in_size, out_size):
    # What `predict` computed before (tf.image.resize at full size), to float32 rounding.
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(*in_size, 4)).astype(np.float32) * 3
    expected = tf.image.resize(x[None], out_size, "bilinear").numpy()[0]
    np.testing.assert_allclose(resize_bilinear(x, out_size), expected, rtol=0, atol=1e-6)


def test_a_uint8_image_is_read_a_few_rows_at_a_time(small_tiles):
    image = np.random.default_rng(1).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    out = resize_bilinear(image, (90, 120))
    assert out.dtype == np.float32
    # float32 source coordinates (as TF) times neighbour steps of up to 255 grey levels
    np.testing.assert_allclose(out, oracle_resize(image, (90, 120)), rtol=0, atol=0.02)


def test_upsampled_argmax_is_the_argmax_of_the_mean_of_the_resized_maps(small_tiles):
    rng = np.random.default_rng(2)
    maps = [rng.normal(size=(12, 16, 5)).astype(np.float32) for _ in range(2)]
    maps.append(rng.normal(size=(9, 12, 5)).astype(np.float32))  # another scale
    size = (47, 61)
    mean = sum(oracle_resize(m, size) for m in maps) / 3
    top2 = np.sort(mean, axis=-1)[..., -2:]
    confident = top2[..., 1] - top2[..., 0] > 1e-4  # float32 vs float64 rounding
    labels = upsampled_argmax(maps, size)
    assert labels.shape == size and labels.dtype == np.int32
    assert confident.mean() > 0.99
    np.testing.assert_array_equal(labels[confident], mean.argmax(-1)[confident])


def test_tile_rows_follow_the_budget():
    # 4 bytes x 150 classes x (9000 + 2 x 512) per output row: 6 MB -> 5 rows in 32 MB.
    assert rows_per_tile(512, 9000, 150) == 5
    assert rows_per_tile(512, 9000, 150, budget=1) == 1  # never zero
