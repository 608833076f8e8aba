"""Throughput of `keras_memseg.datasets.train_pipeline` on CamVid (measured, not asserted).

    python benchmarks/data_pipeline.py [--camvid_dir DIR] [--data_dir DIR]
        [--batch_size 8] [--crop 512] [--batches 40] [--warmup 5]
        [--out benchmarks/results/data_pipeline.json]

Prepares the CamVid train split with the `camvid` TFDS builder (into a temporary
data_dir unless --data_dir is given), then times the full training
augmentation with the reference ADE20K/COCO settings (keep-ratio rescale to
(2048, 512) x U(0.5, 2), 512x512 crop with the 75 % cap, flip, photometric,
normalise, pad). Warm-up batches are excluded. Prints a table and writes --out.
"""

import argparse
import dataclasses
import os
import pathlib
import platform
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tensorflow as tf  # noqa: E402
from _common import run_record  # noqa: E402
from _common import write_json  # noqa: E402

from keras_memseg import datasets  # noqa: E402


def _time(iterator, warmup, batches, batch_size):
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    seconds = time.perf_counter() - start
    return {
        "images": batches * batch_size,
        "seconds": round(seconds, 3),
        "images_per_second": round(batches * batch_size / seconds, 2),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid_dir", default="/work/shared/data/camvid")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "data_pipeline.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        start = time.perf_counter()
        datasets.prepare("camvid", data_dir=data_dir, manual_dir=args.camvid_dir)
        prepare_seconds = time.perf_counter() - start
        source = datasets.load("camvid", "train", data_dir=data_dir)
        config = dataclasses.replace(
            datasets.augment_config_for("ade20k"), crop_size=(args.crop, args.crop)
        )
        rows = {}
        decode = source.repeat().batch(1).prefetch(tf.data.AUTOTUNE)
        rows["decode only (TFRecord -> uint8)"] = _time(
            iter(decode), args.warmup, args.batches * args.batch_size // 2, 1
        )
        train = datasets.train_pipeline(
            source, config, args.batch_size, seed=0, shuffle_buffer=64, repeat=True
        )
        rows["train_pipeline (full augmentation)"] = _time(
            iter(train), args.warmup, args.batches, args.batch_size
        )
        no_photo = datasets.train_pipeline(
            source,
            dataclasses.replace(config, photometric=False),
            args.batch_size,
            seed=0,
            shuffle_buffer=64,
            repeat=True,
        )
        rows["train_pipeline without photometric"] = _time(
            iter(no_photo), args.warmup, args.batches, args.batch_size
        )

    print(
        f"CamVid train, crop {args.crop}x{args.crop}, batch {args.batch_size}, "
        f"{os.cpu_count()} CPU cores, tensorflow {tf.__version__}"
    )
    print(f"{'pipeline':40s} {'images':>7s} {'seconds':>8s} {'images/s':>9s}")
    for name, row in rows.items():
        print(
            f"{name:40s} {row['images']:7d} {row['seconds']:8.2f} {row['images_per_second']:9.2f}"
        )
    result = {
        "benchmark": "data_pipeline",
        **run_record("data_pipeline", argv),
        "dataset": "camvid train (480x360)",
        "crop_size": [args.crop, args.crop],
        "batch_size": args.batch_size,
        "config": dataclasses.asdict(config),
        "warmup_batches": args.warmup,
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "tensorflow": tf.__version__,
        "prepare_seconds": round(prepare_seconds, 2),
        "results": rows,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
