"""Fault probe (issue #12, "Nothing lost, nothing silently wrong"): bad inputs and faults
tried as a user would, each outcome classified (measured, not asserted).

    python benchmarks/fault_probe.py [--only GROUP ...] [--cases NAME ...]
        [--out benchmarks/results/fault_probe.json] [--keep] [--update] [--list]

The cases are one table, `CASES` at the end of this file: per case its group, name, the
outcome the documentation promises (`expected`), what is broken, and the runner with its
arguments (the command or call and the names its error must mention). Groups: nonfinite,
resume, lock, evaluate, serving, validation (`--list` prints them). Each case runs in a
fresh temporary folder (`$CASE`); a command runs there as a subprocess exactly as a user
types it (`python recipes/train_sample.py ...`, tiny settings: `TINY_TRAIN`), a library
call runs in this process. Every outcome is one of `STATUSES`:

    ok           the documented behaviour happened (a NaN batch skipped and counted,
                 resume exact, a run refused before touching anything)
    clear_error  non-zero exit (or an exception from a library call) whose message names
                 the bad input; no Python traceback on the console
    traceback    a Python traceback, or an unclear message
    silent       it "worked" but the result is wrong
    lost         files of a previous run overwritten or deleted, a good backup gone

A case is `as_documented` when it got its expected outcome and every side check held (no
file written by a refused command, ...). Writes the JSON to `--out` and a markdown table
beside it (same name, `.md`): per group and in total, tried / ok / clear error /
traceback / silent / lost, with the hardware and the load average. `--update` merges the
cases run now into an existing `--out` (a group rerun replaces its rows; each command is
listed with its load average).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _common  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "fault_probe.json"
STATUSES = ("ok", "clear_error", "traceback", "silent", "lost")
GROUPS = ("nonfinite", "resume", "lock", "evaluate", "serving", "validation")
TRACEBACK = "Traceback (most recent call last)"
TRAIN = ROOT / "recipes" / "train_sample.py"
EVALUATE = ROOT / "recipes" / "evaluate.py"
# The tiny settings of every training command (2 CPU cores: ~1 min per run).
TINY_TRAIN = [
    "--max_steps=2",
    "--checkpoint_every=1",
    "--base_channels=8",
    "--feats_channels=16",
    "--transform_channels=8",
    "--aux_channels=8",
    "--crop_size=64,64",
    "--global_batch_size=2",
    "--max_eval_examples=2",
    "--eval_every=0",
    "--export_dir=",
    "--show_dir=none",
]
EVAL_EXAMPLES = "--max_examples=3"
COMMAND_TIMEOUT = 900
# A 4000x3000 request served at full resolution would need (3000*4000/64)^2 float32
# attention scores (~144 GB); the export resizes to the dataset's test scale, so the
# peak stays far below this bound (the 3000x4000xK outputs dominate).
SERVING_RSS_BOUND_MIB = 8192
NAN, INF = float("nan"), float("inf")


class FixtureError(RuntimeError):
    """A shared fixture (a tiny training run, an export) could not be made."""


@dataclasses.dataclass
class Result:
    status: str
    why: str
    deviations: list = dataclasses.field(default_factory=list)
    details: dict = dataclasses.field(default_factory=dict)


# -- commands, files, messages --------------------------------------------------------
def _tail(text, lines=12):
    return [line for line in text.strip().splitlines()[-lines:]]


def _shown(argv, case_dir):
    """The command as a user types it: `python recipes/...`, paths under `$CASE`."""
    words = ["python" if a == sys.executable else str(a) for a in argv]
    text = " ".join(words).replace(str(ROOT) + os.sep, "")
    return text.replace(str(case_dir), "$CASE") if case_dir else text


def _env():
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    return env


class Case:
    """One case's fresh folder and the commands it ran."""

    def __init__(self, probe, group, name, folder):
        self.probe, self.group, self.name = probe, group, name
        self.dir = pathlib.Path(folder)
        self.commands = []

    def start(self, args, umask=None):
        """`python <args>` started in the case folder (its output to unnamed files)."""
        argv = [sys.executable, *map(str, args)]
        out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        preexec = (lambda: os.umask(umask)) if umask is not None else None
        proc = subprocess.Popen(
            argv, cwd=self.dir, stdout=out, stderr=err, text=True, env=_env(), preexec_fn=preexec
        )
        proc.probe = (argv, out, err, time.perf_counter())
        return proc

    def finish(self, proc, timeout=COMMAND_TIMEOUT, note=None):
        """Waits for a `start`ed process and records it; returns a CompletedProcess
        (returncode None when it timed out and was killed)."""
        argv, out, err, began = proc.probe
        try:
            rc, late = proc.wait(timeout=timeout), ""
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc, late = None, f"\n[timed out after {timeout} s]"
        stdout, stderr = (h.seek(0) or h.read() for h in (out, err))
        out.close(), err.close()
        entry = {
            "command": _shown(argv, self.dir),
            "exit_code": rc,
            "seconds": round(time.perf_counter() - began, 1),
            "stderr_tail": _tail(stderr + late),
            "stdout_tail": _tail(stdout, 4),
        }
        self.commands.append({**entry, "note": note} if note else entry)
        return subprocess.CompletedProcess(argv, rc, stdout, stderr + late)

    def run(self, args, timeout=COMMAND_TIMEOUT, umask=None):
        """Runs `python <args>` in the case folder; returns a CompletedProcess."""
        return self.finish(self.start(args, umask), timeout)

    def call(self, description):
        """Records a library call (shown in the report in place of a command)."""
        self.commands.append({"call": description})


def snapshot(folder, skip=(".lock",)):
    """{relative path: (sha256, size, mtime_ns)} of every file under `folder`."""
    from keras_memseg.training.callbacks import sha256_of

    out = {}
    folder = pathlib.Path(folder)
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_file() and rel not in skip:
            stat = path.stat()
            out[rel] = (sha256_of(path), stat.st_size, stat.st_mtime_ns)
    return out


def compare(before, after):
    """{"missing", "changed" (content), "touched" (same bytes, new mtime), "added"}."""
    return {
        "missing": sorted(k for k in before if k not in after),
        "changed": sorted(k for k in before if k in after and after[k][0] != before[k][0]),
        "touched": sorted(
            k
            for k in before
            if k in after and after[k][0] == before[k][0] and after[k][2] != before[k][2]
        ),
        "added": sorted(k for k in after if k not in before),
    }


def _files(folder):
    """Relative paths under `folder` (none if it does not exist)."""
    folder = pathlib.Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _message_line(stderr, names):
    """The stderr line that names the input (else the last line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if any(n.lower() in line.lower() for n in names):
            return line[:300]
    return (lines[-1] if lines else "(no stderr)")[:300]


def cli_error(proc_rc, stdout, stderr, names, expect_rc=None):
    """Classifies a command that should fail with a message naming `names`."""
    if TRACEBACK in stdout + stderr:
        last = [line for line in stderr.splitlines() if line.strip()][-1:] or [""]
        return Result("traceback", f"exit {proc_rc}: Python traceback ({last[0][:200]})")
    if proc_rc is None:
        return Result("traceback", "timed out (no answer)")
    if proc_rc == 0:
        return Result("silent", "exit 0: the bad input was accepted")
    if proc_rc < 0:
        return Result("traceback", f"killed by signal {-proc_rc}")
    missing = [n for n in names if n.lower() not in stderr.lower()]
    if missing:
        return Result(
            "traceback",
            f"exit {proc_rc}: unclear message (does not name "
            f"{missing}): {_message_line(stderr, names)}",
        )
    result = Result("clear_error", f"exit {proc_rc}: {_message_line(stderr, names)}")
    if expect_rc is not None and proc_rc != expect_rc:
        result.deviations.append(f"exit code {proc_rc}, documented {expect_rc}")
    return result


def _cli(proc, names, expect_rc=None):
    return cli_error(proc.returncode, proc.stdout, proc.stderr, names, expect_rc)


def _failed(proc):
    return TRACEBACK in proc.stdout + proc.stderr or proc.returncode != 0


def lib_error(fn, names):
    """Classifies a library call that should raise an exception naming `names`."""
    try:
        value = fn()
    except Exception as error:  # noqa: BLE001 - what is raised is what we classify
        text = f"{type(error).__name__}: {error}"
        first = _concise(error)
        missing = [n for n in names if n.lower() not in text.lower()]
        if missing:
            return Result("traceback", f"unclear message (does not name {missing}): {first}")
        return Result("clear_error", first)
    return Result("silent", f"no error: returned {_describe(value)}")


def _concise(error):
    """The line of an exception's message that says what is wrong (TensorFlow graph errors
    and Keras' "Exception encountered when calling" wrappers hold it further down)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = re.search(r"assertion failed: (.*?)(?:\n\s*\[\[|$)", text, re.S)
    if found:
        body = found.group(1)
    elif "Graph execution error" in text:
        body = next(
            (
                line
                for line in reversed(lines)
                if not line.startswith(("[[", "File")) and "{{" not in line
            ),
            lines[0],
        )
    elif lines and lines[0].startswith("Exception encountered when calling") and len(lines) > 1:
        body = lines[1]
    else:
        body = lines[0] if lines else ""
    return f"{type(error).__name__}: {' '.join(body.split())}"[:300]


def _describe(value):
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in list(value.items())[:4]) + "}"
    return type(value).__name__


def _lost_or_none(diff, what):
    if diff["missing"] or diff["changed"]:
        return Result(
            "lost",
            f"{what}: files deleted {diff['missing'][:5]}, changed {diff['changed'][:5]}",
            details={"diff": diff},
        )
    return None


def _truncate_half(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def _write_image(path, height, width, seed=0):
    """An RGB JPEG/PNG (by extension) with some structure (gradients + noise); returns it."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    image = np.stack([y + 0 * x, x + 0 * y, (x + y) / 2], -1)
    image = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    if str(path).endswith(".jpg"):
        data = tf.io.encode_jpeg(image, quality=90)
    else:
        data = tf.io.encode_png(image)
    pathlib.Path(path).write_bytes(data.numpy())
    return pathlib.Path(path)


def _train_args(run_dir, *extra):
    return [TRAIN, *TINY_TRAIN, f"--run_dir={run_dir}", *extra]


def _export(checkpoint, output, fmt="saved_model", *extra):
    """`python -m keras_memseg.export --checkpoint C --format F --output O EXTRA`."""
    return [
        "-m",
        "keras_memseg.export",
        "--checkpoint",
        checkpoint,
        "--format",
        fmt,
        "--output",
        output,
        *extra,
    ]


# -- shared fixtures (made once per probe run, copied into the cases that change them) ---
class Fixtures:
    def __init__(self, root):
        self.root = pathlib.Path(root)
        self._made = {}

    def _once(self, key, make):
        if key not in self._made:
            try:
                self._made[key] = make()
            except FixtureError as error:
                self._made[key] = error
        value = self._made[key]
        if isinstance(value, FixtureError):
            raise value
        return value

    def _command(self, args, what):
        argv = [sys.executable, *map(str, args)]
        proc = subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, env=_env()
        )
        if proc.returncode != 0:
            raise FixtureError(
                f"{what} failed (exit {proc.returncode}): "
                f"{_shown(argv, None)}: {' | '.join(_tail(proc.stderr, 4))}"
            )

    def run(self):
        """A finished tiny training run: `TINY_TRAIN` (2 steps, a backup and a
        checkpoint per step, model.keras, eval.json)."""

        def make():
            folder = self.root / "run"
            self._command(_train_args(folder), "the tiny training run")
            return folder

        return self._once("run", make)

    def copy_run(self, case, name="run"):
        """A copy of the tiny run at `$CASE/<name>`, as if it had been trained there: its
        config.json's `run_dir` names the copy (the trainer records each run's resolved
        flags, `run_dir` included, so a rerun with the same flags writes the same bytes
        and a byte-compare of config.json is fair)."""
        target = case.dir / name
        shutil.copytree(self.run(), target)
        config = target / "config.json"
        stat = config.stat()
        fields = json.loads(config.read_text())
        fields["run_dir"] = str(target)
        config.write_text(json.dumps(fields, indent=2))
        os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return target

    def reference_eval(self):
        """recipes/evaluate.py on the run's model.keras: the report JSON (dict)."""

        def make():
            out = self.root / "reference_eval.json"
            model = self.run() / "model.keras"
            self._command(
                [
                    EVALUATE,
                    f"--model={model}",
                    "--dataset=sample",
                    EVAL_EXAMPLES,
                    f"--output={out}",
                ],
                "evaluate.py on the tiny run's model.keras",
            )
            return json.loads(out.read_text())

        return self._once("reference_eval", make)

    def saved_model(self):
        """The tiny run exported by the CLI (sample test scale, 20 Mpx request limit)."""

        def make():
            base = self.root / "saved_models"
            extra = ["--name", "memseg", "--dataset", "sample", "--max_input_pixels", "20000000"]
            self._command(
                _export(self.run() / "model.keras", base, "saved_model", *extra),
                "the SavedModel export",
            )
            return base / "memseg" / "1"

        return self._once("saved_model", make)

    def text_file(self, case):
        path = case.dir / "notes.txt"
        path.write_text("not a model\n")
        return path


# -- in-process models ------------------------------------------------------------------
def tiny_model(num_classes=3, **kwargs):
    import keras

    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.models import MemorySegmenter

    keras.utils.set_random_seed(0)
    return MemorySegmenter(
        DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes,
        feats_channels=16,
        transform_channels=8,
        aux_channels=8,
        **kwargs,
    )


def tiny_batch(num_classes=3, n=2, size=32, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.normal(0, 1, (n, size, size, 3)).astype("float32")
    labels = rng.integers(0, num_classes, (n, size, size)).astype("int32")
    return images, labels


def built_tiny_model(num_classes=3):
    """A built, compiled, never trained tiny MemorySegmenter."""
    import numpy as np

    model = tiny_model(num_classes)
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.compile()
    return model


def trained_tiny_model(num_classes=3):
    """A compiled tiny MemorySegmenter after one finite step (memory non-zero)."""
    model = tiny_model(num_classes)
    model.compile()
    x, y = tiny_batch(num_classes)
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    return model


def _state(model):
    import keras
    import numpy as np

    weights = {w.path: np.array(keras.ops.convert_to_numpy(w)) for w in model.weights}
    iterations = model.optimizer.iterations
    optimizer = {
        v.path: np.array(keras.ops.convert_to_numpy(v))
        for v in model.optimizer.variables
        if v is not iterations
    }
    return weights, optimizer


def _changed(before, after):
    import numpy as np

    return [k for k in before if not np.array_equal(before[k], after[k], equal_nan=True)]


def nan_weight_model(num_classes=3):
    """A built, compiled tiny model with a filled memory and one NaN in its first
    convolution kernel (what a diverged run leaves); returns (model, kernel path)."""
    import keras
    import numpy as np

    model = built_tiny_model(num_classes)
    memory = model.memory.memory
    memory.assign(np.random.default_rng(0).normal(0, 1, memory.shape).astype("float32"))
    kernel = next(w for w in model.weights if w.path.endswith("kernel"))
    value = np.array(keras.ops.convert_to_numpy(kernel))
    value.flat[0] = np.nan
    kernel.assign(value)
    return model, kernel.path


def _eval_ds(num_classes=3):
    import numpy as np
    import tensorflow as tf

    from keras_memseg import datasets

    rng = np.random.default_rng(0)
    raw = tf.data.Dataset.from_tensor_slices(
        {
            "image": rng.integers(0, 256, (2, 40, 48, 3), dtype=np.uint8),
            "label": rng.integers(0, num_classes, (2, 40, 48), dtype=np.uint8),
        }
    )
    return datasets.eval_pipeline(raw, (48, 40), True)


# -- generic runners: one per kind of case (the table's `run`) ----------------------------
def refused(c, command, names, expect_rc=2, no_output=None):
    """A command that must fail (`command(c)` makes its arguments and any bad input they
    name) with a message naming `names` ("{case}" stands for $CASE's path), writing nothing
    under `no_output` (a folder relative to $CASE; "": the whole of it)."""
    proc = c.run(command(c))
    result = _cli(proc, [n.format(case=c.dir) for n in names], expect_rc)
    written = [] if no_output is None else _files(c.dir / no_output)
    if written:
        result.deviations.append(f"files written under $CASE/{no_output}: {written[:5]}")
    return result


def bad_evaluate_flag(c, flag, names):
    """recipes/evaluate.py with a bad flag and a text file as --model: an error about the
    flag (not the model) shows that the flags were checked before anything was loaded."""
    path = c.probe.fixtures.text_file(c)
    proc = c.run([EVALUATE, f"--model={path}", "--dataset=sample", flag])
    result = _cli(proc, names, expect_rc=2)
    if (
        result.status == "traceback"
        and proc.returncode
        and TRACEBACK not in proc.stderr
        and path.name in proc.stderr
    ):
        result = Result(
            "clear_error",
            f"exit {proc.returncode}: {_message_line(proc.stderr, [path.name])}",
            deviations=[
                f"the message is about --model, not {flag}: the model "
                "was loaded before the flags were checked"
            ],
        )
    return result


def refused_untouched(
    c, prepare, command, names, kept, expect_rc=2, promote=True, flag=(), check=None
):
    """A command that must refuse and leave the files of `prepare(c)` (a folder) as they
    were: `lost` if it deleted or changed one; else classified by `cli_error` (a clear
    refusal is `ok` when `promote`); files of `flag` kinds ("touched": same bytes, new
    mtime; "added") and what `check(c, folder)` lists are deviations."""
    watched = prepare(c)
    before = snapshot(watched)
    proc = c.run(command(c, watched))
    diff = compare(before, snapshot(watched))
    lost = _lost_or_none(diff, f"the refused command touched {kept}")
    if lost:
        return lost
    result = _cli(proc, names, expect_rc)
    result.details = {"diff": diff}
    if result.status == "clear_error" and promote:
        result.status = "ok"
    if result.status in ("ok", "clear_error"):
        result.why += f"; {kept}: all {len(before)} files byte-identical"
    for kind in flag:
        if diff[kind]:
            result.deviations.append(f"{kind}: {diff[kind][:5]}")
    result.deviations += check(c, watched) if check else []
    return result


def nonfinite_fit(c, value):
    """`fit` on a batch with one non-finite pixel: the step is skipped (weights, BN,
    memory and optimizer untouched), counted in `nonfinite_batches`, and a finite batch
    afterwards still trains."""
    import numpy as np

    c.call(
        f"model.fit(x, y) with x[0, 3, 4, 1] = {value} (tiny MemorySegmenter, "
        "after one finite step)"
    )
    model = trained_tiny_model()
    x, y = tiny_batch()
    if model.memory_is_empty():
        return Result("traceback", "the control step left the memory empty")
    weights, optimizer = _state(model)
    bad = x.copy()
    bad[0, 3, 4, 1] = value
    try:
        history = model.fit(bad, y, epochs=1, batch_size=2, verbose=0).history
    except Exception as error:  # noqa: BLE001
        return Result("traceback", f"fit raised {type(error).__name__}: {str(error)[:200]}")
    count = float(np.ravel(history.get("nonfinite_batches", [np.nan]))[-1])
    after_w, after_o = _state(model)
    changed_w, changed_o = _changed(weights, after_w), _changed(optimizer, after_o)
    # The memory's update counter advances on a skipped batch (it counts the training
    # steps that reached the memory; the schedules follow the optimizer's step).
    counter = [k for k in changed_w if k.endswith("num_updates")]
    changed_w = [k for k in changed_w if k not in counter]
    # Control: a finite batch afterwards still trains (the probe cannot pass because
    # nothing ever changes).
    control = model.fit(x, y, epochs=1, batch_size=2, verbose=0).history
    trained = _changed(after_w, _state(model)[0])
    details = {
        "nonfinite_batches": count,
        "changed_weights": changed_w[:10],
        "changed_optimizer_variables": changed_o[:10],
        "control_finite_batch_changed_weights": len(trained),
        "control_nonfinite_batches": float(np.ravel(control["nonfinite_batches"])[-1]),
    }
    if changed_w or changed_o:
        return Result(
            "silent",
            f"the {value} batch changed {len(changed_w)} weights "
            f"(memory/BN included) and {len(changed_o)} optimizer variables, e.g. "
            f"{(changed_w + changed_o)[:3]}",
            details=details,
        )
    if count != 1.0:
        return Result(
            "silent", f"weights unchanged but nonfinite_batches = {count}, not 1", details=details
        )
    if not trained:
        return Result(
            "silent",
            "the finite control batch changed no weight either: the model no longer trains",
            details=details,
        )
    return Result(
        "ok",
        f"weights, BN statistics, memory and optimizer state unchanged "
        f"(the memory's update counter advanced: {bool(counter)}); "
        f"nonfinite_batches = 1; a finite batch afterwards trains "
        f"({len(trained)} weights changed)",
        details=details,
    )


def nan_weights_call(c, shown, call, writes_nothing=False):
    """A library call on a model with a NaN weight: an exception naming NaN (and, with
    `writes_nothing`, no file written in $CASE)."""
    model, path = nan_weight_model()
    c.call(f"{shown} with NaN in {path}")
    result = lib_error(lambda: call(model, c), ["NaN"])
    if writes_nothing and _files(c.dir):
        result.deviations.append(f"files written: {_files(c.dir)[:5]}")
    return result


def nonfinite_pipeline(c, value):
    """`train_pipeline` on float images with a non-finite pixel: an error naming NaN
    (not the pixels cast to uint8 and trained on)."""
    import numpy as np
    import tensorflow as tf

    from keras_memseg import datasets

    c.call(
        f"next(iter(keras_memseg.datasets.train_pipeline(ds, augment_config_for('sample'),"
        f" 2, seed=0))) on float32 images with one {value} pixel each"
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, 40, 48, 3)).astype("float32")
    images[:, 5, 5, 0] = value
    labels = rng.integers(0, 11, (4, 40, 48), dtype=np.uint8)
    raw = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})

    def first_batch():
        stream = datasets.train_pipeline(raw, datasets.augment_config_for("sample"), 2, seed=0)
        image, _ = next(iter(stream))
        return image

    result = lib_error(first_batch, ["NaN"])
    if result.status == "silent":
        result.why += " (the NaN pixels were cast to uint8 and trained on)"
    return result


def serving_call(c, signature, names, make_input):
    """A signature of the exported tiny model called with a bad request (`make_input(c)`):
    an exception naming `names`."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(c.probe.fixtures.saved_model()))
    kwargs = make_input(c)
    shown = {k: f"{v.dtype.name} {tuple(v.shape)}" for k, v in kwargs.items()}
    c.call(f"tf.saved_model.load('saved_models/memseg/1').signatures['{signature}'](**{shown})")
    return lib_error(lambda: loaded.signatures[signature](**kwargs), names)


def constructor(c, kwargs, names):
    """`MemorySegmenter(...)` with a bad argument: an exception naming `names`."""
    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.models import MemorySegmenter

    arguments = {
        "num_classes": 5,
        "feats_channels": 16,
        "transform_channels": 8,
        "aux_channels": 8,
        **kwargs,
    }
    c.call(
        "MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), "
        + ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        + ")"
    )
    return lib_error(
        lambda: MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), **arguments),
        names,
    )


def bad_labels_fit(c, description, make_labels, names, after_fit=False):
    """`fit` on bad labels: a clear error, and the failed step leaves the memory as it was.

    `after_fit`: the model was fit once on good labels before, so Keras' train function
    exists and retraces with relaxed shapes (`reduce_retracing`) for the new labels."""
    x, y = tiny_batch()
    labels = make_labels(y)
    model = trained_tiny_model() if after_fit else built_tiny_model()
    c.call(
        f"model.fit(x, y) with {description}: y {labels.dtype} {labels.shape}"
        + (" (after one fit on good labels)" if after_fit else " (a new compiled model)")
    )
    weights, optimizer = _state(model)
    result = lib_error(lambda: model.fit(x, labels, epochs=1, batch_size=2, verbose=0), names)
    after_w, after_o = _state(model)
    changed = _changed(weights, after_w) + _changed(optimizer, after_o)
    statistics = [k for k in changed if k.endswith(("moving_mean", "moving_variance"))]
    others = [k for k in changed if k not in statistics]
    result.details = {
        "changed_variables": len(changed),
        "changed_bn_statistics": len(statistics),
        "changed_others": others[:20],
        "changed_examples": changed[:8],
    }
    if changed and result.status != "silent":
        memory = [k for k in changed if k.split("/")[-1] == "memory"]
        note = (
            f"the failed step changed {len(changed)} variables: {len(statistics)} BN "
            f"moving statistics" + (f" and {others[:5]}" if others else "")
        )
        if memory:
            result = Result(
                "silent",
                f"{note}, the feature memory {memory} included, "
                f"i.e. it was updated from the bad labels; the error: {result.why}",
                details=result.details,
            )
        else:
            result.deviations.append(note)
    return result


def same_scores(c, model, what):
    """recipes/evaluate.py on another form of the tiny run's model (`model(c)`): the
    scores of the run's model.keras, exactly."""
    output = c.dir / "report.json"
    proc = c.run(
        [EVALUATE, f"--model={model(c)}", "--dataset=sample", EVAL_EXAMPLES, f"--output={output}"]
    )
    reference = c.probe.fixtures.reference_eval()
    if _failed(proc):
        return _cli(proc, [what])
    report = json.loads(output.read_text())
    keys = ("aAcc", "mIoU", "mAcc", "num_images")
    got = {k: report.get(k) for k in keys}
    want = {k: reference.get(k) for k in keys}
    details = {"scores": got, "model_keras_scores": want}
    if got != want:
        return Result(
            "silent", f"{what} scores {got}, the run's model.keras {want}", details=details
        )
    return Result(
        "ok", f"evaluates; scores identical to the run's model.keras ({got})", details=details
    )


# -- runners of the cases that are a scenario of their own --------------------------------
def diverging_run(c):
    """Training at learning rate 1e12: stopped with a message, and every backup and
    checkpoint left behind is finite and readable."""
    from keras_memseg.training.callbacks import verify_weights_file

    run = c.dir / "run"
    proc = c.run(
        _train_args(run, "--learning_rate=1e12", "--max_nonfinite_batches=2", "--max_steps=12")
    )
    files = sorted(run.rglob("*.weights.h5")) if run.exists() else []
    bad = [str(p.relative_to(run)) for p in files if not verify_weights_file(str(p))]
    details = {
        "weights_files": [str(p.relative_to(run)) for p in files],
        "not_finite_or_unreadable": bad,
    }
    if bad:
        return Result(
            "lost", f"backup/checkpoint files not finite or unreadable: {bad}", details=details
        )
    if proc.returncode == 0:
        model = run / "model.keras"
        return Result(
            "silent",
            f"exit 0 after training at learning rate 1e12 (model.keras written: {model.exists()})",
            details=details,
        )
    result = _cli(proc, ["NaN/inf", "learning_rate"])
    result.details = details
    if not files:
        result.deviations.append("no backup or checkpoint was written at all")
    result.why += f"; {len(files)} backup/checkpoint files, all finite"
    return result


def _resumed_line(stdout):
    lines = [line for line in stdout.splitlines() if "resumed from" in line]
    return lines[-1].strip() if lines else None


def _eval_step(run):
    path = run / "eval.json"
    return json.loads(path.read_text()).get("step") if path.exists() else None


def _steps_in(run):
    backups = sorted(p.name for p in (run / "backup").glob("step-*"))
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.weights.h5"))
    return backups, checkpoints


def same_flags_resume(c):
    """The same command again on a finished run: resumes at its end, trains nothing."""
    run = c.probe.fixtures.copy_run(c)
    proc = c.run(_train_args(run))
    if _failed(proc):
        return _cli(proc, ["resumed"])
    line, step = _resumed_line(proc.stdout), _eval_step(run)
    backups, checkpoints = _steps_in(run)
    details = {
        "resumed_line": line,
        "eval_step": step,
        "backups": backups,
        "checkpoints": checkpoints,
    }
    trained = "Epoch " in proc.stdout
    if (
        line is None
        or step != 2
        or trained
        or backups[-1:] != ["step-00000002"]
        or checkpoints[-1:] != ["ckpt-0000002.weights.h5"]
    ):
        return Result(
            "silent",
            f"rerun of a finished 2-step run: resumed line {line!r}, "
            f"eval.json step {step}, trained again: {trained}, backups {backups}, "
            f"checkpoints {checkpoints}",
            details=details,
        )
    return Result(
        "ok", f"{line}; no step trained; eval.json step 2; backups {backups}", details=details
    )


def resume_from_checkpoint(c, corrupt_checkpoint):
    """Truncated backups (and the newest checkpoint): the rerun resumes from the newest
    good checkpoint, deletes no good one, and ends at step 2."""
    run = c.probe.fixtures.copy_run(c)
    corrupted = [p for p in sorted((run / "backup").glob("step-*/state.weights.h5"))]
    if corrupt_checkpoint:
        corrupted.append(run / "checkpoints" / "ckpt-0000002.weights.h5")
    for path in corrupted:
        _truncate_half(path)
    want_step = 1 if corrupt_checkpoint else 2
    want = f"ckpt-{want_step:07d}.weights.h5"
    before = snapshot(run)
    proc = c.run(_train_args(run))
    diff = compare(before, snapshot(run))
    # A corrupted file may be replaced by a new good one of the same step; a good
    # checkpoint must survive.
    gone = [k for k in diff["missing"] if not k.startswith("backup/")]
    if gone:
        return Result("lost", f"deleted {gone}", details={"diff": diff})
    if _failed(proc):
        return _cli(proc, ["resumed"])
    line, step = _resumed_line(proc.stdout), _eval_step(run)
    details = {
        "resumed_line": line,
        "eval_step": step,
        "corrupted": [str(p.relative_to(run)) for p in corrupted],
        "diff": diff,
        "trained_epochs": proc.stdout.count("Epoch "),
    }
    if line is None or want not in line or f"at step {want_step}/2" not in line:
        return Result(
            "silent",
            f"expected a resume from {want} at step {want_step}/2, got "
            f"{line!r} (eval.json step {step})",
            details=details,
        )
    if step != 2:
        return Result("silent", f"{line}, but eval.json says step {step}, not 2", details=details)
    return Result("ok", f"{line}; ended at step 2 (eval.json)", details=details)


def _all_weights_corrupted(c):
    run = c.probe.fixtures.copy_run(c)
    for path in [*(run / "backup").glob("step-*/state.weights.h5")]:
        _truncate_half(path)
    for path in [*(run / "checkpoints").glob("ckpt-*.weights.h5")]:
        _truncate_half(path)
    return run


def keep_checkpoints_0(c):
    """--keep_checkpoints=0 keeps every checkpoint, each readable."""
    from keras_memseg.training.callbacks import verify_weights_file

    run = c.dir / "run"
    proc = c.run(_train_args(run, "--keep_checkpoints=0", "--max_steps=4"))
    if proc.returncode != 0:
        return _cli(proc, ["keep_checkpoints"])
    _, checkpoints = _steps_in(run)
    want = [f"ckpt-{s:07d}.weights.h5" for s in range(1, 5)]
    readable = [n for n in checkpoints if verify_weights_file(str(run / "checkpoints" / n))]
    if checkpoints != want or readable != want:
        return Result("lost", f"checkpoints {checkpoints} (readable {readable}), expected {want}")
    return Result("ok", f"all 4 checkpoints kept and readable: {checkpoints}")


def killed_run_resumes_exactly(c):
    """A run killed with SIGKILL after its second backup, rerun: its step-6 backup equals
    an uninterrupted run's (weights, memory, optimizer), and so does its aAcc."""
    import numpy as np

    from keras_memseg.training.callbacks import weights_file_arrays

    extra = ["--max_steps=6", "--dropout=0.1"]
    full = c.dir / "full"
    proc = c.run(_train_args(full, *extra))
    if proc.returncode != 0:
        return _cli(proc, ["uninterrupted"])
    killed = c.dir / "killed"
    process = c.start(_train_args(killed, *extra))
    marker = killed / "backup" / "step-00000002"
    deadline = time.time() + COMMAND_TIMEOUT
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)  # like kill -9: no cleanup at all
    rc = c.finish(process, note="SIGKILL once backup/step-00000002 exists").returncode
    at_kill = _steps_in(killed)
    if rc != -signal.SIGKILL:
        return Result(
            "traceback", f"the run to kill ended by itself (exit {rc}) before its second backup"
        )
    resumed = c.run(_train_args(killed, *extra))
    if resumed.returncode != 0:
        return _cli(resumed, ["resumed"])
    line = _resumed_line(resumed.stdout)
    a = weights_file_arrays(full / "backup" / "step-00000006" / "state.weights.h5")
    b_path = killed / "backup" / "step-00000006" / "state.weights.h5"
    details = {"resumed_line": line, "at_kill": at_kill, "arrays": len(a)}
    if not b_path.exists():
        return Result(
            "silent", f"the resumed run has no step-6 backup ({_steps_in(killed)})", details=details
        )
    b = weights_file_arrays(b_path)
    if sorted(a) != sorted(b):
        return Result("silent", "the final backups hold different variables", details=details)
    worst, where = 0.0, None
    for key in a:
        if a[key].dtype.kind in "fiu" and a[key].size:
            diff = float(np.max(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64))))
            scale = float(np.max(np.abs(a[key]))) or 1.0
            if diff / scale > worst:
                worst, where = diff / scale, key
    details.update(max_relative_difference=worst, at=where)
    eval_a = json.loads((full / "eval.json").read_text())
    eval_b = json.loads((killed / "eval.json").read_text())
    details.update(eval_full=eval_a.get("aAcc"), eval_resumed=eval_b.get("aAcc"))
    if line is None:
        return Result("silent", "the rerun did not resume (no 'resumed from')", details=details)
    if worst > 1e-5 or eval_a.get("aAcc") != eval_b.get("aAcc"):
        return Result(
            "silent",
            f"{line}; the resumed run differs from the uninterrupted one: "
            f"max relative difference {worst:.3g} in {where}; aAcc "
            f"{eval_a.get('aAcc')} vs {eval_b.get('aAcc')}",
            details=details,
        )
    return Result(
        "ok",
        f"{line}; all {len(a)} arrays of the step-6 backups (weights, memory, "
        f"optimizer) agree with the uninterrupted run (max relative difference "
        f"{worst:.2g}); same aAcc",
        details=details,
    )


def second_run_same_folder(c):
    """A second training command on a folder a first one is training in: refused while
    the first runs, and the first completes with its own files."""
    run = c.dir / "run"
    first = c.start(_train_args(run, "--max_steps=4"))
    time.sleep(1.5)
    # The second differs only in a field a resume may change: if it got in, it would
    # rewrite config.json and eval.json with max_eval_examples=1.
    second = c.start(_train_args(run, "--max_steps=4", "--max_eval_examples=1"))
    began = time.perf_counter()
    second_done = c.finish(second, note="started 1.5 s after the first")
    rc2, err2 = second_done.returncode, second_done.stderr
    second_seconds = time.perf_counter() - began
    first_running = first.poll() is None
    first_done = c.finish(first)
    rc1, err1 = first_done.returncode, first_done.stderr
    details = {
        "first_pid": first.pid,
        "second_exit": rc2,
        "first_exit": rc1,
        "second_seconds": round(second_seconds, 1),
        "first_still_running_when_second_ended": first_running,
    }
    config = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
    report = json.loads((run / "eval.json").read_text()) if (run / "eval.json").exists() else {}
    details.update(
        config_max_eval_examples=config.get("max_eval_examples"),
        eval_num_images=report.get("num_images"),
        eval_step=report.get("step"),
    )
    own = (
        config.get("max_eval_examples") == 2
        and report.get("num_images") == 2
        and report.get("step") == 4
        and (run / "model.keras").exists()
    )
    if not own:
        return Result(
            "lost",
            f"the first run's files are not its own: config.json "
            f"max_eval_examples {config.get('max_eval_examples')}, eval.json "
            f"num_images {report.get('num_images')} step {report.get('step')}",
            details=details,
        )
    if rc1 != 0:
        return Result(
            "traceback" if TRACEBACK in err1 else "clear_error",
            f"the first run failed (exit {rc1}): {_tail(err1, 1)}",
            details=details,
        )
    result = _cli(second_done, [f"pid {first.pid}"], expect_rc=2)
    result.details = details
    if result.status == "clear_error":
        result.status = "ok"
        result.why = (
            f"second refused (exit {rc2}) while the first ran: "
            f"{_message_line(err2, ['pid'])}; the first completed with its own "
            "config.json, model.keras, eval.json"
        )
    if not first_running:
        result.deviations.append("the first run had already ended when the second exited")
    return result


_SERVE_BIG = r"""
import json, resource, sys, time
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
data = open(sys.argv[2], "rb").read()
began = time.perf_counter()
out = loaded.signatures["serving_image_bytes"](image_bytes=tf.constant([data]))
labels = out["labels"].numpy()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"labels_shape": list(labels.shape),
                  "image_size": out["image_size"].numpy().tolist(),
                  "label_min": int(labels.min()), "label_max": int(labels.max()),
                  "classes_seen": int(np.unique(labels).size),
                  "seconds": round(time.perf_counter() - began, 2),
                  "peak_rss_mib_after_load": round(rss_loaded, 1),
                  "peak_rss_mib": round(peak, 1)}))
"""


def large_jpeg(c):
    """A 4000x3000 JPEG sent to the SavedModel: full-size labels, bounded memory."""
    image = _write_image(c.dir / "large.jpg", 3000, 4000)
    proc = c.run(["-c", _SERVE_BIG, c.probe.fixtures.saved_model(), image])
    if proc.returncode != 0:
        return _cli(proc, ["labels"])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    details = dict(out, rss_bound_mib=SERVING_RSS_BOUND_MIB)
    if (
        out["labels_shape"] != [1, 3000, 4000]
        or out["image_size"] != [[3000, 4000]]
        or not 0 <= out["label_min"] <= out["label_max"] < 11
    ):
        return Result(
            "silent",
            f"labels {out['labels_shape']} in [{out['label_min']}, "
            f"{out['label_max']}], image_size {out['image_size']}",
            details=details,
        )
    if out["peak_rss_mib"] > SERVING_RSS_BOUND_MIB:
        return Result(
            "silent",
            f"peak RSS {out['peak_rss_mib']} MiB above the {SERVING_RSS_BOUND_MIB} MiB bound",
            details=details,
        )
    return Result(
        "ok",
        f"labels (1, 3000, 4000) in [0, 11); peak RSS {out['peak_rss_mib']} "
        f"MiB (after loading {out['peak_rss_mib_after_load']} MiB), "
        f"{out['seconds']} s",
        details=details,
    )


def export_modes(c):
    """An export under umask 077: every folder 0755 and file 0644 (TF Serving runs as
    another user)."""
    import stat

    base = c.dir / "saved_models"
    model = c.probe.fixtures.run() / "model.keras"
    extra = ["--name", "memseg", "--dataset", "sample"]
    proc = c.run(_export(model, base, "saved_model", *extra), umask=0o077)
    if proc.returncode != 0:
        return _cli(proc, ["export"])
    wrong = []
    for path in [base, base / "memseg", *sorted((base / "memseg").rglob("*"))]:
        mode = stat.S_IMODE(path.stat().st_mode)
        want = 0o755 if path.is_dir() else 0o644
        if mode != want:
            wrong.append(f"{path.relative_to(c.dir)}: {oct(mode)}")
    count = len(list((base / "memseg").rglob("*")))
    if wrong:
        return Result(
            "silent",
            f"under umask 077, {len(wrong)} of {count + 2} paths are not "
            f"0755/0644 (TF Serving as another user cannot read them): {wrong[:5]}",
        )
    return Result("ok", f"under umask 077 all {count + 2} folders/files are 0755/0644")


# -- what the table's rows need: bad inputs, models, commands ----------------------------
def _nan_model_file(c, num_classes=3):
    """$CASE/nan.keras: a tiny model with a NaN weight (`nan_weight_model`)."""
    model, _ = nan_weight_model(num_classes)
    model.save(str(c.dir / "nan.keras"))
    return c.dir / "nan.keras"


def _train_flag(flag):
    """The tiny training command with `flag` (its run folder $CASE/run)."""
    return lambda c: _train_args(c.dir / "run", flag)


def _evaluate(model, *extra):
    """recipes/evaluate.py on `model(c)` with `extra` flags."""
    return lambda c: [EVALUATE, f"--model={model(c)}", *extra]


def _five_class_model(c):
    import numpy as np

    model = tiny_model(5)
    model(np.zeros((1, 32, 32, 3), "float32"))
    path = c.dir / "five_classes.keras"
    model.save(str(path))
    return path


def _empty_folder(c):
    (c.dir / "empty").mkdir()
    return c.dir / "empty"


def _text_file(c):
    return c.probe.fixtures.text_file(c)


def _preset(c):
    import keras

    import keras_memseg.models  # noqa: F401  (registers the classes)

    model = keras.saving.load_model(str(c.probe.fixtures.run() / "model.keras"), compile=False)
    preset = c.dir / "preset"
    model.save_to_preset(str(preset))
    c.call("keras.saving.load_model('run/model.keras').save_to_preset('$CASE/preset')")
    return preset


def _existing_tflite(c):
    (c.dir / "model.tflite").write_bytes(b"a previous TFLite export")
    return c.dir


def _existing_version(c):
    base = c.dir / "saved_models"
    shutil.copytree(c.probe.fixtures.saved_model(), base / "memseg" / "1")
    return base


def _copy_run(c):
    return c.probe.fixtures.copy_run(c)


def _leftovers(c, base):
    left = [p.name for p in (base / "memseg").iterdir() if p.name != "1"]
    return [f"left in saved_models/memseg: {left}"] if left else []


def _onto_version_1(c, base):
    extra = ["--name", "memseg", "--version", "1", "--dataset", "sample"]
    return _export(c.probe.fixtures.run() / "model.keras", base, "saved_model", *extra)


def _nan_export_saved_model(model, c):
    from keras_memseg.export import export_saved_model

    return export_saved_model(model, str(c.dir / "saved_models"))


def _nan_evaluate_dataset(model, c):
    from keras_memseg.evaluation import evaluate_dataset

    return evaluate_dataset(model, _eval_ds(), 3, verbose=False)


def np_zeros(shape):
    import numpy as np

    return np.zeros(shape, "float32")


def _tf_example(feature):
    import tensorflow as tf

    features = {
        key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        for key, value in feature.items()
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _tensors(**arrays):
    """{name: tf.constant} of the given arrays (a request); `None`: an empty string batch."""
    import tensorflow as tf

    return {
        k: tf.constant([], tf.string) if v is None else tf.constant(v) for k, v in arrays.items()
    }


def _nan_images(c):
    import numpy as np

    images = np.full((1, 32, 32, 3), 128, "float32")
    images[0, 4, 4, 1] = np.nan
    return _tensors(images=images)


def _rgb(y):
    import numpy as np

    return np.stack([y * 40] * 3, -1)


def _out_of_range(y):
    y = y.copy()
    y[0, 0, 0] = 7
    return y


# -- the cases --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Spec:
    """One row of the table: `run(case, **args)` returns the case's `Result`."""

    group: str
    name: str
    expected: str
    broken: str
    run: object
    args: dict = dataclasses.field(default_factory=dict)


def _row(group, name, expected, broken, run, **args):
    return Spec(group, name, expected, broken, run, args)


_CHECKPOINT = "checkpoints/ckpt-0000002.weights.h5"
_EVAL_SAMPLE = ["--dataset=sample", EVAL_EXAMPLES]
BAD_TRAIN_FLAGS = {  # case name: (flag, what the message must name)
    "eval_scales_zero": ("--eval_scales=0,1", "--eval_scales"),
    "eval_mode_fast": ("--eval_mode=fast", "--eval_mode"),
    "max_steps_negative": ("--max_steps=-5", "--max_steps"),
    "eval_every_negative": ("--eval_every=-1", "--eval_every"),
    "crop_size_text": ("--crop_size=abc", "--crop_size"),
    "crop_size_zero": ("--crop_size=0,64", "--crop_size"),
    "global_batch_size_zero": ("--global_batch_size=0", "--global_batch_size"),
    "dataset_voc": ("--dataset=voc", "--dataset"),
    "backbone_resnet49": ("--backbone=resnet49", "--backbone"),
}
BAD_EVALUATE_FLAGS = {
    "bad_scales_zero": "--scales=0,1",
    "bad_scales_text": "--scales=big",
    "bad_mode": "--mode=fast",
    "bad_crop_size_text": "--crop_size=abc",
    "bad_crop_size_zero": "--crop_size=0,64",
}
# fmt: off
CASES = [
    # 1. nonfinite: NaN/inf in inputs, flags and weights
    _row("nonfinite", "nan_pixel_fit", "ok", "a NaN pixel in a training batch",
         nonfinite_fit, value=NAN),
    _row("nonfinite", "inf_pixel_fit", "ok", "an inf pixel in a training batch",
         nonfinite_fit, value=INF),
    *(_row("nonfinite", f"learning_rate_{v}_flag", "clear_error", f"--learning_rate={v}",
           refused, command=_train_flag(f"--learning_rate={v}"), names=["learning_rate"],
           no_output="") for v in ("nan", "inf")),
    _row("nonfinite", "diverging_run", "clear_error", "--learning_rate=1e12", diverging_run),
    _row("nonfinite", "nan_weights_predict", "clear_error", "a NaN weight", nan_weights_call,
         shown="model.predict(x)", call=lambda m, c: m.predict(tiny_batch()[0], verbose=0)),
    _row("nonfinite", "nan_weights_evaluate", "clear_error", "a NaN weight", nan_weights_call,
         shown="model.evaluate(x, y)", call=lambda m, c: m.evaluate(*tiny_batch(), verbose=0)),
    _row("nonfinite", "nan_weights_evaluate_dataset", "clear_error", "a NaN weight",
         nan_weights_call, shown="keras_memseg.evaluation.evaluate_dataset(model, ds, 3)",
         call=_nan_evaluate_dataset),
    _row("nonfinite", "nan_weights_export_saved_model", "clear_error", "a NaN weight",
         nan_weights_call, call=_nan_export_saved_model, writes_nothing=True,
         shown="keras_memseg.export.export_saved_model(model, '$CASE/saved_models')"),
    _row("nonfinite", "nan_weights_predict_cli", "clear_error", "a NaN weight in --model",
         refused, names=["NaN"], no_output="out",
         command=lambda c: ["-m", "keras_memseg.predict", "--model", _nan_model_file(c),
                            _write_image(c.dir / "street.png", 48, 64), "--out", c.dir / "out"]),
    # 11 classes: a 3-class model on the 11-class sample would stop at the class count.
    _row("nonfinite", "nan_weights_evaluate_cli", "clear_error", "a NaN weight in --model",
         refused, names=["NaN"],
         command=_evaluate(lambda c: _nan_model_file(c, num_classes=11), *_EVAL_SAMPLE)),
    _row("nonfinite", "nan_weights_export_cli", "clear_error", "a NaN weight in --checkpoint",
         refused, names=["NaN"], expect_rc=None, no_output="saved_models",
         command=lambda c: _export(_nan_model_file(c), c.dir / "saved_models", "saved_model",
                                   "--input_size", "32,32")),
    _row("nonfinite", "nan_pixels_train_pipeline", "clear_error", "NaN pixels in float images",
         nonfinite_pipeline, value=NAN),
    _row("nonfinite", "inf_pixels_train_pipeline", "clear_error", "inf pixels in float images",
         nonfinite_pipeline, value=INF),
    # 2. resume: reruns, corrupted files, kills
    _row("resume", "other_architecture_refused", "ok", "a rerun with --feats_channels=24",
         refused_untouched, prepare=_copy_run, kept="the first run",
         command=lambda c, run: _train_args(run, "--feats_channels=24"),
         names=["feats_channels: 16 -> 24"], flag=("touched", "added")),
    _row("resume", "same_flags_resume", "ok", "a finished run rerun", same_flags_resume),
    _row("resume", "backups_corrupted_resume_from_checkpoint", "ok", "truncated backups",
         resume_from_checkpoint, corrupt_checkpoint=False),
    _row("resume", "backups_and_newest_checkpoint_corrupted", "ok",
         "truncated backups and newest checkpoint", resume_from_checkpoint,
         corrupt_checkpoint=True),
    _row("resume", "everything_corrupted", "clear_error", "every weights file truncated",
         refused_untouched, prepare=_all_weights_corrupted, kept="the run",
         command=lambda c, run: _train_args(run), names=["backup", "checkpoint"],
         expect_rc=None, promote=False),
    _row("resume", "keep_checkpoints_0_keeps_all", "ok", "--keep_checkpoints=0",
         keep_checkpoints_0),
    _row("resume", "killed_run_resumes_exactly", "ok", "kill -9 mid-run",
         killed_run_resumes_exactly),
    # 3. lock
    _row("lock", "second_run_same_folder", "ok", "two runs in one folder at once",
         second_run_same_folder),
    # 4. evaluate (recipes/evaluate.py)
    _row("evaluate", "model_with_other_class_count", "clear_error", "a 5-class model",
         refused, command=_evaluate(_five_class_model, *_EVAL_SAMPLE),
         names=["5 classes", "11"]),
    _row("evaluate", "model_is_a_text_file", "clear_error", "--model a text file", refused,
         command=_evaluate(_text_file, "--dataset=sample"), names=["notes.txt"]),
    _row("evaluate", "model_missing", "clear_error", "--model missing", refused,
         command=_evaluate(lambda c: c.dir / "missing.keras", "--dataset=sample"),
         names=["missing.keras"]),
    _row("evaluate", "model_empty_folder", "clear_error", "--model an empty folder", refused,
         command=_evaluate(_empty_folder, "--dataset=sample"), names=["{case}/empty"]),
    _row("evaluate", "checkpoint_weights_file", "ok", "--model a checkpoint", same_scores,
         model=lambda c: _copy_run(c) / _CHECKPOINT, what="ckpt-0000002.weights.h5"),
    _row("evaluate", "preset_folder", "ok", "--model a preset folder", same_scores,
         model=_preset, what="preset"),
    _row("evaluate", "cityscapes_test_without_submission_dir", "clear_error",
         "--split=test without --submission_dir", refused,
         command=_evaluate(_text_file, "--dataset=cityscapes", "--split=test"),
         names=["test", "submission_dir"]),
    *(_row("evaluate", name, "clear_error", flag, bad_evaluate_flag, flag=flag,
           names=[flag.split("=")[0]])
      for name, flag in BAD_EVALUATE_FLAGS.items()),
    # 5. serving (TensorFlow)
    _row("serving", "large_jpeg_bounded_memory", "ok", "a 4000x3000 JPEG", large_jpeg),
    _row("serving", "export_modes_under_umask_077", "ok", "umask 077", export_modes),
    _row("serving", "empty_batch", "clear_error", "no images", serving_call,
         signature="serving_image_bytes", names=["empty batch"],
         make_input=lambda c: _tensors(image_bytes=None)),
    _row("serving", "empty_batch_images", "clear_error", "no images", serving_call,
         signature="serving_default", names=["empty batch"],
         make_input=lambda c: _tensors(images=np_zeros((0, 32, 32, 3)))),
    _row("serving", "not_a_tf_example", "clear_error", "bytes that are no tf.Example",
         serving_call, signature="serving_tf_example", names=["examples[0]", "tf.Example"],
         make_input=lambda c: _tensors(examples=[b"this is not a tf.Example"])),
    _row("serving", "tf_example_without_image", "clear_error", "a tf.Example with no image",
         serving_call, signature="serving_tf_example", names=["image/encoded"],
         make_input=lambda c: _tensors(examples=[_tf_example({"image/format": b"png"})])),
    _row("serving", "nan_pixels", "clear_error", "a NaN pixel", serving_call,
         signature="serving_default", names=["NaN"], make_input=_nan_images),
    _row("serving", "image_above_max_input_pixels", "clear_error",  # 25 Mpx > 20 Mpx
         "a 5000x5000 JPEG", serving_call, signature="serving_image_bytes",
         names=["max_input_pixels"], make_input=lambda c: _tensors(
             image_bytes=[_write_image(c.dir / "huge.jpg", 5000, 5000).read_bytes()])),
    _row("serving", "tflite_onto_existing_file", "ok", "--output an existing .tflite",
         refused_untouched, prepare=_existing_tflite, kept="the existing .tflite",
         command=lambda c, folder: _export(c.probe.fixtures.run() / "model.keras",
                                           folder / "model.tflite", "tflite",
                                           "--input_size", "64,64"),
         names=["--overwrite"], flag=("touched",)),
    _row("serving", "saved_model_onto_existing_version", "ok", "--version of an existing one",
         refused_untouched, prepare=_existing_version, kept="version 1",
         command=_onto_version_1, names=["--overwrite"], check=_leftovers),
    # 6. validation: flags, constructor arguments, labels
    *(_row("validation", f"flag_{name}", "clear_error", flag, refused,
           command=_train_flag(flag), names=[field], no_output="")
      for name, (flag, field) in BAD_TRAIN_FLAGS.items()),
    _row("validation", "constructor_num_classes_2.7", "clear_error", "num_classes=2.7",
         constructor, kwargs={"num_classes": 2.7}, names=["num_classes", "2.7"]),
    _row("validation", "constructor_ignore_class_3_of_5", "clear_error", "ignore_class=3",
         constructor, kwargs={"ignore_class": 3}, names=["ignore_class"]),
    _row("validation", "constructor_feats_channels_0", "clear_error", "feats_channels=0",
         constructor, kwargs={"feats_channels": 0}, names=["feats_channels"]),
    _row("validation", "fit_float_labels", "clear_error", "float labels", bad_labels_fit,
         description="float labels", make_labels=lambda y: y.astype("float32") + 0.5,
         names=["labels", "float"]),
    _row("validation", "fit_rgb_labels", "clear_error", "RGB colour labels", bad_labels_fit,
         description="RGB colour labels", make_labels=_rgb, names=["labels", "(2, 32, 32, 3)"]),
    _row("validation", "fit_labels_other_size", "clear_error", "labels of another size",
         bad_labels_fit, description="labels of another size",
         make_labels=lambda y: y[:, :16, :24], names=["labels", "(16, 24)"]),
    _row("validation", "fit_labels_out_of_range", "clear_error", "a label 7 of 3 classes",
         bad_labels_fit, description="a label 7 (3 classes)", make_labels=_out_of_range,
         names=["label", "[0, 3)"]),
    _row("validation", "fit_rgb_labels_after_a_fit", "clear_error", "RGB colour labels",
         bad_labels_fit, description="RGB colour labels", make_labels=_rgb,
         names=["labels", "(2, 32, 32, 3)"], after_fit=True),
    _row("validation", "fit_labels_other_size_after_a_fit", "clear_error",
         "labels of another size", bad_labels_fit, description="labels of another size",
         make_labels=lambda y: y[:, :16, :24], names=["labels", "(16, 24)"], after_fit=True),
]
# fmt: on


# -- driver -----------------------------------------------------------------------------
class Probe:
    def __init__(self, root, keep):
        self.root = pathlib.Path(root)
        self.keep = keep
        self.fixtures = Fixtures(self.root / "fixtures")
        self.fixtures.root.mkdir(parents=True)

    def run_case(self, spec):
        folder = tempfile.mkdtemp(prefix=f"{spec.group}-{spec.name}-", dir=self.root)
        c = Case(self, spec.group, spec.name, folder)
        load = _common.load_average()
        began = time.perf_counter()
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            result = spec.run(c, **spec.args)
        except FixtureError as error:
            result = Result("traceback", f"fixture failed: {error}")
        except Exception as error:  # noqa: BLE001 - the probe records, never stops
            result = Result(
                "traceback",
                f"{type(error).__name__}: {str(error)[:300]}",
                details={"probe_traceback": _tail(traceback.format_exc(), 8)},
            )
        finally:
            os.chdir(cwd)
        seconds = time.perf_counter() - began
        if not self.keep:
            shutil.rmtree(folder, ignore_errors=True)
        return {
            "group": spec.group,
            "case": spec.name,
            "status": result.status,
            "expected": spec.expected,
            "as_documented": result.status == spec.expected and not result.deviations,
            "why": result.why,
            "deviations": result.deviations,
            "commands": c.commands,
            "details": result.details,
            "seconds": round(seconds, 1),
            "load_average_at_start": load,
        }


def counts(rows):
    out = {"tried": len(rows)}
    out.update({s: sum(r["status"] == s for r in rows) for s in STATUSES})
    out["as_documented"] = sum(r["as_documented"] for r in rows)
    return out


def summarise(rows):
    table = {
        g: counts([r for r in rows if r["group"] == g])
        for g in GROUPS
        if any(r["group"] == g for r in rows)
    }
    table["total"] = counts(rows)
    return table


_CASE_FOLDER = re.compile(r"/[^\s'\"]*?fault_probe-[^/\s'\"]+/[^/\s'\"]+")


def scrub_paths(value):
    """`value` (JSON-like) with each case's temporary folder written `<case>`, so that
    the committed results hold no machine-specific paths."""
    if isinstance(value, str):
        return _CASE_FOLDER.sub("<case>", value)
    if isinstance(value, list):
        return [scrub_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    return value


def markdown(payload):
    runs = payload.get("runs") or []
    if len(runs) > 1:  # merged with --update: each command, its cases and load
        commands = [
            "Commands (run in this order; a later one replaces the rows of the cases it reran):",
            "",
            *(
                f"- `{r['command']}`: {r.get('cases', '?')} cases, {r['seconds'] / 60:.1f} min, "
                f"load average {r['load_average']['start']} -> {r['load_average']['end']}"
                for r in runs
            ),
            "",
        ]
    else:
        commands = [f"Command: `{payload['command']}`  "]
    hw = payload["hardware"]
    lines = [
        "# Fault probe (issue #12)",
        "",
        *commands,
        f"Hardware: {hw.get('cpu')}, {hw.get('cpu_count')} cores, {hw.get('memory_gib')} GiB; "
        f"load average at start {payload['load_average']['start']}, at end "
        f"{payload['load_average']['end']}; {payload['seconds'] / 60:.1f} min.",
        "",
        "| group | tried | ok | clear error | traceback | silent | lost | as documented |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for group, row in payload["summary"].items():
        name = f"**{group}**" if group == "total" else group
        cells = " | ".join(str(row[k]) for k in ("tried", *STATUSES, "as_documented"))
        lines.append(f"| {name} | {cells} |")
    lines += [
        "",
        "`ok` and `clear_error` are the good outcomes; `as documented`: the "
        "outcome the code documents for that case, with every side check held.",
        "",
    ]
    off = [r for r in payload["cases"] if not r["as_documented"]]
    if off:
        lines += ["## Not as documented", ""]
        for r in off:
            extra = f" Deviations: {'; '.join(r['deviations'])}." if r["deviations"] else ""
            lines.append(
                f"- `{r['group']}/{r['case']}`: **{r['status']}** (expected "
                f"{r['expected']}): {r['why']}.{extra}"
            )
        lines.append("")
    lines += ["## Cases", "", "| case | status | expected | why |", "|---|---|---|---|"]
    for r in payload["cases"]:
        why = r["why"].replace("|", "\\|").replace("\n", " ")
        if len(why) > 220:
            why = why[:217] + "..."
        lines.append(f"| {r['group']}/{r['case']} | {r['status']} | {r['expected']} | {why} |")
    lines += [
        "",
        "Commands run in a fresh temporary folder (`$CASE`) with the repository's "
        "scripts; the JSON beside this file holds each command, its exit code and "
        "the last lines of its stderr.",
    ]
    return "\n".join(lines) + "\n"


def merge(previous, rows):
    """(rows, runs) of a previous payload updated with `rows` (same case: replaced),
    in the probe's case order; `runs` lists every command that made the rows."""
    fresh = {(r["group"], r["case"]) for r in rows}
    kept = [r for r in previous.get("cases", []) if (r["group"], r["case"]) not in fresh]
    order = {(spec.group, spec.name): i for i, spec in enumerate(CASES)}
    merged = sorted(kept + rows, key=lambda r: order.get((r["group"], r["case"]), len(order)))
    runs = previous.get("runs") or [
        {k: previous[k] for k in ("command", "load_average", "seconds") if k in previous}
    ]
    return merged, [dict(r, cases=r.get("cases", len(previous.get("cases", [])))) for r in runs]


def select(only=None, names=None):
    chosen = [spec for spec in CASES if not only or spec.group in only]
    if names:
        chosen = [s for s in chosen if s.name in names or f"{s.group}/{s.name}" in names]
    return chosen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=GROUPS, help="run these groups only")
    parser.add_argument("--cases", nargs="+", help="run these cases only (name or group/name)")
    parser.add_argument("--out", default=str(RESULTS), help="the JSON (markdown beside it)")
    parser.add_argument("--keep", action="store_true", help="keep the case folders")
    parser.add_argument(
        "--update",
        action="store_true",
        help="merge into the existing --out: the cases run now replace "
        "their rows there, the others are kept (e.g. one group rerun)",
    )
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    args = parser.parse_args(argv)
    chosen = select(args.only, args.cases)
    if args.list:
        for spec in chosen:
            print(f"{spec.group}/{spec.name}: {spec.broken} (expected {spec.expected})")
        return 0
    if not chosen:
        parser.error("no case matches --only/--cases (see --list)")
    record = _common.run_record("fault_probe", argv)
    load_start = _common.load_average()
    root = tempfile.mkdtemp(prefix="fault_probe-")
    probe = Probe(root, args.keep)
    began = time.perf_counter()
    rows = []
    for spec in chosen:
        row = probe.run_case(spec)
        rows.append(row)
        print(
            f"{spec.group}/{spec.name}: {row['status']} ({row['seconds']} s) - {row['why'][:160]}",
            flush=True,
        )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    this_run = {
        "command": record["command"],
        "commit": record["commit"],
        "changed_files": record["changed_files"],
        "date": record["date"],
        "load_average": {"start": load_start, "end": _common.load_average()},
        "seconds": round(time.perf_counter() - began, 1),
        "cases": len(rows),
    }
    out = pathlib.Path(args.out)
    runs = [this_run]
    if args.update and out.exists():
        rows, runs = merge(json.loads(out.read_text()), rows)
        runs.append(this_run)
    payload = {
        "command": " && ".join(r["command"] for r in runs),
        "commit": record["commit"],
        "changed_files": record["changed_files"],
        "date": record["date"],
        "hardware": record["hardware"],
        "load_average": {
            "start": runs[0]["load_average"]["start"],
            "end": runs[-1]["load_average"]["end"],
        },
        "seconds": round(sum(r["seconds"] for r in runs), 1),
        "runs": runs,
        "statuses": list(STATUSES),
        "summary": summarise(rows),
        "cases": rows,
    }
    payload = scrub_paths(payload)
    if args.keep:
        payload["kept"] = root
    _common.write_json(out, payload)
    out.with_suffix(".md").write_text(markdown(payload))
    print(markdown(payload).split("## Not as documented")[0].split("## Cases")[0])
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
