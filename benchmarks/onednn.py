"""TensorFlow's oneDNN kernels on this CPU: does training survive at batch 1, and is it faster?

Trains the bundled sample's model (dilated ResNet-18 V1c, 16 base channels, MCIBI and its
DeepLabV3 baseline) at 128x128 in a fresh subprocess per setting, model and batch size,
and reports for each: how the process ended (a native crash is a negative exit status:
-11 SIGSEGV, -6 SIGABRT) and the median training-step time after warm-up. Settings:

- `eigen`: `TF_ENABLE_ONEDNN_OPTS=0` (TensorFlow's default on AMD and older Intel CPUs;
  what `import keras_memseg` chooses on AVX-512 CPUs, issue #34);
- `onednn`: `TF_ENABLE_ONEDNN_OPTS=1`, oneDNN on the instruction set it picks (its
  AVX-512 kernels on AVX-512 CPUs); what `import keras_memseg` chooses on other CPUs;
- `onednn_avx2` (AVX-512 CPUs only): `TF_ENABLE_ONEDNN_OPTS=1`,
  `ONEDNN_MAX_CPU_ISA=AVX2`, the first fix of issue #34 (dropped: it breaks bfloat16
  matmuls on CPUs with AVX512_BF16).

The settings alternate within each round (`--rounds`), so machine drift hits all of them.
Writes `benchmarks/results/onednn.{json,md}` (hardware, load average, command, commit).

    python benchmarks/onednn.py                       # the table in the README
    python benchmarks/onednn.py --batches 1 --steps 1 --warmup 0 --rounds 1  # crash probe
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

MODELS = ("deeplabv3", "mcibi")


def settings_for(flags):
    settings = {
        "eigen": {"TF_ENABLE_ONEDNN_OPTS": "0"},
        "onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    }
    if "avx512f" in flags:
        settings["onednn_avx2"] = {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    return settings


def train(spec):
    """The sample's model trained at `spec`'s batch and size: first and median step."""
    import keras
    import numpy as np
    from tensorflow.python.util import _pywrap_util_port

    import keras_memseg  # noqa: F401  (oneDNN settings before the first op)
    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.models import DeepLabV3
    from keras_memseg.models import MemorySegmenter
    from keras_memseg.optimizers import TorchSGD

    keras.utils.set_random_seed(0)
    backbone = DilatedResNetBackbone(
        depth=18, output_stride=8, base_channels=spec.get("base_channels", 16)
    )
    kw = dict(num_classes=11, feats_channels=32, aux_channels=32)
    if spec["model"] == "mcibi":
        model = MemorySegmenter(backbone, transform_channels=16, **kw)
    else:
        model = DeepLabV3(backbone, **kw)
    model.compile(optimizer=TorchSGD(0.01, momentum=0.9))
    rng = np.random.default_rng(0)
    batch, size = spec["batch"], spec["size"]
    x = rng.random((batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 11, (batch, size, size)).astype("int32")
    started = time.perf_counter()
    model.train_on_batch(x, y)  # tracing and the first step
    first = time.perf_counter() - started
    times = _common.timed(lambda: model.train_on_batch(x, y), spec["steps"], spec["warmup"])
    return {
        "onednn_enabled": bool(_pywrap_util_port.IsMklEnabled()),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "first_step_s": round(first, 2),
        **_common.summary(times),
    }


def run_worker(spec, env_extra, timeout):
    env = {"ONEDNN_MAX_CPU_ISA": None, "DNNL_MAX_CPU_ISA": None, **env_extra}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return _common.run_worker(__file__, spec, env, timeout)


def table(payload):
    changed = " + changes" if payload.get("changed_files") else ""
    lines = [
        f"oneDNN on {payload['hardware']['cpu']} ({payload['hardware']['cpu_count']} cores), "
        f"commit {payload['commit']}{changed}, load {payload['load_average_at_start']} -> "
        f"{payload['load_average_at_end']}",
        "",
        f"`{payload['command']}`",
        "",
        "| setting | model | batch | exits | median step (ms), per round | first step (s) |",
        "|---|---|---|---|---|---|",
    ]
    for key, rows in payload["runs"].items():
        setting, model, batch = key.split("/")
        exits = ", ".join(str(r.get("exit")) for r in rows)
        medians = " / ".join(str(r["median_ms"]) if r.get("ok") else "crash" for r in rows)
        firsts = " / ".join(str(r["first_step_s"]) if r.get("ok") else "-" for r in rows)
        lines.append(f"| {setting} | {model} | {batch} | {exits} | {medians} | {firsts} |")
    lines.append("")
    for line in payload["derived"]:
        lines.append(f"- {line}")
    return "\n".join(lines) + "\n"


def derive(runs, settings):
    out = []
    for model in MODELS:
        for batch in sorted({int(k.split("/")[2]) for k in runs}):
            medians = {}
            for setting in settings:
                rows = [r for r in runs.get(f"{setting}/{model}/{batch}", []) if r.get("ok")]
                if rows:
                    medians[setting] = statistics.median(r["median_ms"] for r in rows)
            if "eigen" in medians and "onednn" in medians:
                out.append(
                    f"{model} batch {batch}: oneDNN step {medians['onednn']:.0f} ms vs Eigen "
                    f"{medians['eigen']:.0f} ms ({medians['eigen'] / medians['onednn']:.2f}x)"
                )
    crashed = [k for k, rows in runs.items() if any(r.get("exit") != 0 for r in rows)]
    out.append("native crashes or failures: " + (", ".join(crashed) if crashed else "none"))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--base_channels", type=int, default=16)
    parser.add_argument(
        "--settings", nargs="+", help="a subset of eigen, onednn, onednn_avx2 (default: all)"
    )
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--out", default=str(HERE / "results" / "onednn.json"))
    args = parser.parse_args(argv)
    if args.worker:
        return _common.worker_main(train, json.loads(args.worker))

    from keras_memseg.tensorflow_runtime import cpu_flags

    flags = cpu_flags()
    settings = settings_for(flags)
    if args.settings:
        unknown = sorted(set(args.settings) - set(settings))
        if unknown:
            parser.error(f"--settings: {unknown} not among {sorted(settings)} on this CPU")
        settings = {name: settings[name] for name in args.settings}
    payload = {
        "benchmark": "onednn",
        **_common.run_record("onednn", argv),
        "avx512f": "avx512f" in flags,
        "settings": settings,
        "load_average_at_start": _common.load_average(),
        "runs": {},
    }
    for round_ in range(args.rounds):
        for batch in args.batches:
            for model in args.models:
                for setting, env_extra in settings.items():
                    spec = {
                        "model": model,
                        "batch": batch,
                        "size": args.size,
                        "steps": args.steps,
                        "warmup": args.warmup,
                        "base_channels": args.base_channels,
                    }
                    row = run_worker(spec, env_extra, args.timeout)
                    payload["runs"].setdefault(f"{setting}/{model}/{batch}", []).append(row)
                    _common.log(
                        f"round {round_ + 1} {setting} {model} batch {batch}: exit "
                        f"{row.get('exit')} {row.get('median_ms', row.get('error'))}"
                    )
    payload["load_average_at_end"] = _common.load_average()
    payload["derived"] = derive(payload["runs"], settings)
    out = pathlib.Path(args.out)
    _common.write_json(out, payload)
    out.with_suffix(".md").write_text(table(payload))
    print(table(payload))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
