"""Overlays with a legend, palette label PNGs and generated palettes (NumPy oracles)."""

import numpy as np
import pytest
from PIL import Image

from keras_memseg.evaluation.overlays import default_palette
from keras_memseg.evaluation.overlays import legend_strip
from keras_memseg.evaluation.overlays import overlay_image
from keras_memseg.evaluation.overlays import overlay_panel
from keras_memseg.evaluation.overlays import present_classes
from keras_memseg.evaluation.overlays import save_label_png

PALETTE = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (250, 250, 10)]
NAMES = ("road", "tree", "sky", "a rather long class name")


def blend_oracle(image, ids, palette, alpha):
    colours = np.zeros((256, 3))
    colours[: len(palette)] = palette
    mixed = (1 - alpha) * image + alpha * colours[np.asarray(ids)]
    mixed[np.asarray(ids) == 255] = image[np.asarray(ids) == 255]
    return np.clip(mixed, 0, 255).astype(np.uint8)


def has_colour(array, colour):
    return bool((array == np.asarray(colour, np.uint8)).all(axis=-1).any())


@pytest.fixture
def example():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    label = np.zeros((24, 40), np.int64)
    label[:, 20:] = 2
    label[0] = 255
    prediction = np.zeros((24, 40), np.int64)
    prediction[12:] = 1
    return image, label, prediction


def test_panel_without_names_is_unchanged(example):
    image, label, prediction = example
    panel = overlay_panel(image, label, prediction, PALETTE, alpha=0.25)
    expected = np.concatenate(
        [
            image,
            blend_oracle(image, label, PALETTE, 0.25),
            blend_oracle(image, prediction, PALETTE, 0.25),
        ],
        axis=1,
    )
    np.testing.assert_array_equal(panel, expected)


def test_panel_legend_lists_gt_and_prediction_classes(example):
    image, label, prediction = example
    plain = overlay_panel(image, label, prediction, PALETTE)
    panel = overlay_panel(image, label, prediction, PALETTE, class_names=NAMES)
    assert panel.shape[1] == plain.shape[1] and panel.shape[0] > plain.shape[0]
    np.testing.assert_array_equal(panel[: plain.shape[0]], plain)
    legend = panel[plain.shape[0] :]
    assert (legend == 255).all(axis=-1).mean() > 0.5  # white background
    for class_id in (0, 1, 2):  # GT: 0, 2 (255 ignored); prediction: 0, 1
        assert has_colour(legend, PALETTE[class_id]), NAMES[class_id]
    assert not has_colour(legend, PALETTE[3])
    assert (legend < 100).all(axis=-1).sum() > 50  # dark text pixels


def test_overlay_image_shape_blend_and_default_names(example):
    image, _, prediction = example
    out = overlay_image(image, prediction, PALETTE, alpha=0.5)
    assert out.shape[1] == 40 and out.shape[0] > 24
    np.testing.assert_array_equal(out[:24], blend_oracle(image, prediction, PALETTE, 0.5))
    assert has_colour(out[24:], PALETTE[0]) and not has_colour(out[24:], PALETTE[2])


def test_legend_wraps_and_shortens():
    one_row = legend_strip([0], NAMES, PALETTE, 400, font_size=12)
    rows = legend_strip([0, 1, 2, 3], NAMES, PALETTE, 120, font_size=12)
    assert rows.shape[1] == 120 and rows.shape[0] >= 3 * one_row.shape[0]
    for colour in PALETTE:
        assert has_colour(rows, colour)
    narrow = legend_strip([3], NAMES, PALETTE, 60, font_size=12)  # name shortened, not cut
    assert narrow.shape == (one_row.shape[0], 60, 3)
    assert legend_strip([], NAMES, PALETTE, 200).shape[0] > 0  # "(no class)"
    big = legend_strip([0], NAMES, PALETTE, 400, font_size=40)
    assert big.shape[0] > 2 * one_row.shape[0]  # text size follows font_size


def test_present_classes_excludes_ignore_and_out_of_range():
    assert present_classes(np.array([[1, 255, 9]]), np.array([[3]]), num_classes=4) == [1, 3]


def test_label_png_round_trip(tmp_path):
    ids = np.random.default_rng(0).integers(0, 4, (17, 23))
    save_label_png(tmp_path / "l.png", ids, PALETTE)
    with Image.open(tmp_path / "l.png") as image:
        assert image.mode == "P" and image.size == (23, 17)
        np.testing.assert_array_equal(np.asarray(image), ids)
        assert image.getpalette()[:12] == [c for rgb in PALETTE for c in rgb]
        np.testing.assert_array_equal(
            np.asarray(image.convert("RGB")), np.asarray(PALETTE, np.uint8)[ids]
        )
    many = np.array([[0, 300], [299, 5]])
    save_label_png(tmp_path / "many.png", many, default_palette(301))  # > 256: 16-bit
    with Image.open(tmp_path / "many.png") as image:
        np.testing.assert_array_equal(np.asarray(image), many)
    with pytest.raises(ValueError, match="class ids must be in"):
        save_label_png(tmp_path / "bad.png", np.array([[-1]]), PALETTE)


def test_default_palette():
    palette = default_palette(150)
    assert len(set(palette)) == 150 and (0, 0, 0) not in palette
    assert default_palette(150) == palette and default_palette(3) == palette[:3]
    assert all(0 <= c <= 255 for rgb in palette for c in rgb)


def test_blending_and_class_lists_in_chunks_of_rows(example, monkeypatch):
    # A large image is blended and scanned a few rows at a time: the same pixels.
    from keras_memseg.evaluation import overlays

    image, _, prediction = example
    prediction = prediction.copy()
    prediction[3, 5], prediction[20, 39] = 255, 3
    whole = overlay_image(image, prediction, PALETTE, NAMES, alpha=0.4)
    monkeypatch.setattr(overlays, "_CHUNK_PIXELS", 50)  # one row (40 px) per chunk
    chunked = overlay_image(image, prediction, PALETTE, NAMES, alpha=0.4)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(chunked[:24], blend_oracle(image, prediction, PALETTE, 0.4))
    assert present_classes(prediction, num_classes=4) == [0, 1, 3]
