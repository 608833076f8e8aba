"""Training-step time and peak memory: MemorySegmenter (MCIBI) vs the DeepLabV3 baseline.

    python benchmarks/train_step.py [--backbone resnet18_v1c] [--size 512] [--batch 1]
        [--classes 150] [--steps 3] [--warmup 1] [--backends tensorflow jax torch]
        [--jit off on] [--update_size 512] [--update_batch 1] [--share_step]
        [--conv_path auto|conv|matmul] [--out benchmarks/results/train_step.json]

The defaults are the CPU setting of the README (a ResNet-50 step at 512x512 takes
minutes on 2 cores). On a GPU, the paper's shapes:
    python benchmarks/train_step.py --backbone resnet50_v1c --size 512 --batch 2 \
        --update_batch 2 --steps 20 --warmup 5 --backends tensorflow jax torch

Per backend and `jit_compile` setting, three models are timed, each in its own
subprocess (so peak memory is per model): the DeepLabV3 baseline, MCIBI with
`update_resolution="label"` (exact, the reference) and MCIBI with `"feature"`.
A step is one `train_on_batch` on fixed random data (K = --classes, labels with
5 % ignore pixels); the first call (tracing / XLA compilation) and --warmup - 1
further steps are excluded and the median is reported. Peak memory: on GPU the device allocator's peak
(TF `get_memory_info`, JAX `memory_stats`, torch `max_memory_allocated`); on
CPU the process's peak RSS (`ru_maxrss`) minus the RSS after building the
model, i.e. what training adds.

--conv_path sets `keras_memseg.layers.conv_policy`'s setting in the workers: `auto` (its
table per backend and device, the default), `conv` (every convolution on
`keras.layers.Conv2D`'s own path, the backend's kernel) or `matmul` (the matmul forms
wherever they apply); each step row says what its convolutions computed with.

FLOPs: forward FLOPs of both models from the TF graph (`flops.py`), at the
benchmark size and at 512x512, with and without the aux head.

Memory update: `model.memory.update` alone (TF, `tf.function`, jit off and on)
on the paper's shapes, features (B, S/8, S/8, 512), labels (B, S, S), K = 150,
in label and feature mode, split into its pieces (upsampling; gather + cosine +
segment sums; apply + assign). The update's share of the step is the update
time over the MCIBI step time at the same shapes: either the main step table
when --update_size/--update_batch equal --size/--batch, or, with --share_step,
an extra MCIBI step timed at the update's shapes.
"""

import argparse
import collections
import json
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

MODELS = ("deeplabv3", "mcibi_label", "mcibi_feature")


# ----------------------------------------------------------------- worker side
def _gpu_peak_mib(backend):
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        elif backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "gpu":
                return device.memory_stats()["peak_bytes_in_use"] / 2**20
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated() / 2**20
    except Exception:  # noqa: BLE001 - memory is reported as unavailable
        return None
    return None


def build_model(name, backbone, classes):
    from keras_memseg.models import DeepLabV3
    from keras_memseg.models import MemorySegmenter

    if name == "deeplabv3":
        return DeepLabV3(backbone, classes)
    return MemorySegmenter(backbone, classes, update_resolution=name.split("_")[1])


def random_batch(batch, size, classes, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, size, size, 3)).astype("float32")
    y = rng.integers(0, classes, (batch, size, size)).astype("int32")
    y[rng.random(y.shape) < 0.05] = 255
    return x, y


def worker_step(spec):
    """One model, one backend, one jit setting: median step time and peak memory."""
    import keras

    from keras_memseg.layers import conv_policy

    conv_policy.set_conv_path(spec.get("conv_path", "auto"))
    chosen = collections.Counter()  # what the convolutions computed with, when traced
    computed_as = conv_policy.computed_as

    def counted(*args, **kwargs):
        how = computed_as(*args, **kwargs)
        chosen[how] += 1
        return how

    conv_policy.computed_as = counted
    keras.utils.set_random_seed(0)
    x, y = random_batch(spec["batch"], spec["size"], spec["classes"])
    model = build_model(spec["model"], spec["backbone"], spec["classes"])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=spec["jit"])
    model(x[:1])  # build
    rss_built = _common.current_rss_mib()
    start = time.perf_counter()
    model.train_on_batch(x, y)  # first call: tracing / compilation
    first = time.perf_counter() - start
    times = _common.timed(
        lambda: model.train_on_batch(x, y), spec["steps"], max(0, spec["warmup"] - 1)
    )
    result = {
        **_common.summary(times),
        "first_step_s": round(first, 2),
        "rss_after_build_mib": rss_built,
        "peak_rss_mib": _common.peak_rss_mib(),
        "gpu_peak_mib": _gpu_peak_mib(keras.backend.backend()),
        "conv_strategies": dict(sorted(chosen.items())),
    }
    result["train_peak_mib"] = (
        round(result["gpu_peak_mib"], 1)
        if result["gpu_peak_mib"] is not None
        else round(result["peak_rss_mib"] - rss_built, 1)
    )
    result["memory_kind"] = "gpu_peak" if result["gpu_peak_mib"] is not None else "rss_growth"
    return result


def worker_flops(spec):
    from flops import model_flops

    out = {}
    for size in sorted({spec["size"], 512}):
        shape = (1, size, size, 3)
        row = {}
        for name in ("deeplabv3", "mcibi_label"):
            total, _, by_scope = model_flops(
                build_model(name, spec["backbone"], spec["classes"]), shape
            )
            aux = sum(v for k, v in by_scope.items() if "aux_head" in k)
            row[name] = {
                "gflops": round(total / 1e9, 2),
                "gflops_without_aux": round((total - aux) / 1e9, 2),
            }
        row["ratio"] = round(row["mcibi_label"]["gflops"] / row["deeplabv3"]["gflops"], 3)
        row["ratio_without_aux"] = round(
            row["mcibi_label"]["gflops_without_aux"] / row["deeplabv3"]["gflops_without_aux"], 3
        )
        out[f"{size}x{size}"] = row
    return out


def worker_update(spec):
    """The memory update alone and in pieces, TF, label and feature mode, jit off/on."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_memseg.models import FeatureMemory
    from keras_memseg.models.mcibi.memory_statistics import batch_statistics

    b, s, k, c = spec["update_batch"], spec["update_size"], spec["classes"], 512
    rng = np.random.default_rng(0)
    feats = tf.constant(rng.standard_normal((b, s // 8, s // 8, c)).astype("float32"))
    labels = rng.integers(0, k, (b, s, s)).astype("int32")
    labels[rng.random(labels.shape) < 0.05] = 255
    labels = tf.constant(labels)
    rows = {}
    for mode in ("label", "feature"):
        for jit in spec["jit"]:
            memory = FeatureMemory(k, c, update_resolution=mode)
            memory.memory.assign(rng.standard_normal((k, 1, c)).astype("float32"))

            def upsample_only(f, y, memory=memory):
                # What the update would cost if it materialised the upsampled features
                # (it does not: see memory_statistics.upsampled_statistics).
                if mode == "feature":
                    return tf.reduce_sum(f)
                up = tf.image.resize(f, tf.shape(y)[1:3], method="bilinear")
                return tf.reduce_sum(up)

            def statistics(f, y, memory=memory):
                return batch_statistics(
                    f,
                    y,
                    tf.convert_to_tensor(memory.memory),
                    memory.ignore_class,
                    memory.update_resolution,
                )

            def full(f, y, memory=memory):
                return memory.update(f, y, 0.5)

            row = {}
            for piece, fn in (
                ("upsample", upsample_only),
                ("statistics", statistics),
                ("update", full),
            ):
                compiled = tf.function(fn, jit_compile=jit)
                times = _common.timed(
                    lambda: keras.ops.convert_to_numpy(tf.nest.flatten(compiled(feats, labels))[0]),
                    spec["steps"],
                    2,
                )
                row[piece] = _common.summary(times)
            rows[f"{mode}/jit_{'on' if jit else 'off'}"] = row
    return rows


WORKERS = {"step": worker_step, "flops": worker_flops, "update": worker_update}


def worker(spec):
    os.environ["KERAS_BACKEND"] = spec["backend"]
    _common.worker_main(WORKERS[spec["kind"]], spec)


# ----------------------------------------------------------------- driver side
def run_worker(spec, timeout):
    return _common.run_worker(__file__, spec, {"KERAS_BACKEND": spec["backend"]}, timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backbone", default="resnet18_v1c")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--backends", nargs="+", default=["tensorflow"])
    parser.add_argument("--jit", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--update_size", type=int, default=512)
    parser.add_argument("--update_batch", type=int, default=1)
    parser.add_argument(
        "--share_step",
        action="store_true",
        help="also time the MCIBI step at --update_size/--update_batch",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["flops", "update", "step"])
    parser.add_argument(
        "--conv_path",
        choices=["auto", "conv", "matmul"],
        default="auto",
        help="keras_memseg.layers.conv_policy's setting in the workers",
    )
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--out", default=str(HERE / "results" / "train_step.json"))
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))

    jits = [j == "on" for j in args.jit]
    base = {
        "backbone": args.backbone,
        "size": args.size,
        "batch": args.batch,
        "classes": args.classes,
        "steps": args.steps,
        "warmup": args.warmup,
        "update_size": args.update_size,
        "update_batch": args.update_batch,
        "conv_path": args.conv_path,
    }
    payload = {
        "benchmark": "train_step",
        **_common.run_record("train_step", argv),
        "settings": base,
    }
    out = pathlib.Path(args.out)

    def save():
        _common.write_json(out, payload)

    if "flops" not in args.skip:
        payload["flops"] = run_worker(
            {**base, "kind": "flops", "backend": "tensorflow"}, args.timeout
        )
        save()
    if "update" not in args.skip:
        payload["update"] = run_worker(
            {**base, "kind": "update", "backend": "tensorflow", "jit": jits}, args.timeout
        )
        save()
    steps = {}
    if "step" not in args.skip:
        for backend in args.backends:
            for jit in jits:
                for name in args.models:
                    key = f"{backend}/jit_{'on' if jit else 'off'}/{name}"
                    steps[key] = run_worker(
                        {**base, "kind": "step", "backend": backend, "jit": jit, "model": name},
                        args.timeout,
                    )
                    _common.log(f"{key}: {steps[key].get('median_ms', steps[key].get('error'))}")
                    payload["steps"] = steps
                    save()
    if args.share_step:
        share = {}
        for jit in jits:
            spec = {
                **base,
                "size": args.update_size,
                "batch": args.update_batch,
                "steps": max(2, args.steps // 2),
                "warmup": 1,
                "kind": "step",
                "backend": "tensorflow",
                "jit": jit,
            }
            for name in ("mcibi_label", "mcibi_feature"):
                key = f"tensorflow/jit_{'on' if jit else 'off'}/{name}"
                share[key] = run_worker({**spec, "model": name}, args.timeout)
                _common.log(
                    f"share step {key}: {share[key].get('median_ms', share[key].get('error'))}"
                )
                payload["share_steps"] = share
                save()
    payload["derived"] = derive(payload, args)
    save()
    print_tables(payload, args)
    print(f"wrote {out}")


def derive(payload, args):
    """Ratios: step time vs FLOPs, memory overhead, update share of the step."""
    derived = {"step_ratio": {}, "memory_overhead_pct": {}, "update_share_pct": {}}
    steps = payload.get("steps", {})
    for key, row in steps.items():
        backend, jit, name = key.split("/")
        base_row = steps.get(f"{backend}/{jit}/deeplabv3", {})
        if name == "deeplabv3" or not row.get("ok") or not base_row.get("ok"):
            continue
        derived["step_ratio"][key] = round(row["median_ms"] / base_row["median_ms"], 3)
        derived["memory_overhead_pct"][key] = round(
            100 * (row["train_peak_mib"] / max(base_row["train_peak_mib"], 1e-9) - 1), 1
        )
    update = payload.get("update", {})
    share_steps = payload.get("share_steps", {})
    for mode in ("label", "feature"):
        for jit in ("off", "on"):
            piece = update.get(f"{mode}/jit_{jit}") if update.get("ok") else None
            step = share_steps.get(f"tensorflow/jit_{jit}/mcibi_{mode}", {})
            if not step.get("ok") and (args.update_size, args.update_batch) == (
                args.size,
                args.batch,
            ):
                step = steps.get(f"tensorflow/jit_{jit}/mcibi_{mode}", {})  # same shapes
            if piece and step.get("ok"):
                derived["update_share_pct"][f"{mode}/jit_{jit}"] = round(
                    100 * piece["update"]["median_ms"] / step["median_ms"], 2
                )
    return derived


def _fmt(row, field="median_ms", scale=1.0, digits=0):
    if not row or not row.get("ok", True):
        return "failed"
    return f"{row[field] * scale:.{digits}f}"


def print_tables(payload, args):
    hw = payload["hardware"]
    print(
        f"\n{hw['cpu']}, {hw['cpu_count']} cores, GPUs {hw.get('gpus')}, "
        f"load at start {hw.get('load_average_at_start')}"
    )
    flops = payload.get("flops", {})
    if flops.get("ok"):
        print(f"\nForward GFLOPs ({args.backbone}, K={args.classes}, batch 1)")
        print(f"{'size':<9} {'DeepLabV3':>10} {'MCIBI':>8} {'ratio':>6} {'ratio w/o aux':>14}")
        for size, row in flops.items():
            if size == "ok":
                continue
            print(
                f"{size:<9} {row['deeplabv3']['gflops']:>10.1f} "
                f"{row['mcibi_label']['gflops']:>8.1f} {row['ratio']:>6.3f} "
                f"{row['ratio_without_aux']:>14.3f}"
            )
    steps = payload.get("steps", {})
    derived = payload["derived"]
    if steps:
        print(
            f"\nTraining step ({args.backbone} OS8, {args.size}x{args.size}, batch "
            f"{args.batch}, K={args.classes}; median of {args.steps} after {args.warmup} "
            "warm-up)"
        )
        print(
            f"{'backend/jit/model':<40} {'step ms':>9} {'x base':>7} {'peak MiB':>9} "
            f"{'mem +%':>7} {'1st step s':>10}"
        )
        for key, row in steps.items():
            ratio = derived["step_ratio"].get(key)
            overhead = derived["memory_overhead_pct"].get(key)
            print(
                f"{key:<40} {_fmt(row):>9} "
                f"{'' if ratio is None else f'{ratio:.3f}':>7} "
                f"{_fmt(row, 'train_peak_mib'):>9} "
                f"{'' if overhead is None else f'{overhead:+.1f}':>7} "
                f"{_fmt(row, 'first_step_s', digits=1):>10}"
            )
            if not row.get("ok"):
                print(f"    {row['error']}")
    update = payload.get("update", {})
    if update.get("ok"):
        print(
            f"\nMemory update alone (TF tf.function; features ({args.update_batch}, "
            f"{args.update_size // 8}, {args.update_size // 8}, 512), labels "
            f"({args.update_batch}, {args.update_size}, {args.update_size}), K={args.classes})"
        )
        print(
            f"{'mode/jit':<18} {'upsample ms':>12} {'statistics ms':>14} {'update ms':>10} "
            f"{'share %':>8}"
        )
        for key, row in update.items():
            if key == "ok":
                continue
            share = derived["update_share_pct"].get(key)
            print(
                f"{key:<18} {row['upsample']['median_ms']:>12.1f} "
                f"{row['statistics']['median_ms']:>14.1f} {row['update']['median_ms']:>10.1f} "
                f"{'' if share is None else f'{share:.2f}':>8}"
            )
    elif update:
        print(f"\nmemory update benchmark failed: {update.get('error')}")
    for key, row in payload.get("share_steps", {}).items():
        print(
            f"step at {args.update_size}x{args.update_size} batch {args.update_batch} "
            f"{key}: {_fmt(row)} ms"
        )


if __name__ == "__main__":
    main()
