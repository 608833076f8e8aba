"""Idle time at the end of `fit` calls, tf.data model autotuning on vs off (measured, not asserted).

    python benchmarks/fit_segments.py [--segment_s 6.5] [--repeats 6]
        [--out benchmarks/results/fit_segments.json]

The trainer runs one `model.fit` per checkpoint segment (the sample recipe: 50 steps,
6-7 s each on a 2-core CPU). With tf.data's model autotuning on, deleting the iterator
at the end of a `fit` waits for the autotuner's next wake-up (its period starts at
10 ms and doubles), so a call that would end between 5.12 and 10.23 s after the iterator
was made returns at 10.23 s, with the cores idle meanwhile. `train_pipeline` turns the
autotuner off (`keras_memseg/datasets/pipeline.py`). This script trains a small conv
model on `train_pipeline` batches of in-memory images, once as built and once with
autotuning switched back on, `--repeats` segments of about `--segment_s` seconds each,
and reports per segment the `fit` wall time, the end of its last batch, and the idle
tail between them. Writes JSON and a Markdown table beside it.
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _model(keras, crop, classes):
    inputs = keras.Input((crop, crop, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(classes, 1)(x))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    model.compile("sgd", loss)
    return model


def _segments(model, ds, steps, repeats):
    import keras

    class LastBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

    timer, rows = LastBatch(), []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
        done = time.perf_counter()
        rows.append(
            {
                "fit_s": round(done - start, 3),
                "last_batch_end_s": round(timer.end - start, 3),
                "idle_tail_s": round(done - timer.end, 3),
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segment_s", type=float, default=6.5)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--out", default=str(HERE / "results" / "fit_segments.json"))
    args = parser.parse_args(argv)
    if args.segment_s <= 0 or args.repeats < 1:
        parser.error("--segment_s must be > 0 and --repeats >= 1")

    import keras
    import numpy as np
    import tensorflow as tf
    from _common import repo_path
    from _common import run_record
    from _common import write_json

    from keras_memseg.datasets import AugmentConfig
    from keras_memseg.datasets import train_pipeline

    rng = np.random.default_rng(0)
    size, classes = args.crop + 16, 4
    images = rng.integers(0, 256, (32, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, classes, (32, size, size), dtype=np.uint8)
    source = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    config = AugmentConfig(target_scale=(size, size), crop_size=(args.crop, args.crop))
    built = train_pipeline(source, config, args.batch_size, seed=0, repeat=True)
    on = tf.data.Options()
    on.autotune.enabled = True
    variants = {
        "train_pipeline as built (autotuning off)": built,
        "same pipeline, autotuning switched on": built.with_options(on),
    }
    keras.utils.set_random_seed(0)
    model = _model(keras, args.crop, classes)
    # Steps per segment from a 20-step fit after the tracing one (batch ends only: the
    # fit's own end may stall).
    _segments(model, built, 2, 1)
    probe = _segments(model, built, 20, 1)[0]
    steps = max(1, round(args.segment_s * 20 / probe["last_batch_end_s"]))
    results = {}
    for name, ds in variants.items():
        rows = _segments(model, ds, steps, args.repeats)
        results[name] = {
            "autotune_enabled": ds.options().autotune.enabled,
            "segments": rows,
            "idle_tail_total_s": round(sum(r["idle_tail_s"] for r in rows), 3),
            "fit_total_s": round(sum(r["fit_s"] for r in rows), 3),
        }
    payload = {
        "benchmark": "fit_segments",
        **run_record("fit_segments", argv),
        "settings": {**vars(args), "out": repo_path(args.out), "steps_per_segment": steps},
        "tensorflow": tf.__version__,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "results": results,
    }
    out = pathlib.Path(args.out)
    write_json(out, payload)
    lines = [
        f"`fit` segments of {steps} steps (~{args.segment_s} s), {args.repeats} each, "
        f"crop {args.crop}, batch {args.batch_size}; tensorflow {tf.__version__}.",
        "",
        "| pipeline | fit wall per segment (s) | idle tail per segment (s) | total idle (s) |",
        "|---|---|---|---|",
    ]
    for name, row in results.items():
        fits = ", ".join(f"{r['fit_s']:.2f}" for r in row["segments"])
        tails = ", ".join(f"{r['idle_tail_s']:.2f}" for r in row["segments"])
        lines.append(f"| {name} | {fits} | {tails} | {row['idle_tail_total_s']:.2f} |")
    table = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
