"""Evaluates a trained model on a dataset split, or writes a benchmark-server submission:
the body of `keras-memseg evaluate` and of `python recipes/evaluate.py` (the same flags).

  python recipes/evaluate.py --model=runs/sample/model.keras --dataset=sample
  python recipes/evaluate.py --model=runs/ade20k/model.keras --dataset=ade20k \
      --scales=0.5,0.75,1.0,1.25,1.5,1.75 --flip --show_dir=runs/ade20k/ms_overlays
  python recipes/evaluate.py --model=runs/cityscapes/model.keras --dataset=cityscapes \
      --split=test --submission_dir=runs/cityscapes/test_submission

`--model` takes a `.keras` file, a preset folder (`save_to_preset`, `python -m
keras_memseg.convert`), or a run's `checkpoints/ckpt-<step>.weights.h5` (the run's
`config.json` is found beside it, or given with `--run_config`). Scores are computed at
the original image size (aAcc, mIoU, mAcc, per-class table); `--output` writes them as
JSON with a per-class IoU chart `<output>_iou.png` beside it (new files: neither may
exist, nothing is overwritten). Mode, crop/stride, scales and flip default to
the dataset's evaluation settings (`keras_memseg.datasets.get_info(name).evaluation`).
Every flag is checked before anything runs: a problem is one line and exit code 2 (an
--output, --show_dir or --submission_dir in a read-only location too).
"""

import json
import os
import sys

from absl import app
from absl import flags

flags.DEFINE_string(
    "model",
    None,
    "a .keras file, a preset folder, or a run's ckpt-<step>.weights.h5",
    required=True,
)
flags.DEFINE_string(
    "run_config", "", "the run's config.json (for a .weights.h5 --model; default: found next to it)"
)
flags.DEFINE_string("dataset", "sample", "dataset name (its evaluation defaults apply)")
flags.DEFINE_string("split", "", "split (default: the dataset's evaluation split)")
flags.DEFINE_string("data_dir", "", "TFDS data_dir")
flags.DEFINE_string("manual_dir", "", "folder with the downloaded files")
flags.DEFINE_string("mode", "", "inference mode: whole or slide (default: the dataset's)")
flags.DEFINE_list("crop_size", [], "slide window h,w")
flags.DEFINE_list("stride", [], "slide stride h,w")
flags.DEFINE_list("scales", [], "test scales, e.g. 0.5,0.75,1.0")
flags.DEFINE_bool("flip", None, "horizontal flip TTA (LIP swaps left/right channels)")
flags.DEFINE_list("test_scale", [], "test Resize target (default: the dataset's)")
flags.DEFINE_integer("max_examples", 0, "evaluate only this many images (0 = all)")
flags.DEFINE_string("show_dir", "", "write colour overlays (image | GT | prediction) here")
flags.DEFINE_string("output", "", "write the report as JSON here (and a chart beside it)")
flags.DEFINE_string(
    "submission_dir",
    "",
    "write test-set predictions in the benchmark "
    "server's format here instead of scoring (Cityscapes)",
)
flags.DEFINE_bool("verbose", False, "show TensorFlow's own log lines")
FLAGS = flags.FLAGS


def _numbers(name, values, kind, count=None):
    try:
        out = tuple(kind(v) for v in values)
    except ValueError:
        raise ValueError(f"--{name}={','.join(values)}: comma-separated {kind.__name__}s") from None
    if (count and len(out) != count) or any(v <= 0 for v in out):
        raise ValueError(f"--{name}={','.join(values)}: {count or 'one or more'} numbers > 0")
    return out


def check_flags():
    """The validated settings, or ValueError naming the first bad flag."""
    from keras_memseg import datasets
    from keras_memseg.evaluation import InferenceConfig
    from keras_memseg.writable import folder_problem

    if FLAGS.dataset not in datasets.dataset_names():
        raise ValueError(f"--dataset={FLAGS.dataset}: one of {', '.join(datasets.dataset_names())}")
    info = datasets.get_info(FLAGS.dataset)
    split = FLAGS.split or info.eval_split
    if split not in info.splits:
        raise ValueError(f"--split={split}: a split of {info.name}: {', '.join(info.splits)}")
    if FLAGS.submission_dir:
        if not info.submission:
            raise ValueError(
                f"--submission_dir: {info.name} has no benchmark-server format "
                "(only Cityscapes' test split has one here)"
            )
        if os.path.isdir(FLAGS.submission_dir) and os.listdir(FLAGS.submission_dir):
            raise ValueError(f"--submission_dir={FLAGS.submission_dir}: not empty")
    elif split in info.unlabelled_splits:
        raise ValueError(
            f"--split={split}: {info.name}'s {split} labels are withheld; "
            "score another split, or write predictions with --submission_dir"
        )
    if FLAGS.mode not in ("", "whole", "slide"):
        raise ValueError(f"--mode={FLAGS.mode}: whole or slide")
    if FLAGS.max_examples < 0:
        raise ValueError(f"--max_examples={FLAGS.max_examples}: an integer >= 0")
    inference = InferenceConfig.for_dataset(info)
    changes = {}
    if FLAGS.mode:
        changes["mode"] = FLAGS.mode
    if FLAGS.crop_size:
        changes["crop_size"] = _numbers("crop_size", FLAGS.crop_size, int, 2)
    if FLAGS.stride:
        changes["stride"] = _numbers("stride", FLAGS.stride, int, 2)
    if FLAGS.scales:
        changes["scales"] = _numbers("scales", FLAGS.scales, float)
    if FLAGS.flip is not None:
        changes["flip"] = FLAGS.flip
    test_scale = (
        _numbers("test_scale", FLAGS.test_scale, int, 2)
        if FLAGS.test_scale
        else info.augment.test_scale
    )
    if FLAGS.output and not FLAGS.submission_dir:
        _check_output(FLAGS.output, FLAGS.model)
    for flag in ("show_dir", "submission_dir"):  # written during the run: checked first
        folder = getattr(FLAGS, flag)
        problem = folder_problem(folder) if folder else None
        if problem:
            raise ValueError(f"--{flag}={folder}: {problem}")
    return info, split, inference.replace(**changes), test_scale


def _chart_path(output):
    """The per-class IoU chart written beside the `--output` report."""
    return os.path.splitext(output)[0] + "_iou.png"


def _check_output(output, model):
    """ValueError unless `--output` and its chart can be written without replacing
    anything: neither may exist (a file is never overwritten), the report may not be the
    `--model` file or lie in its preset folder, and its folder must be writable (a real
    file is made and removed there: `keras_memseg.writable.file_problem`)."""
    from keras_memseg.writable import file_problem

    real, model_real = os.path.realpath(output), os.path.realpath(model)
    if real == model_real:
        raise ValueError(
            f"--output={output} is the --model file: the report would replace the "
            "model; choose another path"
        )
    if os.path.isdir(model_real) and os.path.commonpath([real, model_real]) == model_real:
        raise ValueError(
            f"--output={output} is inside the --model preset folder {model}: choose "
            "a path outside it"
        )
    for path in (output, _chart_path(output)):
        if os.path.lexists(path):
            what = "exists" if path == output else "(the IoU chart of --output) exists"
            raise ValueError(
                f"--output={output}: {path} {what} and is never overwritten; choose "
                "another path or delete it"
            )
    problem = file_problem(output)  # its folder is created when the report is written
    if problem:
        raise ValueError(f"--output={output}: {problem}; choose a writable path")


def load_model():
    """The model of `--model`, or ValueError / FileNotFoundError saying what it is."""
    from keras_memseg.models import load_segmenter
    from keras_memseg.models.loading import check_not_special
    from keras_memseg.training.trainer import model_from_run

    if FLAGS.model.endswith(".weights.h5"):
        check_not_special(FLAGS.model, "weights")  # before h5py opens it: a FIFO blocks
        run_config = FLAGS.run_config or _find_run_config(FLAGS.model)
        check_not_special(run_config, "run's config.json")
        return model_from_run(FLAGS.model, run_config)
    return load_segmenter(FLAGS.model)  # refuses FIFOs, sockets and devices too


def _find_run_config(weights):
    folder = os.path.dirname(os.path.abspath(weights))
    for candidate in (
        os.path.join(folder, "config.json"),
        os.path.join(os.path.dirname(folder), "config.json"),
    ):
        if os.path.isfile(candidate):
            return candidate
    raise ValueError(
        f"--model={weights}: a weights file needs its run's config.json "
        "(not found next to it): pass --run_config"
    )


def main(_):
    from keras_memseg.console import quiet_libraries

    quiet_libraries(FLAGS.verbose)
    from keras_memseg import datasets
    from keras_memseg.evaluation import evaluate_dataset
    from keras_memseg.evaluation import report_to_json
    from keras_memseg.evaluation.charts import save_iou_chart
    from keras_memseg.evaluation.submission import write_submission
    from keras_memseg.metrics import format_table

    try:
        info, split, inference, test_scale = check_flags()
        model = load_model()
        model.check_finite("evaluate")  # NaN/inf weights or memory: refused up front
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if model.num_classes != info.num_classes:
        print(
            f"error: --model has {model.num_classes} classes, --dataset={info.name} has "
            f"{info.num_classes}: evaluate it on the dataset it was trained for",
            file=sys.stderr,
        )
        return 2
    try:
        raw = datasets.load(
            info.name,
            split,
            FLAGS.data_dir or None,
            FLAGS.manual_dir or None,
            with_file_names=bool(FLAGS.submission_dir),
        )
    except datasets.DatasetNotFoundError as error:
        print(f"No data for {info.name!r}.\n{error}", file=sys.stderr)
        return 2
    ds = datasets.eval_pipeline(raw, test_scale, info.augment.test_keep_ratio)
    if FLAGS.submission_dir:
        written = write_submission(model, ds, info, inference, FLAGS.submission_dir)
        print(
            f"wrote {written} predictions in the benchmark server's format to "
            f"{FLAGS.submission_dir}"
        )
        return 0
    report = evaluate_dataset(
        model,
        ds,
        info.num_classes,
        inference,
        class_names=info.class_names,
        palette=info.palette,
        show_dir=FLAGS.show_dir or None,
        ignore_class=info.ignore_class,
        max_examples=FLAGS.max_examples or None,
    )
    print(format_table(report))
    if FLAGS.output:
        chart = _chart_path(FLAGS.output)
        try:
            _write_report(report_to_json(report), FLAGS.output, chart)
            save_iou_chart(report, chart, palette=info.palette)
        except (OSError, ValueError) as error:
            print(f"error: --output={FLAGS.output}: {error}", file=sys.stderr)
            return 2
        print(f"wrote {FLAGS.output} and {chart}")
    return 0


def _write_report(data, output, chart):
    """Writes the JSON report to a new file `output` (checked up front; "x" mode also
    refuses one created since); ValueError when the chart path appeared meanwhile."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    if os.path.lexists(chart):
        raise ValueError(f"{chart} exists and is never overwritten")
    with open(output, "x") as f:
        json.dump(data, f, indent=2)


def run(argv=None):
    """Parses `argv` (`sys.argv` when None; `argv[0]` is the program name) and evaluates;
    exits the process with `main`'s status (absl's `app.run`)."""
    app.run(main, argv=argv)
