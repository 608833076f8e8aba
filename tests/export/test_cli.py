"""`python -m keras_memseg.export`: a saved .keras checkpoint to a SavedModel and a TFLite file."""

import os

import pytest

from tests.export.conftest import run_python

from keras_memseg.export.__main__ import main
from keras_memseg.export.tflite_runtime import tflite_input_size


def test_cli_exports_both_formats(models, tmp_path, capsys):
    # main() in-process: the same code path as `python -m keras_memseg.export`, without
    # paying a second TensorFlow start-up per format.
    checkpoint = str(tmp_path / "model.keras")
    models("aspp").save(checkpoint)
    assert main(["--checkpoint", checkpoint, "--format", "saved_model", "--output",
                 str(tmp_path / "saved_models"), "--name", "memseg", "--version", "3"]) == 0
    assert capsys.readouterr().out.strip().endswith(os.path.join("memseg", "3"))
    assert os.path.exists(tmp_path / "saved_models" / "memseg" / "3" / "saved_model.pb")
    assert main(["--checkpoint", checkpoint, "--format", "tflite", "--output",
                 str(tmp_path / "m.tflite"), "--input_size", "32,40",
                 "--quantization", "fp16"]) == 0
    assert tflite_input_size(tmp_path / "m.tflite") == (32, 40)


def test_module_entry_point_help():
    out = run_python("import runpy, sys; sys.argv = ['x', '--help']; "
                     "runpy.run_module('keras_memseg.export', run_name='__main__')")
    assert "--quantization" in out and "--input_size" in out


def test_cli_flag_errors():
    from keras_memseg.export.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--checkpoint", "m.keras", "--format", "tflite", "--output", "m.tflite"])
    with pytest.raises(SystemExit):
        parse_args(["--checkpoint", "m.keras", "--format", "tflite", "--output", "m.tflite",
                    "--input_size", "512x512"])
    args = parse_args(["--checkpoint", "m.keras", "--format", "saved_model", "--output", "s"])
    assert args.version is None and args.name == "memseg"
