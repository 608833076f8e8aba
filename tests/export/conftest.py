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
    model = MemorySegmenter(backbone, num_classes=NUM_CLASSES, context=context,
                            feats_channels=16, transform_channels=8, aux_channels=8)
    model(np.zeros((1, 32, 32, 3), "float32"))
    rng = np.random.default_rng(seed)
    model.memory.memory.assign(rng.random(model.memory.memory.shape).astype("float32"))
    return model


def reference_logits(model, images):
    """`model.predict` on host-normalised images: the reference for the exports."""
    from keras_memseg.layers.image_normalization import IMAGENET_MEAN
    from keras_memseg.layers.image_normalization import IMAGENET_STD

    x = (np.asarray(images, "float32") - np.array(IMAGENET_MEAN, "float32")) / np.array(
        IMAGENET_STD, "float32")
    return np.asarray(model.predict(x, verbose=0))


def softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def run_python(script, *args, timeout=300):
    """Runs `script` in a fresh interpreter; returns stdout, fails the test on error."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)
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


@pytest.fixture(scope="session")
def saved_models(models, tmp_path_factory):
    """context -> version folder of an export with all three outputs."""
    from keras_memseg.export import export_saved_model

    cache = {}

    def get(context):
        if context not in cache:
            root = tmp_path_factory.mktemp(f"saved_models_{context}")
            cache[context] = export_saved_model(models(context), root, name="memseg",
                                                outputs=ALL_OUTPUTS)
        return cache[context]

    return get
