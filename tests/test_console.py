"""The command-line entry points print their own lines, not TensorFlow's start-up chatter."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", ["keras_memseg.export", "keras_memseg.convert"])
def test_command_help_has_a_silent_stderr(command):
    # Without the muted start-up, TensorFlow prints `cudart_stub.cc` / `cuInit` lines
    # here on every machine without a GPU.
    proc = subprocess.run(
        [sys.executable, "-m", command, "--help"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: python -m " + command)


# -- the shared flag vocabulary ------------------------------------------------------------
def _parser():
    from keras_memseg.console import BoolFlag
    from keras_memseg.console import OneLineErrorParser
    from keras_memseg.console import alias_of
    from keras_memseg.console import data_option
    from keras_memseg.console import dataset_option
    from keras_memseg.console import pair_hw
    from keras_memseg.console import verbose_option

    p = OneLineErrorParser(prog="x")
    out = p.add_argument("--out", help="where (e.g. --out a)")
    p.add_argument("--output", **alias_of(out))
    window = p.add_argument("--slide_window", type=pair_hw, default=None)
    p.add_argument("--crop_size", **alias_of(window))
    flip = p.add_argument("--flip", "--no-flip", action=BoolFlag, default=None)
    p.add_argument("--noflip", **alias_of(flip, new="--no-flip", value=False))
    p.add_argument("--verbose", **verbose_option())
    p.add_argument("--dataset", **dataset_option("none"))
    p.add_argument("--data", **data_option())
    return p


def test_old_spellings_are_hidden_aliases_with_a_note(capsys):
    args = _parser().parse_args(["--output=a", "--crop_size", "512,1024", "--noflip"])
    assert (args.out, args.slide_window, args.flip) == ("a", (512, 1024), False)
    assert capsys.readouterr().err.splitlines() == [
        "note: --output is now --out",
        "note: --crop_size is now --slide_window",
        "note: --noflip is now --no-flip",
    ]
    help_text = _parser().format_help()
    assert "--out" in help_text and "--output" not in help_text and "--noflip" not in help_text


@pytest.mark.parametrize(
    "argv, flip, verbose",
    [
        ([], None, 1),
        (["--flip"], True, 1),
        (["--flip=false", "--verbose"], False, 2),
        (["--flip", "true", "--verbose", "0"], True, 0),
        (["--no-flip", "--verbose=true"], False, 2),
    ],
)
def test_booleans_and_verbose_take_absl_forms(argv, flip, verbose):
    args = _parser().parse_args(argv)
    assert (args.flip, args.verbose) == (flip, verbose)


@pytest.mark.parametrize("argv", [["--slide_window", "512"], ["--verbose", "3"], ["--flip=maybe"]])
def test_bad_values_are_one_line_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("x: error:"), err


def test_data_and_dataset_name_one_dataset(capsys):
    from keras_memseg.console import chosen_dataset

    p = _parser()
    assert chosen_dataset(p, p.parse_args(["--data", "/d"])) == "/d"
    assert chosen_dataset(p, p.parse_args(["--dataset", "lip"])) == "lip"
    assert chosen_dataset(p, p.parse_args([])) is None
    with pytest.raises(SystemExit):
        chosen_dataset(p, p.parse_args(["--data", "/d", "--dataset", "lip"]))
    assert "pass one of them" in capsys.readouterr().err
