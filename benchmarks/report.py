"""Writes docs/performance.md from benchmarks/results/: every table and every number on the
page is read from a result file that benchmarks/results/manifest.json lists, beside the
command, commit, machine and date that produced it.

    python benchmarks/report.py            # writes docs/performance.md
    python benchmarks/report.py --check    # exit 1 if docs/performance.md is not what it writes
    python benchmarks/report.py --entry x.json x.md   # a manifest entry for a new result

The prose is templates whose numbers are filled in from the files; a ratio is only ever
taken between numbers of one run (one file). Nothing here imports TensorFlow: the page is
rebuilt in a second (`tests/benchmarks/test_results.py` checks that it is up to date).
"""

import argparse
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
MANIFEST = RESULTS / "manifest.json"
PAGE = ROOT / "docs" / "performance.md"
MODELS = {"mcibi": "MCIBI", "deeplabv3": "DeepLabV3"}


class Results:
    """The manifest and the result files it lists (and only those)."""

    def __init__(self, folder=RESULTS):
        self.folder = pathlib.Path(folder)
        self.runs = json.loads((self.folder / "manifest.json").read_text())["runs"]
        self.run_of = {name: run for run in self.runs for name in run["files"]}

    def __contains__(self, name):
        return name in self.run_of

    def json(self, name):
        if name not in self.run_of:
            raise KeyError(f"{name} is not listed in {self.folder / 'manifest.json'}")
        return json.loads((self.folder / name).read_text())

    def source(self, name):
        """The provenance line of a table: command, commit, machine, date, file."""
        run = self.run_of[name]
        how = "recorded" if run["commit_source"] == "recorded" else "inferred, see the manifest"
        copied = (
            f" (as `{run['written_as']}`, copied to this name in `{run['copied_in'][:7]}`)"
            if "written_as" in run
            else ""
        )
        return (
            f"Source: `benchmarks/results/{name}`, written by `{run['command']}`{copied} at "
            f"commit `{run['commit'][:7]}` ({how}) on {run['machine']}, {run['date']}."
        )


# ----------------------------------------------------------------------- formatting
def num(value, digits=1):
    return "-" if value is None else f"{value:,.{digits}f}"


def seconds(ms, digits=2):
    return "-" if ms is None else f"{ms / 1000:.{digits}f} s"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def ok(row):
    return bool(row) and row.get("ok", True) and "error" not in row


# ----------------------------------------------------------------------- sections
def against_the_authors(r):
    labels = {
        "reference_torch": "authors' PyTorch (sssegmentation)",
        "ours_tf": "ours, TensorFlow `fit`",
        "ours_tf_xla": "ours, TensorFlow `fit`, XLA",
        "ours_jax": "ours, JAX `fit`",
    }
    lines = [
        "## Against the authors' PyTorch code",
        "",
        "`benchmarks/compare_reference.py` times one training step of the authors' MCIBI and "
        "DeepLabV3 (a checkout of github.com/SegmentationBLWX/sssegmentation that you fetch "
        "yourself) beside ours, at the same shapes, each implementation and model in its own "
        "process, one after the other. The speed against the authors is their step time over "
        "ours, in the same run.",
        "",
    ]
    main = "compare_reference_previous_machine.json"
    for name in (main, "compare_reference_rerun_mcibi.json", "compare_reference_dilated_only.json"):
        if name not in r:
            continue
        d = r.json(name)
        s, runs, derived = d["settings"], d["runs"], d["derived"]
        lines += [
            f"**{s['backbone']} OS8, {s['size']}x{s['size']}, batch {s['batch']}, "
            f"{s['num_classes']} classes; median of {s['steps']} steps after {s['warmup']} "
            f"warm-up, {s['threads']} threads; authors' code at "
            f"`{(s.get('reference_commit') or '-')[:8]}`.**",
            "",
        ]
        rows = []
        for framework in s["frameworks"]:
            row = runs.get(framework, {})
            cells = [seconds(row[m]["median_ms"]) if ok(row.get(m)) else "-" for m in s["models"]]
            ratio = derived.get(framework, {}).get("mcibi_over_deeplabv3")
            speed = ", ".join(
                f"{MODELS[m]} {derived[framework][f'speedup_vs_authors_{m}']:.2f}x"
                for m in s["models"]
                if f"speedup_vs_authors_{m}" in derived.get(framework, {})
            )
            rows.append(
                [
                    labels[framework],
                    *cells,
                    num(ratio, 3),
                    "1 (baseline)" if framework == "reference_torch" else speed or "-",
                ]
            )
        header = ["implementation", *[f"{MODELS[m]} step" for m in s["models"]]]
        lines += table(header + ["MCIBI / DeepLabV3", "speed vs the authors"], rows)
        if name == main:
            tf, jax, xla = (derived.get(k, {}) for k in ("ours_tf", "ours_jax", "ours_tf_xla"))
            lines += [
                f"In this run our TensorFlow step was {tf['speedup_vs_authors_mcibi']:.2f}x "
                f"(MCIBI) and {tf['speedup_vs_authors_deeplabv3']:.2f}x (DeepLabV3) as fast "
                f"as the authors', JAX's {jax['speedup_vs_authors_mcibi']:.2f}x and "
                f"{jax['speedup_vs_authors_deeplabv3']:.2f}x. XLA made TensorFlow's step "
                f"slower: {xla['xla_over_tf_mcibi']:.2f}x (MCIBI) and "
                f"{xla['xla_over_tf_deeplabv3']:.2f}x (DeepLabV3) the time without it. "
                f"MCIBI's step took {tf['mcibi_over_deeplabv3']:.3f}x DeepLabV3's with "
                "TensorFlow; the forward FLOP ratio of the two measured models, counted by the "
                f"same run, is {tf['flop_ratio_mcibi_over_deeplabv3']:.3f}.",
                "",
                "The target lines the script printed:",
                "",
                *(f"- {line}" for line in d["targets"]),
                "",
            ]
        if name == "compare_reference_rerun_mcibi.json" and main in r:
            first = r.json(main)["runs"]
            lines += [
                "A rerun of the two MCIBI workers right after (same code): the authors' step "
                f"took {seconds(runs['reference_torch']['mcibi']['median_ms'])} against "
                f"{seconds(first['reference_torch']['mcibi']['median_ms'])} in the first run, "
                f"ours {seconds(runs['ours_tf']['mcibi']['median_ms'])} against "
                f"{seconds(first['ours_tf']['mcibi']['median_ms'])}: the authors' step varies "
                "from run to run far more than ours here, so compare the ratios of one run.",
                "",
            ]
        if name == "compare_reference_dilated_only.json":
            lines += [
                "An earlier state of the code: dilated convolutions as sums of their in-map taps, "
                "before `MatmulConv2D` and TensorFlow's oneDNN kernels.",
                "",
            ]
        lines += [r.source(name), ""]
    return lines


def training_step(r):
    lines = [
        "## Training step, ours alone",
        "",
        "`benchmarks/train_step.py` times `train_on_batch` of DeepLabV3 and of MCIBI with the "
        "exact (label-resolution) and the feature-resolution memory update, each model in its "
        "own process; peak memory on CPU is the peak RSS minus the RSS after building the model. "
        "These runs measured the code before `MatmulConv2D`, oneDNN, `TorchSGD` and "
        "`TorchBatchNormalization` (see the commit).",
        "",
    ]
    for name in ("train_step.json", "train_step_jax.json", "train_step_torch.json"):
        if name not in r:
            continue
        d = r.json(name)
        s, derived = d["settings"], d["derived"]
        lines += [
            f"**{s['backbone']} OS8, {s['size']}x{s['size']}, batch {s['batch']}, "
            f"{s['classes']} classes; median of {s['steps']} steps after {s['warmup']} "
            "warm-up.**",
            "",
        ]
        rows = []
        for key, row in d["steps"].items():
            if not ok(row):
                rows.append([key, "failed", "", "", "", ""])
                continue
            overhead = derived["memory_overhead_pct"].get(key)
            rows.append(
                [
                    f"`{key}`",
                    num(row["median_ms"], 0),
                    num(derived["step_ratio"].get(key, 1.0), 3),
                    num(row["train_peak_mib"], 0),
                    "" if overhead is None else f"{overhead:+.1f} %",
                    num(row["first_step_s"], 1),
                ]
            )
        header = ["backend/jit/model", "step ms", "x DeepLabV3", "peak MiB", "memory vs DeepLabV3"]
        lines += table(header + ["first step s"], rows)
        if name == "train_step.json":
            ratio = derived["step_ratio"]
            label = ratio.get("tensorflow/jit_off/mcibi_label")
            feature = ratio.get("tensorflow/jit_off/mcibi_feature")
            lines += [
                f"MCIBI's step took {label:.3f}x DeepLabV3's with the exact memory update and "
                f"{feature:.3f}x with the feature-resolution one.",
                "",
            ]
        else:
            lines += ["A 64x64 smoke run: it shows that the backend trains, not how fast.", ""]
        lines += [r.source(name), ""]
    name = "train_step_update.json"
    if name in r:
        d = r.json(name)
        s, update = d["settings"], d["update"]
        rows = [
            [
                key.split("/")[0],
                key.split("/")[1].replace("jit_", ""),
                num(row["upsample"]["median_ms"]),
                num(row["statistics"]["median_ms"]),
                num(row["update"]["median_ms"]),
            ]
            for key, row in update.items()
            if key != "ok"
        ]
        c = s["update_size"] // 8
        lines += [
            f"**The memory update alone** (`model.memory.update`, TensorFlow `tf.function`; "
            f"features ({s['update_batch']}, {c}, {c}, 512), labels ({s['update_batch']}, "
            f"{s['update_size']}, {s['update_size']}), {s['classes']} classes; median of "
            f"{s['steps']}):",
            "",
            *table(
                [
                    "update resolution",
                    "XLA",
                    "materialising the upsampled features alone, ms",
                    "statistics ms",
                    "full update ms",
                ],
                rows,
            ),
            "The exact update never materialises the upsampled features: it costs "
            f"{num(update['label/jit_off']['update']['median_ms'])} ms without XLA, where the "
            f"upsampling alone would cost {num(update['label/jit_off']['upsample']['median_ms'])}"
            " ms.",
            "",
            r.source(name),
            "",
        ]
    return lines


def xla_profile(r, rows=12):
    name = "xla_profile.json"
    if name not in r:
        return []
    d = r.json(name)
    s, runs = d["settings"], d["runs"]
    mcibi, deeplab = runs["mcibi"], runs["deeplabv3"]
    layers = set(mcibi["by_layer_ms"]) | set(deeplab["by_layer_ms"])

    def diff(layer):
        return mcibi["by_layer_ms"].get(layer, 0.0) - deeplab["by_layer_ms"].get(layer, 0.0)

    top = sorted(layers, key=lambda layer: -abs(diff(layer)))[:rows]
    table_rows = [
        [
            layer,
            num(mcibi["by_layer_ms"].get(layer, 0.0)),
            num(deeplab["by_layer_ms"].get(layer, 0.0)),
            f"{diff(layer):+,.1f}",
        ]
        for layer in top
    ]
    table_rows.append(
        [
            "**all kernels**",
            num(mcibi["kernel_ms_per_step"]),
            num(deeplab["kernel_ms_per_step"]),
            "",
        ]
    )
    head = ("bottleneck/conv", "fuse_memory/conv", "fuse_context/conv")
    return [
        "## Where an XLA training step's time goes",
        "",
        "`benchmarks/xla_profile.py` runs each model's `fit()` on JAX under `jax.profiler` and "
        "sums the kernel time of every XLA kernel per Keras layer (forward and backward), per "
        "step. Kernel times are summed over XLA's threads, so they exceed the step's wall time. "
        f"{s['backbone']} OS8, {s['size']}x{s['size']}, batch {s['batch']}, {s['steps']} "
        f"profiled steps after {s['warmup']} warm-up; the {rows} layers that differ most:",
        "",
        *table(["layer", "MCIBI ms", "DeepLabV3 ms", "difference ms"], table_rows),
        "The memory head's own convolutions ("
        + ", ".join(f"`{layer}` {num(mcibi['by_layer_ms'].get(layer, 0.0))} ms" for layer in head)
        + ") account for most of the difference. Profiled step wall time: MCIBI "
        f"{mcibi['step_s_profiled']:.2f} s, DeepLabV3 {deeplab['step_s_profiled']:.2f} s.",
        "",
        r.source(name),
        "",
    ]


def flops(r):
    name = "flops.json"
    if name not in r:
        return []
    d = r.json(name)
    s = d["settings"]
    rows = []
    for backbone, row in d["backbones"].items():
        rows.append(
            [
                backbone,
                num(row["deeplabv3"]["gflops"]),
                num(row["mcibi"]["gflops"]),
                f"**{row['ratio_gflops']:.3f}**",
                f"{row['ratio_gflops_without_aux']:.3f}",
                f"{num(row['deeplabv3']['computed_gflops'])} / {num(row['mcibi']['computed_gflops'])}",
                f"{row['ratio_computed_gflops']:.3f}",
            ]
        )
    return [
        "## FLOPs",
        "",
        "`benchmarks/flops.py` counts 2 x the multiply-adds of every convolution, matmul and "
        "einsum in the TensorFlow graph of `model(x, training=False)`; `nominal` counts a dilated "
        "convolution at its full kernel, `computed` what `MatmulConv2D` actually runs (taps that "
        f"read only padding skipped). {s['size']}x{s['size']}, {s['classes']} classes, batch "
        f"{s['batch']}, aux head included.",
        "",
        *table(
            [
                "backbone (OS8)",
                "DeepLabV3 GFLOPs",
                "MCIBI GFLOPs",
                "MCIBI / DeepLabV3",
                "without aux head",
                "computed GFLOPs (DeepLabV3 / MCIBI)",
                "computed ratio",
            ],
            rows,
        ),
        r.source(name),
        "",
    ]


def onednn(r):
    lines = [
        "## TensorFlow's oneDNN kernels",
        "",
        "`benchmarks/onednn.py` trains the bundled sample's model (dilated ResNet-18, 16 base "
        "channels) at batch 1 and 8 in a fresh process per setting: Eigen's kernels "
        "(`TF_ENABLE_ONEDNN_OPTS=0`), oneDNN's, and on AVX-512 CPUs oneDNN capped at AVX2. It "
        "reports how each process ended (a native crash is a negative exit status) and the "
        "median step time per round; the settings alternate within a round.",
        "",
    ]
    for name in ("onednn_avx512.json", "onednn.json"):
        if name not in r:
            continue
        d = r.json(name)
        rows = []
        for key, runs in d["runs"].items():
            setting, model, batch = key.split("/")
            rows.append(
                [
                    setting,
                    model,
                    batch,
                    ", ".join(str(x.get("exit")) for x in runs),
                    " / ".join(num(x["median_ms"], 0) if ok(x) else "crash" for x in runs),
                ]
            )
        flags = d["hardware"].get("cpu_flags")
        cpu = f"CPU flags {', '.join(flags)}" if flags else "no AVX-512 (avx512f: false)"
        lines += [
            f"**{'AVX-512' if d['avx512f'] else 'AVX2'} host, {cpu}.**",
            "",
            *table(["setting", "model", "batch", "exit", "median step ms, per round"], rows),
            *(f"- {line}" for line in d["derived"]),
            "",
            r.source(name),
            "",
        ]
    return lines


def _phase_rows(d):
    names = {
        "startup": "start-up (TensorFlow import)",
        "imports": "imports (keras_memseg, Keras)",
        "setup": "setup (data, model build)",
        "first_step": "first step (tracing and graph optimisation)",
        "steps": "steady steps",
        "checkpoint_and_backup": "checkpoints and backups",
        "evaluation": "evaluations",
        "model_save": "`model.save`",
        "export": "SavedModel export",
        "other": "other",
    }
    rows = [[names.get(k, k), num(v)] for k, v in d["phases"].items()]
    return rows + [["**total**", f"**{num(d['total_seconds'])}**"]]


def sample_recipe(r):
    lines = [
        "## The sample recipe end to end",
        "",
        "`benchmarks/sample_recipe.py` runs `recipes/train_sample.py` (README command 1: same "
        "flags and seed, its run folder in a temporary folder) in one process with timers around "
        "its phases. The runs below measured different code on different hosts; each stands "
        "alone.",
        "",
    ]
    for name in ("sample_recipe.json", "sample_recipe_previous_machine.json"):
        if name not in r:
            continue
        d = r.json(name)
        lines += [
            f"**{d['steps']} steps, final mIoU {100 * d['miou']:.2f} %.**",
            "",
            *table(["phase", "seconds"], _phase_rows(d)),
            r.source(name),
            "",
        ]
    name = "fit_segments.json"
    if name in r:
        d = r.json(name)
        s = d["settings"]
        rows = [
            [
                pipeline,
                ", ".join(f"{x['fit_s']:.2f}" for x in row["segments"]),
                ", ".join(f"{x['idle_tail_s']:.2f}" for x in row["segments"]),
                f"{row['idle_tail_total_s']:.2f}",
            ]
            for pipeline, row in d["results"].items()
        ]
        on = next(row for row in d["results"].values() if row["autotune_enabled"])
        off = next(row for row in d["results"].values() if not row["autotune_enabled"])
        lines += [
            "**tf.data's model autotuning.** The trainer runs one `fit` per checkpoint segment. "
            "With tf.data's model autotuning on, deleting the iterator at the end of a `fit` "
            "waits for the autotuner's next wake-up, with the cores idle; `train_pipeline` turns "
            "it off. `benchmarks/fit_segments.py` trains a small model on `train_pipeline` "
            f"batches, {s['repeats']} segments of {s['steps_per_segment']} steps each, as built "
            "and with autotuning switched back on, in one run:",
            "",
            *table(
                [
                    "pipeline",
                    "fit wall per segment (s)",
                    "idle after the last batch (s)",
                    "idle in all (s)",
                ],
                rows,
            ),
            f"Idle after the last batch: {on['idle_tail_total_s']:.2f} s in all with autotuning "
            f"on, {off['idle_tail_total_s']:.2f} s off; the segments' wall time "
            f"{on['fit_total_s']:.1f} s against {off['fit_total_s']:.1f} s.",
            "",
            r.source(name),
            "",
        ]
    return lines


def inference(r):
    lines = [
        "## Inference",
        "",
        "`benchmarks/inference.py` times, per model and input size, Keras `predict`, the "
        "compiled call, the exported SavedModel and TFLite per quantization (median of the timed "
        "calls after warm-up). Label agreement is the share of pixels whose TFLite label equals "
        "the float Keras model's; for a model with random weights it measures near-ties, not "
        "accuracy.",
        "",
    ]
    for name in ("inference_r50_512.json", "inference_before.json"):
        if name not in r:
            continue
        d = r.json(name)
        s = d["settings"]
        variants = []
        for rows in d["results"].values():
            variants += [v for v in rows if v not in variants]
        table_rows = []
        for key, rows in d["results"].items():
            cells = []
            for v in variants:
                row = rows.get(v)
                if not ok(row):
                    cells.append("-")
                    continue
                cell = num(row["median_ms"], 0)
                if "label_agreement" in row:
                    cell += f" ({100 * row['label_agreement']:.1f} %)"
                cells.append(cell)
            table_rows.append([key, *cells])
        lines += [
            f"**{s['backbone']}, {s['classes']} classes, batch {s['batch']} (TFLite batch 1, "
            f"{s['threads']} threads), random weights; median of {s['runs']} after "
            f"{s['warmup']} warm-up; ms (label agreement).**",
            "",
            *table(["model/size", *[f"`{v}`" for v in variants]], table_rows),
        ]
        sentences = []
        for key, rows in d["results"].items():
            if ok(rows.get("predict")) and ok(rows.get("tflite/dynamic")):
                speed = rows["predict"]["median_ms"] / rows["tflite/dynamic"]["median_ms"]
                sentences.append(f"{key}: TFLite dynamic-range {speed:.2f}x the speed of `predict`")
        sizes = {key.split("/")[1] for key in d["results"]}
        for size in sorted(sizes):
            m = d["results"].get(f"mcibi/{size}", {}).get("predict")
            b = d["results"].get(f"deeplabv3/{size}", {}).get("predict")
            if ok(m) and ok(b):
                sentences.append(
                    f"MCIBI's `predict` took {m['median_ms'] / b['median_ms']:.2f}x DeepLabV3's "
                    f"at {size}"
                )
        lines += ["In this run: " + "; ".join(sentences) + ".", "", r.source(name), ""]
    return lines


def data_pipeline(r):
    name = "data_pipeline.json"
    if name not in r:
        return []
    d = r.json(name)
    rows = [
        [pipeline, row["images"], num(row["seconds"], 2), num(row["images_per_second"])]
        for pipeline, row in d["results"].items()
    ]
    crop = "x".join(str(c) for c in d["crop_size"])
    return [
        "## Data pipeline",
        "",
        "`benchmarks/data_pipeline.py` times `keras_memseg.datasets.train_pipeline` on "
        f"{d['dataset']} with the ADE20K/COCO augmentation, crop {crop}, "
        f"batch {d['batch_size']}, after {d['warmup_batches']} warm-up batches.",
        "",
        *table(["pipeline", "images", "seconds", "images/s"], rows),
        r.source(name),
        "",
    ]


def accuracy(r):
    name = "accuracy_sample.json"
    if name not in r:
        return []
    d = r.json(name)
    s, summary, paired = d["settings"], d["summary"], d["paired"]
    rows = [
        [
            MODELS.get(model, model),
            row["seeds"],
            f"{row['mIoU_mean']:.2f}",
            num(row["mIoU_std"], 2),
            ", ".join(f"{v:.2f}" for v in row["per_seed"]),
        ]
        for model, row in summary.items()
    ]
    embedding = [
        [
            column,
            *(
                f"{entry[key]['mean']:.4f} ± {entry[key]['std']:.4f}"
                if entry[key]["std"] is not None
                else f"{entry[key]['mean']:.4f}"
                for key in ("mean_compactness", "dispersion", "ratio")
            ),
        ]
        for column, entry in d["embedding_summary"].items()
    ]
    return [
        "## Accuracy on CamVid",
        "",
        "`benchmarks/accuracy_sample.py` trains DeepLabV3 and MCIBI from scratch on the CamVid "
        f"train split for seeds {', '.join(map(str, s['seeds']))} (ResNet-{s['depth']} at base "
        f"width {s['base_channels']}, {s['steps']} steps of batch {s['batch']}, {s['crop']}x"
        f"{s['crop']} crops) and evaluates them on the val split; both models get the same "
        "backbone, data order and augmentation for a seed. A CPU-sized schedule: the comparison, "
        "not the level, is the point.",
        "",
        *table(["model", "seeds", "mIoU % (mean)", "std", "per seed"], rows),
        f"Paired difference, {paired['difference']}: mean {paired['mean']:+.2f} "
        f"(per seed {', '.join(f'{v:+.2f}' for v in paired['per_seed'])}).",
        "",
        "Pixel embeddings on the val images (cosine distances; mean ± std over seeds; "
        "compactness: distance of a class's pixels to its centre, dispersion: between centres):",
        "",
        *table(["model layer", "compactness", "dispersion", "ratio"], embedding),
        "The first seed's t-SNE plot is `benchmarks/results/accuracy_sample_embedding.png`.",
        "",
        r.source(name),
        "",
    ]


def fault_probe(r):
    name = "fault_probe.json"
    if name not in r:
        return []
    d = r.json(name)
    keys = ("tried", "ok", "clear_error", "traceback", "silent", "lost", "as_documented")
    rows = [[group, *(row[k] for k in keys)] for group, row in d["summary"].items()]
    return [
        "## Fault probe",
        "",
        "Not a timing: `benchmarks/fault_probe.py` tries bad inputs and faults as a user would "
        "and classifies each outcome (`ok` and `clear_error` are the good ones; the cases and "
        "their messages are in `benchmarks/results/fault_probe.md`).",
        "",
        *table(["group", *keys], rows),
        r.source(name),
        "",
    ]


def cli_help(r):
    name = "cli_help.json"
    if name not in r:
        return []
    d = r.json(name)
    rows = [
        [f"`{run['command']}`", seconds(run["median_s"] * 1000), seconds(run["max_s"] * 1000)]
        for run in d["runs"].values()
    ]
    return [
        "## Command-line help",
        "",
        f"`--help` of every command, each in a fresh process ({d['repeats']} rounds, round-robin), "
        "beside the import of TensorFlow measured in the same rounds: what each help cost "
        "while the commands imported it before parsing their flags.",
        "",
        *table(["command", "median", "max"], rows),
        r.source(name),
        "",
    ]


def every_file(r):
    rows = [
        [
            "<br>".join(f"`{f}`" for f in run["files"]),
            f"`{run['command']}`",
            f"`{run['commit'][:7]}` ({run['commit_source']})",
            run["machine"],
            run["date"],
        ]
        for run in r.runs
    ]
    return [
        "## Every result file",
        "",
        "All in `benchmarks/results/`; `benchmarks/results/manifest.json` says how each commit "
        "and machine is known.",
        "",
        *table(["files", "command", "commit", "machine", "date"], rows),
    ]


def render(folder=RESULTS):
    r = Results(folder)
    hosts = sorted({run["machine"] for run in r.runs})
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `python benchmarks/report.py` from benchmarks/results/: do not edit. -->",
        "",
        "Every number on this page is read from a file under `benchmarks/results/` that "
        "`benchmarks/results/manifest.json` lists with the command that wrote it, the commit "
        "whose code it measured, the machine and the date (each table names them). A comparison "
        "is only ever made within one run: one command, one machine, one load. Absolute times "
        "on these small shared CPU machines are slow and noisy; read the ratios. Warm-up "
        "(tracing, XLA compilation) is excluded from the step times and reported apart; times "
        "are medians.",
        "",
        f"The results come from {len(hosts)} machine descriptions:",
        "",
        *(f"- {host}" for host in hosts),
        "",
        "To reproduce one, check out its commit and run its command on such a machine.",
        "",
    ]
    for section in (
        against_the_authors,
        training_step,
        xla_profile,
        flops,
        onednn,
        sample_recipe,
        inference,
        data_pipeline,
        accuracy,
        fault_probe,
        cli_help,
        every_file,
    ):
        lines += section(r)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def manifest_entry(files, folder=RESULTS):
    """The manifest entry of a result written by a script of this round (it records its
    command, commit, changed files, date and hardware), for `files` (the JSON first)."""
    d = json.loads((pathlib.Path(folder) / files[0]).read_text())
    missing = [k for k in ("command", "commit", "date", "hardware") if not d.get(k)]
    if missing:
        raise SystemExit(f"{files[0]} records no {', '.join(missing)}: write its entry by hand")
    hw = d["hardware"]
    gpus = f"GPUs {', '.join(hw['gpus'])}" if hw.get("gpus") else "no GPU"
    flags = ", ".join(hw.get("cpu_flags") or []) or "none of note"
    changed = d.get("changed_files") or []
    return {
        "files": list(files),
        "command": d["command"],
        "commit": d["commit"],
        "date": d["date"],
        "date_source": "recorded",
        "machine": f"{hw['cpu']}, {hw['cpu_count']} cores, {hw.get('memory_gib')} GiB RAM, "
        f"{gpus}; CPU flags: {flags}",
        "commit_source": "recorded",
        "commit_note": "recorded by the script"
        + (f"; the tree had {len(changed)} changed files (listed in the JSON)" if changed else ""),
        "host_source": "recorded",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--out", default=str(PAGE))
    parser.add_argument(
        "--entry", nargs="+", metavar="FILE", help="print the manifest entry of these files"
    )
    args = parser.parse_args(argv)
    if args.entry:
        print(json.dumps(manifest_entry(args.entry), indent=2))
        return 0
    text = render()
    out = pathlib.Path(args.out)
    if args.check:
        if not out.exists() or out.read_text() != text:
            print(f"{out} is out of date: run python benchmarks/report.py", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
