"""Dilated 3x3 convolutions: Keras' conv vs the in-map tap sum (and other candidates).

    python benchmarks/matmul_conv.py [--backends tensorflow jax torch] [--steps 3]
        [--warmup 1] [--shapes aspp12_32 ...] [--strategies conv taps ...]
        [--passes fwd fwdbwd] [--max_seconds 40] [--out benchmarks/results/matmul_conv.json]

Shapes (batch 2, NHWC, "same", stride 1): the dilated convs of ResNet-50-V1c at
output stride 8 (layer3: 3x3 256->256 at rate 2; layer4: 512->512 at rates 2 and
4) and the ASPP branches of DeepLabV3/MCIBI (3x3 2048->512 at rates 12, 24, 36),
at 32x32 (256x256 input) and 64x64 (512x512 input); the undilated 3x3 convs of the
heads (bottleneck 2048->512, fuse 1024->512) and of the backbone's narrow stages (128->128
at 32x32, 64->64 at 64x64), and 1x1 convs of the backbone and heads (kernel 1: `taps` is
then one matmul, `matmul_conv.one_by_one`).

Strategies, each written with `keras.ops` on the same kernel:
  conv        `ops.conv` with `dilation_rate` = `keras.layers.Conv2D` (TF: SpaceToBatchND
              + conv + BatchToSpaceND; JAX: `lax.conv_general_dilated`; torch: `conv2d`).
  taps        `matmul_conv.tap_sum`: one matmul per tap on its overlap with the map,
              zero-padded into its output window; taps wholly in the padding dropped.
  regions     the output cut into the bands where the set of in-map taps is constant;
              per region one matmul on the channel-concatenation of those taps (im2col
              restricted to in-map taps), regions concatenated back.
  im2col      pad once, concatenate the windows of the taps that overlap the map at all,
              one matmul (the full-map cost of every overlapping tap).
  padded_taps `matmul_conv.padded_tap_sum`, the layer's path for unknown H, W.
  layer       a `conv_policy.conv2d` layer as shipped (the conv-path policy's choice for
              this backend and device, `conv_policy.choose`).
TensorFlow runs each in a `tf.function` with `jit_compile` off and on (`tf`/`tf_xla`);
JAX jitted; torch eager. `fwd` = the output, `fwdbwd` = gradients of `sum(y)` w.r.t.
the input and the kernel. Median of --steps after --warmup; a cell whose warm-up call
already took more than --max_seconds is reported from that call (n=1). Each backend runs
in its own subprocess (Keras fixes the backend at import), one after another.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> (size, cin, cout, rate[, kernel (default 3)])
SHAPES = {
    "head3x3_32": (32, 2048, 512, 1),
    "fuse3x3_32": (32, 1024, 512, 1),
    "l2_r1_32": (32, 128, 128, 1),
    "l1_r1_64": (64, 64, 64, 1),
    "1x1_2048_512_32": (32, 2048, 512, 1, 1),
    "1x1_512_2048_32": (32, 512, 2048, 1, 1),
    "1x1_1024_256_32": (32, 1024, 256, 1, 1),
    "1x1_256_64_64": (64, 256, 64, 1, 1),
    "l3_r2_32": (32, 256, 256, 2),
    "l4_r2_32": (32, 512, 512, 2),
    "l4_r4_32": (32, 512, 512, 4),
    "l3_r2_64": (64, 256, 256, 2),
    "l4_r2_64": (64, 512, 512, 2),
    "l4_r4_64": (64, 512, 512, 4),
    "aspp12_32": (32, 2048, 512, 12),
    "aspp24_32": (32, 2048, 512, 24),
    "aspp36_32": (32, 2048, 512, 36),
    "aspp12_64": (64, 2048, 512, 12),
    "aspp24_64": (64, 2048, 512, 24),
    "aspp36_64": (64, 2048, 512, 36),
}
STRATEGIES = ("conv", "taps", "regions", "im2col", "padded_taps", "layer")
BATCH = 2


# ----------------------------------------------------------------- candidates
def _regions(x, kernel, rate):
    """Per output region (constant set of in-map taps): one matmul on concatenated taps."""
    from keras import ops

    from keras_memseg.layers.matmul_conv import _tap_windows

    _, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    rows, cols = _tap_windows(h, kh, rate), _tap_windows(w, kw, rate)

    def bands(windows, size):
        edges = sorted({0, size, *[e for win in windows if win for e in win[:2]]})
        return [
            (a, b, [i for i, win in enumerate(windows) if win and win[0] <= a and b <= win[1]])
            for a, b in zip(edges[:-1], edges[1:])
        ]

    row_out = []
    for y0, y1, taps_i in bands(rows, h):
        col_out = []
        for x0, x1, taps_j in bands(cols, w):
            pieces, weights = [], []
            for i in taps_i:
                for j in taps_j:
                    dy, dx = rows[i][2], cols[j][2]
                    pieces.append(x[:, y0 + dy : y1 + dy, x0 + dx : x1 + dx, :])
                    weights.append(kernel[i, j])
            if not pieces:
                col_out.append(ops.zeros((ops.shape(x)[0], y1 - y0, x1 - x0, cout), x.dtype))
                continue
            patch = pieces[0] if len(pieces) == 1 else ops.concatenate(pieces, axis=-1)
            weight = weights[0] if len(weights) == 1 else ops.concatenate(weights, axis=0)
            y = ops.matmul(ops.reshape(patch, (-1, len(pieces) * cin)), weight)
            col_out.append(ops.reshape(y, (-1, y1 - y0, x1 - x0, cout)))
        row_out.append(col_out[0] if len(col_out) == 1 else ops.concatenate(col_out, axis=2))
    return row_out[0] if len(row_out) == 1 else ops.concatenate(row_out, axis=1)


def _im2col(x, kernel, rate):
    """Pad once; concatenate every tap that overlaps the map at all; one matmul."""
    from keras import ops

    from keras_memseg.layers.matmul_conv import _tap_windows

    _, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    pad = (kh - 1) * rate // 2
    xp = ops.pad(x, ((0, 0), (pad, (kh - 1) * rate - pad), (pad, (kw - 1) * rate - pad), (0, 0)))
    rows, cols = _tap_windows(h, kh, rate), _tap_windows(w, kw, rate)
    pieces, weights = [], []
    for i in range(kh):
        for j in range(kw):
            if rows[i] is None or cols[j] is None:
                continue
            pieces.append(xp[:, i * rate : i * rate + h, j * rate : j * rate + w, :])
            weights.append(kernel[i, j])
    patch = pieces[0] if len(pieces) == 1 else ops.concatenate(pieces, axis=-1)
    weight = weights[0] if len(weights) == 1 else ops.concatenate(weights, axis=0)
    y = ops.matmul(ops.reshape(patch, (-1, len(pieces) * cin)), weight)
    return ops.reshape(y, (-1, h, w, cout))


def shape_of(name):
    """`(size, cin, cout, rate, kernel)` of a SHAPES entry."""
    size, cin, cout, rate, *kernel = SHAPES[name]
    return size, cin, cout, rate, (kernel or [3])[0]


def candidate(name, rate, cout, kernel=3):
    """`fn(x, kernel) -> y` for a strategy."""
    from keras import ops

    from keras_memseg.layers import matmul_conv

    if name == "conv":
        return lambda x, k: ops.conv(x, k, padding="same", dilation_rate=rate)
    if name == "taps":
        return lambda x, k: matmul_conv.tap_sum(x, k, (rate, rate))
    if name == "padded_taps":
        return lambda x, k: matmul_conv.padded_tap_sum(x, k, (rate, rate))
    if name == "regions":
        return lambda x, k: _regions(x, k, rate)
    if name == "im2col":
        return lambda x, k: _im2col(x, k, rate)
    if name == "layer":
        from keras_memseg.layers.conv_policy import conv2d

        layer = conv2d(cout, kernel, padding="same", dilation_rate=rate, use_bias=False)
        return lambda x, k: layer.convolution_op(x, k)
    raise ValueError(f"unknown strategy {name!r}")


# ----------------------------------------------------------------- worker side
def _runner(backend, fn, passes, jit):
    """A zero-argument callable that runs one pass and waits for its result."""
    import keras

    if backend == "tensorflow":
        import tensorflow as tf

        if passes == "fwd":
            compiled = tf.function(fn, jit_compile=jit)
        else:

            def grads(x, k):
                with tf.GradientTape() as tape:
                    tape.watch([x, k])
                    y = fn(x, k)
                    loss = tf.reduce_sum(y)
                return tape.gradient(loss, [x, k])

            compiled = tf.function(grads, jit_compile=jit)
        return lambda x, k: [t.numpy() for t in tf.nest.flatten(compiled(x, k))]
    if backend == "jax":
        import jax

        if passes == "fwd":
            compiled = jax.jit(fn)
        else:
            compiled = jax.jit(jax.grad(lambda x, k: fn(x, k).sum(), argnums=(0, 1)))
        return lambda x, k: jax.block_until_ready(compiled(x, k))
    import torch

    def run(x, k):
        if passes == "fwd":
            with torch.no_grad():
                return fn(x, k)
        x = x.detach().requires_grad_(True)
        k = k.detach().requires_grad_(True)
        fn(x, k).sum().backward()
        return x.grad, k.grad

    del keras
    return run


def worker(spec):
    """One shape and pass, the given cells: warm-ups (slowest last), then interleaved rounds.

    Prints `START cell` before each first call (so the driver can name a cell that
    hangs), `ROW {key: row}` when a cell is done.
    """
    import statistics

    import keras
    import numpy as np

    backend = keras.backend.backend()
    size, cin, cout, rate, kernel = shape_of(spec["shape"])
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.standard_normal((BATCH, size, size, cin)).astype("float32"))
    k = keras.ops.convert_to_tensor(
        (rng.standard_normal((kernel, kernel, cin, cout)) / np.sqrt(kernel * kernel * cin)).astype(
            "float32"
        )
    )
    reference = keras.ops.convert_to_numpy(candidate("taps", rate, cout, kernel)(x, k))
    from keras_memseg.layers import conv_policy

    # What the "layer" cell computes: the policy's entry for this backend and device kind.
    device = conv_policy.device_kind(x)
    chosen = conv_policy.choose(
        backend,
        device,
        tuple(x.shape),
        (kernel, kernel, cin, cout),
        (1, 1),
        (rate, rate),
        "same",
        conv_policy.get_conv_path(),
    )
    runners, rows = {}, {}
    for cell in spec["cells"]:
        strategy, _, jit = cell.partition("+")
        print(f"START {cell}", flush=True)
        load = os.getloadavg()[0]
        try:
            run = _runner(
                backend, candidate(strategy, rate, cout, kernel), spec["pass"], jit == "xla"
            )
            start = time.perf_counter()
            out = run(x, k)
            first = time.perf_counter() - start
            row = {"first_ms": round(1000 * first, 1), "load1": round(load, 2)}
            if strategy == "layer":
                row.update(device_kind=device, computed_as=chosen)
            if spec["pass"] == "fwd":
                got = keras.ops.convert_to_numpy(out[0] if isinstance(out, list) else out)
                row["max_abs_err_vs_taps"] = float(np.abs(got - reference).max())
            if first < spec["max_seconds"]:
                for _ in range(max(0, spec["warmup"] - 1)):
                    run(x, k)
                runners[cell] = run
                row["times"] = []
            else:  # too slow to repeat: the first call is the measurement
                row.update(ms=row["first_ms"], n=1)
        except Exception as error:  # noqa: BLE001 - reported in the table
            row = {"error": f"{type(error).__name__}: {str(error)[:200]}"}
        rows[cell] = row
        if "times" not in row:
            print(f"ROW {json.dumps({cell: row})}", flush=True)
    print("ROUNDS", flush=True)
    for step in range(spec["steps"]):  # rounds: every cell once, so load drifts hit all alike
        for cell, run in runners.items():
            start = time.perf_counter()
            run(x, k)
            rows[cell]["times"].append(round(1000 * (time.perf_counter() - start), 1))
        print(f"ROUND {step}", flush=True)
    for cell in runners:
        row = rows[cell]
        row.update(
            ms=round(statistics.median(row["times"]), 1),
            n=len(row["times"]),
            load1_end=round(os.getloadavg()[0], 2),
        )
        print(f"ROW {json.dumps({cell: row})}", flush=True)


def _env():
    """Environment settings that change the numbers (as inherited by the workers)."""
    return {
        k: os.environ.get(k)
        for k in ("TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS", "XLA_FLAGS", "TF_NUM_INTRAOP_THREADS")
    }


# ----------------------------------------------------------------- training step
def _disable_taps():
    """The "before" of the step table: every conv takes Conv2D's path (this worker process)."""
    from keras_memseg.layers.conv_policy import set_conv_path

    set_conv_path("conv")


def _op_profile(xspace_path, top):
    """Op time from a TF profiler XSpace: sums per op type and per layer, fwd and bwd.

    Sums the durations of the executor's op events ("name:type") on the tf_Compute
    threads: CPU time of the ops, which overlap on the inter-op threads, so the
    total can exceed the wall time.
    """
    import collections

    from _common import xplane_events

    by_type, by_scope = collections.Counter(), collections.Counter()
    total = 0.0
    for name, ms in xplane_events(xspace_path, "tf_Compute"):
        if ":" not in name or "::" in name:
            continue
        op_name, op_type = name.rsplit(":", 1)
        total += ms
        by_type[op_type] += ms
        parts = [
            p for p in op_name.split("/") if p not in ("StatefulPartitionedCall", "PartitionedCall")
        ]
        direction = "bwd" if parts and parts[0] == "gradient_tape" else "fwd"
        parts = parts[1:] if direction == "bwd" else parts
        by_scope[f"{direction} {'/'.join(parts[:3])}"] += ms
    return {
        "op_ms_total": round(total, 1),
        "by_type": {k: round(v, 1) for k, v in by_type.most_common(top)},
        "by_scope": {k: round(v, 1) for k, v in by_scope.most_common(top)},
    }


def worker_step(spec):
    """One model / backend / jit / taps setting: fit() step times, optionally a TF profile."""
    import glob
    import statistics
    import tempfile

    import keras
    import numpy as np
    import tensorflow as tf

    if not spec["taps"]:
        _disable_taps()
    from keras_memseg.models import DeepLabV3
    from keras_memseg.models import MemorySegmenter

    keras.utils.set_random_seed(0)
    classes, batch, size = spec["classes"], spec["batch"], spec["size"]
    if spec["model"] == "mcibi":
        model = MemorySegmenter(spec["backbone"], num_classes=classes, context="aspp")
    else:
        model = DeepLabV3(spec["backbone"], num_classes=classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=spec["jit"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, 3)).astype("float32")
    y = rng.integers(0, classes, (batch, size, size)).astype("int32")
    y[rng.random(y.shape) < 0.05] = 255
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    ends = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(
        data,
        steps_per_epoch=spec["warmup"] + spec["steps"],
        epochs=1,
        verbose=0,
        callbacks=[Clock()],
    )
    times = [b - a for a, b in zip(ends[spec["warmup"] - 1 :], ends[spec["warmup"] :])]
    result = {
        "median_s": round(statistics.median(times), 3),
        "min_s": round(min(times), 3),
        "mean_s": round(sum(times) / len(times), 3),
        "n": len(times),
        "first_step_s": round(ends[0] - start, 1),
        "times_s": [round(t, 3) for t in times],
    }
    if spec.get("profile") and keras.backend.backend() == "tensorflow":
        logdir = tempfile.mkdtemp()
        tf.profiler.experimental.start(logdir)
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        path = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]
        result["profile_2_steps"] = _op_profile(path, spec.get("top", 25))
    return result


def run_step(spec, timeout):
    env = dict(os.environ, KERAS_BACKEND=spec["backend"])
    if spec.get("onednn") is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if spec["onednn"] else "0"
    cmd = [sys.executable, __file__, "--step_worker", json.dumps(spec)]
    load = [round(v, 2) for v in os.getloadavg()]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s", "load_at_start": load}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {
                **json.loads(line[7:]),
                "load_at_start": load,
                "load_at_end": [round(v, 2) for v in os.getloadavg()],
            }
    return {"error": f"exit {proc.returncode}: {proc.stderr[-600:]}", "load_at_start": load}


def main_step(args):
    """The training-step table: before (Conv2D's dilated path) / after (tap sum)."""
    from _common import hardware

    settings = {
        "backbone": args.backbone,
        "size": args.size,
        "batch": args.batch,
        "classes": args.classes,
        "steps": args.steps,
        "warmup": args.warmup,
        "optimizer": "SGD(0.01, momentum=0.9)",
    }
    payload = {
        "benchmark": "matmul_conv_train_step",
        "command": " ".join(["python"] + sys.argv),
        "settings": settings,
        "hardware": hardware(),
        "env": _env(),
        "steps": {},
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and out.exists():  # keep the rows of earlier invocations
        earlier = json.loads(out.read_text())
        payload["steps"] = earlier.get("steps", {})
        payload["commands"] = earlier.get("commands", [earlier.get("command")])
    payload.setdefault("commands", []).append(payload["command"])
    for setting in args.step_settings:
        backend, _, jit = setting.partition("/")
        backend, _, flag = backend.partition("+")  # "tensorflow+onednn/off": oneDNN on
        for model in args.models:
            for taps in args.taps:
                key = f"{setting}/{model}/{taps}"
                spec = {
                    **settings,
                    "backend": backend,
                    "jit": jit == "xla",
                    "model": model,
                    "taps": taps == "taps",
                    "profile": args.profile and jit != "xla",
                    "onednn": (flag == "onednn") if backend == "tensorflow" else None,
                }
                row = run_step(spec, args.timeout)
                payload["steps"][key] = row
                out.write_text(json.dumps(payload, indent=2))
                print(
                    f"[{time.strftime('%H:%M:%S')}] {key}: "
                    f"{row.get('median_s', row.get('error'))} s (load {row['load_at_start']})",
                    flush=True,
                )
    payload["markdown"] = step_markdown(payload["steps"])
    out.write_text(json.dumps(payload, indent=2))
    print(payload["markdown"])
    print(f"wrote {out}")


def step_markdown(steps):
    """Before (Conv2D path) / after (tap sum) per setting and model, with the load."""
    keys = sorted({k.rsplit("/", 2)[0] + "|" + k.rsplit("/", 2)[1] for k in steps})
    lines = [
        "| setting | model | before: Conv2D path (s) | after: tap sum (s) | speed-up "
        "| load (before; after) |",
        "|---|---|---|---|---|---|",
    ]
    for key in keys:
        setting, model = key.split("|")
        before = steps.get(f"{setting}/{model}/conv2d", {})
        after = steps.get(f"{setting}/{model}/taps", {})

        def cell(row):
            if "median_s" in row:
                return f"{row['median_s']:.2f}"
            return "err" if row else ""

        ratio = (
            f"{before['median_s'] / after['median_s']:.1f}x"
            if "median_s" in before and "median_s" in after
            else ""
        )
        loads = "; ".join(str(r.get("load_at_start", [""])[0]) for r in (before, after))
        lines.append(
            f"| {setting} | {model} | {cell(before)} | {cell(after)} | {ratio} | {loads} |"
        )
    return "\n".join(lines)


# ----------------------------------------------------------------- driver side
def _cells(backend, strategies, tf_jit):
    tf = backend.startswith("tensorflow")
    jits = tf_jit if tf else ["off"]
    cells = [
        s + ("" if j == "off" else "+" + j)
        for s in strategies
        for j in jits
        if not (s == "padded_taps" and not tf)
    ]
    # Keras' conv last: at large rates its first call can take minutes.
    return sorted(cells, key=lambda c: c.startswith("conv"))


def run_cells(backend, spec, timeout):
    """Runs the worker; a cell whose first call outlives `timeout` is recorded and skipped."""
    import selectors

    env = dict(os.environ, KERAS_BACKEND=backend.partition("+")[0])
    if env["KERAS_BACKEND"] == "tensorflow":  # "tensorflow+onednn": TF_ENABLE_ONEDNN_OPTS=1
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if backend.endswith("+onednn") else "0"
    remaining, rows = list(spec["cells"]), {}
    while remaining:
        cmd = [sys.executable, __file__, "--worker", json.dumps({**spec, "cells": remaining})]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        current, deadline, pending = None, time.monotonic() + timeout, b""
        while True:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                proc.kill()
                proc.wait()
                # In the rounds every cell still running is stuck alike.
                stuck = [c for c in remaining if c not in rows] if current is None else [current]
                for cell in stuck:
                    rows[cell] = {
                        "error": f"timeout: no result within {timeout} s "
                        f"(load {os.getloadavg()[0]:.2f})"
                    }
                print(
                    f"[{time.strftime('%H:%M:%S')}] {backend} {spec['shape']}/{spec['pass']}"
                    f" {stuck}: timeout",
                    flush=True,
                )
                break
            chunk = os.read(proc.stdout.fileno(), 1 << 16)  # unbuffered: select stays truthful
            if not chunk:
                proc.wait()
                for cell in remaining:
                    if cell not in rows:
                        rows[cell] = {"error": f"worker exited {proc.returncode}"}
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in (raw.decode() for raw in lines):
                if line.startswith("START "):
                    current, deadline = line.split()[1], time.monotonic() + timeout
                elif line.startswith("ROUND"):  # ROUNDS (start), ROUND i (one done)
                    current, deadline = None, time.monotonic() + timeout
                elif line.startswith("ROW "):
                    row = json.loads(line[4:])
                    rows.update(row)
                    cell, value = next(iter(row.items()))
                    deadline = time.monotonic() + timeout
                    print(
                        f"[{time.strftime('%H:%M:%S')}] {backend} {spec['shape']}/"
                        f"{spec['pass']} {cell}: {value.get('ms', value.get('error'))} ms",
                        flush=True,
                    )
        remaining = [c for c in remaining if c not in rows]
    return rows


def best_other(cells, exclude=("layer",)):
    """The fastest cell that is not the shipped layer: (cell, ms)."""
    timed = [
        (row["ms"], cell)
        for cell, row in cells.items()
        if "ms" in row and cell.split("+")[0] not in exclude
    ]
    return min(timed)[::-1] if timed else (None, None)


def markdown(payload):
    lines = []
    for backend, shapes in payload["results"].items():
        cells = _cells(backend, payload["settings"]["strategies"], payload["settings"]["tf_jit"])
        cells = sorted(
            cells, key=lambda c: payload["settings"]["strategies"].index(c.split("+")[0])
        )
        lines.append(
            f"\n### {backend} (ms, median of {payload['settings']['steps']}; "
            f"batch {BATCH}; ' xla' = tf.function(jit_compile=True))\n"
        )
        header = ["shape (size, kernel cin->cout, rate)", "pass"] + [
            c.replace("+", " ") for c in cells
        ]
        header += ["best other", "layer / best"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for shape, passes in shapes.items():
            size, cin, cout, rate, kernel = shape_of(shape)
            for name, rows in passes.items():
                row_cells = []
                for cell in cells:
                    row = rows.get(cell, {})
                    if "ms" in row:
                        row_cells.append(f"{row['ms']:.0f}" + ("*" if row.get("n") == 1 else ""))
                    else:
                        row_cells.append(
                            "timeout"
                            if "timeout" in row.get("error", "")
                            else ("err" if row else "")
                        )
                best, best_ms = best_other(rows)
                layer = rows.get("layer", {}).get("ms")
                ratio = f"{layer / best_ms:.2f}" if layer and best_ms else ""
                lines.append(
                    f"| {shape} ({size}, {kernel}x{kernel} {cin}->{cout}, {rate}) | {name} | "
                    + " | ".join(row_cells)
                    + f" | {best} | {ratio} |"
                )
    lines.append(
        "\n`*`: a single call (the first, compilation included) took more than "
        f"{payload['settings']['max_seconds']} s; timeout: no result within "
        f"{payload['settings']['timeout']} s."
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--passes", nargs="+", default=["fwd", "fwdbwd"], choices=["fwd", "fwdbwd"])
    parser.add_argument("--tf_jit", nargs="+", default=["off", "xla"], choices=["off", "xla"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--max_seconds",
        type=float,
        default=20.0,
        help="a cell whose first call takes longer is not repeated",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=120,
        help="seconds without any result before a cell is recorded as timeout",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="default benchmarks/results/"
        "matmul_conv.json (matmul_conv_train_step.json with --train_step)",
    )
    step = parser.add_argument_group("training step (--train_step)")
    step.add_argument(
        "--train_step",
        action="store_true",
        help="time fit() steps of MCIBI and DeepLabV3 instead of single convs",
    )
    step.add_argument("--step_worker", help=argparse.SUPPRESS)
    step.add_argument(
        "--step_settings",
        nargs="+",
        default=["tensorflow/off", "tensorflow/xla", "jax/jit"],
        help="backend/jit; tensorflow+onednn/off sets TF_ENABLE_ONEDNN_OPTS=1 "
        "(plain tensorflow sets it to 0, the default of this build)",
    )
    step.add_argument(
        "--models", nargs="+", default=["mcibi", "deeplabv3"], choices=["mcibi", "deeplabv3"]
    )
    step.add_argument(
        "--taps",
        nargs="+",
        default=["conv2d", "taps"],
        choices=["conv2d", "taps"],
        help="conv2d = the layer switched to Conv2D's path (before)",
    )
    step.add_argument("--backbone", default="resnet50_v1c")
    step.add_argument("--size", type=int, default=256)
    step.add_argument("--batch", type=int, default=2)
    step.add_argument("--classes", type=int, default=11)
    step.add_argument(
        "--append",
        action="store_true",
        help="add to the rows already in --out instead of starting afresh",
    )
    step.add_argument(
        "--profile",
        action="store_true",
        help="TF, jit off: op-level profile of 2 more steps (tf.profiler)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.step_worker:
        try:
            result = worker_step(json.loads(args.step_worker))
        except Exception as error:  # noqa: BLE001 - reported in the table
            result = {"error": f"{type(error).__name__}: {str(error)[:400]}"}
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.train_step:
        args.out = args.out or str(HERE / "results" / "matmul_conv_train_step.json")
        if args.timeout == 120:
            args.timeout = 3600
        main_step(args)
        return
    args.out = args.out or str(HERE / "results" / "matmul_conv.json")

    from _common import hardware

    settings = {
        "batch": BATCH,
        "strategies": args.strategies,
        "passes": args.passes,
        "tf_jit": args.tf_jit,
        "steps": args.steps,
        "warmup": args.warmup,
        "max_seconds": args.max_seconds,
        "timeout": args.timeout,
        "shapes": {
            s: dict(zip(("size", "cin", "cout", "rate", "kernel"), shape_of(s)))
            for s in args.shapes
        },
    }
    payload = {
        "benchmark": "matmul_conv",
        "command": " ".join(["python"] + sys.argv),
        "settings": settings,
        "hardware": hardware(),
        "env": _env(),
        "python": platform.python_version(),
        "results": {},
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for backend in args.backends:
        results = payload["results"].setdefault(backend, {})
        for shape in args.shapes:
            for name in args.passes:
                spec = {
                    "shape": shape,
                    "pass": name,
                    "steps": args.steps,
                    "warmup": args.warmup,
                    "max_seconds": args.max_seconds,
                    "cells": _cells(backend, args.strategies, args.tf_jit),
                }
                results.setdefault(shape, {})[name] = run_cells(backend, spec, args.timeout)
                payload["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
                out.write_text(json.dumps(payload, indent=2))
    payload["markdown"] = markdown(payload)
    out.write_text(json.dumps(payload, indent=2))
    print(payload["markdown"])
    print(
        f"\nload average at start {payload['hardware'].get('load_average_at_start')}, "
        f"at end {payload['load_average_end']}; wrote {out}"
    )


if __name__ == "__main__":
    main()
