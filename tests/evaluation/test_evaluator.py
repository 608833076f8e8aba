"""evaluate_dataset: scores at the original size, overlays with the palette."""

import os

import keras
import numpy as np
import tensorflow as tf

from keras_memseg.datasets import eval_pipeline
from keras_memseg.evaluation import InferenceConfig
from keras_memseg.evaluation import colorize
from keras_memseg.evaluation import evaluate_dataset
from keras_memseg.evaluation import report_to_json


def test_colorize_palette_and_ignore():
    out = colorize(np.array([[0, 1, 255, 9]]), [(10, 20, 30), (40, 50, 60)])
    assert out[0].tolist() == [[10, 20, 30], [40, 50, 60], [0, 0, 0], [0, 0, 0]]


def test_evaluate_dataset_original_size_and_overlays(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 20, 30, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, (3, 20, 30), dtype=np.uint8)
    labels[:, 0] = 255
    raw = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    ds = eval_pipeline(raw, (60, 40), keep_ratio=True)  # upscaled 2x for inference

    class Constant(keras.Model):  # always predicts class 1
        def call(self, x, training=False):
            return tf.one_hot(tf.ones(tf.shape(x)[:3], tf.int32), 3)

    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    report = evaluate_dataset(
        Constant(),
        ds,
        3,
        InferenceConfig(flip=True),
        class_names=("a", "b", "c"),
        palette=palette,
        show_dir=str(tmp_path),
        verbose=False,
    )
    valid = labels[:, 1:]
    expected_iou_b = (valid == 1).sum() / valid.size
    np.testing.assert_allclose(report["IoU"], [0.0, expected_iou_b, 0.0])
    assert report["num_images"] == 3
    assert sorted(os.listdir(tmp_path)) == ["00000.png", "00001.png", "00002.png"]
    from PIL import Image

    width, height = Image.open(tmp_path / "00000.png").size
    assert width == 90 and height > 20  # image | GT | prediction, a legend strip below
    assert report_to_json(report)["per_class"]["b"]["IoU"] == expected_iou_b
