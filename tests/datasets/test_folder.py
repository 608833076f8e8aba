"""Folder datasets (`from_folder`): a user's own images and label PNGs.

The oracle is the arrays the tests write with PIL, not the code under test.
"""

import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_memseg import datasets
from keras_memseg.datasets import BadExampleError
from keras_memseg.datasets import DatasetNotFoundError
from keras_memseg.datasets import from_folder
from keras_memseg.datasets.__main__ import main
from keras_memseg.datasets.folder_dataset import check_folder

H, W = 30, 40
COLOURS = ((0, 0, 0), (255, 0, 0), (0, 255, 0))
CLASSES_TXT = "# my classes\n\nbackground 0,0,0\nbig cat #ff0000\ndog 0, 255, 0\n"


def _label(seed):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, (H, W)).astype(np.uint8)
    label[seed % H, :] = 255  # an ignored row
    return label


def _image(seed):
    return np.random.default_rng(100 + seed).integers(0, 256, (H, W, 3)).astype(np.uint8)


def _write_pair(root, split, rel, image, label, kind="L"):
    image_path = root / "images" / split / rel
    image_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(image_path)
    if label is None:
        return
    label_path = (root / "labels" / split / rel).with_suffix(".png")
    label_path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "L":
        Image.fromarray(label, mode="L").save(label_path)
    elif kind == "P":  # the palette index is the class id; its colours are arbitrary
        pil = Image.fromarray(label, mode="P")
        pil.putpalette([7, 7, 7, 0, 0, 255, 9, 99, 199] + [0] * (252 * 3) + [255, 255, 255])
        pil.save(label_path)
    else:  # RGB of the classes.txt colours (no ignore pixels)
        Image.fromarray(np.asarray(COLOURS, np.uint8)[label], mode="RGB").save(label_path)


@pytest.fixture
def folder(tmp_path):
    """3 classes, train 6 (one in a subfolder, one palette label, one RGB label),
    val 2, test 1 unlabelled. Returns (root, {split: [(file name, image, label)]})."""
    root = tmp_path / "my data"
    root.mkdir()
    (root / "classes.txt").write_text(CLASSES_TXT)
    written = {"train": [], "val": [], "test": []}
    names = {
        "train": ["b.png", "a.png", "sub/c.png", "d.png", "e.png", "f.png"],
        "val": ["v1.png", "v2.png"],
        "test": ["t1.png"],
    }
    for split, files in names.items():
        for rel in files:
            seed = len(written[split]) + 10 * ("train", "val", "test").index(split)
            image, label = _image(seed), _label(seed)
            kind = {"d.png": "P", "e.png": "RGB"}.get(rel, "L")
            if kind == "RGB":
                label = np.where(label == 255, 0, label).astype(np.uint8)
            _write_pair(root, split, rel, image, None if split == "test" else label, kind)
            expected = np.full((H, W), 255, np.uint8) if split == "test" else label
            written[split].append((rel, image, expected))
    for split in written:
        written[split].sort(key=lambda item: item[0])
    return root, written


def test_load_yields_the_written_pixels_in_sorted_order(folder):
    root, written = folder
    for split in ("train", "val", "test"):
        items = list(datasets.load(root, split, with_file_names=True).as_numpy_iterator())
        assert [i["file_name"].decode() for i in items] == [rel for rel, _, _ in written[split]]
        for item, (rel, image, label) in zip(items, written[split]):
            assert item["image"].dtype == np.uint8 and item["label"].dtype == np.uint8
            np.testing.assert_array_equal(item["image"], image, err_msg=rel)
            np.testing.assert_array_equal(item["label"], label, err_msg=rel)
    assert 255 in written["train"][0][2]  # ignore pixels survive
    ds = datasets.load(str(root), "val")
    assert set(ds.element_spec) == {"image", "label"}
    assert ds.element_spec["image"].shape.as_list() == [None, None, 3]
    assert ds.element_spec["label"].shape.as_list() == [None, None]


def test_get_info_fields(folder):
    root, _ = folder
    spec = datasets.get_info(root)
    assert spec == datasets.get_info(str(root)) == from_folder(root)
    assert spec.name == spec.root == str(root.resolve())
    assert datasets.get_info(spec.name) == spec  # the name round-trips
    assert spec.num_classes == 3
    assert spec.class_names == ("background", "big cat", "dog")
    assert spec.palette == COLOURS
    assert spec.splits == ("train", "val", "test")
    assert (spec.train_split, spec.eval_split, spec.unlabelled_splits) == (
        "train",
        "val",
        ("test",),
    )
    assert spec.split_sizes == {"train": 6, "val": 2, "test": 1}
    assert spec.reader and not spec.builder
    assert "classes.txt" in datasets.missing_data_message(root)
    assert "labels/<split>" in datasets.missing_data_message(root / "nowhere")


def test_generated_palette_and_eval_split_fallbacks(tmp_path):
    (tmp_path / "classes.txt").write_text("sky\ntree\nroad\n")
    _write_pair(tmp_path, "train", "x.jpg", _image(0), _label(0))
    _write_pair(tmp_path, "test", "y.png", _image(1), _label(1))
    spec = from_folder(tmp_path)
    assert spec.palette == ((0, 0, 0), (128, 0, 0), (0, 128, 0))  # VOC colour map
    assert spec.eval_split == "test" and spec.unlabelled_splits == ()
    # A JPEG image: compare with PIL's own decode of the file written.
    item = next(datasets.load(tmp_path, "train").as_numpy_iterator())
    expected = np.asarray(Image.open(tmp_path / "images" / "train" / "x.jpg").convert("RGB"))
    np.testing.assert_array_equal(item["image"], expected)
    (tmp_path / "labels" / "test" / "y.png").unlink()
    (tmp_path / "labels" / "test").rmdir()
    spec = from_folder(tmp_path)
    assert spec.eval_split == "train" and spec.unlabelled_splits == ("test",)


def test_exif_orientation_is_applied(tmp_path):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    image = _image(0)  # stored as H x W, displayed rotated (orientation 6: 90 degrees CW)
    path = tmp_path / "images" / "train" / "r.jpg"
    path.parent.mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(image).save(path, exif=exif, quality=100)
    label = np.zeros((W, H), np.uint8)  # the label is drawn on the upright image
    (tmp_path / "labels" / "train").mkdir(parents=True)
    Image.fromarray(label).save(tmp_path / "labels" / "train" / "r.png")
    item = next(datasets.load(tmp_path, "train").as_numpy_iterator())
    assert item["image"].shape == (W, H, 3) and item["label"].shape == (W, H)


@pytest.mark.parametrize(
    "text,message",
    [
        ("only\n", "1 class\\(es\\); a segmentation dataset needs at least 2"),
        ("a\nb\na\n", "line 3: class name 'a' is also on line 1"),
        ("a 1,2,300\nb 0,0,0\n", "line 1: bad colour '1,2,300' for class 'a'"),
        ("a #12345\nb #000000\n", "line 1: bad colour '#12345'"),
        ("a 1,2\nb 0,0,0\n", "bad colour '1,2'"),
        ("a 1,2,3\nb\n", "lines 2 give no colour but other lines do"),
        ("a 1,2,3\nb #010203\n", "line 2: colour \\(1, 2, 3\\) is also the colour of 'a'"),
    ],
)
def test_bad_classes_txt(tmp_path, text, message):
    (tmp_path / "classes.txt").write_text(text)
    _write_pair(tmp_path, "train", "x.png", _image(0), _label(0))
    with pytest.raises(ValueError, match=message) as error:
        from_folder(tmp_path)
    assert "classes.txt" in str(error.value)


def test_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no classes.txt in"):
        from_folder(tmp_path)
    (tmp_path / "classes.txt").write_text("a\nb\n")
    with pytest.raises(DatasetNotFoundError, match="no images/ folder in"):
        from_folder(tmp_path)
    _write_pair(tmp_path, "val", "x.png", _image(0), _label(0))
    with pytest.raises(DatasetNotFoundError, match="no images/train folder .*'val'"):
        from_folder(tmp_path)
    (tmp_path / "images" / "train").mkdir()
    with pytest.raises(DatasetNotFoundError, match="split 'train' is empty"):
        from_folder(tmp_path)
    _write_pair(tmp_path, "train", "x.png", _image(0), None)
    with pytest.raises(DatasetNotFoundError, match="no labels/train folder"):
        from_folder(tmp_path)


def test_unpaired_files_are_listed_with_their_count(tmp_path):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    for index in range(7):
        _write_pair(tmp_path, "train", f"img{index}.png", _image(0), _label(0) % 2)
    for index in (0, 1, 2, 3, 4, 5):
        (tmp_path / "labels" / "train" / f"img{index}.png").unlink()
    with pytest.raises(BadExampleError) as error:
        from_folder(tmp_path)
    message = str(error.value)
    assert "6 (img0.png, img1.png, img2.png, img3.png, img4.png, ...)" in message
    assert "have no label" in message and "img5.png" not in message
    for index in (0, 1, 2, 3, 4, 5):
        Image.fromarray(_label(0) % 2).save(tmp_path / "labels" / "train" / f"img{index}.png")
    Image.fromarray(_label(0) % 2).save(tmp_path / "labels" / "train" / "ghost.png")
    with pytest.raises(BadExampleError, match="1 \\(ghost.png\\) labels in .* have no image"):
        from_folder(tmp_path)


def _one_pair(tmp_path, label, classes="a\nb\nc\n", mode=None):
    (tmp_path / "classes.txt").write_text(classes)
    _write_pair(tmp_path, "train", "x.png", _image(0), None)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    path = tmp_path / "labels" / "train" / "x.png"
    Image.fromarray(label, mode=mode).save(path)
    return path


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: (np.zeros((H + 1, W), np.uint8), None),
            "is 40x31 \\(WxH\\) but image .* is 40x30",
        ),
        (lambda: (np.full((H, W), 7, np.uint8), None), "has values \\[7\\] \\(1200 pixels\\)"),
        (lambda: (np.full((H, W), 300, np.uint16), None), "mode I\\S* \\(16-bit\\)"),
        (
            lambda: (np.zeros((H, W, 3), np.uint8), "RGB"),
            "RGB image but classes.txt gives no colours",
        ),
    ],
)
def test_bad_examples_fail_at_read_time_naming_the_file(tmp_path, make, message):
    label, mode = make()
    path = _one_pair(tmp_path, label, mode=mode)
    spec = from_folder(tmp_path)  # pairing is fine: found at read time only
    assert spec.split_sizes == {"train": 1}
    with pytest.raises(tf.errors.OpError, match=message) as error:
        list(datasets.load(tmp_path, "train"))
    assert str(path) in str(error.value)
    _, problems = check_folder(tmp_path)
    assert len(problems) == 1 and str(path) in problems[0]


def test_rgb_colour_not_in_classes_txt(tmp_path):
    label = np.zeros((H, W, 3), np.uint8)
    label[0, :3] = (1, 2, 3)
    path = _one_pair(tmp_path, label, "a 0,0,0\nb 9,9,9\n", "RGB")
    with pytest.raises(
        tf.errors.OpError, match="colours \\[\\(1,2,3\\)\\] \\(3 pixels\\)"
    ) as error:
        list(datasets.load(tmp_path, "train"))
    assert f"label {path}" in str(error.value) and "not classes.txt colours" in str(error.value)


def test_skip_bad_examples_drops_them(tmp_path):
    _one_pair(tmp_path, np.full((H, W), 7, np.uint8))
    _write_pair(tmp_path, "train", "y.png", _image(1), _label(1))
    items = list(datasets.load(tmp_path, "train", skip_bad_examples=True))
    assert len(items) == 1


def test_registry_messages_for_paths(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset .*no folder .*nope.*known datasets"):
        datasets.get_info(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match=f"no classes.txt in {tmp_path}"):
        datasets.get_info(tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'pascal'; known"):
        datasets.get_info("pascal")
    assert "my_folder" not in datasets.dataset_names()


def test_main_lists_registered_datasets(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "cityscapes" in out and "19 classes" in out and "test (unlabelled)" in out
    assert main(["camvid"]) == 0
    assert "Sky" in capsys.readouterr().out


def test_main_checks_a_good_folder(folder, capsys):
    root, _ = folder
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "3 classes" in out and "big cat  255,0,0" in out
    assert "train 6, val 2, test 1 (unlabelled)" in out and "OK" in out


def test_main_reports_every_problem_of_a_bad_folder(folder, capsys):
    root, _ = folder
    Image.fromarray(np.full((H, W), 9, np.uint8)).save(root / "labels" / "train" / "a.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(root / "labels" / "val" / "v1.png")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[0, 0] = (1, 1, 1)
    Image.fromarray(rgb).save(root / "labels" / "train" / "e.png")
    assert main([str(root)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == "3 problem(s):"
    assert len(lines) == 4
    assert any("a.png has values [9]" in line for line in lines)
    assert any("v1.png is 5x5" in line for line in lines)
    assert any("e.png has colours [(1,1,1)]" in line for line in lines)
    assert "train 6, val 2" in captured.out  # the structure is still described
    os.remove(root / "classes.txt")
    (root / "labels" / "train" / "b.png").unlink()
    assert main([str(root)]) == 2
    err = capsys.readouterr().err
    assert "no classes.txt" in err and "1 (b.png) images" in err


def test_main_help_is_fast_and_imports_nothing_heavy():
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    source = pathlib.Path(datasets.__file__).with_name("__main__.py").read_text()
    header = source.split("def ", 1)[0]
    imports = [line for line in header.splitlines() if line.startswith(("import", "from"))]
    assert imports == ["import argparse", "import sys"]  # the rest after parsing


def test_write_sample_is_the_sample_as_a_folder(tmp_path, capsys):
    # The oracle is the bundled sample's own reader (its CamVid id table, its files).
    out = tmp_path / "camvid_folder"
    assert main(["--write_sample", str(out)]) == 0
    assert "train 48, val 16" in capsys.readouterr().out
    spec = datasets.get_info(out)
    sample = datasets.get_info("sample")
    assert spec.class_names == sample.class_names and spec.palette == sample.palette
    assert spec.split_sizes == {"train": 48, "val": 16}
    ours = list(datasets.load(out, "val").take(3).as_numpy_iterator())
    theirs = list(datasets.load("sample", "val").take(3).as_numpy_iterator())
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    # Nothing is overwritten: a second write into the same folder is one line, exit 2.
    assert main(["--write_sample", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
