"""mIoU of MemorySegmenter vs the DeepLabV3 baseline on CamVid, same schedule and seeds.

    python benchmarks/accuracy_sample.py [--seeds 0 1 2] [--steps 300] [--batch 4]
        [--crop 128] [--train_scale 240 180] [--test_scale 240 180] [--lr 0.02]
        [--depth 18] [--base_channels 16] [--feats 64] [--models deeplabv3 mcibi]
        [--camvid_dir /work/shared/data/camvid] [--data_dir benchmarks/.cache/tfds]
        [--max_eval N] [--jit_compile] [--out benchmarks/results/accuracy_sample.json]

Trains each model from scratch (no pretrained weights are available offline) on
the CamVid train split (367 images, 11 classes) with the reference recipe shape:
SGD momentum 0.9, coupled weight decay 5e-4, poly LR (power 0.9, floor 1 %),
random rescale x U(0.5, 2) around --train_scale, random crop with the 75 % cap,
flip, photometric distortion; MCIBI's memory momentum is tied to the LR
(0.9 * lr_t / lr0, spec 2.2) and updated at label resolution. Both models get
the same backbone, head width, data order and augmentation for a given seed.
Evaluation: the val split (101 images), whole image resized to --test_scale,
logits upsampled to the original 480x360, confusion-matrix mIoU
(`keras_memseg.evaluation.evaluate_dataset`).

The default schedule is sized for a 2-core CPU (each run is a few minutes),
so absolute mIoU is far below published numbers (ResNet-50/101 ImageNet
weights, 40k-80k iterations at 512x512); the comparison, not the level, is
the point. Results are written after every run, so an interrupted job keeps
what it finished.
"""

import argparse
import dataclasses
import json
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

from _common import hardware  # noqa: E402
from keras_memseg import datasets  # noqa: E402
from keras_memseg import evaluation  # noqa: E402
from keras_memseg.backbones import DilatedResNetBackbone  # noqa: E402
from keras_memseg.models import DeepLabV3  # noqa: E402
from keras_memseg.models import MemorySegmenter  # noqa: E402
from keras_memseg.training.schedules import PolyDecay  # noqa: E402
from keras_memseg.training.schedules import TiedMomentum  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
NUM_CLASSES = 11


def build(name, args, schedule):
    backbone = DilatedResNetBackbone(depth=args.depth, output_stride=8,
                                     base_channels=args.base_channels)
    common = dict(feats_channels=args.feats, aux_channels=args.feats,
                  weight_decay=args.weight_decay)
    if name == "deeplabv3":
        return DeepLabV3(backbone, NUM_CLASSES, **common)
    return MemorySegmenter(
        backbone, NUM_CLASSES, transform_channels=max(8, args.feats // 2),
        update_resolution=args.update_resolution,
        memory_momentum=TiedMomentum(schedule, base_momentum=0.9), **common)


def run_one(name, seed, args):
    keras.utils.clear_session()
    keras.utils.set_random_seed(seed)
    config = dataclasses.replace(
        datasets.augment_config_for("camvid"), target_scale=tuple(args.train_scale),
        crop_size=(args.crop, args.crop), test_scale=tuple(args.test_scale))
    train = datasets.load("camvid", "train", data_dir=args.data_dir, manual_dir=args.camvid_dir)
    train = datasets.train_pipeline(train, config, args.batch, seed=seed, shuffle_buffer=367,
                                    repeat=True)
    schedule = PolyDecay(args.lr, total_steps=args.steps)
    model = build(name, args, schedule)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
                  jit_compile=args.jit_compile)
    start = time.perf_counter()
    history = model.fit(train, steps_per_epoch=args.steps, epochs=1, verbose=0)
    train_seconds = time.perf_counter() - start

    val = datasets.load("camvid", "val", data_dir=args.data_dir, manual_dir=args.camvid_dir)
    val = datasets.eval_pipeline(val, tuple(args.test_scale), keep_ratio=True)
    start = time.perf_counter()
    report = evaluation.evaluate_dataset(model, val, NUM_CLASSES,
                                         max_examples=args.max_eval, verbose=False)
    eval_seconds = time.perf_counter() - start
    result = evaluation.report_to_json(report)
    final_loss = {k: float(v[-1]) for k, v in history.history.items()}
    return {"model": name, "seed": seed, "mIoU": result["mIoU"], "aAcc": result["aAcc"],
            "mAcc": result["mAcc"], "num_images": result["num_images"],
            "per_class_IoU": {k: v["IoU"] for k, v in result["per_class"].items()},
            "final_train_metrics": final_loss, "params": int(model.count_params()),
            "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1)}


def summarise(runs, models):
    rows = {}
    for name in models:
        values = [100 * r["mIoU"] for r in runs if r["model"] == name and r["mIoU"] is not None]
        if values:
            rows[name] = {"seeds": len(values), "mIoU_mean": round(float(np.mean(values)), 2),
                          "mIoU_std": round(float(np.std(values, ddof=1)), 2)
                          if len(values) > 1 else None,
                          "mIoU_min": round(min(values), 2), "mIoU_max": round(max(values), 2),
                          "per_seed": [round(v, 2) for v in values]}
    paired = {}
    if len(models) == 2:
        by = {(r["model"], r["seed"]): r["mIoU"] for r in runs}
        diffs = [100 * (by[(models[1], s)] - by[(models[0], s)])
                 for (m, s) in by if m == models[0] and (models[1], s) in by]
        if diffs:
            paired = {"difference": f"{models[1]} - {models[0]} (mIoU points, same seed)",
                      "mean": round(float(np.mean(diffs)), 2),
                      "per_seed": [round(d, 2) for d in diffs]}
    return rows, paired


def print_table(rows, paired, runs):
    print(f"{'model':<10} {'seed':>4} {'mIoU %':>7} {'aAcc %':>7} {'train s':>8}")
    for r in runs:
        print(f"{r['model']:<10} {r['seed']:>4} {100 * r['mIoU']:>7.2f} {100 * r['aAcc']:>7.2f} "
              f"{r['train_seconds']:>8.0f}")
    print()
    print(f"{'model':<10} {'seeds':>5} {'mean':>6} {'std':>6} {'min':>6} {'max':>6}")
    for name, row in rows.items():
        std = "-" if row["mIoU_std"] is None else f"{row['mIoU_std']:.2f}"
        print(f"{name:<10} {row['seeds']:>5} {row['mIoU_mean']:>6.2f} {std:>6} "
              f"{row['mIoU_min']:>6.2f} {row['mIoU_max']:>6.2f}")
    if paired:
        print(f"paired {paired['difference']}: mean {paired['mean']:+.2f}, "
              f"per seed {paired['per_seed']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["deeplabv3", "mcibi"],
                        choices=["deeplabv3", "mcibi"])
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
    args = parser.parse_args(argv)

    datasets.prepare("camvid", data_dir=args.data_dir, manual_dir=args.camvid_dir)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    for seed in args.seeds:
        for name in args.models:
            run = run_one(name, seed, args)
            runs.append(run)
            print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: mIoU "
                  f"{100 * run['mIoU']:.2f} (train {run['train_seconds']:.0f} s, "
                  f"eval {run['eval_seconds']:.0f} s)", flush=True)
            rows, paired = summarise(runs, args.models)
            payload = {"benchmark": "accuracy_sample", "command": " ".join(sys.argv),
                       "settings": vars(args), "hardware": hardware(),
                       "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                                    "python": platform.python_version()},
                       "summary": rows, "paired": paired, "runs": runs}
            tmp = out.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(payload, indent=2))
            tmp.replace(out)
    print_table(*summarise(runs, args.models), runs)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
