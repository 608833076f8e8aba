"""`python -m keras_memseg.export`: a saved .keras file, preset folder or run folder to a SavedModel and a TFLite file;
the serving resolution from --dataset / --test_scale; every bad flag is one line, exit 2."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.export.__main__ import PROG
from keras_memseg.export.__main__ import main
from keras_memseg.export.__main__ import parse_args
from keras_memseg.export.tflite_runtime import tflite_input_size
from tests.export.conftest import make_model
from tests.export.conftest import run_python
from tests.read_only import refuse_file_creation

# --name values that would leave --out (or name no folder at all).
BAD_NAMES = ("../x", "..", ".", "", "a/b", os.sep + "abs", "a\\b")


@pytest.fixture(scope="module")
def checkpoint(models, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("checkpoint") / "model.keras")
    models("aspp").save(path)
    return path


def _config(folder):
    fn = tf.saved_model.load(folder).signatures["serving_config"]
    return {k: v.numpy() for k, v in fn(image_size=tf.constant([[300, 400]])).items()}


def test_cli_exports_both_formats(checkpoint, tmp_path, capsys):
    # main() in-process: the same code path as `python -m keras_memseg.export`, without
    # paying a second TensorFlow start-up per format.
    base = str(tmp_path / "saved_models")
    assert (
        main(
            [
                "--model",
                checkpoint,
                "--format",
                "saved_model",
                "--out",
                base,
                "--name",
                "memseg",
                "--version",
                "3",
                "--dataset",
                "lip",
                "--max_input_pixels",
                "1000000",
                "--max_batch_size",
                "none",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().endswith(os.path.join("memseg", "3"))
    config = _config(os.path.join(base, "memseg", "3"))
    np.testing.assert_array_equal(config["test_scale"], [473, 473])  # LIP: fixed 473x473
    assert not config["keep_ratio"]
    np.testing.assert_array_equal(config["model_size"], [[473, 473]])
    assert config["max_input_pixels"] == 1_000_000 and config["max_batch_size"] == 0

    output = tmp_path / "m.tflite"
    output.write_bytes(b"old")
    tflite = [
        "--model",
        checkpoint,
        "--format",
        "tflite",
        "--out",
        str(output),
        "--input_size",
        "32,40",
        "--quantization",
        "fp16",
    ]
    with pytest.raises(SystemExit) as exit_info:  # exists: refused without --overwrite
        main(tflite)
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert output.read_bytes() == b"old"
    assert main(tflite + ["--overwrite"]) == 0
    assert tflite_input_size(output) == (32, 40)


def test_module_entry_point_help():
    out = run_python(
        "import runpy, sys; sys.argv = ['x', '--help']; "
        "runpy.run_module('keras_memseg.export', run_name='__main__')"
    )
    for flag in (
        "--quantization",
        "--input_size",
        "--test_scale",
        "--keep_ratio",
        "--dataset",
        "--max_input_pixels",
        "--overwrite",
    ):
        assert flag in out


def test_cli_flag_errors(checkpoint, tmp_path, capsys):
    existing = tmp_path / "exists.tflite"
    existing.write_bytes(b"")
    saved = ["--model", checkpoint, "--format", "saved_model", "--out", "s"]
    tflite = ["--model", checkpoint, "--format", "tflite", "--out", "m.tflite"]
    cases = [
        (tflite, "--input_size"),
        (tflite + ["--input_size", "512x512"], "--input_size"),
        (tflite + ["--input_size", "0,512"], "--input_size"),
        (tflite + ["--input_size", "8,8", "--test_scale", "64,32"], "--test_scale"),
        (tflite + ["--input_size", "8,8", "--dataset", "ade20k"], "--dataset"),
        (tflite + ["--input_size", "8,8", "--data", "/d"], "--data"),
        (saved + ["--dataset", "lip", "--data", "/d"], "--data"),
        (tflite + ["--input_size", "8,8", "--max_input_pixels", "10"], "--max_input_pixels"),
        (
            tflite + ["--input_size", "8,8", "--representative_images", "*.jpg"],
            "--representative_images",
        ),
        (
            tflite
            + [
                "--input_size",
                "8,8",
                "--quantization",
                "int8",
                "--representative_images",
                str(tmp_path / "none*.jpg"),
            ],
            "--representative_images",
        ),
        (tflite + ["--input_size", "8,8", "--quantization", "int4"], "--quantization"),
        (
            [
                "--model",
                checkpoint,
                "--format",
                "tflite",
                "--out",
                str(existing),
                "--input_size",
                "8,8",
            ],
            "--out",
        ),
        (saved + ["--test_scale", "2048"], "--test_scale"),
        (saved + ["--test_scale", "64,32", "--dataset", "ade20k"], "--dataset"),
        (saved + ["--test_scale", "64,32", "--input_size", "32,32"], "--input_size"),
        (saved + ["--dataset", "nope"], "--dataset"),
        (saved + ["--dataset", "lip", "--no-keep_ratio"], "--keep_ratio"),
        (saved + ["--test_scale", "none", "--keep_ratio"], "--keep_ratio"),
        (saved + ["--max_input_pixels", "-5"], "--max_input_pixels"),
        (saved + ["--max_batch_size", "many"], "--max_batch_size"),
        (saved + ["--version", "-1"], "--version"),
        (saved + ["--quantization", "fp16"], "--quantization"),
        (saved + ["--outputs", "labels,scores"], "--outputs"),
        (
            [
                "--model",
                str(tmp_path / "missing.keras"),
                "--format",
                "saved_model",
                "--out",
                "s",
            ],
            "--model",
        ),
        (["--format", "saved_model", "--out", "s"], "--model"),
    ]
    for argv, flag in cases:
        with pytest.raises(SystemExit) as exit_info:
            parse_args(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, argv
        assert len(err.strip().splitlines()) == 1 and flag in err, (argv, err)
    args = parse_args(saved)
    assert args.version is None and args.name == "memseg"
    assert args.test_scale == (2048, 512) and args.keep_ratio
    assert args.max_input_pixels == 50_000_000 and args.max_batch_size == 32
    args = parse_args(saved + ["--dataset", "cityscapes"])
    assert args.test_scale == (2048, 1024) and args.keep_ratio
    args = parse_args(
        saved
        + [
            "--test_scale",
            "32,64",
            "--no-keep_ratio",
            "--max_input_pixels",
            "none",
            "--max_batch_size",
            "4",
        ]
    )
    assert args.test_scale == (64, 32) and not args.keep_ratio  # H,W 32,64 -> mmseg (w, h)
    assert args.max_input_pixels is None and args.max_batch_size == 4
    args = parse_args(saved + ["--test_scale", "none"])
    assert args.test_scale is None
    args = parse_args(saved + ["--input_size", "32,48"])
    assert args.input_size == (32, 48) and args.test_scale is None


def test_cli_errors_after_parsing(checkpoint, tmp_path, capsys):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip file")
    assert main(["--model", str(bad), "--format", "saved_model", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--model" in err
    nan_checkpoint = str(tmp_path / "nan.keras")
    model = make_model("aspp", seed=9)
    model.memory.memory.assign(np.full(model.memory.memory.shape, np.nan, "float32"))
    model.save(nan_checkpoint)
    assert (
        main(
            [
                "--model",
                nan_checkpoint,
                "--format",
                "saved_model",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "NaN or inf" in err
    assert not os.path.exists(tmp_path / "out" / "memseg" / "1")
    main(
        [
            "--model",
            checkpoint,
            "--format",
            "saved_model",
            "--out",
            str(tmp_path / "out"),
            "--version",
            "1",
            "--test_scale",
            "64,32",
        ]
    )
    capsys.readouterr()
    assert (
        main(
            [
                "--model",
                checkpoint,
                "--format",
                "saved_model",
                "--out",
                str(tmp_path / "out"),
                "--version",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--overwrite" in err


def test_bad_flag_in_a_fresh_process_has_no_traceback(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_memseg.export",
            "--model",
            "x",
            "--format",
            "saved_model",
            "--out",
            str(tmp_path),
            "--test_scale",
            "12",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("python -m keras_memseg.export: error: argument --test_scale")
    )


def test_name_and_checkpoint_checked_before_anything_is_written(tmp_path, capsys):
    # --name is one folder under --out; --model a regular file (a FIFO would block
    # the loader forever). parse_args only checks the path, so a stand-in file serves.
    checkpoint = tmp_path / "model.keras"
    checkpoint.write_bytes(b"")
    base = tmp_path / "base"
    saved = ["--model", str(checkpoint), "--format", "saved_model", "--out", str(base)]
    fifo = tmp_path / "fifo.keras"
    os.mkfifo(fifo)
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [(saved + ["--name", name], "--name must be one folder name") for name in BAD_NAMES]
    cases += [
        (saved[:1] + [str(fifo)] + saved[2:], f"--model: {fifo} is a FIFO (named pipe)"),
        (saved[:1] + [str(empty)] + saved[2:], f"--model: {empty} is a folder without"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1, (argv, err)
        assert err[0].startswith(f"{PROG}: error: {message}"), (argv, err)
    assert sorted(os.listdir(tmp_path)) == ["empty", "fifo.keras", "model.keras"]  # nothing written


def test_read_only_output_is_one_line_before_loading(checkpoint, tmp_path):
    # A read-only mount: refused before the checkpoint loads, no OSError traceback.
    from tests.read_only import read_only_prefix

    folder = tmp_path / "mounted"
    folder.mkdir()
    prefix = read_only_prefix(folder)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "keras_memseg.export", "--model", checkpoint]
        + ["--format", "saved_model", "--out", f"{folder}/saved_models"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"{PROG}: error: --out {folder}/saved_models: {folder} is not writable "
        "(a read-only location?)"
    ), proc.stderr[-2000:]


def test_unwritable_output_refused_where_access_says_yes(checkpoint, tmp_path, capsys, monkeypatch):
    # As root, os.access says yes to any folder not on a read-only mount (NFS with
    # root_squash, FUSE): the real probe decides, for both formats.

    folder = tmp_path / "squashed"
    folder.mkdir()
    refuse_file_creation(monkeypatch, folder)
    cases = [
        (["--format", "saved_model", "--out", str(folder)], str(folder)),
        (["--format", "saved_model", "--out", str(folder / "a" / "b")], str(folder / "a" / "b")),
        (["--format", "tflite", "--input_size", "8,8", "--out", str(folder / "m.tflite")], None),
    ]
    for flags, shown in cases:
        shown = shown or str(folder / "m.tflite")
        with pytest.raises(SystemExit) as exit_info:
            parse_args(["--model", checkpoint, *flags])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2, flags
        assert err == [
            f"{PROG}: error: --out {shown}: {folder} is not writable (a read-only location?)"
        ], err
    assert os.listdir(folder) == []


def test_old_spellings_still_work_with_a_note(checkpoint, tmp_path, capsys):
    args = parse_args(["--checkpoint", checkpoint, "--format", "saved_model", "--output", "s"])
    assert args.model == checkpoint and args.out == "s" and args.verbose == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "note: --checkpoint is now --model",
        "note: --output is now --out",
    ]
    args = parse_args(["--model", checkpoint, "--format", "saved_model", "--out", "s", "--verbose"])
    assert args.verbose == 2


def test_a_preset_folder_and_a_run_folder_export(models, tmp_path, capsys):
    # convert -> export through the CLI: a preset folder is a --model, and so is a run
    # folder (its model.keras; its config.json names the dataset, whose test scale applies).
    model = models("aspp")
    preset = tmp_path / "preset"
    model.save_to_preset(str(preset))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    model.save(str(run / "model.keras"))
    (run / "config.json").write_text('{"dataset": "lip"}')
    args = parse_args(["--model", str(run), "--format", "saved_model", "--out", "s"])
    assert args.model_path == str(run / "model.keras")
    assert args.test_scale == (473, 473) and not args.keep_ratio  # LIP's, from the run
    args = parse_args(["--model", str(preset), "--format", "saved_model", "--out", "s"])
    assert args.model_path == str(preset) and args.test_scale == (2048, 512)
    base = tmp_path / "saved_models"
    for source in (preset, run):
        argv = ["--model", str(source), "--format", "saved_model", "--out", str(base)]
        assert main(argv + ["--test_scale", "32,64"]) == 0, capsys.readouterr().err
        written = capsys.readouterr().out.strip()
        np.testing.assert_array_equal(_config(written)["test_scale"], [64, 32])
