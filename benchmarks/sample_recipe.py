"""README command 1's job, timed by phase: `recipes/train_sample.py` in this process.

    python benchmarks/sample_recipe.py [--out benchmarks/results/sample_recipe.json]
        [-- RECIPE FLAGS ...]

Runs the sample recipe exactly as `python recipes/train_sample.py` does (same flags,
defaults and seed; its run folder and export go to a temporary folder unless the
recipe flags say otherwise, and removed at the end) with timers around its phases: start-up (imports), setup
(data, model build), the first training step (tracing and graph optimisation of the
train step included), the steady steps, checkpoints and backups, periodic and final
evaluations, `model.save` and the SavedModel export. Writes the phases, the final
mIoU, the command, commit, hardware and load average as JSON and a Markdown table beside
it. It compares with nothing: a time measured before, or on another machine, is no
baseline (run the code you compare with in the same session, on the same machine).
"""

import argparse
import collections
import functools
import os
import pathlib
import shutil
import sys
import tempfile
import time

STARTED = time.perf_counter()
LOAD_AT_START = [round(v, 2) for v in os.getloadavg()]
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "recipes"))

# The recipe's own first import (oneDNN choice, TensorFlow's start-up lines hidden).
import _console  # noqa: E402, F401

STEP_MARKS = ("first_step", "steps")
DEFAULT_OUT = str(HERE / "results" / "sample_recipe.json")
SCRATCH = "<scratch>"  # the temporary folder of a run, as the JSON names it


def phases(marks, total):
    """Wall seconds per phase from `marks`, a list of (name, start, end) intervals.

    Intervals named the same are summed; an interval that ran inside the first step or
    the steady steps (a checkpoint, a periodic evaluation) is subtracted from that step
    interval. The remainder of `total` not covered by any interval is "other" (fit's
    epoch bookkeeping, printing, process exit).

    Example:
    >>> marks = [("startup", 0, 5), ("steps", 10, 50), ("checkpoint", 20, 22)]
    >>> phases(marks, 60)
    {'startup': 5.0, 'steps': 38.0, 'checkpoint': 2.0, 'other': 15.0}
    """
    out = collections.OrderedDict()
    for name, start, end in marks:
        out[name] = out.get(name, 0.0) + (end - start)
    for name, start, end in marks:
        if name in STEP_MARKS:
            continue
        for outer, s, e in marks:
            if outer in STEP_MARKS and s <= start and end <= e:
                out[outer] -= end - start
                break
    out["other"] = total - sum(out.values())
    return {k: round(v, 2) for k, v in out.items()}


def markdown(result):
    rows = [
        "| phase | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.1f} |" for name, seconds in result["phases"].items()),
        f"| **total** | **{result['total_seconds']:.1f}** |",
    ]
    hw = result["hardware"]
    return (
        f"Sample recipe by phase ({hw.get('cpu')}, {hw.get('cpu_count')} cores, load average at "
        f"start {hw.get('load_average_at_start')}; {result['steps']} steps, mIoU "
        f"{100 * result['miou']:.2f} %)\n\n" + "\n".join(rows) + "\n"
    )


class _Clock:
    """Records (name, start, end) intervals around the recipe's phases."""

    def __init__(self):
        self.marks = []

    def add(self, name, start, end=None):
        self.marks.append((name, start, time.perf_counter() if end is None else end))

    def wrap(self, owner, attribute, name):
        original = getattr(owner, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(name, start)

        setattr(owner, attribute, timed)


def instrument(clock):
    """Puts the timers in place; returns the callback that times the training steps."""
    import keras

    from keras_memseg import export
    from keras_memseg.training import callbacks
    from keras_memseg.training import trainer

    clock.wrap(trainer, "evaluate_dataset", "evaluation")
    clock.wrap(export, "export_saved_model", "export")
    for cls in (callbacks.StepCheckpoint, callbacks.StepBackupAndRestore):
        clock.wrap(cls, "on_train_batch_end", "checkpoint_and_backup")
    original_save = keras.Model.save

    def save(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original_save(self, *args, **kwargs)
        finally:
            clock.add("model_save", start)

    keras.Model.save = save

    class Steps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.fit_began = time.perf_counter()
            self.first_end, self.last_end = None, None

        def on_train_batch_end(self, batch, logs=None):
            # Extra callbacks run after the trainer's: a step's checkpoint and periodic
            # evaluation fall inside the "steps" interval and are subtracted from it.
            now = time.perf_counter()
            if self.first_end is None:
                self.first_end = now
                clock.add("first_step", self.fit_began, now)
            self.last_end = now

        def on_train_end(self, logs=None):
            if self.first_end is not None:
                clock.add("steps", self.first_end, self.last_end)

    return Steps()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("recipe_flags", nargs="*", help="flags for the recipe (after --)")
    args = parser.parse_args(argv)
    clock = _Clock()
    import_start = time.perf_counter()
    from keras_memseg.training import cli
    from keras_memseg.training import trainer

    clock.add("startup", STARTED, import_start)  # TensorFlow, through the recipe's _console
    clock.add("imports", import_start)  # keras_memseg, Keras
    steps = instrument(clock)
    scratch = tempfile.mkdtemp(prefix="sample_recipe-")
    flags = list(args.recipe_flags)
    if not any(f.startswith("--run_dir") for f in flags):
        flags.append(f"--run_dir={scratch}/run")
    if not any(f.startswith("--export_dir") for f in flags):
        flags.append(f"--export_dir={scratch}/saved_models")
    original_train = trainer.train
    reports = []

    def train(config, extra_callbacks=(), **kwargs):
        result = original_train(config, extra_callbacks=(*extra_callbacks, steps), **kwargs)
        reports.append(result)
        return result

    trainer.train = train
    began = time.perf_counter()
    try:
        cli.run_recipe("sample", ["train_sample.py", *flags])
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    finally:
        # The default run folder and export are scratch: timed, then removed.
        shutil.rmtree(scratch, ignore_errors=True)
    total = time.perf_counter() - STARTED
    if not reports:
        raise SystemExit("the recipe did not train (see its output above)")
    result = reports[0]
    clock.add("setup", began, steps.fit_began)  # data, model build, restore, fit's setup
    import _common

    shown = [] if args.out == DEFAULT_OUT else ["--out", _common.repo_path(args.out)]
    shown += ["--", *args.recipe_flags] if args.recipe_flags else []
    out = {
        "benchmark": "sample_recipe",
        **_common.run_record("sample_recipe", shown),
        "recipe_flags": [f.replace(scratch, SCRATCH) for f in flags],
        "steps": result.steps,
        "miou": float(result.report["mIoU"]),
        "total_seconds": round(total, 2),
        "phases": phases(clock.marks, total),
        "load_average_at_end": _common.load_average(),
    }
    out["hardware"]["load_average_at_start"] = LOAD_AT_START
    path = pathlib.Path(args.out)
    _common.write_json(path, out)
    path.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))
    return out


if __name__ == "__main__":
    main()
