"""What every benchmark script shares: the record of a run (command, commit, date, hardware),
the worker subprocess protocol, timing and memory helpers.

A script records `run_record(name, argv)` in its JSON, so that each result file names the
command that wrote it, the commit and changed files it ran on, the date and the machine
(`benchmarks/results/manifest.json` lists them for every file there). Workers that must
run in a fresh process (Keras fixes its backend at import; peak memory is per process)
go through `run_worker` / `worker_main`: the child prints one `RESULT {json}` line.
"""

import datetime
import json
import os
import pathlib
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
CPU_FLAGS_OF_NOTE = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
RESULT_PREFIX = "RESULT "


# ------------------------------------------------------------------ the record of a run
def load_average():
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def hardware():
    """CPU model, flags of note, core count, memory, platform, Python, load average at
    start and GPUs (if TensorFlow sees any), as a dict."""
    info = {
        "cpu": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    # The VM's CPU reads "AMD EPYC" on hosts with and without AVX-512,
                    # whose oneDNN kernels (and timings) differ.
                    flags = set(line.split(":", 1)[1].split())
                    info["cpu_flags"] = [f for f in CPU_FLAGS_OF_NOTE if f in flags]
                    break
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
        info["load_average_at_start"] = load_average()
    except OSError:
        pass
    try:
        import tensorflow as tf

        info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # noqa: BLE001 - description only
        info["gpus"] = []
    return info


def git(directory, *args):
    """`git -C directory ARGS` stdout, or None when git fails."""
    try:
        out = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30
        )
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def code_state():
    """The commit of this repository and the files that differ from it (`git status`
    lines for the package, the recipes and the benchmarks): the code a run measured."""
    changed = git(ROOT, "status", "--porcelain", "--", "keras_memseg", "recipes", "benchmarks")
    return {
        "commit": git(ROOT, "rev-parse", "HEAD"),
        "changed_files": [
            line for line in (changed or "").splitlines() if "benchmarks/results/" not in line
        ],
    }


def command_line(name, argv=None):
    """`python benchmarks/<name>.py ARGS`, as a user types it (`argv`: the arguments;
    default `sys.argv[1:]`)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", f"benchmarks/{name}.py", *map(str, args)])


def run_record(name, argv=None):
    """{command, commit, changed_files, date, hardware}: what the manifest needs of a run."""
    return {
        "command": command_line(name, argv),
        **code_state(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "hardware": hardware(),
    }


def repo_path(path):
    """`path` relative to the repository when it lies inside it (results hold no
    machine-specific paths), else as given."""
    path = pathlib.Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def write_json(path, payload):
    """Writes `payload` as indented JSON through a temporary file (a reader never sees
    half a file; an interrupted run keeps the previous one)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


# ------------------------------------------------------------------ worker subprocesses
def worker_main(fn, spec, on_error=None):
    """Child side: prints `RESULT {"ok": true, **fn(spec)}`, or `{"ok": false, "error"}`
    (plus `on_error()`'s fields) and exits 1 when `fn` raises."""
    try:
        result = {"ok": True, **fn(spec)}
    except Exception as error:  # noqa: BLE001 - reported in the table
        result = {"ok": False, "error": f"{type(error).__name__}: {str(error)[:600]}"}
        result.update(on_error() if on_error else {})
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    if not result["ok"]:
        sys.exit(1)


def run_worker(script, spec, env=None, timeout=1800):
    """Driver side: runs `python SCRIPT --worker JSON(spec)` with `env` added to this
    process's environment (a value None removes the variable); returns the child's
    RESULT with its exit status as "exit", or {"ok": false, "exit", "error"} when it
    printed none (a native crash is a negative exit status) or timed out."""
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    cmd = [sys.executable, str(script), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=child_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "exit": None, "error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return {**json.loads(line[len(RESULT_PREFIX) :]), "exit": proc.returncode}
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"ok": False, "exit": proc.returncode, "error": " | ".join(tail)[-600:]}


def pin_threads(threads):
    """Pins this process to `threads` cores when the machine has more."""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > threads:
            os.sched_setaffinity(0, cores[:threads])


def log(message):
    """`[HH:MM:SS] message`, flushed (the drivers' progress lines)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------ timing and memory
def timed(fn, steps, warmup):
    """Runs `fn()` warmup + steps times; returns the per-call seconds (warm-up excluded)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(times):
    """{median, min, max, n} in milliseconds."""
    return {
        "median_ms": round(1000 * statistics.median(times), 2),
        "min_ms": round(1000 * min(times), 2),
        "max_ms": round(1000 * max(times), 2),
        "n": len(times),
    }


def peak_rss_mib():
    """Peak resident set size of this process so far (ru_maxrss), MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mib():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def xplane_events(xspace_path, line_prefix):
    """`(event name, milliseconds)` of every event on the host-CPU threads whose name
    starts with `line_prefix` in a profiler XSpace file (`tf_Compute`: TensorFlow's
    executor; `tf_XLA`: XLA's CPU runtime, as `jax.profiler` records it). Reading it
    needs TensorFlow's `xplane_pb2`."""
    try:
        from tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xspace_path, "rb") as f:
        space.ParseFromString(f.read())
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if line.name.startswith(line_prefix):
                for event in line.events:
                    yield plane.event_metadata[event.metadata_id].name, event.duration_ps / 1e9
