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
COMMANDS = ("train", "evaluate", "predict", "export", "convert", "analyze", "datasets")


def _run(*args, program=(sys.executable, "-m", "keras_memseg.cli")):
    return subprocess.run([*program, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_help_lists_every_command(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert tuple(cli.COMMANDS) == COMMANDS
    for name in COMMANDS:
        assert f"  {name} " in out
    assert "(also: analysis)" in out


def test_unknown_command_and_recipe_are_one_line_errors(capsys):
    assert cli.main(["fly"]) == 2
    assert cli.main(["train", "no_such_recipe"]) == 2
    assert cli.main(["trian"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("error: unknown command 'fly'")
    assert lines[1].startswith("error: unknown recipe 'no_such_recipe'; one of: ade20k")
    assert lines[2].startswith("error: unknown command 'trian' (did you mean 'train'?)")


def test_train_without_a_recipe_prints_the_usage_and_the_recipes(capsys):
    assert cli.main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: keras-memseg train")
    assert "sample" in err and "coco_stuff10k" in err and "cocostuff" in err


def test_recipe_aliases_agree_with_the_training_command():
    from keras_memseg.training import cli as train_cli

    assert cli.RECIPE_ALIASES == train_cli.RECIPE_ALIASES


@pytest.mark.parametrize(
    ("args", "dataset"),
    [
        (["sample"], "sample"),
        (["cocostuff"], "coco_stuff10k"),
        (["--recipe", "coco_stuff10k", "--dataset=coco_stuff164k"], "coco_stuff164k"),
    ],
)
def test_train_resolves_the_recipe_and_its_flags(args, dataset):
    proc = _run("train", *args, "--config_only", "--max_steps=7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert config["dataset"] == dataset and config["max_steps"] == 7


def test_every_help_prints_before_tensorflow_is_imported():
    # In one process: each subcommand's `--help`, then TensorFlow must still be absent
    # (a module that imports it at its top makes the help take seconds).
    code = (
        "import contextlib, io, sys\n"
        "from keras_memseg import cli\n"
        "late = []\n"
        "for name in ('train', 'evaluate', 'datasets', 'predict', 'export', 'convert',"
        " 'analyze', 'analysis'):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        try:\n"
        "            code = cli.main([name, '--help'])\n"
        "        except SystemExit as exit_:\n"
        "            code = exit_.code\n"
        "    assert code in (0, None) and 'usage' in out.getvalue().lower(), (name, code)\n"
        "    if 'tensorflow' in sys.modules:\n"
        "        late.append(name)\n"
        "        break\n"
        "print('TENSORFLOW AFTER', late)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    late = proc.stdout.strip().splitlines()[-1]
    helped = {"train", "evaluate", "datasets"}  # the ones this package's parsers own
    assert not any(name in late for name in helped), late


def test_the_package_imports_without_keras_and_loads_its_namespaces_on_use():
    code = (
        "import sys, keras_memseg\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "assert {'models', 'layers', 'backbones', 'losses', 'metrics'} <= set(dir(keras_memseg))\n"
        "from keras_memseg import models\n"
        "assert keras_memseg.models.MemorySegmenter is models.MemorySegmenter\n"
        "print(keras_memseg.layers.__name__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "keras_memseg.layers"


def test_evaluate_and_convert_keep_their_flags_and_one_line_errors():
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
    proc = _run("train", "--help", program=("keras-memseg",))
    assert proc.returncode == 0 and "--slide_window H,W, --eval_crop_size H,W" in proc.stdout


def test_a_folder_of_your_own_trains_predicts_evaluates_and_exports(tmp_path):
    """Issue #29's "done when": a folder made here, `keras-memseg train --data ROOT` on a
    tiny model, then predict (class names from classes.txt, no --dataset), evaluate and
    export on the same run folder, each through the console command."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "fields"
    rng = np.random.default_rng(0)
    names = ("soil", "crop row", "weed")
    for split, count in (("train", 4), ("val", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            label = np.repeat(np.arange(3, dtype=np.uint8), 16)[None, :].repeat(36, 0)
            label[:4] = 255
            image = (label[..., None] * 60 + rng.integers(0, 40, (36, 48, 3))).astype(np.uint8)
            Image.fromarray(image).save(root / "images" / split / f"{i}.jpg")
            Image.fromarray(label, mode="L").save(root / "labels" / split / f"{i}.png")
    (root / "classes.txt").write_text("soil 120,80,40\ncrop row 40,160,40\nweed #dc2828\n")

    def run(*args):
        done = subprocess.run(
            [sys.executable, "-m", "keras_memseg.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    out = run(
        "train", "--data", str(root), "--backbone=resnet18_v1c", "--base_channels=8",
        "--feats_channels=16", "--transform_channels=8", "--aux_channels=8",
        "--crop_size=32,32", "--global_batch_size=2", "--max_steps=2", "--checkpoint_every=2",
        "--test_scale=36,48", "--export_dir=", "--show_dir=none",
    )  # fmt: skip
    assert "fields: MCIBI resnet18_v1c" in out and "on " + str(root.resolve()) in out
    run_dir = tmp_path / "runs" / "fields"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["num_train_examples"] == 4 and config["dataset"] == str(root.resolve())

    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (72, 96, 3)).astype(np.uint8)).save(photo)
    out = run("predict", "--model", str(run_dir), str(photo), "--out", "predictions")
    labels = np.asarray(Image.open(tmp_path / "predictions" / "photo.png"))
    assert labels.shape == (72, 96) and labels.max() < 3  # at the photo's size
    palette = Image.open(tmp_path / "predictions" / "photo.png").getpalette()[:9]
    assert palette == [120, 80, 40, 40, 160, 40, 220, 40, 40]  # classes.txt's colours

    out = run("evaluate", "--model", str(run_dir), "--out", "eval.json")
    report = json.loads((tmp_path / "eval.json").read_text())
    assert list(report["per_class"]) == list(names) and report["num_images"] == 2

    run("export", "--model", str(run_dir), "--format", "saved_model", "--out", "saved_models")
    version = tmp_path / "saved_models" / "memseg" / "1"
    assert (version / "saved_model.pb").is_file()
    assert (version / "assets" / "labels.txt").read_text().splitlines() == list(names)
