"""One model's (or a model and a baseline's) embedding analysis as JSON, a markdown table, PNGs."""

import dataclasses
import os

import numpy as np

from keras_memseg.analysis.embeddings import default_layers
from keras_memseg.analysis.embeddings import sample_embeddings
from keras_memseg.analysis.memory import memory_diagnostics
from keras_memseg.analysis.memory import memory_to_centres
from keras_memseg.analysis.memory import memory_to_centres_json
from keras_memseg.analysis.statistics import json_float

DEFINITIONS = {
    "distance": "cosine distance 1 - cos(a, b)",
    "centre": "mean of the L2-normalised features of the class's sampled pixels",
    "compactness": "per class: mean cosine distance of its pixels to its centre (lower = tighter)",
    "mean_compactness": "unweighted mean of the per-class compactness over classes present",
    "dispersion": "mean pairwise cosine distance between class centres (higher = further apart)",
    "nearest_class_distance": "per class: cosine distance to the nearest other class centre",
    "ratio": "dispersion / mean_compactness (higher = better separated)",
    "labels": "nearest-neighbour downsampled (half-pixel centres) to the feature resolution; "
    "255 skipped",
    "sampling": "seeded uniform sample without replacement per class (bottom-k random keys)",
    "rows_vs_feature_centres": "cosine distance of each class's memory row (slots averaged) to "
    "the class centres of `features`: its own, and the nearest",
}


@dataclasses.dataclass
class ModelAnalysis:
    """Sample, per-layer statistics and (MemorySegmenter) memory diagnostics of one model.

    Args:
        label: a short name for tables and plots, e.g. "MCIBI".
        model_class: the model's class name.
        sample: the `PixelSample`.
        statistics: layer -> `EmbeddingStatistics`.
        memory: the (K, slots, C) memory, or None (no memory).
        diagnostics: `MemoryDiagnostics` of `memory`, or None.
    """

    label: str
    model_class: str
    sample: object
    statistics: dict
    memory: object = None
    diagnostics: object = None

    def columns(self):
        """`{"<label> <layer>": EmbeddingStatistics}` for tables and bar plots."""
        return {f"{self.label} {layer}": stats for layer, stats in self.statistics.items()}

    def to_json(self, class_names):
        """JSON-ready dict: statistics per layer (pixels seen added), memory diagnostics."""
        names = list(class_names)
        stats = {}
        for layer, s in self.statistics.items():
            entry = s.to_json(names)
            for k, name in enumerate(names):
                entry["per_class"][name]["pixels_seen"] = int(self.sample.pixels_seen[k])
            stats[layer] = entry
        out = {
            "label": self.label,
            "model_class": self.model_class,
            "num_images": int(self.sample.num_images),
            "statistics": stats,
        }
        if self.diagnostics is not None:
            out["memory"] = {"empty": not np.any(self.memory), **self.diagnostics.to_json(names)}
            if "features" in self.statistics:  # the layer the memory is read with
                distances = memory_to_centres(self.memory, self.statistics["features"].centres)
                out["memory"]["rows_vs_feature_centres"] = memory_to_centres_json(distances, names)
        return out


def analyze(
    model,
    dataset,
    class_names,
    layers=None,
    label=None,
    max_pixels_per_class=2000,
    seed=0,
    max_images=None,
    ignore_class=255,
    forward=None,
):
    """Samples pixel embeddings of `model` over `dataset` and computes their statistics.

    Args:
        model: a MemorySegmenter or DeepLabV3.
        dataset: see `sample_embeddings` (batches of normalised images and labels).
        class_names: K names.
        layers: `forward_heads` keys (default: `default_layers(model)`).
        label: short name (default: the class name).
        max_pixels_per_class, seed, max_images, ignore_class, forward: see
            `sample_embeddings`.

    Returns:
        `ModelAnalysis`.
    """
    layers = tuple(layers) if layers else default_layers(model)
    sample = sample_embeddings(
        model,
        dataset,
        layers,
        len(class_names),
        max_pixels_per_class=max_pixels_per_class,
        seed=seed,
        max_images=max_images,
        ignore_class=ignore_class,
        forward=forward,
    )
    statistics = {layer: sample.statistics(layer) for layer in layers}
    memory = diagnostics = None
    if hasattr(model, "memory_snapshot"):
        memory = np.asarray(model.memory_snapshot(), np.float32)
        diagnostics = memory_diagnostics(memory, class_names)
    return ModelAnalysis(
        label or type(model).__name__, type(model).__name__, sample, statistics, memory, diagnostics
    )


def _fmt(value, digits=3):
    value = float(value)
    return f"{value:.{digits}f}" if np.isfinite(value) else "-"


def comparison_markdown(columns, class_names, pixels_seen=None):
    """Markdown tables: summary (mean compactness, dispersion, ratio) and per class.

    Args:
        columns: dict column label -> `EmbeddingStatistics`.
        class_names: K names.
        pixels_seen: optional (K,) valid pixels per class in the split.

    Returns:
        markdown text.

    Example:
    >>> from keras_memseg.analysis import embedding_statistics
    >>> s = embedding_statistics(np.eye(2)[[0, 0, 1]], np.array([0, 0, 1]), 2)
    >>> print(comparison_markdown({"model F": s}, ["a", "b"]).splitlines()[4])
    | mean compactness | 0.000 |
    """
    labels = list(columns)
    head = "| | " + " | ".join(labels) + " |\n|---|" + "---:|" * len(labels) + "\n"
    lines = [
        "Summary (cosine distances; compactness lower = tighter, dispersion and ratio "
        "higher = better separated):",
        "",
        head.rstrip("\n"),
    ]
    rows = [
        ("mean compactness", lambda s: _fmt(s.mean_compactness)),
        ("dispersion", lambda s: _fmt(s.dispersion)),
        ("dispersion / compactness", lambda s: _fmt(s.ratio, 2)),
        ("classes present", lambda s: str(int(np.sum(s.present)))),
    ]
    for name, fn in rows:
        lines.append(f"| {name} | " + " | ".join(fn(columns[c]) for c in labels) + " |")
    extra = " pixels seen |" if pixels_seen is not None else ""
    lines += [
        "",
        "Per class: compactness / distance to the nearest other class centre (that class):",
        "",
        "| class |" + extra + " " + " | ".join(labels) + " |",
        "|---|" + ("---:|" if pixels_seen is not None else "") + "---|" * len(labels),
    ]
    for k, name in enumerate(class_names):
        cells = []
        for c in labels:
            s = columns[c]
            nearest = int(s.nearest_class[k])
            other = f" ({class_names[nearest]})" if nearest >= 0 else ""
            cells.append(f"{_fmt(s.compactness[k])} / {_fmt(s.nearest_class_distance[k])}{other}")
        seen = f" {int(pixels_seen[k])} |" if pixels_seen is not None else ""
        lines.append(f"| {name} |{seen} " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def comparison_json(columns, class_names):
    """`{column: {"mean_compactness", "dispersion", "ratio", "compactness": {class: v}}}`."""
    return {
        label: {
            "mean_compactness": json_float(s.mean_compactness),
            "dispersion": json_float(s.dispersion),
            "ratio": json_float(s.ratio),
            "compactness": {n: json_float(v) for n, v in zip(class_names, s.compactness)},
            "nearest_class_distance": {
                n: json_float(v) for n, v in zip(class_names, s.nearest_class_distance)
            },
        }
        for label, s in columns.items()
    }


def write_plots(
    analyses,
    out_dir,
    class_names,
    palette=None,
    method="tsne",
    seed=0,
    max_points_per_class=100,
    threads=1,
):
    """Writes `embedding.png` (one panel per model and layer; memory rows on the
    `features` panel), `memory_similarity.png` (first model with a memory) and
    `compactness.png` (bars for every model and layer). Returns {name: path}."""
    from keras_memseg.analysis import plots

    written = {}
    if method != "none":
        panels = []
        for analysis in analyses:
            for layer in analysis.statistics:
                panels.append(
                    {
                        "title": f"{analysis.label}: {layer}",
                        "features": analysis.sample.features[layer],
                        "labels": analysis.sample.labels,
                        "memory": analysis.memory if layer == "features" else None,
                    }
                )
        written["embedding"] = plots.plot_embeddings(
            panels,
            os.path.join(out_dir, "embedding.png"),
            class_names,
            palette,
            method,
            seed,
            max_points_per_class,
            threads,
        )
    for analysis in analyses:
        if analysis.diagnostics is not None:
            written["memory_similarity"] = plots.plot_memory_similarity(
                analysis.diagnostics,
                os.path.join(out_dir, "memory_similarity.png"),
                title=f"{analysis.label} memory rows: cosine similarity",
            )
            break
    columns = {}
    for analysis in analyses:
        columns.update(analysis.columns())
    written["compactness"] = plots.plot_compactness(
        columns, class_names, os.path.join(out_dir, "compactness.png")
    )
    return written
