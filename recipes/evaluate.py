"""Evaluates a trained model (`model.keras` or a recipe's weights) on a dataset split.

  python recipes/evaluate.py --model=runs/sample/model.keras --dataset=sample
  python recipes/evaluate.py --model=runs/ade20k/model.keras --dataset=ade20k \
      --scales=0.5,0.75,1.0,1.25,1.5,1.75 --flip --show_dir=runs/ade20k/ms_overlays

Scores are computed at the original image size (aAcc, mIoU, mAcc, per-class table).
Mode, crop/stride, scales and flip default to the dataset's recipe.
"""

import json
import os
import sys

from absl import app
from absl import flags

flags.DEFINE_string("model", None, "a .keras file saved by the trainer", required=True)
flags.DEFINE_string("dataset", "sample", "dataset name (recipe name for the defaults)")
flags.DEFINE_string("split", "", "split (default: the recipe's eval split)")
flags.DEFINE_string("data_dir", "", "TFDS data_dir")
flags.DEFINE_string("manual_dir", "", "folder with the downloaded files")
flags.DEFINE_enum("mode", "", ["", "whole", "slide"], "inference mode")
flags.DEFINE_list("crop_size", [], "slide window h,w")
flags.DEFINE_list("stride", [], "slide stride h,w")
flags.DEFINE_list("scales", [], "test scales, e.g. 0.5,0.75,1.0")
flags.DEFINE_bool("flip", None, "horizontal flip TTA (LIP swaps left/right channels)")
flags.DEFINE_list("test_scale", [], "test Resize target (default: the dataset's)")
flags.DEFINE_integer("max_examples", 0, "evaluate only this many images (0 = all)")
flags.DEFINE_string("show_dir", "", "write colour overlays (image | GT | prediction) here")
flags.DEFINE_string("output", "", "write the report as JSON here")
FLAGS = flags.FLAGS

_RECIPE_NAMES = {"coco_stuff10k": "cocostuff10k", "cocostuff10k": "cocostuff10k"}


def main(_):
    import dataclasses

    import keras

    from keras_memseg import datasets
    from keras_memseg.evaluation import evaluate_dataset
    from keras_memseg.evaluation import report_to_json
    from keras_memseg.metrics import format_table
    from keras_memseg.training import RECIPES
    from keras_memseg.training import trainer

    name = _RECIPE_NAMES.get(FLAGS.dataset, FLAGS.dataset)
    recipe = RECIPES.get(name, RECIPES["sample"]).replace(dataset=FLAGS.dataset)
    info = datasets.get_info(FLAGS.dataset)
    inference = trainer.inference_config(recipe, info)
    changes = {}
    if FLAGS.mode:
        changes["mode"] = FLAGS.mode
    if FLAGS.crop_size:
        changes["crop_size"] = tuple(int(v) for v in FLAGS.crop_size)
    if FLAGS.stride:
        changes["stride"] = tuple(int(v) for v in FLAGS.stride)
    if FLAGS.scales:
        changes["scales"] = tuple(float(v) for v in FLAGS.scales)
    if FLAGS.flip is not None:
        changes["flip"] = FLAGS.flip
    inference = dataclasses.replace(inference, **changes)
    aug = datasets.augment_config_for(FLAGS.dataset)
    test_scale = tuple(int(v) for v in FLAGS.test_scale) or aug.test_scale
    try:
        raw = datasets.load(FLAGS.dataset, FLAGS.split or recipe.eval_split,
                            FLAGS.data_dir or None, FLAGS.manual_dir or None)
    except datasets.DatasetNotFoundError as error:
        print(f"No data for {FLAGS.dataset!r}.\n{error}", file=sys.stderr)
        return 2
    model = keras.saving.load_model(FLAGS.model, compile=False)
    ds = datasets.eval_pipeline(raw, test_scale, aug.test_keep_ratio)
    report = evaluate_dataset(model, ds, info.num_classes, inference,
                              class_names=info.class_names, palette=info.palette,
                              show_dir=FLAGS.show_dir or None,
                              max_examples=FLAGS.max_examples or None)
    print(format_table(report))
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as f:
            json.dump(report_to_json(report), f, indent=2)
    return 0


if __name__ == "__main__":
    app.run(main)
