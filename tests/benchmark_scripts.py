"""Loads a script of `benchmarks/` as a module (they are scripts, not a package)."""

import importlib.util
import pathlib

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def script_path(name):
    """`benchmarks/<name>.py`."""
    return BENCHMARKS / f"{name}.py"


def load_script(name):
    """`benchmarks/<name>.py` imported as the module `name`."""
    spec = importlib.util.spec_from_file_location(name, script_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name, args, out, timeout=600):
    """Runs `benchmarks/<name>.py ARGS` in a subprocess that must succeed; returns the
    process and the JSON it wrote to `out`."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, str(script_path(name)), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(out.read_text())
