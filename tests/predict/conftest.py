"""A tiny MemorySegmenter saved three ways (.keras, preset, SavedModel) and the NumPy oracle."""

import glob
import os

import numpy as np
import pytest

NUM_CLASSES = 11  # CamVid's, so --dataset camvid gives names and palette
SAMPLE_DIR = os.path.join(
    os.path.dirname(__file__), "..", "..", "keras_memseg", "datasets", "sample", "val"
)
MEAN = np.array([123.675, 116.28, 103.53])  # ImageNet, on the 0-255 scale
STD = np.array([58.395, 57.12, 57.375])
# Pixels whose two best oracle logits are closer than this are not compared: float32
# rounding (graph vs eager, TF vs NumPy resize, log-softmax) may order them either way.
# The logits spread over about +-2 (see `spread_logits`), so this is a relative 5e-4.
MARGIN = 1e-3


def sample_images():
    paths = sorted(glob.glob(os.path.join(SAMPLE_DIR, "*.png")))
    assert len(paths) >= 3, SAMPLE_DIR
    return paths


def read_rgb(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.uint8)


def resize_bilinear(x, size):
    """NumPy `tf.image.resize(x, size, "bilinear")` (half-pixel centres, no antialias) of
    an (h, w, C) array, in float64."""

    def axis(in_size, out_size):
        src = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
        low = np.floor(src)
        frac = src - low
        return (
            np.clip(low, 0, in_size - 1).astype(int),
            np.clip(low + 1, 0, in_size - 1).astype(int),
            frac,
        )

    x = np.asarray(x, np.float64)
    if tuple(size) == x.shape[:2]:
        return x
    top, bottom, fy = axis(x.shape[0], size[0])
    left, right, fx = axis(x.shape[1], size[1])
    fx = fx[None, :, None]
    rows_top = x[top][:, left] * (1 - fx) + x[top][:, right] * fx
    rows_bottom = x[bottom][:, left] * (1 - fx) + x[bottom][:, right] * fx
    return rows_top * (1 - fy[:, None, None]) + rows_bottom * fy[:, None, None]


def oracle_logits(model, image, size=None, flip=False):
    """Resize (NumPy) -> normalise (NumPy) -> `model(x)` -> resize back (NumPy), float64;
    with `flip`, the mean with the flipped image's flipped-back logits."""
    height, width = image.shape[:2]
    size = size or (height, width)
    x = (resize_bilinear(image, size) - MEAN) / STD
    runs = [x, x[:, ::-1]] if flip else [x]
    total = 0
    for i, run in enumerate(runs):
        logits = np.asarray(model(run[None].astype("float32"), training=False))[0]
        logits = logits[:, ::-1] if i else logits
        total = total + resize_bilinear(logits, (height, width))
    return total / len(runs)


def assert_labels_match(labels, logits):
    """`labels` is the argmax of `logits` wherever the best two are MARGIN apart."""
    top2 = np.sort(logits, axis=-1)[..., -2:]
    confident = top2[..., 1] - top2[..., 0] >= MARGIN
    assert confident.mean() > 0.99, confident.mean()
    expected = logits.argmax(-1)
    assert labels.shape == expected.shape
    np.testing.assert_array_equal(labels[confident], expected[confident])


def spread_logits(model, image):
    """Random-init logits differ by ~1e-4 across pixels: rounding would pick the argmax.
    Scales the final classifier and centres its classes on `image` so that the argmax
    varies over the image (all 11 classes appear) with O(1) margins."""
    classifier = model.decoder_stage2.classifier
    classifier.kernel.assign(classifier.kernel.numpy() * 3000.0)
    classifier.bias.assign(np.zeros(classifier.bias.shape, "float32"))
    logits = np.asarray(model((((image - MEAN) / STD)[None]).astype("float32")))
    classifier.bias.assign(-logits.mean(axis=(0, 1, 2)).astype("float32"))


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """The model and its three saved forms: {"model", "keras", "preset", "saved_model"}."""
    import keras

    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.export import export_saved_model
    from keras_memseg.models import MemorySegmenter

    keras.utils.set_random_seed(0)
    backbone = DilatedResNetBackbone(depth=18, base_channels=8)
    model = MemorySegmenter(
        backbone, num_classes=NUM_CLASSES, feats_channels=16, transform_channels=8, aux_channels=8
    )
    model(np.zeros((1, 32, 32, 3), "float32"))
    rng = np.random.default_rng(0)
    model.memory.memory.assign(rng.random(model.memory.memory.shape).astype("float32"))
    spread_logits(model, read_rgb(sample_images()[0]))
    root = tmp_path_factory.mktemp("predict_models")
    model.save(str(root / "model.keras"))
    model.save_to_preset(str(root / "preset"))
    # Default outputs (probabilities, labels); the graph resizes every image to its
    # test_scale (as the default export does, at a tiny scale: 168x224 -> 84x112).
    saved = export_saved_model(
        model, str(root / "saved_models"), name="memseg", test_scale=(112, 84)
    )
    return {
        "model": model,
        "keras": str(root / "model.keras"),
        "preset": str(root / "preset"),
        "saved_model": os.path.dirname(saved),
        "root": root,
    }


@pytest.fixture(scope="session")
def runs(artifacts, tmp_path_factory):
    """kind -> output folder of `predict --dataset camvid --max_size 112` on two sample
    images (run once per kind and shared by the tests that read its outputs)."""
    from keras_memseg.predict.__main__ import main

    cache = {}

    def get(kind):
        if kind not in cache:
            out = tmp_path_factory.mktemp(f"predict_{kind}")
            code = main(
                [
                    "--model",
                    artifacts[kind],
                    *sample_images()[:2],
                    "--out",
                    str(out),
                    "--dataset",
                    "camvid",
                    "--max_size",
                    "112",
                    "--verbose",
                    "0",
                ]
            )
            cache[kind] = (code, out)
        return cache[kind]

    return get
