"""Pictures of the pixel embeddings and the memory (matplotlib, Agg canvas; scikit-learn t-SNE).

matplotlib and scikit-learn are the `[analysis]` extra and are imported only here,
inside the functions: `pip install "keras-memseg[analysis]"`. Figures are drawn on
an Agg canvas (`matplotlib.figure.Figure` + `FigureCanvasAgg`), so no display is
needed and pyplot's global state is left alone.
"""

import importlib

import numpy as np

from keras_memseg.analysis.statistics import normalize_rows

EXTRA_HINT = 'pip install "keras-memseg[analysis]"'


def _require(module, what):
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0].replace("sklearn", "scikit-learn")
        raise ImportError(
            f"{what} needs {package}, part of the [analysis] extra: {EXTRA_HINT}"
        ) from None


def check_plot_dependencies(method="tsne"):
    """Raises a one-line ImportError unless matplotlib (and scikit-learn for t-SNE) import."""
    _require("matplotlib", "keras_memseg.analysis plots")
    if method == "tsne":
        _require("sklearn.manifold", "the t-SNE embedding")


def _figure(width, height):
    _require("matplotlib", "keras_memseg.analysis plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _colours(num_classes, palette=None):
    if palette is not None and len(palette) >= num_classes:
        return np.asarray(palette[:num_classes], np.float64) / 255.0
    cmap = _require("matplotlib", "keras_memseg.analysis plots").colormaps["tab20"]
    return np.asarray([cmap(i % 20)[:3] for i in range(num_classes)])


def embed_2d(points, rows=None, method="tsne", seed=0, threads=1):
    """2-D coordinates of pixel features and of extra rows embedded with them.

    The inputs are L2-normalised first (the statistics are cosine ones). `"pca"`
    fits the principal axes on the pixels only and projects the rows onto them;
    `"tsne"` (scikit-learn) embeds pixels and rows together.

    Args:
        points: (N, C) pixel features.
        rows: (R, C) vectors to place in the same plane (memory rows), or None.
        method: `"tsne"` or `"pca"`.
        seed: t-SNE random state.
        threads: OpenMP threads of t-SNE (None: scikit-learn's default, all cores).
            One is the default: on a busy CPU more threads spin and run several
            times slower (2-core machine at load 9: 27 s with one thread, 90 s
            with the default, for 1650 points).

    Returns:
        (N, 2) and (R, 2) arrays (the second is (0, 2) without rows).

    Example:
    >>> p = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]])
    >>> xy, rxy = embed_2d(p, rows=p[:1], method="pca")
    >>> xy.shape, rxy.shape, bool(np.allclose(xy[0], rxy[0]))
    ((4, 2), (1, 2), True)
    """
    points = normalize_rows(points)
    rows = np.zeros((0, points.shape[1])) if rows is None else normalize_rows(rows)
    if method == "pca":
        mean = points.mean(axis=0)
        _, _, vt = np.linalg.svd(points - mean, full_matrices=False)
        axes = vt[:2].T  # (C, 2)
        if axes.shape[1] < 2:
            axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
        return (points - mean) @ axes, (rows - mean) @ axes
    if method != "tsne":
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    manifold = _require("sklearn.manifold", "the t-SNE embedding")
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    joint = np.concatenate([points, rows], axis=0)
    perplexity = float(min(30.0, max(1.0, (len(joint) - 1) / 3.0)))
    tsne = manifold.TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=int(seed))
    with threadpool_limits(limits=threads, user_api="openmp"):
        coords = tsne.fit_transform(joint)
    return coords[: len(points)], coords[len(points) :]


def _subsample(labels, max_per_class, seed):
    rng = np.random.default_rng(seed)
    keep = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        if idx.size > max_per_class:
            idx = np.sort(rng.choice(idx, max_per_class, replace=False))
        keep.append(idx)
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)


def plot_embeddings(
    panels,
    path,
    class_names,
    palette=None,
    method="tsne",
    seed=0,
    max_points_per_class=100,
    threads=1,
):
    """Scatter plots of sampled pixel features coloured by class, memory rows as stars.

    Args:
        panels: list of dicts `{"title", "features": (N, C), "labels": (N,),
            "memory": (K, slots, C) or None}`; memory rows are embedded jointly
            with the pixels (see `embed_2d`) and only make sense for the layer the
            memory lives in (`"features"`, F). All-zero rows are not drawn.
        path: PNG file to write.
        class_names: K names.
        palette: K RGB triples (0-255), e.g. `get_info(name).palette`.
        method: `"tsne"` or `"pca"`.
        seed: seed of the per-class subsample and of t-SNE.
        max_points_per_class: pixels drawn per class.
        threads: t-SNE threads (see `embed_2d`).

    Returns:
        `path`.
    """
    num_classes = len(class_names)
    colours = _colours(num_classes, palette)
    figure = _figure(5.0 * len(panels) + 1.8, 5.0)
    for i, panel in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), i + 1)
        labels = np.asarray(panel["labels"])
        keep = _subsample(labels, max_points_per_class, seed)
        features, labels = np.asarray(panel["features"])[keep], labels[keep]
        memory = panel.get("memory")
        rows, row_classes = None, np.zeros(0, np.int64)
        if memory is not None:
            memory = np.asarray(memory).reshape(num_classes, -1, np.shape(memory)[-1])
            flat = memory.reshape(-1, memory.shape[-1])
            row_classes = np.repeat(np.arange(num_classes), memory.shape[1])
            seen = np.any(flat != 0.0, axis=-1)
            rows, row_classes = flat[seen], row_classes[seen]
        if len(features) == 0:
            ax.set_title(f"{panel['title']} (no pixels)")
            continue
        xy, rxy = embed_2d(features, rows, method=method, seed=seed, threads=threads)
        ax.scatter(xy[:, 0], xy[:, 1], s=4, c=colours[labels], alpha=0.6, linewidths=0)
        if len(rxy):
            ax.scatter(
                rxy[:, 0],
                rxy[:, 1],
                s=220,
                marker="*",
                c=colours[row_classes],
                edgecolors="black",
                linewidths=1.0,
                zorder=3,
            )
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [
        figure.axes[0].scatter([], [], s=30, color=colours[k], label=name)
        for k, name in enumerate(class_names)
    ]
    if any(p.get("memory") is not None for p in panels):
        handles.append(
            figure.axes[0].scatter(
                [],
                [],
                s=120,
                marker="*",
                facecolors="white",
                edgecolors="black",
                label="memory row",
            )
        )
    figure.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    title = {"tsne": "t-SNE", "pca": "PCA"}[method]
    figure.suptitle(f"pixel embeddings ({title} of L2-normalised features)", fontsize=11)
    figure.subplots_adjust(
        left=0.02, right=1.0 - 1.8 / (5.0 * len(panels) + 1.8), top=0.88, bottom=0.03, wspace=0.05
    )
    figure.savefig(path)
    return path


def plot_memory_similarity(diagnostics, path, title="memory rows: cosine similarity"):
    """Heatmap of `MemoryDiagnostics.similarity` with the class names (never-seen rows blank).

    Returns:
        `path`.
    """
    similarity = np.asarray(diagnostics.similarity)
    names = list(diagnostics.row_names)
    n = len(names)
    size = min(14.0, 2.5 + 0.45 * n)
    figure = _figure(size + 1.2, size)
    ax = figure.add_subplot(1, 1, 1)
    image = ax.imshow(np.ma.masked_invalid(similarity), vmin=-1.0, vmax=1.0, cmap="coolwarm")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if np.isfinite(similarity[i, j]):
                    ax.text(j, i, f"{similarity[i, j]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_title(title, fontsize=10)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path)
    return path


def plot_compactness(statistics, class_names, path):
    """Grouped bars: per-class compactness of several (model, layer) embeddings.

    Args:
        statistics: dict label -> `EmbeddingStatistics`, e.g.
            `{"MCIBI features": s1, "MCIBI head_features": s2, "DeepLabV3 head_features": s3}`.
        class_names: K names.
        path: PNG file to write.

    Returns:
        `path`.

    Example:
    >>> import os, tempfile
    >>> from keras_memseg.analysis import embedding_statistics
    >>> s = embedding_statistics(np.eye(2)[[0, 0, 1]], np.array([0, 0, 1]), 2)
    >>> path = plot_compactness({"F": s}, ["a", "b"], os.path.join(tempfile.mkdtemp(), "c.png"))
    >>> open(path, "rb").read(4)
    b'\x89PNG'
    """
    labels = list(statistics)
    k = len(class_names)
    width = 0.8 / max(1, len(labels))
    figure = _figure(max(6.0, 0.6 * k * max(1, len(labels)) / 2 + 3), 4.5)
    ax = figure.add_subplot(1, 1, 1)
    for i, label in enumerate(labels):
        stats = statistics[label]
        values = np.nan_to_num(np.asarray(stats.compactness, np.float64), nan=0.0)
        ax.bar(
            np.arange(k) + (i - (len(labels) - 1) / 2) * width,
            values,
            width,
            label=f"{label} (mean {stats.mean_compactness:.3f}, "
            f"dispersion {stats.dispersion:.3f}, ratio {stats.ratio:.2f})",
        )
    ax.set_xticks(range(k))
    ax.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("compactness: mean 1 - cos to class centre\n(lower = tighter)", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("intra-class compactness per class", fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    return path
