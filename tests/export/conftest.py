"""Tiny segmenters (ASPP and PPM) with a non-zero memory, shared by the export tests."""

import os
import subprocess
import sys

import numpy as np
import pytest

CONTEXTS = ("aspp", "ppm")
NUM_CLASSES = 5
ALL_OUTPUTS = ("logits", "probabilities", "labels")


def make_model(context, seed=0):
    import keras

    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.models import MemorySegmenter

    keras.utils.set_random_seed(seed)
    backbone = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=8)
    model = MemorySegmenter(
        backbone,
        num_classes=NUM_CLASSES,
        context=context,
        feats_channels=16,
        transform_channels=8,
        aux_channels=8,
    )
    model(np.zeros((1, 32, 32, 3), "float32"))
    rng = np.random.default_rng(seed)
    model.memory.memory.assign(rng.random(model.memory.memory.shape).astype("float32"))
    return model


def reference_logits(model, images):
    """`model.predict` on host-normalised images: the reference for the exports."""
    from keras_memseg.layers.image_normalization import IMAGENET_MEAN
    from keras_memseg.layers.image_normalization import IMAGENET_STD

    x = (np.asarray(images, "float32") - np.array(IMAGENET_MEAN, "float32")) / np.array(
        IMAGENET_STD, "float32"
    )
    return np.asarray(model.predict(x, verbose=0))


def softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def run_python(script, *args, timeout=300):
    """Runs `script` in a fresh interpreter; returns stdout, fails the test on error."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="session")
def models():
    cache = {}

    def get(context):
        if context not in cache:
            cache[context] = make_model(context)
        return cache[context]

    return get


def resize_bilinear(x, size, rows=None, cols=None):
    """NumPy oracle of `tf.image.resize(x, size, "bilinear")` (half-pixel centres, no
    antialias) for one (h, w, C) array; `rows`/`cols` pick output indices (default all)."""

    def weights(in_size, out_size, index):
        src = (np.arange(out_size)[index] + 0.5) * (in_size / out_size) - 0.5
        floor = np.floor(src)
        lower = np.maximum(floor, 0).astype(int)
        upper = np.minimum(np.ceil(src), in_size - 1).astype(int)
        return lower, upper, (src - floor)

    x = np.asarray(x, "float64")
    rows = slice(None) if rows is None else rows
    cols = slice(None) if cols is None else cols
    top, bottom, fy = weights(x.shape[0], size[0], rows)
    left, right, fx = weights(x.shape[1], size[1], cols)
    fx = fx[None, :, None]
    upper = x[top][:, left] * (1 - fx) + x[top][:, right] * fx
    lower = x[bottom][:, left] * (1 - fx) + x[bottom][:, right] * fx
    return upper * (1 - fy[:, None, None]) + lower * fy[:, None, None]


def evaluation_logits(model, image, test_scale, keep_ratio, rows=None, cols=None):
    """The oracle of bounded serving: `keras_memseg.datasets.eval_pipeline` (the evaluation
    resize and normalisation), `model.predict`, then the NumPy bilinear resize back to the
    image's size. Returns (logits at the original size, (h', w') the model ran at)."""
    import tensorflow as tf

    from keras_memseg.datasets import eval_pipeline

    image = np.asarray(image, "uint8")
    ds = tf.data.Dataset.from_tensors({"image": image, "label": np.zeros(image.shape[:2], "uint8")})
    batch = next(iter(eval_pipeline(ds, test_scale, keep_ratio)))
    logits = np.asarray(model.predict(batch["image"], verbose=0))[0]
    size = tuple(int(v) for v in batch["image_size"][0])
    return resize_bilinear(logits, image.shape[:2], rows, cols), size


@pytest.fixture(scope="session")
def saved_models(models, tmp_path_factory):
    """(context, **settings) -> version folder of an export with all three outputs.

    `test_scale` defaults to None here (the export runs at the request's size), so the
    outputs compare with `model.predict` directly; pass settings to test the others.
    """
    from keras_memseg.export import export_saved_model

    cache = {}

    def get(context, test_scale=None, **settings):
        key = (context, test_scale, tuple(sorted(settings.items())))
        if key not in cache:
            root = tmp_path_factory.mktemp(f"saved_models_{context}")
            cache[key] = export_saved_model(
                models(context),
                root,
                name="memseg",
                outputs=ALL_OUTPUTS,
                test_scale=test_scale,
                **settings,
            )
        return cache[key]

    return get
