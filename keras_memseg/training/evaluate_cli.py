"""Evaluates a trained model on a dataset split, or writes a benchmark-server submission:
the body of `keras-memseg evaluate` and of `python recipes/evaluate.py` (the same flags).

  keras-memseg evaluate --model runs/sample
  keras-memseg evaluate --model runs/ade20k/model.keras --dataset ade20k \
      --scales 0.5,0.75,1.0,1.25,1.5,1.75 --flip --show_dir runs/ade20k/ms_overlays
  keras-memseg evaluate --model runs/cityscapes --split test \
      --submission_dir runs/cityscapes/test_submission

`--model` takes a `.keras` file, a preset folder (`save_to_preset`, `keras-memseg
convert`), a run folder written by training (its `model.keras`; without `--dataset` the
dataset is the run's `config.json` one), or a run's `checkpoints/ckpt-<step>.weights.h5`
(the run's `config.json` is found beside it, or given with `--run_config`). Scores are
computed at the original image size (aAcc, mIoU, mAcc, per-class table); `--out` writes
them as JSON with a per-class IoU chart `<out>_iou.png` beside it (new files: neither may
exist, nothing is overwritten). Test scale, mode, sliding window, scales and flip come
from the flags, else from the model (`model.preprocessor`, when it has one), else from
the dataset's evaluation settings (`keras_memseg.datasets.get_info(name).evaluation`).
Every flag is checked before anything runs: a problem is one line and exit code 2 (an
--out, --show_dir or --submission_dir in a read-only location too). Old spellings
(`--output`, `--crop_size`, `--stride`, `--noflip`) still work and print a note.
"""

import os
import sys

from keras_memseg.console import BoolFlag
from keras_memseg.console import OneLineErrorParser
from keras_memseg.console import alias_of
from keras_memseg.console import chosen_dataset
from keras_memseg.console import data_option
from keras_memseg.console import dataset_option
from keras_memseg.console import pair_hw
from keras_memseg.console import verbose_option
from keras_memseg.file_kinds import resolve_model_path
from keras_memseg.file_kinds import run_config_path
from keras_memseg.file_kinds import run_dataset

PROG = "keras-memseg evaluate"


def build_parser(prog=PROG):
    """The argparse parser of `keras-memseg evaluate` (nothing heavy imported)."""
    p = OneLineErrorParser(
        prog=prog,
        description="Score a segmenter on a dataset split (aAcc, mIoU, mAcc, per-class IoU), "
        "or write a benchmark-server submission.",
        allow_abbrev=False,  # absl never took abbreviations
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="a .keras file, a preset folder, a run folder written by training, or a run's "
        "checkpoints/ckpt-<step>.weights.h5 (required; e.g. --model runs/sample)",
    )
    p.add_argument(
        "--run_config",
        default="",
        metavar="PATH",
        help="the run's config.json, for a .weights.h5 --model (default: found next to it; "
        "e.g. --run_config runs/sample/config.json)",
    )
    p.add_argument(
        "--dataset",
        **dataset_option("the run's dataset when --model is a run folder or checkpoint"),
    )
    p.add_argument("--data", **data_option())
    p.add_argument(
        "--split",
        default="",
        metavar="NAME",
        help="the split to score (default: the dataset's evaluation split; e.g. --split val)",
    )
    p.add_argument(
        "--data_dir",
        default="",
        metavar="PATH",
        help="TFDS data_dir (default: TFDS's own; e.g. --data_dir ~/tensorflow_datasets)",
    )
    p.add_argument(
        "--manual_dir",
        default="",
        metavar="PATH",
        help="folder with the downloaded files (default: TFDS's manual folder; e.g. "
        "--manual_dir /data/ADEChallengeData2016)",
    )
    p.add_argument(
        "--mode",
        default="",
        metavar="whole|slide",
        help="one forward per image, or a sliding window (default: the model's, else the "
        "dataset's; e.g. --mode slide)",
    )
    window = p.add_argument(
        "--slide_window",
        type=pair_hw,
        default=None,
        metavar="H,W",
        help="sliding-window size, height,width (default: the model's, else the dataset's; "
        "e.g. --slide_window 512,1024)",
    )
    p.add_argument("--crop_size", **alias_of(window))
    stride = p.add_argument(
        "--slide_stride",
        type=pair_hw,
        default=None,
        metavar="H,W",
        help="sliding-window step, height,width (default: the model's, else the dataset's; "
        "e.g. --slide_stride 341,341)",
    )
    p.add_argument("--stride", **alias_of(stride))
    p.add_argument(
        "--scales",
        default="",
        metavar="S,...",
        help="test scales (default: the model's, else the dataset's; e.g. --scales "
        "0.5,0.75,1.0,1.25,1.5,1.75)",
    )
    flip = p.add_argument(
        "--flip",
        "--no-flip",
        action=BoolFlag,
        default=None,
        help="horizontal flip test-time augmentation; LIP swaps left/right channels "
        "(default: the model's, else the dataset's; e.g. --flip or --no-flip)",
    )
    p.add_argument("--noflip", **alias_of(flip, new="--no-flip", value=False))
    p.add_argument(
        "--test_scale",
        type=pair_hw,
        default=None,
        metavar="H,W",
        help="test Resize target, height,width: with the dataset's keep_ratio, the image "
        "fits inside max(H,W) x min(H,W) (mmseg's (long, short)), else it is resized to "
        "HxW (stored as mmseg's (w, h)) (default: the model's, else the dataset's; e.g. "
        "--test_scale 512,2048)",
    )
    p.add_argument(
        "--max_examples",
        type=int,
        default=0,
        metavar="N",
        help="evaluate only this many images (default: 0 = all; e.g. --max_examples 50)",
    )
    p.add_argument(
        "--show_dir",
        default="",
        metavar="PATH",
        help="write colour overlays (image | GT | prediction) here (default: none; e.g. "
        "--show_dir runs/sample/overlays)",
    )
    out = p.add_argument(
        "--out",
        default="",
        metavar="PATH",
        help="write the report as JSON here and its IoU chart <out>_iou.png beside it "
        "(default: none; e.g. --out runs/sample/eval_again.json)",
    )
    p.add_argument("--output", **alias_of(out))
    p.add_argument(
        "--submission_dir",
        default="",
        metavar="PATH",
        help="write test-set predictions in the benchmark server's format here instead of "
        "scoring, Cityscapes (default: none; e.g. --submission_dir runs/city/test)",
    )
    p.add_argument("--verbose", **verbose_option())
    return p


def parse_args(argv=None, prog=PROG):
    """The parsed flags of `argv` (without the program name); a bad flag exits with a
    one-line error (code 2). Nothing heavy is imported."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    args.dataset = chosen_dataset(parser, args)
    return args


def _numbers(name, text, kind):
    values = [v for v in text.split(",") if v.strip()]
    try:
        out = tuple(kind(v) for v in values)
    except ValueError:
        raise ValueError(f"--{name}={text}: comma-separated {kind.__name__}s") from None
    if not out or any(v <= 0 for v in out):
        raise ValueError(f"--{name}={text}: one or more numbers > 0")
    return out


def model_path(args):
    """The file or folder `--model` names (`keras_memseg.file_kinds.resolve_model_path`;
    a run folder whose training has not finished stands for its latest checkpoint)."""
    return resolve_model_path(args.model, weights_ok=True)


def dataset_of(args, path):
    """What `--dataset` / `--data` name, else the dataset of the run `path` belongs to
    (its `config.json`); ValueError asking for --dataset when neither says."""
    if args.dataset is not None:
        return args.dataset, f"--dataset={args.dataset}"
    config = args.run_config or run_config_path(path)
    name = run_dataset(config) if config else None
    if name is None:
        raise ValueError(
            f"--model={args.model} does not say which dataset to evaluate on (only a run "
            "folder's config.json does): pass --dataset NAME or --data ROOT"
        )
    return name, f"the dataset of {config} ({name})"


def check_flags(args, path):
    """The validated settings `(info, dataset, split, flag_changes, test_scale)`, or
    ValueError naming the first bad flag. `flag_changes` are the InferenceConfig fields
    the flags set; `test_scale` is mmseg's (w, h), or None when not given."""
    from keras_memseg import datasets
    from keras_memseg.writable import folder_problem

    dataset, where = dataset_of(args, path)
    try:
        info = datasets.get_info(dataset)
    except ValueError as error:
        raise ValueError(f"{where}: {str(error).splitlines()[0]}") from None
    split = args.split or info.eval_split
    if split not in info.splits:
        raise ValueError(f"--split={split}: a split of {info.name}: {', '.join(info.splits)}")
    if args.submission_dir:
        if not info.submission:
            raise ValueError(
                f"--submission_dir: {info.name} has no benchmark-server format "
                "(only Cityscapes' test split has one here)"
            )
        if os.path.isdir(args.submission_dir) and os.listdir(args.submission_dir):
            raise ValueError(f"--submission_dir={args.submission_dir}: not empty")
    elif split in info.unlabelled_splits:
        raise ValueError(
            f"--split={split}: {info.name}'s {split} labels are withheld; "
            "score another split, or write predictions with --submission_dir"
        )
    if args.mode not in ("", "whole", "slide"):
        raise ValueError(f"--mode={args.mode}: whole or slide")
    if args.max_examples < 0:
        raise ValueError(f"--max_examples={args.max_examples}: an integer >= 0")
    changes = {}
    if args.mode:
        changes["mode"] = args.mode
    if args.slide_window:
        changes["crop_size"] = tuple(args.slide_window)  # (h, w)
    if args.slide_stride:
        changes["stride"] = tuple(args.slide_stride)
    if args.scales:
        changes["scales"] = _numbers("scales", args.scales, float)
    if args.flip is not None:
        changes["flip"] = args.flip
    test_scale = None
    if args.test_scale:
        test_scale = (args.test_scale[1], args.test_scale[0])  # H,W -> mmseg's (w, h)
    if args.out and not args.submission_dir:
        _check_output(args.out, path)
    for flag in ("show_dir", "submission_dir"):  # written during the run: checked first
        folder = getattr(args, flag)
        problem = folder_problem(folder) if folder else None
        if problem:
            raise ValueError(f"--{flag}={folder}: {problem}")
    return info, dataset, split, changes, test_scale


def inference_settings(model, info, changes, test_scale):
    """`(InferenceConfig, test_scale, keep_ratio)`: the flags' `changes`, else the
    model's own settings (`model.preprocessor`, None for older models), else the
    dataset's evaluation defaults. `test_scale` is mmseg's (w, h) / (long, short)."""
    from keras_memseg.evaluation import InferenceConfig

    inference = InferenceConfig.for_dataset(info)
    scale, keep_ratio = tuple(info.augment.test_scale), bool(info.augment.test_keep_ratio)
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None:
        own = {}
        for field, attribute in (
            ("mode", "mode"),
            ("crop_size", "slide_window"),
            ("stride", "slide_stride"),
            ("scales", "scales"),
            ("flip", "flip"),
            ("flip_pairs", "flip_pairs"),
            ("probs_before_resize", "probs_before_resize"),
        ):
            value = getattr(preprocessor, attribute, None)
            if value is not None and value != ():
                own[field] = tuple(value) if isinstance(value, (list, tuple)) else value
        inference = inference.replace(**own)
        if getattr(preprocessor, "test_scale", None) is not None:
            scale = tuple(preprocessor.test_scale)
            keep_ratio = bool(getattr(preprocessor, "keep_ratio", keep_ratio))
    return inference.replace(**changes), test_scale or scale, keep_ratio


def _chart_path(output):
    """The per-class IoU chart written beside the `--out` report."""
    return os.path.splitext(output)[0] + "_iou.png"


def _check_output(output, model):
    """ValueError unless `--out` and its chart can be written without replacing
    anything: neither may exist (a file is never overwritten), the report may not be the
    model file or lie in its preset folder, and its folder must be writable (a real
    file is made and removed there: `keras_memseg.writable.file_problem`)."""
    from keras_memseg.writable import file_problem

    real, model_real = os.path.realpath(output), os.path.realpath(model)
    if real == model_real:
        raise ValueError(
            f"--out={output} is the --model file: the report would replace the "
            "model; choose another path"
        )
    if os.path.isdir(model_real) and os.path.commonpath([real, model_real]) == model_real:
        raise ValueError(
            f"--out={output} is inside the --model preset folder {model}: choose a path outside it"
        )
    for path in (output, _chart_path(output)):
        if os.path.lexists(path):
            what = "exists" if path == output else "(the IoU chart of --out) exists"
            raise ValueError(
                f"--out={output}: {path} {what} and is never overwritten; choose "
                "another path or delete it"
            )
    problem = file_problem(output)  # its folder is created when the report is written
    if problem:
        raise ValueError(f"--out={output}: {problem}; choose a writable path")


def load_model(args, path):
    """The model at `path` (what `--model` resolved to), or ValueError /
    FileNotFoundError saying what it is."""
    from keras_memseg.models import load_segmenter
    from keras_memseg.models.loading import check_not_special
    from keras_memseg.training.trainer import model_from_run

    if path.endswith(".weights.h5"):
        check_not_special(path, "weights")  # before h5py opens it: a FIFO blocks
        run_config = args.run_config or _find_run_config(path)
        check_not_special(run_config, "run's config.json")
        return model_from_run(path, run_config)
    return load_segmenter(path)  # refuses FIFOs, sockets and devices too


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


def main(argv=None, prog=PROG):
    """Runs `keras-memseg evaluate ARGV...` (`argv` without the program name; None:
    `sys.argv[1:]`); returns the exit status. Flags are parsed before TensorFlow loads."""
    args = parse_args(sys.argv[1:] if argv is None else list(argv), prog)
    from keras_memseg.console import quiet_libraries

    quiet_libraries(args.verbose >= 2)
    from keras_memseg import datasets
    from keras_memseg.evaluation import evaluate_dataset
    from keras_memseg.evaluation import report_to_json
    from keras_memseg.evaluation.charts import save_iou_chart
    from keras_memseg.evaluation.submission import write_submission
    from keras_memseg.metrics import format_table

    try:
        path = model_path(args)
        info, dataset, split, changes, test_scale = check_flags(args, path)
        model = load_model(args, path)
        model.check_finite("evaluate")  # NaN/inf weights or memory: refused up front
        inference, test_scale, keep_ratio = inference_settings(model, info, changes, test_scale)
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
            dataset,
            split,
            args.data_dir or None,
            args.manual_dir or None,
            with_file_names=bool(args.submission_dir),
        )
    except datasets.DatasetNotFoundError as error:
        print(f"No data for {info.name!r}.\n{error}", file=sys.stderr)
        return 2
    ds = datasets.eval_pipeline(raw, test_scale, keep_ratio)
    if args.submission_dir:
        written = write_submission(model, ds, info, inference, args.submission_dir)
        print(
            f"wrote {written} predictions in the benchmark server's format to {args.submission_dir}"
        )
        return 0
    report = evaluate_dataset(
        model,
        ds,
        info.num_classes,
        inference,
        class_names=info.class_names,
        palette=info.palette,
        show_dir=args.show_dir or None,
        ignore_class=info.ignore_class,
        max_examples=args.max_examples or None,
        verbose=args.verbose >= 1,
    )
    print(format_table(report))
    if args.out:
        chart = _chart_path(args.out)
        try:
            _write_report(report_to_json(report), args.out, chart)
            save_iou_chart(report, chart, palette=info.palette)
        except (OSError, ValueError) as error:
            print(f"error: --out={args.out}: {error}", file=sys.stderr)
            return 2
        print(f"wrote {args.out} and {chart}")
    return 0


def _write_report(data, output, chart):
    """Writes the JSON report to a new file `output` (checked up front; "x" mode also
    refuses one created since); ValueError when the chart path appeared meanwhile."""
    import json

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    if os.path.lexists(chart):
        raise ValueError(f"{chart} exists and is never overwritten")
    with open(output, "x") as f:
        json.dump(data, f, indent=2)


def run(argv=None):
    """Parses `argv` (`sys.argv` when None; `argv[0]` is the program name) and evaluates;
    exits the process with `main`'s status (as absl's `app.run` did)."""
    argv = sys.argv if argv is None else list(argv)
    prog = argv[0] if " " in argv[0] else f"python {os.path.basename(argv[0])}"
    sys.exit(main(argv[1:], prog))
