"""Metadata in the segmenter's config, `SegmenterPreprocessor` and `Segmenter.segment`.

Oracles: labels of `segment` against the argmax of `model.predict` on images
normalised here in NumPy, and against `keras_memseg.predict.predict_image` (the
existing file path); test sizes against TensorFlow's `rescale_size`.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import DeepLabV3
from keras_memseg.models import MemorySegmenter
from keras_memseg.models import SegmenterPreprocessor
from keras_memseg.models import load_segmenter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])
K = 3


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    model = DeepLabV3(
        DilatedResNetBackbone(depth=18, base_channels=8),
        K,
        feats_channels=16,
        aux_channels=8,
        **kwargs,
    )
    model(np.zeros((1, 32, 32, 3), "float32"))
    return model


@pytest.fixture(scope="module")
def model():
    return _model()


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype("uint8")


def _oracle(model, image):
    x = ((np.asarray(image, np.float64) - MEAN) / STD).astype("float32")[None]
    return np.argmax(model.predict(x, verbose=0)[0], -1)


# -- metadata ----------------------------------------------------------------------


def test_defaults_and_validation():
    model = _model()
    assert model.class_names == ("class_0", "class_1", "class_2")
    assert len(set(model.palette)) == K and not model.has_class_names
    assert model.preprocessor.test_scale is None
    with pytest.raises(ValueError, match="^class_names must hold num_classes=3 strings"):
        _model(class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"^palette\[1\] must be an \(r, g, b\) triple"):
        _model(palette=[(0, 0, 0), (0, 0), (1, 1, 1)])
    with pytest.raises(ValueError, match="^preprocessor must be a SegmenterPreprocessor"):
        _model(preprocessor="imagenet")
    with pytest.raises(ValueError, match="^mode must be one of"):
        SegmenterPreprocessor(mode="tiles")
    with pytest.raises(ValueError, match="^test_scale must be two positive integers"):
        SegmenterPreprocessor(test_scale=(512,))


class _Spec:
    """A duck-typed DatasetSpec."""

    class augment:
        test_scale = (96, 48)
        test_keep_ratio = True

    class evaluation:
        mode = "slide"
        crop_size = (24, 24)
        stride = (16, 16)
        scales = (1.0,)
        flip = False
        probs_before_resize = False

    name = "toy"
    class_names = ("sky", "road", "car")
    palette = ((1, 2, 3), (4, 5, 6), (7, 8, 9))
    ignore_class = 254
    flip_pairs = ()


def test_set_dataset_info_before_build_is_saved(tmp_path):
    keras.utils.set_random_seed(0)
    model = MemorySegmenter(
        DilatedResNetBackbone(depth=18, base_channels=8),
        K,
        feats_channels=16,
        transform_channels=8,
        aux_channels=8,
    )
    model.set_dataset_info(_Spec)  # not built yet
    model(np.zeros((1, 32, 32, 3), "float32"))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = load_segmenter(path)
    assert loaded.class_names == _Spec.class_names and loaded.palette == _Spec.palette
    assert loaded.ignore_class == 254
    pre = loaded.preprocessor
    assert (pre.test_scale, pre.keep_ratio, pre.mode) == ((96, 48), True, "slide")
    assert (pre.slide_window, pre.slide_stride) == ((24, 24), (16, 16))
    config = loaded.get_config()
    json.dumps(config)  # JSON-friendly
    assert config["class_names"] == list(_Spec.class_names)
    # the preset folder too, with the metadata recorded in metadata.json
    loaded.save_to_preset(str(tmp_path / "preset"))
    again = MemorySegmenter.from_preset(str(tmp_path / "preset"))
    assert again.class_names == _Spec.class_names and again.preprocessor.mode == "slide"
    meta = json.loads((tmp_path / "preset" / "metadata.json").read_text())
    assert meta["class_names"] == list(_Spec.class_names) and meta["test_scale"] == [96, 48]
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_set_dataset_info_refuses_another_class_count(model):
    class Five(_Spec):
        class_names = tuple("abcde")
        palette = ((0, 0, 0),) * 5
        variants = {}

    with pytest.raises(ValueError, match="^dataset 'toy' has 5 classes but the model predicts 3"):
        model.set_dataset_info(Five)


def test_old_config_without_metadata_loads(model):
    config = model.get_config()
    for key in ("class_names", "palette", "preprocessor"):
        config.pop(key)
    restored = DeepLabV3.from_config(config)
    assert restored.class_names == ("class_0", "class_1", "class_2")


def test_resize_size_matches_tensorflow_rescale_size():
    from keras_memseg.datasets.transforms import rescale_size

    for h, w in ((360, 480), (480, 360), (37, 1000), (512, 512), (1, 7)):
        for scale, keep in (((2048, 512), True), ((473, 473), False), ((480, 360), True)):
            pre = SegmenterPreprocessor(test_scale=scale, keep_ratio=keep)
            expected = tuple(int(v) for v in rescale_size(h, w, scale, keep))
            assert pre.resize_size(h, w) == expected, (h, w, scale, keep)


# -- segment -----------------------------------------------------------------------


def test_segment_full_size_is_the_argmax_of_predict(model):
    image = _image(40, 56)
    labels = model.segment(image)
    assert labels.shape == (40, 56) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, _oracle(model, image))
    labels, probs = model.segment(image, return_probabilities=True)
    assert probs.shape == (40, 56, K) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(probs, -1), labels)


def test_segment_at_the_test_scale_matches_predict_image(model):
    from keras_memseg.predict import predict_image
    from keras_memseg.predict.loading import wrap_model

    pre = SegmenterPreprocessor(test_scale=(48, 32))
    model.set_metadata(preprocessor=pre)
    try:
        image = _image(60, 90, seed=1)
        size = pre.resize_size(60, 90)
        assert size == (32, 48)
        expected = predict_image(wrap_model(model), image, pre.inference_config(), size)
        labels = model.segment(image)
        assert labels.shape == (60, 90)
        assert np.mean(labels == expected) > 0.99
        # full_size ignores the test scale
        np.testing.assert_array_equal(model.segment(image, full_size=True), _oracle(model, image))
    finally:
        model.set_metadata()


def test_slide_with_a_window_over_the_image_is_whole(model):
    image = _image(30, 40, seed=2)
    whole = model.segment(image, return_probabilities=True)[1]
    model.set_metadata(preprocessor=SegmenterPreprocessor(mode="slide", slide_window=(64, 64)))
    try:
        slide = model.segment(image, return_probabilities=True)[1]
    finally:
        model.set_metadata()
    np.testing.assert_allclose(slide, whole, atol=1e-5)


def test_segment_input_kinds(model, tmp_path):
    from PIL import Image

    a, b = _image(32, 48, seed=3), _image(40, 24, seed=4)
    one_a, one_b = model.segment(a), model.segment(b)
    out = model.segment([a, b])
    assert isinstance(out, list)
    np.testing.assert_array_equal(out[0], one_a)
    np.testing.assert_array_equal(out[1], one_b)
    batch = model.segment(np.stack([a, a]))
    assert batch.shape == (2, 32, 48)
    np.testing.assert_array_equal(batch[1], one_a)
    np.testing.assert_array_equal(model.segment(a.astype("float32")), one_a)
    np.testing.assert_array_equal(model.segment(Image.fromarray(a)), one_a)
    path = tmp_path / "a.png"
    Image.fromarray(a).save(path)
    np.testing.assert_array_equal(model.segment(path), one_a)
    np.testing.assert_array_equal(model.segment(str(path)), one_a)
    # a JPEG rotated by its EXIF orientation (6: 90 degrees clockwise) is read upright
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = tmp_path / "r.jpg"
    Image.fromarray(np.ascontiguousarray(np.rot90(a, 1))).save(rotated, exif=exif, quality=95)
    assert model.segment(rotated).shape == (32, 48)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((8, 8), "uint8"), r"^images: expected a \(height, width, 3\) image"),
        (np.zeros((8, 8, 4), "uint8"), r"^images: expected a \(height, width, 3\) image"),
        (np.zeros((8, 8, 3), "int64"), "^images: images must be uint8 or float"),
        ([np.zeros((8, 8, 3), "uint8"), np.zeros((8, 8, 1))], r"^images\[1\]: an image must"),
        ([], "^images: got an empty list"),
        ("/no/such/image.png", "^images: /no/such/image.png: no such image file"),
        (object(), "^images: expected an image array, a PIL image or a file path"),
    ],
)
def test_segment_bad_input_is_one_line(model, images, message):
    with pytest.raises(ValueError, match=message) as error:
        model.segment(images)
    assert "\n" not in str(error.value)


def test_segment_unreadable_file(model, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ValueError, match=f"^images\\[0\\]: {path}: not an image Pillow can read"):
        model.segment([path])


JAX_SCRIPT = """
import sys, numpy as np
from keras_memseg.models import load_segmenter
model = load_segmenter(sys.argv[1])
image = np.load(sys.argv[2])
labels, probs = model.segment([image, image[:20]], return_probabilities=True)
np.save(sys.argv[3], labels[0]); np.save(sys.argv[4], probs[0])
assert labels[1].shape == (20, image.shape[1]) and labels[0].dtype == np.uint8
print("OK", model.preprocessor.mode)
"""


@pytest.mark.parametrize("backend", ["jax"])
def test_segment_on_another_backend(model, tmp_path, backend):
    pre = SegmenterPreprocessor(
        test_scale=(48, 32), mode="slide", slide_window=(24, 24), slide_stride=(16, 16), flip=True
    )
    model.set_metadata(class_names=["a", "b", "c"], preprocessor=pre)
    try:
        path = str(tmp_path / "m.keras")
        model.save(path)
        image = _image(50, 70, seed=5)
        labels, probs = model.segment(image, return_probabilities=True)
    finally:
        model.set_metadata()
    np.save(tmp_path / "image.npy", image)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    outs = [str(tmp_path / "labels.npy"), str(tmp_path / "probs.npy")]
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, path, str(tmp_path / "image.npy"), *outs],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "OK slide" in proc.stdout, proc.stderr[-4000:]
    np.testing.assert_allclose(np.load(outs[1]), probs, atol=1e-3)
    assert np.mean(np.load(outs[0]) == labels) > 0.99
