"""Where an XLA training step spends its time, per layer: MCIBI beside DeepLabV3 on JAX.

Each model runs in its own process (`KERAS_BACKEND=jax`): `fit()` steps on one
random batch, the last `--steps` of them under `jax.profiler`, with XLA's optimised
HLO dumped beside. Every kernel the profiler records (a fusion, a dot, a copy) is
matched to its HLO instruction, whose `op_name` metadata names the Keras layer it
came from (`jit(train_step)/transpose(jvp(bottleneck))/conv/dot_general`: the
backward pass of layer `bottleneck`). The script sums kernel time per layer
(forward and backward together) and per kernel kind, per step, and writes
`benchmarks/results/xla_profile.{json,md}` with MCIBI - DeepLabV3 per layer: what
the memory head costs under XLA, against the FLOPs it adds (`benchmarks/flops.py`).

Kernel times are summed over XLA's worker threads (they overlap, so the sum
can exceed the step's wall time); compare layers and models within one run.
Reading the trace needs TensorFlow's `xplane_pb2` (installed with the test extras).

    python benchmarks/xla_profile.py                       # R50-V1c, 256x256, batch 2
    python benchmarks/xla_profile.py --backbone resnet18_v1c --size 64 --batch 1 \\
        --base_channels 8 --steps 1 --warmup 1             # a quick run
"""

import argparse
import collections
import glob
import json
import os
import pathlib
import re
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common  # noqa: E402

# A profiler event that is no kernel: the executor's own spans and waits.
NOT_KERNELS = ("ThunkExecutor", "SlinkyThreadPool", "H2D", "D2H", "end: ")


def layer_of(op_name):
    """`jit(train_step)/transpose(jvp(aspp))/project/conv/dot_general` -> `aspp/project`:
    the Keras layer path (two levels) with JAX's transformation wrappers removed."""
    path = re.sub(r"^jit\(train_step\)/", "", op_name)
    path = re.sub(r"\b(?:transpose|jvp|jit|vmap|remat|checkpoint)\(", "", path).replace(")", "")
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[:2]) if parts else "(unnamed)"


def kind_of(kernel):
    """`ynn_fusion.429` -> `ynn_fusion`."""
    return re.sub(r"\.\d+$", "", kernel)


def hlo_op_names(hlo_text):
    """{instruction name: op_name metadata} of an optimised HLO module's text."""
    names = {}
    for match in re.finditer(
        r"^\s*(?:ROOT )?%(\S+) = .*?metadata=\{[^}]*?op_name=\"([^\"]*)\"", hlo_text, re.M
    ):
        names.setdefault(match.group(1), match.group(2))
    return names


def kernel_times(xplane_path):
    """{kernel name: total ms} over the XLA threads of a `jax.profiler` trace."""
    totals = collections.Counter()
    for name, ms in _common.xplane_events(xplane_path, "tf_XLA"):
        if not name.startswith(NOT_KERNELS):
            totals[name] += ms
    return totals


def attribute(kernels, op_names, steps):
    """Per-step ms by layer and by kernel kind."""
    by_layer, by_kind = collections.Counter(), collections.Counter()
    for kernel, ms in kernels.items():
        op_name = op_names.get(kernel)
        by_layer[layer_of(op_name) if op_name else f"(no HLO metadata) {kind_of(kernel)}"] += (
            ms / steps
        )
        by_kind[kind_of(kernel)] += ms / steps
    return by_layer, by_kind


# ----------------------------------------------------------------- worker side
def worker(spec):
    """One model: fit warm-up steps, profile `steps` more; returns the attribution."""
    import importlib

    importlib.import_module("keras_memseg")
    import compare_reference as ref
    import jax
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    x, y = ref.random_batch(spec["batch"], spec["size"], ref.NUM_CLASSES, ref.OURS_IGNORE)
    y = y.astype("int32")
    model, _ = ref.compile_with_policy(
        lambda **policy: ref.build_ours(
            spec["model"], spec["backbone"], spec["base_channels"], **policy
        ),
        lambda: keras.optimizers.SGD(0.01, momentum=0.9),
        *ref.training_policy(spec["model"]),
        None,
    )

    def fit(steps):
        xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)
        start = time.perf_counter()
        history = model.fit(xs, ys, batch_size=spec["batch"], epochs=1, verbose=0).history
        float(history["loss"][-1])  # waits for the last step
        return time.perf_counter() - start

    fit(spec["warmup"] + 1)  # compiles the step
    trace_dir = pathlib.Path(spec["trace_dir"])
    jax.profiler.start_trace(str(trace_dir))
    seconds = fit(spec["steps"])
    jax.profiler.stop_trace()
    (xplane,) = glob.glob(str(trace_dir / "**" / "*.xplane.pb"), recursive=True)
    hlo_files = glob.glob(os.path.join(spec["dump_dir"], "*train_step*after_optimizations.txt"))
    op_names = {}
    for path in hlo_files:
        op_names.update(hlo_op_names(pathlib.Path(path).read_text()))
    by_layer, by_kind = attribute(kernel_times(xplane), op_names, spec["steps"])
    return {
        "step_s_profiled": round(seconds / spec["steps"], 3),
        "kernel_ms_per_step": round(sum(by_kind.values()), 1),
        "by_layer_ms": {k: round(v, 2) for k, v in by_layer.most_common()},
        "by_kind_ms": {k: round(v, 2) for k, v in by_kind.most_common()},
        "jax": jax.__version__,
    }


def run_worker(spec, timeout):
    with tempfile.TemporaryDirectory() as tmp:
        spec = dict(spec, trace_dir=os.path.join(tmp, "trace"), dump_dir=os.path.join(tmp, "hlo"))
        flags = (
            os.environ.get("XLA_FLAGS"),
            f"--xla_dump_to={spec['dump_dir']}",
            "--xla_dump_hlo_as_text",
            "--xla_dump_hlo_module_re=.*train_step.*",
        )
        env = {
            "KERAS_BACKEND": "jax",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "XLA_FLAGS": " ".join(filter(None, flags)),
        }
        return _common.run_worker(__file__, spec, env, timeout)


# ----------------------------------------------------------------- driver side
def markdown(payload):
    s = payload["settings"]
    runs = payload["runs"]
    models = [m for m in s["models"] if runs.get(m, {}).get("ok")]
    lines = [
        f"XLA kernel time per training step on JAX, by layer (forward + backward), "
        f"{s['backbone']} OS8, {s['size']}x{s['size']}, batch {s['batch']}, "
        f"{s['steps']} profiled step(s) after {s['warmup']} warm-up; "
        f"load average at start {payload['hardware'].get('load_average_at_start')}.",
        "",
    ]
    for m in s["models"]:
        if not runs.get(m, {}).get("ok"):
            lines.append(f"{m}: failed: {runs.get(m, {}).get('error', '')[-300:]}")
    if not models:
        return "\n".join(lines) + "\n"
    header = " | ".join(f"{m} (ms)" for m in models)
    diff = len(models) == 2
    lines += [
        f"| layer | {header} |" + (" difference (ms) |" if diff else ""),
        "|---|" + "---|" * (len(models) + diff),
    ]
    layers = set().union(*(runs[m]["by_layer_ms"] for m in models))

    def value(m, layer):
        return runs[m]["by_layer_ms"].get(layer, 0.0)

    def order(layer):
        if diff:
            return -abs(value(models[0], layer) - value(models[1], layer))
        return -value(models[0], layer)

    for layer in sorted(layers, key=order)[: payload["settings"]["rows"]]:
        cells = " | ".join(f"{value(m, layer):.1f}" for m in models)
        extra = f" {value(models[0], layer) - value(models[1], layer):+.1f} |" if diff else ""
        lines.append(f"| {layer} | {cells} |{extra}")
    totals = " | ".join(f"**{runs[m]['kernel_ms_per_step']:.1f}**" for m in models)
    lines.append(f"| **all kernels** | {totals} |" + (" |" if diff else ""))
    walls = ", ".join(f"{m} {runs[m]['step_s_profiled']:.2f} s" for m in models)
    lines += ["", f"Profiled step wall time: {walls} (the profiler adds a little)."]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet50_v1c")
    p.add_argument("--base_channels", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--models", nargs="+", default=["mcibi", "deeplabv3"])
    p.add_argument("--steps", type=int, default=2, help="profiled steps")
    p.add_argument("--warmup", type=int, default=1, help="steps after compilation")
    p.add_argument("--rows", type=int, default=30, help="layers in the table")
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--out", default=str(HERE / "results" / "xla_profile.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return _common.worker_main(worker, json.loads(args.worker))
    for model in args.models:
        if model not in ("mcibi", "deeplabv3"):
            raise SystemExit(f"--models: {model!r} is not one of mcibi, deeplabv3")
    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "out", "timeout")}
    payload = {
        "benchmark": "xla_profile",
        **_common.run_record("xla_profile", argv),
        "settings": settings,
        "runs": {},
    }
    for model in args.models:
        spec = {k: settings[k] for k in ("backbone", "base_channels", "size", "batch")}
        spec.update(model=model, steps=args.steps, warmup=args.warmup)
        payload["runs"][model] = run_worker(spec, args.timeout)
        run = payload["runs"][model]
        state = f"{run['kernel_ms_per_step']} ms of kernels per step" if run["ok"] else "failed"
        print(f"{model}: {state}", flush=True)
    out = pathlib.Path(args.out)
    _common.write_json(out, payload)
    table = markdown(payload)
    out.with_suffix(".md").write_text(table)
    print(table)
    if not all(run["ok"] for run in payload["runs"].values()):
        raise SystemExit("a model's profile failed (see the JSON)")


if __name__ == "__main__":
    main()
