"""Inference latency and throughput: Keras predict, compiled call, SavedModel, TFLite.

    python benchmarks/inference.py [--backbone resnet18_v1c] [--sizes 256] [--batch 1]
        [--classes 150] [--models mcibi deeplabv3] [--runs 7] [--warmup 2]
        [--quantizations none fp16 dynamic int8] [--calibration 8] [--threads N]
        [--out benchmarks/results/inference.json]

For each model and fixed input size (batch --batch, TFLite always batch 1):
  * `predict`: `model.predict(x, batch_size=B)` (Keras, includes its per-call setup);
  * `call`: `tf.function(model(x, training=False))`, jit_compile off and on (XLA);
  * `saved_model`: `keras_memseg.export.export_saved_model`, reloaded with
    `tf.saved_model.load`, signature `serving_default` (raw 0-255 images in,
    normalisation and argmax in the graph);
  * `tflite/<q>`: `keras_memseg.export.export_tflite` for each quantization,
    run with `tf.lite.Interpreter` (XNNPACK, --threads, default all cores).
Weights are random (latency does not depend on them); the MCIBI memory is filled
with random rows so that no path runs on an empty memory. Each variant is
warmed up (--warmup runs, tracing/compilation excluded) and the median of
--runs timed calls is reported; throughput = batch / median.
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
import warnings

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import importlib  # noqa: E402

importlib.import_module("keras_memseg")  # before Keras imports TensorFlow (its oneDNN choice)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import hardware  # noqa: E402
from _common import summary  # noqa: E402
from _common import timed  # noqa: E402

from keras_memseg import export  # noqa: E402
from keras_memseg.layers.image_normalization import IMAGENET_MEAN  # noqa: E402
from keras_memseg.layers.image_normalization import IMAGENET_STD  # noqa: E402
from keras_memseg.models import DeepLabV3  # noqa: E402
from keras_memseg.models import MemorySegmenter  # noqa: E402


def build(name, args, size):
    keras.utils.set_random_seed(0)
    if name == "deeplabv3":
        model = DeepLabV3(args.backbone, args.classes)
    else:
        model = MemorySegmenter(args.backbone, args.classes)
    model(np.zeros((1, size, size, 3), "float32"))
    if hasattr(model, "memory"):
        rows = np.random.default_rng(0).standard_normal(model.memory.memory.shape)
        model.memory.memory.assign(rows.astype("float32"))
    return model


def measure(fn, args):
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    result = summary(timed(fn, args.runs, max(0, args.warmup - 1)))
    result["first_call_s"] = round(first, 2)
    return result


def bench_model(name, size, args, workdir):
    rows = {}
    model = build(name, args, size)
    rng = np.random.default_rng(1)
    raw = rng.uniform(0, 255, (args.batch, size, size, 3)).astype("float32")
    # The Keras model's input: normalised as the exported graphs normalise `raw` in-graph.
    x = ((raw - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)).astype("float32")

    def record(key, fn, batch):
        try:
            rows[key] = measure(fn, args)
            rows[key]["images_per_s"] = round(1000 * batch / rows[key]["median_ms"], 2)
        except Exception as error:  # noqa: BLE001 - reported in the table
            rows[key] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        print(
            f"  {name} {size} {key}: {rows[key].get('median_ms', rows[key].get('error'))}",
            flush=True,
        )

    record("predict", lambda: model.predict(x, batch_size=args.batch, verbose=0), args.batch)
    keras_labels = np.argmax(model.predict(x[:1], verbose=0), axis=-1)[0]
    for jit in () if "call" in args.skip else (False, True):
        fn = tf.function(lambda t: model(t, training=False), jit_compile=jit)
        record(f"call/jit_{'on' if jit else 'off'}", lambda fn=fn: fn(x).numpy(), args.batch)
    if "saved_model" not in args.skip:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                folder = export.export_saved_model(
                    model, os.path.join(workdir, f"{name}{size}"), test_scale=None
                )
            serving = tf.saved_model.load(folder).signatures["serving_default"]
            images = tf.constant(raw)
            record("saved_model", lambda: serving(images=images)["labels"].numpy(), args.batch)
        except Exception as error:  # noqa: BLE001
            rows["saved_model"] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    calibration = [
        rng.uniform(0, 255, (size, size, 3)).astype("uint8") for _ in range(args.calibration)
    ]
    for q in args.quantizations:
        key = f"tflite/{q}"
        path = os.path.join(workdir, f"{name}{size}_{q}.tflite")
        try:
            start = time.perf_counter()
            export.export_tflite(
                model,
                path,
                input_size=(size, size),
                quantization=q,
                representative_data=calibration,
                num_calibration_samples=args.calibration,
            )
            convert_s = time.perf_counter() - start
            interpreter = tf.lite.Interpreter(model_path=path, num_threads=args.threads)
            runner = interpreter.get_signature_runner("serving_default")
            one = raw[:1]
            record(key, lambda runner=runner, one=one: runner(images=one), 1)
            labels = np.asarray(runner(images=one)["labels"]).reshape(keras_labels.shape)
            # Share of pixels whose label equals the float Keras model's (same image).
            rows[key]["label_agreement"] = round(float(np.mean(labels == keras_labels)), 4)
            rows[key]["convert_s"] = round(convert_s, 1)
            rows[key]["file_mib"] = round(os.path.getsize(path) / 2**20, 1)
        except Exception as error:  # noqa: BLE001
            rows[key] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
            print(f"  {name} {size} {key}: {rows[key]['error']}", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18_v1c")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument(
        "--models", nargs="+", default=["mcibi", "deeplabv3"], choices=["mcibi", "deeplabv3"]
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quantizations", nargs="*", default=["none", "fp16", "dynamic", "int8"])
    parser.add_argument(
        "--calibration", type=int, default=8, help="int8 calibration images (random; latency only)"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--skip", nargs="*", default=[], choices=["saved_model", "call"])
    parser.add_argument("--out", default=str(HERE / "results" / "inference.json"))
    args = parser.parse_args(argv)

    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for size in args.sizes:
            for name in args.models:
                results[f"{name}/{size}x{size}"] = bench_model(name, size, args, workdir)
    payload = {
        "benchmark": "inference",
        "command": " ".join(["python"] + sys.argv),
        "settings": {k: v for k, v in vars(args).items()},
        "hardware": hardware(),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "results": results,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))

    hw = payload["hardware"]
    print(
        f"\n{hw['cpu']}, {hw['cpu_count']} cores, load at start "
        f"{hw.get('load_average_at_start')}; {args.backbone}, K={args.classes}, batch "
        f"{args.batch} (TFLite batch 1, {args.threads} threads); median of {args.runs}"
    )
    print(f"{'model/size':<20} {'variant':<18} {'median ms':>10} {'img/s':>7} {'MiB':>6}")
    for key, rows in results.items():
        for variant, row in rows.items():
            if "error" in row:
                print(f"{key:<20} {variant:<18} failed: {row['error'][:80]}")
                continue
            print(
                f"{key:<20} {variant:<18} {row['median_ms']:>10.1f} "
                f"{row['images_per_s']:>7.2f} {row.get('file_mib', ''):>6}"
            )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
