"""Test-set predictions in a benchmark server's format (TensorFlow: tf.data in, PNGs out)."""

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_memseg.datasets.registry import resolve
from keras_memseg.evaluation.evaluator import compiled_forward
from keras_memseg.evaluation.inference import infer


def write_submission(model, ds, spec, config, out_dir, forward=None, verbose=True):
    """Writes one PNG per image of `ds` into `out_dir` in `spec`'s server format.

    Args:
        model: a segmenter taking normalised images.
        ds: `eval_pipeline(load(name, split, with_file_names=True), ...)` output.
        spec: the dataset's `DatasetSpec` (its `submission` converter names the files
            and maps train ids to the server's ids).
        config: `InferenceConfig` (the dataset's evaluation defaults).
        out_dir: the folder to write (created; existing files are never overwritten).

    Returns the number of files written.
    """
    if not spec.submission:
        raise ValueError(
            f"dataset {spec.name!r} has no benchmark-server format; its "
            f"unlabelled splits: {spec.unlabelled_splits or 'none'}"
        )
    convert = resolve(spec.submission)
    forward = forward or compiled_forward(model)
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for batch in ds:
        if "file_name" not in batch:
            raise ValueError(
                "write_submission needs file names: load the split with with_file_names=True"
            )
        for i in range(int(batch["image"].shape[0])):
            height, width = (int(v) for v in batch["original_size"][i])
            h, w = (int(v) for v in batch["image_size"][i])
            image = batch["image"][i : i + 1, :h, :w]
            scores = infer(forward, image, spec.num_classes, config, output_size=(height, width))
            prediction = tf.argmax(scores, axis=-1, output_type=tf.int32)[0].numpy()
            name, array = convert(prediction, batch["file_name"][i].numpy().decode())
            path = os.path.join(out_dir, name)
            if os.path.exists(path):
                raise FileExistsError(f"{path} exists: write the submission into an empty folder")
            Image.fromarray(np.asarray(array, np.uint8)).save(path)
            written += 1
            if verbose and written % 100 == 0:
                print(f"wrote {written} predictions to {out_dir}")
    return written
