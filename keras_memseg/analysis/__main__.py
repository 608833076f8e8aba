"""python -m keras_memseg.analysis: compactness/dispersion of pixel embeddings, memory pictures.

    python -m keras_memseg.analysis --model runs/sample --split val \
        --out runs/sample/analysis
    python -m keras_memseg.analysis --model mcibi.keras --baseline deeplabv3.keras \
        --dataset camvid --manual_dir /data/camvid --out analysis/camvid

Writes `analysis.json`, `embedding.png`, `compactness.png`, `memory_similarity.png`
(MemorySegmenter) and, with `--baseline`, `comparison.md` / `comparison.json`.
`--model` / `--baseline` take a `.keras` file, a preset folder or a run folder written by
training (its `model.keras`; without `--dataset` the dataset is the run's). Bad input
(unreadable model, unknown dataset or layer, class-count mismatch, missing data or
plotting extra) prints one line and exits with status 2. The old `--test_scale W H` (two
values, width first) still works and prints a note: it is `--test_scale H,W` now.
"""

import argparse
import json
import os
import sys
import time

from keras_memseg.console import OneLineErrorParser
from keras_memseg.console import chosen_dataset
from keras_memseg.console import data_option
from keras_memseg.console import dataset_option
from keras_memseg.console import pair_hw
from keras_memseg.console import verbose_option
from keras_memseg.file_kinds import resolve_model_path
from keras_memseg.file_kinds import run_config_path
from keras_memseg.file_kinds import run_dataset

PROG = "python -m keras_memseg.analysis"  # `keras-memseg analysis` runs the same `main`


class _TestScale(argparse.Action):
    """`--test_scale H,W`; the old `--test_scale W H` (two values) with a note."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) == 1:
            try:
                value = pair_hw(values[0])
            except argparse.ArgumentTypeError as error:
                parser.error(f"argument {option_string}: {error}")
        else:
            try:
                width, height = (int(v) for v in values)
            except ValueError:
                parser.error(f"argument {option_string}: expected H,W, got {' '.join(values)!r}")
            print(
                f"note: {option_string} W H is now {option_string} H,W "
                f"({option_string} {height},{width})",
                file=sys.stderr,
            )
            value = pair_hw(f"{height},{width}")
        setattr(namespace, self.dest, value)


EXIT_BAD_INPUT = 2


def _parser(prog=PROG):
    p = OneLineErrorParser(
        prog=prog,
        description="Intra-class compactness and inter-class dispersion of a segmenter's "
        "pixel embeddings, and what its feature memory holds.",
    )
    p.add_argument(
        "--model",
        required=True,
        metavar="PATH",
        help="a .keras file, a preset folder or a run folder written by training "
        "(required; e.g. --model runs/sample)",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="PATH",
        help="a second model (e.g. DeepLabV3) to compare with, same forms as --model "
        "(default: none; e.g. --baseline runs/deeplabv3)",
    )
    p.add_argument("--dataset", **dataset_option("the run's dataset when --model is a run"))
    p.add_argument("--data", **data_option())
    p.add_argument(
        "--split", default="val", metavar="NAME", help="the split (default: val; e.g. --split test)"
    )
    p.add_argument(
        "--out", required=True, metavar="PATH", help="output folder (required; e.g. --out analysis)"
    )
    p.add_argument(
        "--data_dir",
        default=None,
        metavar="PATH",
        help="TFDS data_dir (default: TFDS's own; e.g. --data_dir ~/tensorflow_datasets)",
    )
    p.add_argument(
        "--manual_dir",
        default=None,
        metavar="PATH",
        help="folder with the downloaded files (default: TFDS's manual folder; e.g. "
        "--manual_dir /data/camvid)",
    )
    p.add_argument(
        "--layers",
        default=None,
        help="forward_heads keys for --model, comma separated (default: "
        "features,head_features for MemorySegmenter, head_features otherwise; e.g. "
        "--layers features)",
    )
    p.add_argument(
        "--baseline_layers",
        default=None,
        help="the same for --baseline (default: as --layers; e.g. --baseline_layers head_features)",
    )
    p.add_argument(
        "--max_pixels_per_class",
        type=int,
        default=2000,
        help="pixels sampled per class (default: 2000; e.g. --max_pixels_per_class 500)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0; e.g. --seed 1)")
    p.add_argument(
        "--max_images",
        type=int,
        default=None,
        help="read only this many images (default: all; e.g. --max_images 100)",
    )
    p.add_argument(
        "--test_scale",
        action=_TestScale,
        nargs="+",
        default=None,
        metavar="H,W",
        help="test Resize target of the images, height,width: with the dataset's "
        "keep_ratio the image fits inside max(H,W) x min(H,W), mmseg's (long, short), "
        "else it becomes HxW, stored as mmseg's (w, h) (default: the model's, else the "
        "dataset's test scale; e.g. --test_scale 512,2048)",
    )
    p.add_argument(
        "--embedding",
        default="tsne",
        choices=["tsne", "pca", "none"],
        help="2-D embedding of the scatter plot, none: no scatter plot (default: tsne; "
        "e.g. --embedding pca)",
    )
    p.add_argument(
        "--plot_points",
        type=int,
        default=100,
        help="pixels drawn per class (default: 100; e.g. --plot_points 30)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="t-SNE threads, 0: all cores; one is faster on a busy CPU (default: 1; e.g. "
        "--threads 0)",
    )
    p.add_argument(
        "--no_plots",
        action="store_true",
        help="write the JSON and tables only (default: plots too; e.g. --no_plots)",
    )
    p.add_argument(
        "--checkpoints",
        nargs="+",
        default=None,
        help="checkpoints of --model in training order (.weights.h5 or .keras): "
        "memory movement between consecutive ones (default: none; e.g. --checkpoints "
        "runs/sample/checkpoints/ckpt-*.weights.h5)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="label of --model in tables (default: its class name; e.g. --name MCIBI)",
    )
    p.add_argument(
        "--baseline_name",
        default=None,
        help="label of --baseline (default: its class name; e.g. --baseline_name DeepLabV3)",
    )
    p.add_argument(
        "--eager",
        action="store_true",
        help="run forward_heads eagerly (default on TensorFlow: a compiled tf.function; "
        "e.g. --eager)",
    )
    p.add_argument("--verbose", **verbose_option())
    return p


def _quiet(verbose):
    """Python-side TensorFlow/absl/Keras logs at WARNING (INFO with `verbose`, i.e.
    --verbose 2). TensorFlow's C++ start-up lines are printed when `keras_memseg` imports
    it, before this module runs: set TF_CPP_MIN_LOG_LEVEL=2 in the environment to hide them."""
    import logging

    level = logging.INFO if verbose else logging.WARNING
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
    except ImportError:
        pass
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(level)
    if not verbose:
        from keras_memseg.console import quiet_libraries

        quiet_libraries()


def _layers(text):
    return tuple(v.strip() for v in text.split(",") if v.strip()) if text else None


def _load_split(datasets, args, info, model):
    from keras_memseg.analysis.loading import AnalysisInputError

    try:
        raw = datasets.load(args.dataset, args.split, args.data_dir, args.manual_dir)
    except datasets.DatasetNotFoundError as error:
        first = str(error).strip().splitlines()[0]
        raise AnalysisInputError(
            f"no data for dataset {args.dataset!r}: {first} "
            "(pass --manual_dir, see keras_memseg.datasets.missing_data_message)"
        )
    except ValueError as error:
        raise AnalysisInputError(f"dataset {args.dataset!r}: {str(error).splitlines()[0]}")
    # mmseg's (w, h) / (long, short): --test_scale H,W, else the model's, else the dataset's
    test_scale, keep_ratio = tuple(info.augment.test_scale), bool(info.augment.test_keep_ratio)
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is not None and getattr(preprocessor, "test_scale", None) is not None:
        test_scale = tuple(preprocessor.test_scale)
        keep_ratio = bool(getattr(preprocessor, "keep_ratio", keep_ratio))
    if args.test_scale:
        test_scale = (args.test_scale[1], args.test_scale[0])
    return lambda: datasets.eval_pipeline(raw, test_scale, keep_ratio), test_scale, keep_ratio


def _model_path(path):
    """What `--model` / `--baseline` names (`keras_memseg.file_kinds.resolve_model_path`)."""
    from keras_memseg.analysis.loading import AnalysisInputError

    try:
        return resolve_model_path(path)
    except ValueError as error:
        raise AnalysisInputError(str(error)) from None


def _dataset(args, model_path):
    """--dataset / --data, else the dataset of the run --model belongs to."""
    from keras_memseg.analysis.loading import AnalysisInputError

    if args.dataset is not None:
        return args.dataset
    config = run_config_path(model_path)
    name = run_dataset(config) if config else None
    if name is None:
        raise AnalysisInputError(
            f"--model {args.model} does not say which dataset to analyse on (only a run "
            "folder's config.json does): pass --dataset NAME or --data ROOT"
        )
    return name


def run(args):
    """Runs the analysis for parsed arguments.

    Returns:
        (the dict written to analysis.json, the markdown summary and per-class table).
    """
    import keras

    from keras_memseg import datasets
    from keras_memseg.analysis import memory as memory_lib
    from keras_memseg.analysis import report
    from keras_memseg.analysis.loading import AnalysisInputError
    from keras_memseg.analysis.loading import load_segmenter

    model_path = _model_path(args.model)
    args.dataset = _dataset(args, model_path)
    try:
        info = datasets.get_info(args.dataset)
    except ValueError as error:
        raise AnalysisInputError(f"dataset {args.dataset!r}: {str(error).splitlines()[0]}")
    if args.max_pixels_per_class < 1:
        raise AnalysisInputError(
            f"--max_pixels_per_class must be >= 1, got {args.max_pixels_per_class}"
        )
    if not args.no_plots:
        from keras_memseg.analysis import plots

        try:
            plots.check_plot_dependencies(args.embedding)
        except ImportError as error:
            raise AnalysisInputError(f"{error} (or pass --no_plots)")
    names = list(info.class_names)
    models = [("model", args.model, _layers(args.layers), args.name)]
    if args.baseline:
        models.append(
            ("baseline", args.baseline, _layers(args.baseline_layers), args.baseline_name)
        )
    loaded = []
    for role, path, layers, label in models:
        model = load_segmenter(model_path if role == "model" else _model_path(path))
        if model.num_classes != info.num_classes:
            raise AnalysisInputError(
                f"{role} {path} predicts {model.num_classes} classes but "
                f"dataset {info.name!r} has {info.num_classes}"
            )
        loaded.append((role, path, model, layers, label))
    make_ds, test_scale, keep_ratio = _load_split(datasets, args, info, loaded[0][2])
    os.makedirs(args.out, exist_ok=True)

    analyses, result = [], {}
    for role, path, model, layers, label in loaded:
        forward = None
        if not args.eager and keras.backend.backend() == "tensorflow":
            from keras_memseg.analysis.tf_forward import compiled_forward_heads

            forward = compiled_forward_heads(model)
        try:
            analysis = report.analyze(
                model,
                make_ds(),
                names,
                layers=layers,
                label=label,
                max_pixels_per_class=args.max_pixels_per_class,
                seed=args.seed,
                max_images=args.max_images,
                ignore_class=getattr(info, "ignore_class", 255),
                forward=forward,
            )
        except ValueError as error:  # unknown or mismatched layers
            raise AnalysisInputError(f"{role} {path}: {str(error).splitlines()[0]}")
        analyses.append(analysis)
        if analysis.memory is not None and not analysis.memory.any():
            print(
                f"warning: {role} {path}: the feature memory is all zero (untrained or not "
                "restored); its statistics describe an empty memory",
                file=sys.stderr,
            )
        entry = {"path": os.path.abspath(path), **analysis.to_json(names)}
        result[role] = entry
    if args.checkpoints:
        memories = memory_lib.load_memories(args.checkpoints, loaded[0][2])
        movement = memory_lib.memory_movement(memories)
        steps = [
            f"{os.path.basename(a)} -> {os.path.basename(b)}"
            for a, b in zip(args.checkpoints[:-1], args.checkpoints[1:])
        ]
        result["model"]["memory_movement"] = memory_lib.movement_to_json(movement, names, steps)

    payload = {
        "dataset": info.name,
        "split": args.split,
        "class_names": names,
        "settings": {
            "max_pixels_per_class": args.max_pixels_per_class,
            "seed": args.seed,
            "max_images": args.max_images,
            "test_scale": list(test_scale),
            "keep_ratio": keep_ratio,
            "embedding": args.embedding,
        },
        "definitions": report.DEFINITIONS,
        **result,
    }
    pixels = analyses[0].sample.pixels_seen
    columns = {}
    for analysis in analyses:
        columns.update(analysis.columns())
    table = report.comparison_markdown(columns, names, pixels)
    if args.baseline:
        with open(os.path.join(args.out, "comparison.md"), "w") as f:
            f.write(table)
        with open(os.path.join(args.out, "comparison.json"), "w") as f:
            json.dump(
                {
                    "dataset": info.name,
                    "split": args.split,
                    "definitions": report.DEFINITIONS,
                    "columns": report.comparison_json(columns, names),
                },
                f,
                indent=2,
            )
    if not args.no_plots:
        written = report.write_plots(
            analyses,
            args.out,
            names,
            info.palette,
            args.embedding,
            args.seed,
            args.plot_points,
            args.threads or None,
        )
        payload["plots"] = {k: os.path.basename(v) for k, v in written.items()}
    with open(os.path.join(args.out, "analysis.json"), "w") as f:
        json.dump(payload, f, indent=2)
    return payload, table


def main(argv=None, prog=PROG):
    """Runs `keras-memseg analysis ARGV...` (`argv` without the program name); returns the
    exit status. Flags are parsed before TensorFlow loads."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    args.dataset = chosen_dataset(parser, args)
    _quiet(args.verbose >= 2)
    from keras_memseg.analysis.loading import AnalysisInputError

    start = time.perf_counter()
    try:
        payload, table = run(args)
    except AnalysisInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(table.split("\n\nPer class")[0])
    print(
        f"wrote {os.path.join(args.out, 'analysis.json')} and "
        f"{', '.join(payload.get('plots', {}).values()) or 'no plots'}"
        f"{' and comparison.md/json' if args.baseline else ''} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
