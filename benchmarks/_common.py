"""Helpers shared by the benchmark scripts: hardware description, timing, memory."""

import os
import platform
import resource
import statistics
import time

CPU_FLAGS_OF_NOTE = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def hardware():
    """CPU model, core count, memory and GPUs (if TensorFlow sees any), as a dict."""
    info = {
        "cpu": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
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
            kb = int(f.readline().split()[1])
            info["memory_gib"] = round(kb / 2**20, 1)
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        import tensorflow as tf

        info["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # noqa: BLE001 - description only
        info["gpus"] = []
    return info


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
