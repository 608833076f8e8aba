"""Dataset evaluation on TensorFlow: tf.data in, per-class report out, overlays optional."""

import os

import numpy as np
import tensorflow as tf

from keras_memseg.evaluation.inference import InferenceConfig
from keras_memseg.evaluation.inference import infer
from keras_memseg.evaluation.overlays import denormalize
from keras_memseg.evaluation.overlays import overlay_panel
from keras_memseg.evaluation.overlays import save_png
from keras_memseg.metrics import ConfusionMatrixMetric
from keras_memseg.models import MemorySegmenter
from keras_memseg.models import Segmenter


def compiled_forward(model):
    """`model(x, training=False)` as a shape-relaxed `tf.function` (retraces per size)."""

    @tf.function(reduce_retracing=True, autograph=False)
    def forward(images):
        return tf.cast(model(images, training=False), tf.float32)

    return forward


def evaluate_dataset(
    model,
    ds,
    num_classes,
    config=InferenceConfig(),
    class_names=None,
    palette=None,
    show_dir=None,
    max_examples=None,
    ignore_class=255,
    forward=None,
    verbose=True,
):
    """Scores `model` on an `eval_pipeline` dataset at the original image size.

    Args:
        model: a segmentation model returning (B, h, w, K) scores at its input size.
        ds: `keras_memseg.datasets.eval_pipeline(...)` output: dicts with
            "image" (B, h', w', 3) normalised, "label" (B, H, W) original,
            "original_size" (B, 2). Batches with B > 1 are scored per image.
        num_classes: K.
        config: `InferenceConfig` (whole / slide, scales, flip, flip pairs).
        class_names, palette: for the report table and the overlays.
        show_dir: if set, writes `<index>.png` overlays (image | GT | prediction).
        max_examples: stop after this many images.
        forward: override the model call (default `compiled_forward(model)`).

    Returns:
        `ConfusionMatrixMetric.report()` dict (aAcc, mIoU, mAcc, IoU, Acc, ...).
    """
    if isinstance(model, Segmenter):
        model.check_finite("evaluate_dataset")
        if isinstance(model, MemorySegmenter):
            model.warn_if_memory_empty("evaluate_dataset")
    forward = forward or compiled_forward(model)
    metric = ConfusionMatrixMetric(
        num_classes, ignore_class=ignore_class, from_logits=False, class_names=class_names
    )
    seen = 0
    for batch in ds:
        images = batch["image"]
        for i in range(int(images.shape[0])):
            if max_examples is not None and seen >= max_examples:
                break
            height, width = (int(v) for v in batch["original_size"][i])
            image_size = batch.get("image_size")
            image = images[i : i + 1]
            if image_size is not None:  # drop padded_batch padding
                h, w = (int(v) for v in image_size[i])
                image = image[:, :h, :w]
            label = batch["label"][i, :height, :width]
            scores = infer(forward, image, num_classes, config, output_size=(height, width))
            prediction = tf.argmax(scores, axis=-1, output_type=tf.int32)[0]
            metric.update_state(label[None], prediction[None])
            if show_dir and palette is not None:
                shown = tf.image.resize(image[0], (height, width), method="bilinear")
                panel = overlay_panel(
                    denormalize(shown.numpy()),
                    label.numpy(),
                    prediction.numpy(),
                    palette,
                    ignore_class=ignore_class,
                    class_names=class_names,
                )
                save_png(os.path.join(show_dir, f"{seen:05d}.png"), panel)
            seen += 1
            if verbose and seen % 50 == 0:
                print(f"evaluated {seen} images, mIoU so far {100 * float(metric.result()):.2f}")
        if max_examples is not None and seen >= max_examples:
            break
    if seen == 0:
        raise ValueError("evaluate_dataset: the dataset is empty")
    report = metric.report()
    report["num_images"] = seen
    return report


def report_to_json(report):
    """A JSON-serialisable copy of a report (NaN -> None)."""

    def clean(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)

    names = report["class_names"]
    return {
        "aAcc": clean(report["aAcc"]),
        "mIoU": clean(report["mIoU"]),
        "mAcc": clean(report["mAcc"]),
        "num_images": int(report.get("num_images", 0)),
        "per_class": {
            n: {"IoU": clean(i), "Acc": clean(a)}
            for n, i, a in zip(names, report["IoU"], report["Acc"])
        },
    }
