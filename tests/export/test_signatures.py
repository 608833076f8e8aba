"""The serving functions' pieces: the test-scale rule against the evaluation pipeline and a
NumPy transcription, image sizes read from JPEG/PNG/GIF/BMP headers against the decoder."""

import io

import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.export.signatures import SegmentationServer
from keras_memseg.export.signatures import serving_size

SCALES = [
    ((2048, 512), True),
    ((2048, 1024), True),
    ((473, 473), False),
    ((64, 32), True),
    ((40, 24), False),
]
IMAGE_SIZES = [
    (3000, 4000),
    (4000, 3000),
    (360, 480),
    (512, 512),
    (40, 48),
    (1, 7),
    (1080, 1920),
    (333, 1000),
    (17, 5),
]


def _numpy_size(height, width, test_scale, keep_ratio):
    """The reference's `Resize` rule at ratio 1, in float32 as the pipeline computes it."""
    if not keep_ratio:
        return test_scale[1], test_scale[0]
    f32 = np.float32
    factor = min(
        f32(max(test_scale)) / f32(max(height, width)),
        f32(min(test_scale)) / f32(min(height, width)),
    )
    return (
        max(int(f32(height) * factor + f32(0.5)), 1),
        max(int(f32(width) * factor + f32(0.5)), 1),
    )


@pytest.mark.parametrize("test_scale, keep_ratio", SCALES)
def test_serving_size_is_the_evaluation_resize(test_scale, keep_ratio):
    from keras_memseg.datasets import eval_pipeline

    heights, widths = np.array(IMAGE_SIZES).T
    got = np.stack([v.numpy() for v in serving_size(heights, widths, test_scale, keep_ratio)], 1)
    for (height, width), size in zip(IMAGE_SIZES, got):
        assert tuple(size) == _numpy_size(height, width, test_scale, keep_ratio)
        if height * width > 2_000_000:
            continue  # the pipeline resizes the whole image: keep the test light
        ds = tf.data.Dataset.from_tensors(
            {
                "image": tf.zeros((height, width, 3), tf.uint8),
                "label": tf.zeros((height, width), tf.uint8),
            }
        )
        batch = next(iter(eval_pipeline(ds, test_scale, keep_ratio)))
        assert tuple(size) == tuple(batch["image_size"][0].numpy()), (height, width)
    none = serving_size(heights, widths, None, True)
    np.testing.assert_array_equal(np.stack([v.numpy() for v in none], 1), IMAGE_SIZES)


def _encode(image, fmt):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(models):
    return SegmentationServer(models("aspp"), max_input_pixels=None)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP"])
def test_header_size_matches_the_decoder(fmt, server):
    rng = np.random.default_rng(0)
    for height, width in [(37, 61), (300, 4), (1, 1)]:
        image = rng.integers(0, 256, (height, width, 3)).astype("uint8")
        data = _encode(image, fmt)
        header = server._header_size(0, tf.constant(data), "x")
        decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
        assert tuple(header.numpy()) == tuple(decoded.shape[:2]) == (height, width), fmt


def test_header_size_of_a_top_down_bmp(server):
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    data = bytearray(_encode(image, "BMP"))
    data[22:26] = (-4).to_bytes(4, "little", signed=True)  # negative height: top-down rows
    header = server._header_size(0, tf.constant(bytes(data)), "x")
    assert tuple(header.numpy()) == (4, 6)
    decoded = tf.io.decode_image(bytes(data), channels=3, expand_animations=False)
    assert tuple(decoded.shape) == (4, 6, 3)
