"""python -m keras_memseg.analysis: compactness/dispersion of pixel embeddings, memory pictures.

    python -m keras_memseg.analysis --model runs/sample/model.keras --dataset sample \
        --split val --out runs/sample/analysis
    python -m keras_memseg.analysis --model mcibi.keras --baseline deeplabv3.keras \
        --dataset camvid --manual_dir /data/camvid --out analysis/camvid

Writes `analysis.json`, `embedding.png`, `compactness.png`, `memory_similarity.png`
(MemorySegmenter) and, with `--baseline`, `comparison.md` / `comparison.json`.
Bad input (unreadable model, unknown dataset or layer, class-count mismatch,
missing data or plotting extra) prints one line and exits with status 2.
"""

import argparse
import json
import logging
import os
import sys
import time

from keras_memseg.analysis.loading import AnalysisInputError

EXIT_BAD_INPUT = 2


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m keras_memseg.analysis",
        description="Intra-class compactness and inter-class dispersion of a segmenter's "
        "pixel embeddings, and what its feature memory holds.",
    )
    p.add_argument("--model", required=True, help="a .keras file or a preset folder")
    p.add_argument(
        "--baseline",
        default=None,
        help="a second model (e.g. DeepLabV3) to compare with, same format",
    )
    p.add_argument("--dataset", required=True, help="dataset name, e.g. sample, camvid, ade20k")
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--data_dir", default=None, help="TFDS data_dir")
    p.add_argument("--manual_dir", default=None, help="folder with the downloaded files")
    p.add_argument(
        "--layers",
        default=None,
        help="forward_heads keys for --model, comma separated (default: "
        "features,head_features for MemorySegmenter, head_features otherwise)",
    )
    p.add_argument("--baseline_layers", default=None, help="the same for --baseline")
    p.add_argument("--max_pixels_per_class", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max_images", type=int, default=None)
    p.add_argument(
        "--test_scale",
        type=int,
        nargs=2,
        default=None,
        metavar=("W", "H"),
        help="Resize target of the images (default: the dataset's test scale)",
    )
    p.add_argument(
        "--embedding",
        default="tsne",
        choices=["tsne", "pca", "none"],
        help="2-D embedding of the scatter plot (none: no scatter plot)",
    )
    p.add_argument("--plot_points", type=int, default=100, help="pixels drawn per class")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="t-SNE threads (0: all cores; one is faster on a busy CPU)",
    )
    p.add_argument("--no_plots", action="store_true", help="write the JSON and tables only")
    p.add_argument(
        "--checkpoints",
        nargs="+",
        default=None,
        help="checkpoints of --model in training order (.weights.h5 or .keras): "
        "memory movement between consecutive ones",
    )
    p.add_argument("--name", default=None, help="label of --model in tables (its class name)")
    p.add_argument("--baseline_name", default=None, help="label of --baseline")
    p.add_argument(
        "--eager",
        action="store_true",
        help="run forward_heads eagerly (default on TensorFlow: a compiled tf.function)",
    )
    p.add_argument("--verbose", action="store_true", help="TensorFlow/absl logs at INFO")
    return p


def _quiet(verbose):
    """Python-side TensorFlow/absl/Keras logs at WARNING (INFO with --verbose). TensorFlow's
    C++ start-up lines are printed when `keras_memseg` imports it, before this module
    runs: set TF_CPP_MIN_LOG_LEVEL=2 in the environment to hide them."""
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


def _load_split(datasets, args, info):
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
    aug = datasets.augment_config_for(info.name)
    test_scale = tuple(args.test_scale) if args.test_scale else tuple(aug.test_scale)
    return lambda: datasets.eval_pipeline(raw, test_scale, aug.test_keep_ratio), test_scale, aug


def run(args):
    """Runs the analysis for parsed arguments.

    Returns:
        (the dict written to analysis.json, the markdown summary and per-class table).
    """
    import keras

    from keras_memseg import datasets
    from keras_memseg.analysis import memory as memory_lib
    from keras_memseg.analysis import report
    from keras_memseg.analysis.loading import load_segmenter

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
        model = load_segmenter(path)
        if model.num_classes != info.num_classes:
            raise AnalysisInputError(
                f"{role} {path} predicts {model.num_classes} classes but "
                f"dataset {info.name!r} has {info.num_classes}"
            )
        loaded.append((role, path, model, layers, label))
    make_ds, test_scale, aug = _load_split(datasets, args, info)
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
            "keep_ratio": bool(aug.test_keep_ratio),
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


def main(argv=None):
    args = _parser().parse_args(argv)
    _quiet(args.verbose)
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
