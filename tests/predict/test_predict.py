"""`python -m keras_memseg.predict`: the three model kinds against a NumPy oracle, outputs,
folders, failures and exit codes."""

import io
import logging
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_memseg.datasets import get_info
from keras_memseg.predict import collect_inputs
from keras_memseg.predict import inference_size
from keras_memseg.predict import output_names
from keras_memseg.predict.__main__ import main
from tests.predict.conftest import NUM_CLASSES
from tests.predict.conftest import assert_labels_match
from tests.predict.conftest import oracle_logits
from tests.predict.conftest import read_rgb
from tests.predict.conftest import sample_images
from tests.read_only import refuse_file_creation

CAMVID = get_info("camvid")


def read_labels(path):
    with Image.open(path) as image:
        assert image.mode == "P", image.mode
        return np.asarray(image), image.getpalette()[: 3 * NUM_CLASSES]


@pytest.mark.parametrize("kind", ["keras", "preset", "saved_model"])
def test_model_kinds_match_the_model_on_normalised_images(artifacts, runs, kind):
    # --dataset camvid resizes 224x168 to 480x360 (its test scale), --max_size caps it at
    # 112x84; the labels come back at 224x168. The SavedModel (given as its model base
    # folder: the highest version is used) resizes to 112x84 in its graph instead.
    code, out = runs(kind)
    assert code == 0
    for path in sample_images()[:2]:
        image = read_rgb(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        labels, palette = read_labels(out / f"{stem}.png")
        assert_labels_match(labels, oracle_logits(artifacts["model"], image, size=(84, 112)))
        assert len(np.unique(labels)) >= 5  # a real label map, not one class
        assert palette == [c for rgb in CAMVID.palette for c in rgb]  # value = class id


def test_native_size_and_flip(artifacts, tmp_path, capsys):
    # No --dataset: the image's own size, class_<i> names; --flip averages two runs.
    path = sample_images()[2]
    stem = os.path.splitext(os.path.basename(path))[0]
    assert (
        main(["--model", artifacts["keras"], path, "--out", str(tmp_path / "keras"), "--flip"]) == 0
    )
    labels, _ = read_labels(tmp_path / "keras" / f"{stem}.png")
    assert_labels_match(labels, oracle_logits(artifacts["model"], read_rgb(path), flip=True))
    assert "1 predicted" in capsys.readouterr().out
    # The SavedModel runs at its export scale whatever --max_size says, and says so.
    assert (
        main(
            [
                "--model",
                artifacts["saved_model"],
                path,
                "--out",
                str(tmp_path / "sm"),
                "--flip",
                "--max_size",
                "64",
            ]
        )
        == 0
    )
    labels, _ = read_labels(tmp_path / "sm" / f"{stem}.png")
    assert_labels_match(
        labels, oracle_logits(artifacts["model"], read_rgb(path), size=(84, 112), flip=True)
    )
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "max_size not applied" in warned[0], warned


def test_overlay_is_the_blend_plus_a_legend(runs):
    _, out = runs("keras")  # alpha 0.5 (default)
    path = sample_images()[0]
    stem = os.path.splitext(os.path.basename(path))[0]
    labels, _ = read_labels(out / f"{stem}.png")
    image = read_rgb(path)
    overlay = np.asarray(Image.open(out / f"{stem}_overlay.png").convert("RGB"))
    height, width = image.shape[:2]
    assert overlay.shape[1] == width and overlay.shape[0] > height  # legend underneath
    colours = np.asarray(CAMVID.palette, np.float64)[labels]
    expected = np.clip(0.5 * image + 0.5 * colours, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(overlay[:height], expected)
    legend = overlay[height:]
    assert (legend == 255).all(axis=-1).mean() > 0.5  # white strip ...
    for class_id in np.unique(labels):  # ... with a swatch of each class present
        colour = np.asarray(CAMVID.palette[class_id], np.uint8)
        assert (legend == colour).all(axis=-1).any(), CAMVID.class_names[class_id]
    absent = sorted(set(range(NUM_CLASSES)) - set(np.unique(labels).tolist()))
    for class_id in absent:  # no swatch for the others
        assert not (legend == np.asarray(CAMVID.palette[class_id], np.uint8)).all(-1).any()


def test_folders_shared_stems_failures_and_exit_code(artifacts, tmp_path, capsys):
    samples = sample_images()
    root = tmp_path / "in"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    shutil.copy(samples[0], root / "a" / "x.png")
    shutil.copy(samples[1], root / "b" / "x.png")
    Image.open(samples[2]).convert("RGB").save(root / "c.jpg", quality=95)
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    (root / "notes.txt").write_text("not an image, and not read: no image extension")
    text = tmp_path / "readme.txt"
    text.write_text("named on the command line: tried, and reported")
    out = tmp_path / "out"
    code = main(
        [
            "--model",
            artifacts["keras"],
            str(root / "a"),
            str(root / "b"),
            str(root),
            str(text),
            "--out",
            str(out),
            "--max_size",
            "64",
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert sorted(os.listdir(out)) == sorted(
        f"{base}{suffix}.png"
        for base in ("a__x_png", "b__x_png", "c")
        for suffix in ("", "_overlay")
    )
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("corrupt.png" in line for line in errors)
    assert any("readme.txt" in line for line in errors)
    assert "3 predicted, 2 failed, 1 ignored" in captured.err  # the summary
    labels, _ = read_labels(out / "c.png")
    assert labels.shape == (168, 224)  # the JPEG's own size


def test_no_overwrite_without_flag_and_progress_bar(artifacts, tmp_path, capsys, monkeypatch):
    path = sample_images()[0]
    stem = os.path.splitext(os.path.basename(path))[0]
    (tmp_path / f"{stem}.png").write_bytes(b"an earlier output")
    assert main(["--model", artifacts["keras"], path, "--out", str(tmp_path)]) == 0
    assert (tmp_path / f"{stem}.png").read_bytes() == b"an earlier output"
    assert not (tmp_path / f"{stem}_overlay.png").exists()
    assert "1 skipped" in capsys.readouterr().out

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert (
        main(
            [
                "--model",
                artifacts["keras"],
                path,
                "--out",
                str(tmp_path),
                "--overwrite",
                "--max_size",
                "64",
            ]
        )
        == 0
    )
    assert "\r" in terminal.getvalue() and "1/1" in terminal.getvalue()  # the bar
    assert read_labels(tmp_path / f"{stem}.png")[0].shape == (168, 224)
    assert (tmp_path / f"{stem}_overlay.png").exists()
    assert logging.getLogger("tensorflow").level == logging.WARNING


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: d / "missing.keras", "no such file or folder"),
        (lambda d: d, "a folder without saved_model.pb, config.json or model.keras"),
        (lambda d: (d / "notes.txt", (d / "notes.txt").write_text("hello"))[0], "not a model file"),
        (lambda d: (d / "w.h5", (d / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n"))[0], "HDF5"),
    ],
)
def test_bad_model_path_is_one_line_exit_2(tmp_path, capsys, make, expected):
    model = make(tmp_path)
    image = sample_images()[0]
    assert main(["--model", str(model), image, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --model {model}"), err
    assert expected in err[0]


def test_nonfinite_weights_refused_and_empty_memory_warned(artifacts, tmp_path, capsys):
    model = artifacts["model"]
    memory, weight = model.memory.memory, model.decoder_stage1.weights[0]
    saved = [memory.numpy(), weight.numpy()]
    try:
        memory.assign(np.zeros(memory.shape, "float32"))
        model.save(str(tmp_path / "empty.keras"))
        weight.assign(np.full(weight.shape, np.nan, "float32"))
        model.save(str(tmp_path / "nan.keras"))
    finally:
        memory.assign(saved[0])
        weight.assign(saved[1])
    image = sample_images()[0]
    assert main(["--model", str(tmp_path / "nan.keras"), image, "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN or inf" in err[0], err
    assert "decoder_stage1/block/conv/kernel" in err[0], err  # names the weight
    assert (
        main(
            [
                "--model",
                str(tmp_path / "empty.keras"),
                image,
                "--out",
                str(tmp_path / "o2"),
                "--max_size",
                "32",
                "--verbose",
                "0",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "all zero" in err[0], err


def test_dataset_class_count_mismatch_exit_2(artifacts, tmp_path, capsys):
    assert (
        main(
            [
                "--model",
                artifacts["preset"],
                sample_images()[0],
                "--out",
                str(tmp_path),
                "--dataset",
                "lip",
            ]
        )
        == 2
    )
    assert "20 classes but the model predicts 11" in capsys.readouterr().err


def test_module_entry_point_exit_code(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_memseg.predict",
            "--model",
            str(tmp_path / "nope.keras"),
            "x.png",
            "--out",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: --model {tmp_path / 'nope.keras'}: no such file or folder"
    )


# -- no model needed ------------------------------------------------------------------
def test_output_names_unique():
    assert output_names(["a/x.png", "b/x.png", "c/y.jpg"]) == ["a__x_png", "b__x_png", "y"]
    assert output_names(["d/x.png", "d/X.jpg"]) == ["x_png", "X_jpg"]  # case-insensitive
    assert output_names(["p/q/x.png", "p/x.png"]) == ["q__x_png", "x_png"]
    # A stem that equals another input's overlay name gets a suffix.
    assert output_names(["x.png", "x_overlay.png"]) == ["x", "x_overlay-2"]
    assert output_names(["x.png", "x.png"]) != ["x", "x"]


def test_inference_size():
    assert inference_size(168, 224) == (168, 224)
    assert inference_size(168, 224, max_size=112) == (84, 112)
    assert inference_size(168, 224, max_size=500) == (168, 224)  # never enlarged
    # The eval pipeline's keep-ratio Resize (mmseg): 360x480 to (2048, 512) -> 512x683.
    assert inference_size(360, 480, test_scale=(2048, 512)) == (512, 683)
    assert inference_size(168, 224, test_scale=(473, 473), keep_ratio=False) == (473, 473)


def test_collect_inputs(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "out").mkdir()
    for name in ("b.PNG", "a.jpg", "sub/c.bmp", "out/d.png", "e.txt"):
        (tmp_path / name).write_bytes(b"")
    files, missing, ignored = collect_inputs([tmp_path, tmp_path / "a.jpg", "nope.png"])
    assert [os.path.basename(p) for p in files] == ["a.jpg", "b.PNG"]  # each once
    assert missing == ["nope.png"] and [os.path.basename(p) for p in ignored] == ["e.txt"]
    files, _, _ = collect_inputs([tmp_path], recursive=True, exclude=tmp_path / "out")
    assert [os.path.relpath(p, tmp_path) for p in files] == [
        "a.jpg",
        "b.PNG",
        os.path.join("sub", "c.bmp"),
    ]


def test_never_writes_over_an_input(tmp_path):
    # A stand-in segmenter (no model): --out is the input folder itself.
    from keras_memseg.predict import LoadedSegmenter
    from keras_memseg.predict import predict_files

    def forward(images):
        return np.zeros(tuple(images.shape[:3]) + (3,), "float32")

    shutil.copy(sample_images()[0], tmp_path / "x.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "y_overlay.png")
    Image.new("RGB", (8, 6)).save(tmp_path / "y.jpg")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    segmenter = LoadedSegmenter("keras", "stand-in", 3, forward)
    result = predict_files(segmenter, [tmp_path], tmp_path, overwrite=True)
    assert sorted(os.path.basename(p) for p, _ in result.failed) == ["x.png", "y.jpg"]
    assert all("is an input image" in reason for _, reason in result.failed)
    assert [os.path.basename(p) for p, *_ in result.written] == ["y_overlay.png"]
    for name, data in before.items():  # inputs untouched
        assert (tmp_path / name).read_bytes() == data


def _alarm(signum, frame):
    raise TimeoutError("blocked on a FIFO")


def test_fifo_model_and_images_are_refused_unopened(tmp_path, capsys, monkeypatch):
    # Reading a FIFO blocks until a writer comes: refused before open(), one line each.
    from keras_memseg.predict import LoadedSegmenter
    from keras_memseg.predict import predict_files
    from keras_memseg.predict.run import ImageReadError
    from keras_memseg.predict.run import read_image

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)  # a regression fails the test instead of hanging the run
    try:
        fifo = tmp_path / "model.keras"
        os.mkfifo(fifo)
        image = sample_images()[0]
        assert main(["--model", str(fifo), image, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"error: --model {fifo}: a FIFO (named pipe), not a regular file or folder; "
            "expected a .keras file, a preset folder (config.json + model.weights.h5), "
            "a run folder (model.keras) or a SavedModel folder (saved_model.pb)"
        ], err
        pipe = tmp_path / "photo.png"
        os.mkfifo(pipe)
        with pytest.raises(ImageReadError, match="photo.png: a FIFO"):
            read_image(pipe)
        segmenter = LoadedSegmenter(
            "keras", "stand-in", 3, lambda x: np.zeros((*x.shape[:3], 3), "float32")
        )
        result = predict_files(segmenter, [pipe, "/dev/null"], tmp_path / "out")
        assert result.failed == [
            (str(pipe), f"{pipe}: a FIFO (named pipe), not an image file or folder"),
            ("/dev/null", "/dev/null: a character device, not an image file or folder"),
        ]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_tiled_full_resolution_matches_the_oracle(artifacts, monkeypatch):
    # One output row per tile: the (H, W, K) scores never exist, the labels are the same.
    from keras_memseg.evaluation import InferenceConfig
    from keras_memseg.predict import predict_image
    from keras_memseg.predict import tiles
    from keras_memseg.predict.loading import wrap_model

    monkeypatch.setattr(tiles, "TILE_BYTES", 1)
    image = read_rgb(sample_images()[1])
    labels = predict_image(
        wrap_model(artifacts["model"]), image, InferenceConfig(flip=True), (84, 112)
    )
    assert labels.dtype == np.int32
    assert_labels_match(labels, oracle_logits(artifacts["model"], image, size=(84, 112), flip=True))


def test_read_only_out_is_one_line_before_the_model_loads(artifacts, tmp_path):
    from tests.read_only import read_only_prefix

    folder = tmp_path / "mounted"
    folder.mkdir()
    prefix = read_only_prefix(folder)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "keras_memseg.predict", "--model", artifacts["keras"]]
        + [sample_images()[0], "--out", f"{folder}/predictions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: --out {folder}/predictions: {folder} is not writable (a read-only location?)"
    ], proc.stderr[-2000:]


def test_unwritable_out_refused_where_access_says_yes(tmp_path, capsys, monkeypatch):
    # As root, os.access says yes to any folder not on a read-only mount (NFS with
    # root_squash, FUSE): the real probe decides. Refused before the model loads.
    import keras_memseg.predict as predict

    folder = tmp_path / "squashed"
    folder.mkdir()
    refuse_file_creation(monkeypatch, folder)

    def never(path):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(predict, "load_predictor", never)
    out = folder / "new" / "predictions"
    assert main(["--model", "m.keras", sample_images()[0], "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --out {out}: {folder} is not writable (a read-only location?)"
    ]
    segmenter = predict.LoadedSegmenter("keras", "stand-in", 3, None)
    with pytest.raises(ValueError, match=f"^{folder} is not writable"):
        predict.predict_files(segmenter, [sample_images()[0]], out)
    assert os.listdir(folder) == []


def test_a_write_that_fails_midway_is_one_line(tmp_path, monkeypatch):
    # The disk fills (or the folder turns read-only) after the check: that image fails.
    import errno

    from keras_memseg.predict import LoadedSegmenter
    from keras_memseg.predict import predict_files
    from keras_memseg.predict import run

    def full(path, *args):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(run, "save_png", full)
    segmenter = LoadedSegmenter(
        "keras", "stand-in", 3, lambda x: np.zeros((*x.shape[:3], 3), "float32")
    )
    image = sample_images()[0]
    result = predict_files(segmenter, [image], tmp_path)
    assert result.failed == [
        (image, f"{image}: cannot write its outputs in {tmp_path} (No space left on device)")
    ]
    assert not result.written


def test_exif_orientation_read_upright_and_sized_from_the_header(tmp_path):
    # read_image turns an EXIF-rotated JPEG upright (no copy when there is nothing to
    # turn); the memory check reads the same (H, W) from the header, undecoded.
    from keras_memseg.predict.run import _header_size
    from keras_memseg.predict.run import read_image

    stored = np.zeros((20, 30, 3), np.uint8)
    stored[:, :10] = 255  # white on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    Image.fromarray(stored).save(tmp_path / "turned.jpg", quality=100, exif=exif)
    Image.fromarray(stored).save(tmp_path / "plain.png")
    upright = read_image(tmp_path / "turned.jpg")
    assert upright.shape == (30, 20, 3) and _header_size(tmp_path / "turned.jpg") == (30, 20)
    assert upright[:10].mean() > 200 and upright[-10:].mean() < 50  # left -> top
    np.testing.assert_array_equal(read_image(tmp_path / "plain.png"), stored)
    assert _header_size(tmp_path / "plain.png") == (20, 30)
    assert _header_size(tmp_path / "readme.txt") is None  # read_image says why


def test_data_is_a_folder_dataset_and_excludes_dataset(capsys):
    from keras_memseg.predict.__main__ import parse_args

    args = parse_args(["--model", "m", "x.png", "--out", "o", "--data", "my_data"])
    assert args.dataset == "my_data"
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "x.png", "--out", "o", "--data", "a", "--dataset", "b"])
    assert "--data and --dataset both name the dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--help"], prog="keras-memseg predict")
    assert capsys.readouterr().out.startswith("usage: keras-memseg predict")
