"""`keras-memseg`: the console command dispatching to every command of the library."""

import configparser
import json
import os
import shutil
import subprocess
import sys

import pytest

from keras_memseg import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, program=(sys.executable, "-m", "keras_memseg.cli")):
    return subprocess.run([*program, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_help_lists_every_command(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for name in ("train", "evaluate", "predict", "convert", "export", "analysis"):
        assert f"  {name} " in out


def test_unknown_command_and_recipe_are_one_line_errors(capsys):
    assert cli.main(["fly"]) == 2
    assert cli.main(["train", "no_such_recipe"]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("error: unknown command 'fly'")
    assert lines[1].startswith("error: unknown recipe 'no_such_recipe'; one of: ade20k")


def test_train_without_a_recipe_lists_them_with_the_old_cocostuff_name(capsys):
    assert cli.main(["train"]) == 0
    out = capsys.readouterr().out
    assert "sample" in out and "coco_stuff10k" in out and "cocostuff" in out


@pytest.mark.parametrize(
    ("recipe", "dataset"), [("sample", "sample"), ("cocostuff", "coco_stuff10k")]
)
def test_train_resolves_the_recipe_and_its_flags(recipe, dataset):
    proc = _run("train", recipe, "--config_only", "--max_steps=7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert config["dataset"] == dataset and config["max_steps"] == 7


def test_evaluate_and_predict_keep_their_flags_and_one_line_errors():
    proc = _run("evaluate", "--model=/no/such/model.keras", "--dataset=sample")
    assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
    assert "/no/such/model.keras" in proc.stderr
    proc = _run("convert", "--help")
    assert proc.returncode == 0 and "--out" in proc.stdout, proc.stderr[-3000:]


def test_setup_declares_the_console_entry_point():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    scripts = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    assert scripts == ["keras-memseg = keras_memseg.cli:main"]


@pytest.mark.skipif(
    shutil.which("keras-memseg") is None,
    reason="the console script exists once the package is pip-installed (README's commands)",
)
def test_installed_console_script_runs():
    proc = _run("--help", program=("keras-memseg",))
    assert proc.returncode == 0 and "keras-memseg COMMAND" in proc.stdout, proc.stderr[-3000:]
