"""mIoU of MemorySegmenter vs the DeepLabV3 baseline on CamVid, same schedule and seeds.

    python benchmarks/accuracy_sample.py [--seeds 0 1 2] [--steps 300] [--batch 4]
        [--crop 128] [--train_scale 240 180] [--test_scale 240 180] [--lr 0.02]
        [--depth 18] [--base_channels 16] [--feats 64] [--models deeplabv3 mcibi]
        [--camvid_dir /work/shared/data/camvid] [--data_dir benchmarks/.cache/tfds]
        [--max_eval N] [--jit_compile] [--out benchmarks/results/accuracy_sample.json]
        [--analysis_pixels 2000] [--analysis_seed 0] [--plot benchmarks/results/...png]

Trains each model from scratch (no pretrained weights are available offline) on
the CamVid train split (367 images, 11 classes) with the reference recipe shape:
SGD momentum 0.9, coupled weight decay 5e-4, poly LR (power 0.9, floor 1 %),
random rescale x U(0.5, 2) around --train_scale, random crop with the 75 % cap,
flip, photometric distortion; MCIBI's memory momentum is tied to the LR
(0.9 * lr_t / lr0, as the reference) and updated at label resolution. Both models get
the same backbone, head width, data order and augmentation for a given seed.
Evaluation: the val split (101 images), whole image resized to --test_scale,
logits upsampled to the original 480x360, confusion-matrix mIoU
(`keras_memseg.evaluation.evaluate_dataset`).

Beside mIoU, each trained model's pixel embeddings are measured on the same val
images (`keras_memseg.analysis`): per-class compactness (mean cosine distance of a
class's pixels to its centre), dispersion (mean cosine distance between class
centres) and their ratio, for MCIBI at `features` (F, what the memory reads and is
updated from) and `head_features` (after memory aggregation and context fusion),
for DeepLabV3 at `head_features` (ASPP output); a seeded sample of at most
--analysis_pixels pixels per class (the same pixels for every model and seed: same
sampling seed, same output stride). The first seed's embeddings are drawn into
--plot (t-SNE; MCIBI's memory rows as stars).

The default schedule is sized for a 2-core CPU (each run is a few minutes),
so absolute mIoU is far below published numbers (ResNet-50/101 ImageNet
weights, 40k-80k iterations at 512x512); the comparison, not the level, is
the point. Results are written after every run, so an interrupted job keeps
what it finished.
"""

import argparse
import dataclasses
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import repo_path  # noqa: E402
from _common import run_record  # noqa: E402
from _common import write_json  # noqa: E402

from keras_memseg import analysis  # noqa: E402
from keras_memseg import datasets  # noqa: E402
from keras_memseg import evaluation  # noqa: E402
from keras_memseg.analysis.tf_forward import compiled_forward_heads  # noqa: E402
from keras_memseg.backbones import DilatedResNetBackbone  # noqa: E402
from keras_memseg.models import DeepLabV3  # noqa: E402
from keras_memseg.models import MemorySegmenter  # noqa: E402
from keras_memseg.optimizers.schedules import PolyDecay  # noqa: E402
from keras_memseg.optimizers.schedules import TiedMomentum  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
NUM_CLASSES = 11
CLASS_NAMES = list(datasets.get_info("camvid").class_names)


def build(name, args, schedule):
    """The model, compiled: SGD 0.9 on the poly schedule, coupled weight decay, and
    for MCIBI the memory momentum tied to the schedule."""
    backbone = DilatedResNetBackbone(
        depth=args.depth, output_stride=8, base_channels=args.base_channels
    )
    common = dict(feats_channels=args.feats, aux_channels=args.feats)
    policy = dict(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        weight_decay=args.weight_decay,
        jit_compile=args.jit_compile,
    )
    if name == "deeplabv3":
        model = DeepLabV3(backbone, NUM_CLASSES, **common)
        model.compile(**policy)
        return model
    model = MemorySegmenter(
        backbone,
        NUM_CLASSES,
        transform_channels=max(8, args.feats // 2),
        update_resolution=args.update_resolution,
        **common,
    )
    model.compile(memory_momentum=TiedMomentum(schedule, base_momentum=0.9), **policy)
    return model


def run_one(name, seed, args):
    keras.utils.clear_session()
    keras.utils.set_random_seed(seed)
    config = dataclasses.replace(
        datasets.augment_config_for("camvid"),
        target_scale=tuple(args.train_scale),
        crop_size=(args.crop, args.crop),
        test_scale=tuple(args.test_scale),
    )
    train = datasets.load("camvid", "train", data_dir=args.data_dir, manual_dir=args.camvid_dir)
    train = datasets.train_pipeline(
        train, config, args.batch, seed=seed, shuffle_buffer=367, repeat=True
    )
    schedule = PolyDecay(args.lr, total_steps=args.steps)
    model = build(name, args, schedule)
    start = time.perf_counter()
    history = model.fit(train, steps_per_epoch=args.steps, epochs=1, verbose=0)
    train_seconds = time.perf_counter() - start

    val = datasets.load("camvid", "val", data_dir=args.data_dir, manual_dir=args.camvid_dir)
    val = datasets.eval_pipeline(val, tuple(args.test_scale), keep_ratio=True)
    start = time.perf_counter()
    report = evaluation.evaluate_dataset(
        model, val, NUM_CLASSES, max_examples=args.max_eval, verbose=False
    )
    eval_seconds = time.perf_counter() - start
    result = evaluation.report_to_json(report)
    final_loss = {k: float(v[-1]) for k, v in history.history.items()}
    start = time.perf_counter()
    measured = analysis.analyze(
        model,
        val,
        CLASS_NAMES,
        label=name,
        max_pixels_per_class=args.analysis_pixels,
        seed=args.analysis_seed,
        max_images=args.max_eval,
        forward=compiled_forward_heads(model),
    )
    analysis_seconds = time.perf_counter() - start
    embedding = {}
    for layer, stats in measured.statistics.items():
        embedding[layer] = comparison_entry(stats)
    memory = None
    if measured.diagnostics is not None:
        sim = measured.diagnostics.similarity
        off = sim[~np.eye(len(sim), dtype=bool)]
        to_centres = analysis.memory_to_centres(
            measured.memory, measured.statistics["features"].centres
        )
        own = np.diag(to_centres)
        nearest = analysis.memory.memory_to_centres_json(to_centres, CLASS_NAMES)
        memory = {
            "unseen_classes": [CLASS_NAMES[k] for k in measured.diagnostics.unseen_classes],
            "mean_offdiagonal_cosine_similarity": round(float(np.nanmean(off)), 4),
            "row_to_own_feature_centre_distance": {
                n: round(float(v), 4) if np.isfinite(v) else None for n, v in zip(CLASS_NAMES, own)
            },
            "mean_row_to_own_centre_distance": round(float(np.nanmean(own)), 4),
            "rows_nearest_to_own_centre": nearest["rows_nearest_to_own_centre"],
        }
    run = {
        "model": name,
        "seed": seed,
        "mIoU": result["mIoU"],
        "aAcc": result["aAcc"],
        "mAcc": result["mAcc"],
        "num_images": result["num_images"],
        "per_class_IoU": {k: v["IoU"] for k, v in result["per_class"].items()},
        "embedding": embedding,
        "memory": memory,
        "final_train_metrics": final_loss,
        "params": int(model.count_params()),
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "analysis_seconds": round(analysis_seconds, 1),
    }
    return run, measured


def write_plot(measured, path, seed):
    """One t-SNE figure: a panel per model and layer, MCIBI's memory rows on `features`."""
    from keras_memseg.analysis import plots

    panels = []
    for m in measured:
        for layer in m.statistics:
            panels.append(
                {
                    "title": f"{m.label} {layer} (seed {seed})",
                    "features": m.sample.features[layer],
                    "labels": m.sample.labels,
                    "memory": m.memory if layer == "features" else None,
                }
            )
    start = time.perf_counter()
    plots.plot_embeddings(
        panels,
        path,
        CLASS_NAMES,
        datasets.get_info("camvid").palette,
        method="tsne",
        seed=0,
        max_points_per_class=80,
    )
    shrink_png(path)
    print(f"wrote {path} ({time.perf_counter() - start:.0f} s)", flush=True)


def shrink_png(path):
    """Re-saves a PNG with a 256-colour palette (about 4x smaller; the plot has few colours)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    small.save(path, optimize=True)


def comparison_entry(stats):
    """One layer's statistics for the JSON (cosine distances; NaN -> None)."""

    def num(v, digits=4):
        return round(float(v), digits) if np.isfinite(v) else None

    return {
        "mean_compactness": num(stats.mean_compactness),
        "dispersion": num(stats.dispersion),
        "ratio": num(stats.ratio, 3),
        "compactness": {n: num(v) for n, v in zip(CLASS_NAMES, stats.compactness)},
        "nearest_class_distance": {
            n: num(v) for n, v in zip(CLASS_NAMES, stats.nearest_class_distance)
        },
    }


def summarise(runs, models):
    rows = {}
    for name in models:
        values = [100 * r["mIoU"] for r in runs if r["model"] == name and r["mIoU"] is not None]
        if values:
            rows[name] = {
                "seeds": len(values),
                "mIoU_mean": round(float(np.mean(values)), 2),
                "mIoU_std": round(float(np.std(values, ddof=1)), 2) if len(values) > 1 else None,
                "mIoU_min": round(min(values), 2),
                "mIoU_max": round(max(values), 2),
                "per_seed": [round(v, 2) for v in values],
            }
    paired = {}
    if len(models) == 2:
        by = {(r["model"], r["seed"]): r["mIoU"] for r in runs}
        diffs = [
            100 * (by[(models[1], s)] - by[(models[0], s)])
            for (m, s) in by
            if m == models[0] and (models[1], s) in by
        ]
        if diffs:
            paired = {
                "difference": f"{models[1]} - {models[0]} (mIoU points, same seed)",
                "mean": round(float(np.mean(diffs)), 2),
                "per_seed": [round(d, 2) for d in diffs],
            }
    return rows, paired


def layer_columns(runs, models):
    """(model, layer) pairs with embedding statistics, in model order."""
    columns = []
    for name in models:
        for r in runs:
            if r["model"] == name:
                columns += [
                    (name, layer) for layer in r["embedding"] if (name, layer) not in columns
                ]
    return columns


def summarise_embeddings(runs, models):
    """Mean and std over seeds of mean compactness, dispersion and ratio per model/layer."""
    out = {}
    for name, layer in layer_columns(runs, models):
        entry = {}
        for key in ("mean_compactness", "dispersion", "ratio"):
            values = [
                r["embedding"][layer][key]
                for r in runs
                if r["model"] == name and r["embedding"][layer][key] is not None
            ]
            entry[key] = {
                "mean": round(float(np.mean(values)), 4) if values else None,
                "std": round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None,
                "per_seed": values,
            }
        per_class = {}
        for c in CLASS_NAMES:
            values = [
                r["embedding"][layer]["compactness"][c]
                for r in runs
                if r["model"] == name and r["embedding"][layer]["compactness"][c] is not None
            ]
            per_class[c] = round(float(np.mean(values)), 4) if values else None
        entry["compactness_per_class_mean_over_seeds"] = per_class
        out[f"{name} {layer}"] = entry
    return out


def print_embedding_table(summary):
    print()
    print("pixel embeddings on CamVid val (cosine distances; mean +- std over seeds)")
    print(f"{'model layer':<24} {'compactness':>16} {'dispersion':>16} {'ratio':>14}")
    for column, entry in summary.items():
        cells = []
        for key, digits in (("mean_compactness", 4), ("dispersion", 4), ("ratio", 2)):
            mean, std = entry[key]["mean"], entry[key]["std"]
            cells.append(
                "-"
                if mean is None
                else f"{mean:.{digits}f} +- {std:.{digits}f}"
                if std is not None
                else f"{mean:.{digits}f}"
            )
        print(f"{column:<24} {cells[0]:>16} {cells[1]:>16} {cells[2]:>14}")


def print_table(rows, paired, runs):
    print(
        f"{'model':<10} {'seed':>4} {'mIoU %':>7} {'aAcc %':>7} {'train s':>8}  "
        "compactness / dispersion / ratio per layer"
    )
    for r in runs:
        stats = "  ".join(
            f"{layer}: {e['mean_compactness']:.4f} / {e['dispersion']:.4f} / {e['ratio']:.2f}"
            for layer, e in r["embedding"].items()
        )
        print(
            f"{r['model']:<10} {r['seed']:>4} {100 * r['mIoU']:>7.2f} {100 * r['aAcc']:>7.2f} "
            f"{r['train_seconds']:>8.0f}  {stats}"
        )
    print()
    print(f"{'model':<10} {'seeds':>5} {'mean':>6} {'std':>6} {'min':>6} {'max':>6}")
    for name, row in rows.items():
        std = "-" if row["mIoU_std"] is None else f"{row['mIoU_std']:.2f}"
        print(
            f"{name:<10} {row['seeds']:>5} {row['mIoU_mean']:>6.2f} {std:>6} "
            f"{row['mIoU_min']:>6.2f} {row['mIoU_max']:>6.2f}"
        )
    if paired:
        print(
            f"paired {paired['difference']}: mean {paired['mean']:+.2f}, "
            f"per seed {paired['per_seed']}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--models", nargs="+", default=["deeplabv3", "mcibi"], choices=["deeplabv3", "mcibi"]
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--train_scale", type=int, nargs=2, default=[240, 180])
    parser.add_argument("--test_scale", type=int, nargs=2, default=[240, 180])
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--weight_decay", type=float, default=5e-4)
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--base_channels", type=int, default=16)
    parser.add_argument("--feats", type=int, default=64)
    parser.add_argument("--update_resolution", default="label", choices=["label", "feature"])
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument("--max_eval", type=int, default=None)
    parser.add_argument("--camvid_dir", default="/work/shared/data/camvid")
    parser.add_argument("--data_dir", default=str(HERE / ".cache" / "tfds"))
    parser.add_argument("--out", default=str(HERE / "results" / "accuracy_sample.json"))
    parser.add_argument(
        "--analysis_pixels",
        type=int,
        default=2000,
        help="sampled val pixels per class for the embedding statistics",
    )
    parser.add_argument(
        "--analysis_seed",
        type=int,
        default=0,
        help="pixel-sampling seed (the same pixels for every model and seed)",
    )
    parser.add_argument(
        "--plot",
        default=str(HERE / "results" / "accuracy_sample_embedding.png"),
        help="t-SNE plot of the first seed's embeddings ('' = none)",
    )
    args = parser.parse_args(argv)

    datasets.prepare("camvid", data_dir=args.data_dir, manual_dir=args.camvid_dir)
    out = pathlib.Path(args.out)
    record = run_record("accuracy_sample", argv)
    paths = ("camvid_dir", "data_dir", "out", "plot")
    settings = {k: repo_path(v) if k in paths and v else v for k, v in vars(args).items()}
    runs, first_seed = [], []
    for seed in args.seeds:
        for name in args.models:
            run, measured = run_one(name, seed, args)
            runs.append(run)
            stats = ", ".join(
                f"{layer} compactness {e['mean_compactness']:.4f} dispersion {e['dispersion']:.4f}"
                for layer, e in run["embedding"].items()
            )
            print(
                f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: mIoU "
                f"{100 * run['mIoU']:.2f} (train {run['train_seconds']:.0f} s, "
                f"eval {run['eval_seconds']:.0f} s, analysis {run['analysis_seconds']:.0f} s); "
                f"{stats}",
                flush=True,
            )
            if seed == args.seeds[0]:
                first_seed.append(measured)
                if args.plot and len(first_seed) == len(args.models):
                    write_plot(first_seed, args.plot, seed)
            rows, paired = summarise(runs, args.models)
            payload = {
                "benchmark": "accuracy_sample",
                **record,
                "settings": settings,
                "versions": {
                    "tensorflow": tf.__version__,
                    "keras": keras.__version__,
                    "python": platform.python_version(),
                },
                "summary": rows,
                "paired": paired,
                "embedding_summary": summarise_embeddings(runs, args.models),
                "definitions": analysis.report.DEFINITIONS,
                "runs": runs,
            }
            write_json(out, payload)
    print_table(*summarise(runs, args.models), runs)
    print_embedding_table(summarise_embeddings(runs, args.models))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
