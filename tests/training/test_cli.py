"""`train_main`: what a recipe prints at the end of a run and when the disk is full; the
command line of `keras-memseg train` and of the recipe scripts (`parse_command_line`)."""

import json
import os
import subprocess
import sys

import pytest

from keras_memseg.training import RECIPES
from keras_memseg.training import cli
from keras_memseg.training import flag_help
from keras_memseg.training import get_recipe
from keras_memseg.training import trainer
from keras_memseg.training.callbacks import DiskFullError
from keras_memseg.training.config import ConfigError
from keras_memseg.training.config import field_types


def test_a_resume_that_is_not_exact_says_so_on_the_last_line(tmp_path, monkeypatch, capsys):
    note = "resume not exact: resumed from checkpoint c/ckpt-0000002.weights.h5 (step 2), ..."
    result = trainer.TrainResult(None, str(tmp_path), None, 4, 1.0, [], resume_note=note)
    monkeypatch.setattr(trainer, "train", lambda config: result)
    assert cli.train_main(get_recipe("sample")) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"note: {note}"


def test_a_full_disk_is_one_error_line(monkeypatch, capsys):
    def full(config):
        raise DiskFullError("no space left on the device of r/checkpoints to write x; ...")

    monkeypatch.setattr(trainer, "train", full)
    assert cli.train_main(get_recipe("sample")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: no space left on the device of r/checkpoints to write x; ..."]


# -- the command line: keras_memseg.training.cli.parse_command_line --------------------
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parse(argv, recipe="sample"):
    config, _ = cli.parse_command_line(argv, recipe)
    return config


def _problems(argv, recipe="sample"):
    with pytest.raises(ConfigError) as error:
        cli.parse_command_line(argv, recipe)
    return error.value.problems


def test_every_field_has_a_description_an_example_and_one_group():
    fields = set(field_types())
    assert set(flag_help.HELP) == fields and set(flag_help.EXAMPLES) == fields
    grouped = [f for group in flag_help.GROUPS.values() for f in group]
    assert sorted(grouped) == sorted(fields), "each field in exactly one group"
    assert list(flag_help.GROUPS) == [
        "data",
        "model",
        "augmentation",
        "optimisation",
        "memory",
        "evaluation",
        "devices",
        "bookkeeping",
    ]
    assert all(
        len(text) > 15 and not text.startswith("RecipeConfig") for text in flag_help.HELP.values()
    )


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_no_flag_is_the_recipe(name):
    assert _parse([], name) == get_recipe(name)


def test_every_example_parses():
    for field, example in flag_help.EXAMPLES.items():
        if field in ("dataset", "pretrained"):
            continue  # a dataset to prepare, a file to exist: checked by other tests
        flag = flag_help.FLAG_NAMES.get(field, field)
        cli.parse_command_line([f"--{flag}={example}"], "ade20k")


def test_flags_override_fields_in_every_spelling():
    cfg = _parse(
        [
            "--crop_size=256x256",
            "--global_batch_size",
            "8",
            "--nomemory_loss",
            "--eval_flip",
            "false",
            "--mixed_precision",
            "--test_keep_ratio=false",
            "--eval_scales=0.5,1.0,1.5",
            "--learning_rate=0.02",
        ],
        "ade20k",
    )
    assert cfg.crop_size == (256, 256) and cfg.global_batch_size == 8
    assert not cfg.memory_loss and not cfg.eval_flip and cfg.mixed_precision
    assert not cfg.test_keep_ratio and cfg.eval_scales == (0.5, 1.0, 1.5)
    assert cfg.learning_rate == 0.02 and cfg.total_steps == 130 * (20210 // 8)


def test_new_names_old_names_and_the_test_scale_convention():
    new = _parse(["--slide_window=256,128", "--slide_stride=100,50", "--test_scale=512,2048"])
    old = _parse(["--eval_crop_size=256,128", "--eval_stride=100,50", "--test_scale=512,2048"])
    assert new == old
    assert new.eval_crop_size == (256, 128) and new.eval_stride == (100, 50)
    assert new.test_scale == (2048, 512)  # H,W on the command line; the field is (w, h)
    assert _parse(["--verbose"]).verbose == 2 and _parse(["--verbose=0"]).verbose == 0


def test_recipe_data_and_dataset_choose_the_base():
    assert _parse(["--recipe", "cocostuff"], None) == get_recipe("coco_stuff10k")
    cfg = _parse(["--dataset=coco_stuff164k"], "coco_stuff10k")
    assert (cfg.name, cfg.dataset, cfg.num_train_examples) == (
        "coco_stuff164k",
        "coco_stuff164k",
        118287,
    )
    assert cfg.learning_rate == get_recipe("coco_stuff10k").learning_rate
    assert cfg.replace(name="x") == get_recipe("coco_stuff164k").replace(name="x")
    with pytest.raises(SystemExit) as exit_:
        cli.parse_command_line([], None)
    assert exit_.value.code == 2


def test_data_is_a_folder_recipe_the_other_flags_override(tmp_path, monkeypatch):
    from keras_memseg.training import config

    seen = []

    def folder_recipe(root, recipe=None):
        seen.append((root, recipe))
        return get_recipe("sample").replace(name="mine", num_train_examples=40)

    monkeypatch.setattr(config, "folder_recipe", folder_recipe)
    cfg = _parse(["--data", str(tmp_path), "--num_train_examples=30"], None)
    assert seen == [(str(tmp_path), None)]
    assert cfg.name == "mine" and cfg.num_train_examples == 30
    _parse([f"--data={tmp_path}", "--recipe=camvid"], None)
    assert seen[-1] == (str(tmp_path), "camvid")


@pytest.mark.parametrize(
    "argv, problems",
    [
        (["--max_stpes=2"], ["--max_stpes=2: unknown flag (did you mean --max_steps?)"]),
        (["--foo=1"], ["--foo=1: unknown flag (--help lists the flags)"]),
        (
            ["--max_steps=1", "--", "x"],
            ["unexpected argument 'x' (every setting is a flag: write --name=value)"],
        ),
        (["--max_steps=abc", "--max_steps=1"], ["--max_steps='abc': an integer"]),
        (["--learning_rate", "fast"], ["--learning_rate='fast': a number"]),
        (["--eval_flip=maybe"], ["--eval_flip='maybe': true or false"]),
        (["--max_steps"], ["--max_steps: a value is missing (write --max_steps=VALUE)"]),
        (["--crop_size=abc"], ["--crop_size='abc': comma-separated ints, e.g. 128,128"]),
        (
            ["--max_steps=-5", "--eval_mode=fast"],
            ["--max_steps=-5: an integer >= 0", "--eval_mode='fast': one of 'whole', 'slide'"],
        ),
        (["--recipe=nope"], None),
    ],
)
def test_command_line_problems_are_one_line_each(argv, problems):
    found = _problems(argv)
    if problems is None:
        assert len(found) == 1 and found[0].startswith("unknown recipe 'nope'; one of: ade20k")
    else:
        assert found == problems


def _script(*argv):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "train_cocostuff.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )


def test_the_recipe_script_helps_without_tensorflow_and_trains_164k_with_a_flag():
    proc = _script("--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: train_cocostuff.py")
    for title in flag_help.GROUPS:
        assert f"\n{title}:\n" in proc.stdout
    assert "(default: 0.001; e.g. --learning_rate=0.005)" in " ".join(proc.stdout.split())
    proc = _script("--dataset=coco_stuff164k", "--config_only")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["num_train_examples"] == 118287
    proc = _script("--max_stpes=2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: --max_stpes=2: unknown flag (did you mean --max_steps?)"
