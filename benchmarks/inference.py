"""Inference latency and throughput: Keras predict, compiled call, SavedModel, TFLite.

    python benchmarks/inference.py [--backbone resnet18_v1c] [--sizes 256] [--batch 1]
        [--classes 150] [--models mcibi deeplabv3] [--runs 7] [--warmup 2]
        [--quantizations none fp16 dynamic int8] [--calibration 8] [--threads N]
        [--model_file runs/sample/model.keras] [--images random|sample] [--agreement_images 16]
        [--out benchmarks/results/inference.json]

For each model and fixed input size (batch --batch, TFLite always batch 1):
  * `predict`: `model.predict(x, batch_size=B)` (Keras, includes its per-call setup);
  * `call`: `tf.function(model(x, training=False))`, jit_compile off and on (XLA);
  * `saved_model`: `keras_memseg.export.export_saved_model`, reloaded with
    `tf.saved_model.load`, signature `serving_default` (raw 0-255 images in,
    normalisation and argmax in the graph);
  * `tflite/<q>`: `keras_memseg.export.export_tflite` for each quantization,
    run with `tf.lite.Interpreter` (XNNPACK, --threads, default all cores).
Weights are random (latency does not depend on them; the MCIBI memory is filled
with random rows so that no path runs on an empty memory) unless --model_file
names a trained `.keras` model (e.g. the sample recipe's `runs/sample/model.keras`;
its backbone and classes are its own, reported as model "file"). Each variant is
warmed up (--warmup runs, tracing/compilation excluded) and the median of
--runs timed calls is reported; throughput = batch / median.

Label agreement of each TFLite model with the float Keras model: the share of
pixels with the same label, over --agreement_images images: random noise
(--images random), or the bundled CamVid sample's val frames resized to the
input size (--images sample; meaningful with a trained --model_file, since a
random model's near-uniform logits flip on rounding). The #15 targets are printed
as PASS/FAIL lines (`target_lines`): TFLite dynamic-range >= 2x faster than float
`predict` with >= 98 % label agreement; MCIBI `predict` within 1.2x of DeepLabV3's.
"""

import argparse
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
from _common import repo_path  # noqa: E402
from _common import run_record  # noqa: E402
from _common import summary  # noqa: E402
from _common import timed  # noqa: E402
from _common import write_json  # noqa: E402

from keras_memseg import export  # noqa: E402
from keras_memseg.layers.image_normalization import IMAGENET_MEAN  # noqa: E402
from keras_memseg.layers.image_normalization import IMAGENET_STD  # noqa: E402
from keras_memseg.models import DeepLabV3  # noqa: E402
from keras_memseg.models import MemorySegmenter  # noqa: E402


def build(name, args, size):
    keras.utils.set_random_seed(0)
    if name == "file":
        model = keras.saving.load_model(args.model_file)
        model(np.zeros((1, size, size, 3), "float32"))
        return model
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
    images = agreement_images(args, size, rng)
    raw = np.repeat(images[:1], args.batch, axis=0)  # the timed input

    def normalise(pixels):  # the Keras model's input, as the exported graphs do in-graph
        return ((pixels - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)).astype("float32")

    x = normalise(raw)

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
    keras_labels = np.argmax(model.predict(normalise(images), batch_size=1, verbose=0), axis=-1)
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
            served = tf.constant(raw)
            record("saved_model", lambda: serving(images=served)["labels"].numpy(), args.batch)
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
            labels = np.stack(
                [np.asarray(runner(images=image[None])["labels"])[0] for image in images]
            )
            if labels.shape != keras_labels.shape:  # never compare by broadcasting
                raise ValueError(f"labels {labels.shape} vs Keras {keras_labels.shape}")
            # Share of pixels whose label equals the float Keras model's (same images).
            rows[key]["label_agreement"] = round(float(np.mean(labels == keras_labels)), 4)
            rows[key]["agreement_images"] = len(images)
            rows[key]["convert_s"] = round(convert_s, 1)
            rows[key]["file_mib"] = round(os.path.getsize(path) / 2**20, 1)
        except Exception as error:  # noqa: BLE001
            rows[key] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
            print(f"  {name} {size} {key}: {rows[key]['error']}", flush=True)
    return rows


def agreement_images(args, size, rng):
    """(N, size, size, 3) float32 pixels in [0, 255]: noise or the sample's val frames."""
    if args.images == "random":
        return rng.uniform(0, 255, (args.agreement_images, size, size, 3)).astype("float32")
    from keras_memseg import datasets

    frames = datasets.load("sample", "val").take(args.agreement_images)
    return np.stack(
        [
            tf.image.resize(tf.cast(example["image"], "float32"), (size, size)).numpy()
            for example in frames
        ]
    )


def target_lines(results, backbone):
    """The #15 inference targets as PASS/FAIL lines, for what `results` measured.

    Example:
    >>> rows = {"predict": {"median_ms": 100.0},
    ...         "tflite/dynamic": {"median_ms": 40.0, "label_agreement": 0.99}}
    >>> target_lines({"mcibi/256x256": rows}, "resnet18_v1c")[0]
    'PASS: mcibi/256x256 (resnet18_v1c) TFLite dynamic-range >= 2x faster than float predict with >= 98 % label agreement (2.50x, 99.0 %)'
    """
    lines = []
    for key, rows in results.items():
        predict, dynamic = rows.get("predict", {}), rows.get("tflite/dynamic", {})
        if "median_ms" in predict and "median_ms" in dynamic:
            speedup = predict["median_ms"] / dynamic["median_ms"]
            agreement = dynamic.get("label_agreement", 0.0)
            ok = speedup >= 2.0 and agreement >= 0.98
            lines.append(
                f"{'PASS' if ok else 'FAIL'}: {key} ({backbone}) TFLite dynamic-range >= 2x "
                "faster than float predict with >= 98 % label agreement "
                f"({speedup:.2f}x, {100 * agreement:.1f} %)"
            )
    sizes = sorted({key.split("/")[1] for key in results})
    for size in sizes:
        mcibi = results.get(f"mcibi/{size}", {}).get("predict", {})
        deeplab = results.get(f"deeplabv3/{size}", {}).get("predict", {})
        if "median_ms" in mcibi and "median_ms" in deeplab:
            ratio = mcibi["median_ms"] / deeplab["median_ms"]
            lines.append(
                f"{'PASS' if ratio <= 1.2 else 'FAIL'}: {size} ({backbone}) MCIBI predict "
                f"within 1.2x of DeepLabV3's ({ratio:.2f}x)"
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18_v1c")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument(
        "--models", nargs="+", default=["mcibi", "deeplabv3"], choices=["mcibi", "deeplabv3"]
    )
    parser.add_argument(
        "--model_file", default="", help="a trained .keras model instead of --models (random)"
    )
    parser.add_argument("--images", choices=["random", "sample"], default="random")
    parser.add_argument("--agreement_images", type=int, default=1)
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
            for name in ["file"] if args.model_file else args.models:
                results[f"{name}/{size}x{size}"] = bench_model(name, size, args, workdir)
    settings = dict(vars(args), out=repo_path(args.out))
    if args.model_file:
        settings["model_file"] = repo_path(args.model_file)
    payload = {
        "benchmark": "inference",
        **run_record("inference", argv),
        "settings": settings,
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "results": results,
    }
    backbone = "trained " + os.path.basename(args.model_file) if args.model_file else args.backbone
    payload["targets"] = target_lines(results, backbone)
    out = pathlib.Path(args.out)
    write_json(out, payload)

    hw = payload["hardware"]
    print(
        f"\n{hw['cpu']}, {hw['cpu_count']} cores, load at start "
        f"{hw.get('load_average_at_start')}; {backbone}"
        f"{'' if args.model_file else f', K={args.classes}'}, batch "
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
    print("\n".join(payload["targets"]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
