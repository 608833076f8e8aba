"""Plots: valid, non-trivial PNGs; joint embedding of memory rows; one-line missing-extra error."""

import sys

import numpy as np
import pytest

from keras_memseg.analysis import embedding_statistics
from keras_memseg.analysis import memory_diagnostics
from keras_memseg.analysis import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["a", "b", "c"]


def assert_png(path, min_bytes=5000):
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes, (path, len(data))


def clusters(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 30)
    features = np.eye(3)[labels] * 4 + 0.3 * rng.normal(size=(90, 3))
    return features, labels


def test_pca_places_rows_in_the_pixels_plane():
    features, _ = clusters()
    rows = features[[0, 40]] * 7.0  # same directions as two pixels
    xy, rxy = plots.embed_2d(features, rows, method="pca")
    np.testing.assert_allclose(rxy, xy[[0, 40]], atol=1e-9)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    centred = unit - unit.mean(0)
    # PCA: the 2-D coordinates keep the variance of the two leading components
    top2 = np.sort(np.linalg.svd(centred, compute_uv=False) ** 2)[::-1][:2].sum()
    assert np.sum(xy**2) == pytest.approx(top2)
    with pytest.raises(ValueError, match="tsne"):
        plots.embed_2d(features, method="umap")


def test_tsne_embeds_rows_jointly():
    features, labels = clusters()
    xy, rxy = plots.embed_2d(features[::3], features[[0, 45]], method="tsne", seed=0)
    assert xy.shape == (30, 2) and rxy.shape == (2, 2) and np.all(np.isfinite(rxy))


def test_plots_write_pngs(tmp_path):
    features, labels = clusters()
    memory = np.array([[[4.0, 0, 0]], [[0, 4.0, 0]], [[0, 0, 0]]])  # class c unseen
    panels = [
        {"title": "with memory", "features": features, "labels": labels, "memory": memory},
        {"title": "without", "features": features[::2], "labels": labels[::2]},
    ]
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert_png(plots.plot_embeddings(panels, tmp_path / "e.png", NAMES, palette, method="pca"))
    assert_png(plots.plot_memory_similarity(memory_diagnostics(memory, NAMES), tmp_path / "m.png"))
    stats = embedding_statistics(features, labels, 3)
    assert_png(plots.plot_compactness({"one": stats, "two": stats}, NAMES, tmp_path / "c.png"))


def test_missing_matplotlib_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    with pytest.raises(ImportError) as error:
        plots.plot_compactness({}, NAMES, tmp_path / "c.png")
    message = str(error.value)
    assert "\n" not in message and "matplotlib" in message
    assert "keras-memseg[analysis]" in message
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(ImportError, match=r"scikit-learn.*\[analysis\]"):
        plots.embed_2d(np.eye(3), method="tsne")
