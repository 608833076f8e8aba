"""Recipe configs: the reference's values (`ssseg/configs/mcibi/`), flag parsing."""

import json
import os
import subprocess
import sys

import pytest

from keras_memseg.training import RECIPES
from keras_memseg.training import get_recipe
from keras_memseg.training.cli import parse_command_line

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PAPER = {  # lr0, wd, batch, epochs, iters, base_lr_m, memory loss, activation
    "ade20k": (0.01, 5e-4, 16, 130, 164190, 0.01, True, "relu"),
    "coco_stuff10k": (0.001, 1e-4, 16, 110, 61820, 0.0009, False, "relu"),
    # train split (2975 // 16 = 185 steps per epoch); the reference's trainval run for
    # its test-server numbers has 95480 steps (3475 // 16 = 217 per epoch).
    "cityscapes": (0.01, 5e-4, 16, 440, 81400, 0.009, False, "relu"),
    "lip": (0.01, 5e-4, 32, 150, 142650, 0.01, False, "leaky_relu"),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_values(name):
    cfg = get_recipe(name)
    lr, wd, bs, epochs, iters, base_lr_m, mem_loss, act = PAPER[name]
    assert (cfg.learning_rate, cfg.weight_decay, cfg.global_batch_size, cfg.epochs) == (
        lr,
        wd,
        bs,
        epochs,
    )
    assert cfg.total_steps == iters and cfg.base_lr_m == base_lr_m
    assert cfg.memory_loss == mem_loss and cfg.activation == act
    assert cfg.sgd_momentum == 0.9 and cfg.base_momentum == 0.9
    assert cfg.backbone == "resnet50_v1c" and cfg.output_stride == 8
    if mem_loss:  # from the second epoch
        assert cfg.memory_loss_start_step == cfg.steps_per_epoch
    assert get_recipe("cityscapes").eval_crop_size == (1024, 512)


def _parse(name, argv):
    config, _ = parse_command_line(argv, name)
    return config


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_flags_resolve_every_recipe(name):
    assert _parse(name, []) == get_recipe(name)


def test_flags_override_fields():
    cfg = _parse(
        "ade20k",
        [
            "--crop_size=256,256",
            "--global_batch_size=8",
            "--nomemory_loss",
            "--eval_scales=0.5,1.0,1.5",
            "--learning_rate=0.02",
        ],
    )
    assert cfg.crop_size == (256, 256) and cfg.global_batch_size == 8
    assert not cfg.memory_loss and cfg.eval_scales == (0.5, 1.0, 1.5)
    assert cfg.learning_rate == 0.02 and cfg.total_steps == 130 * (20210 // 8)


def test_segments_cover_the_run():
    from keras_memseg.training.trainer import _segments

    assert _segments(0, 230, 50) == [(0, 50, 4), (200, 30, 1)]
    assert _segments(30, 230, 50) == [(30, 20, 1), (50, 50, 3), (200, 30, 1)]
    assert _segments(230, 230, 50) == []


def _script(name, *argv, timeout=120):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", name), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def test_config_only_script_prints_json():
    proc = _script("train_lip.py", "--config_only", "--global_batch_size=8")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = json.loads(proc.stdout)
    assert cfg["activation"] == "leaky_relu" and cfg["global_batch_size"] == 8


def test_the_old_cocostuff_command_is_an_alias_of_coco_stuff10k():
    proc = _script("train_cocostuff.py", "--config_only")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["dataset"] == "coco_stuff10k"


def test_missing_data_exits_cleanly(tmp_path):
    proc = _script("train_coco_stuff10k.py", f"--data_dir={tmp_path}", f"--run_dir={tmp_path}/r")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "train_sample.py" in proc.stderr and "manual_dir" in proc.stderr


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"max_steps": -5}, "--max_steps=-5: an integer >= 0"),
        ({"eval_every": -1}, "--eval_every=-1: an integer >= 0"),
        ({"learning_rate": float("nan")}, "--learning_rate=nan: a finite number > 0"),
        ({"eval_mode": "fast"}, "--eval_mode='fast': one of 'whole', 'slide'"),
        ({"eval_scales": ()}, "--eval_scales='': one or more numbers > 0"),
        ({"crop_size": (0, 3)}, "--crop_size='0,3': empty (the dataset's) or two numbers > 0"),
        ({"dataset": "voc"}, "--dataset='voc': one of ade20k"),
        ({"eval_split": "test"}, "--eval_split='test': a split of sample"),
        ({"backbone": "resnet49"}, "--backbone='resnet49': one of resnet101"),
        ({"keep_checkpoints": -1}, "--keep_checkpoints=-1: an integer >= 0"),
        ({"dropout": 1.0}, "--dropout=1.0: a number in [0, 1)"),
        (
            {"intra_op_parallelism_threads": -1},
            "--intra_op_parallelism_threads=-1: an integer >= 0",
        ),
    ],
)
def test_every_field_is_checked_when_the_config_is_made(changes, message):
    from keras_memseg.training.config import ConfigError

    with pytest.raises(ConfigError) as error:
        get_recipe("sample").replace(**changes)
    assert message in str(error.value).splitlines()[0]


def test_withheld_test_labels_cannot_be_trained_or_scored():
    from keras_memseg.training.config import ConfigError

    with pytest.raises(ConfigError, match="labels of cityscapes's test split are withheld"):
        get_recipe("cityscapes").replace(eval_split="test")


def test_bad_flags_are_one_line_each_before_anything_is_written(tmp_path):
    proc = _script(
        "train_sample.py",
        "--crop_size=abc",
        "--max_steps=-5",
        "--eval_mode=fast",
        f"--run_dir={tmp_path}/r",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines == ["error: --crop_size='abc': comma-separated ints, e.g. 128,128"], lines
    proc = _script(
        "train_sample.py", "--max_steps=-5", "--eval_mode=fast", f"--run_dir={tmp_path}/r"
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        "error: --max_steps=-5: an integer >= 0",
        "error: --eval_mode='fast': one of 'whole', 'slide'",
    ], lines
    assert not (tmp_path / "r").exists()


def _error_lines(proc):
    """The stderr lines of a refused command, blank ones dropped."""
    return [line for line in proc.stderr.splitlines() if line.strip()]


def _text_checkpoint(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_text("not a checkpoint\n")
    return path


def _pickle_payload(tmp_path):
    """A `.pth` whose unpickling would create `tmp_path/pwned` (it must never run)."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "pwned"),))

    path = tmp_path / "payload.pth"
    path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    return path


# Each case is a fresh recipe process (~15-20 s, TensorFlow's import): the default run
# keeps one of each kind; the others' parsing is covered in-process by
# `test_command_line_problems_are_one_line_each` and tests/training/test_preflight.py.
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "make_argv, last_line",
    [
        pytest.param(
            lambda t: ["--foo=1"],
            "--foo=1: unknown flag (--help lists the flags)",
            id="unknown_flag",
        ),
        pytest.param(
            lambda t: ["--max_stpes=2"],
            "--max_stpes=2: unknown flag (did you mean --max_steps?)",
            id="misspelt_flag",
            marks=SLOW,
        ),
        pytest.param(
            lambda t: ["--max_steps=abc"], "--max_steps='abc': an integer", id="bad_integer"
        ),
        pytest.param(
            lambda t: ["--crop_size=100000,100000"],
            "--crop_size='100000,100000': at most 4096 pixels each (a sanity bound)",
            id="huge_crop",
            marks=SLOW,
        ),
        pytest.param(
            lambda t: [f"--pretrained={t}/missing.pth"],
            "--pretrained='{t}/missing.pth': pretrained weights not found: {t}/missing.pth",
            id="pretrained_missing",
            marks=SLOW,
        ),
        pytest.param(
            lambda t: [f"--pretrained={_text_checkpoint(t)}"],
            "--pretrained='{t}/weights.pth': ",
            id="pretrained_text_file",
            marks=SLOW,
        ),
        pytest.param(
            lambda t: [f"--pretrained={_pickle_payload(t)}"],
            "--pretrained='{t}/payload.pth': ",
            id="pretrained_pickle_payload",
        ),
        pytest.param(
            lambda t: [f"--run_dir={t}/file"],
            "--run_dir='{t}/file': {t}/file exists and is not a folder",
            id="run_dir_is_a_file",
        ),
    ],
)
def test_bad_command_lines_are_one_line_naming_the_flag_before_anything_is_written(
    tmp_path, make_argv, last_line
):
    (tmp_path / "file").write_text("a file, not a folder\n")
    run = tmp_path / "run"
    argv = make_argv(tmp_path)
    if not any(arg.startswith("--run_dir=") for arg in argv):
        argv.append(f"--run_dir={run}")
    before = sorted(os.listdir(tmp_path))
    proc = _script("train_sample.py", *argv, "--max_steps=1")
    lines = _error_lines(proc)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "FATAL" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: " + last_line.format(t=tmp_path)), lines
    assert sorted(os.listdir(tmp_path)) == before  # no run folder, no payload side effect


def test_a_corrupt_image_is_one_line_naming_it_and_the_run_folder_is_kept(tmp_path):
    import shutil

    manual = tmp_path / "manual"
    shutil.copytree(os.path.join(ROOT, "keras_memseg", "datasets", "camvid", "dummy_data"), manual)
    image = manual / "train" / "0001TP_000000.png"
    image.write_bytes(image.read_bytes()[:100])  # truncated
    proc = _script(
        "train_camvid.py",
        f"--manual_dir={manual}",
        f"--data_dir={tmp_path}/data",
        f"--run_dir={tmp_path}/run",
        "--num_train_examples=3",
        "--global_batch_size=1",
        "--max_steps=1",
        "--crop_size=32,32",
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert _error_lines(proc)[-1] == (
        f"error: cannot decode image {image}: image file is truncated"
    ), proc.stderr[-2000:]
    assert (tmp_path / "run" / "config.json").exists()  # resumable once the data is fixed


def _read_only_mount_prefix(folder):
    """argv prefix running a command with `folder` a read-only tmpfs (a user namespace),
    or None where unshare cannot do it."""
    import shutil

    if not shutil.which("unshare"):
        return None
    probe = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            f"mount -t tmpfs -o ro tmpfs '{folder}' && ! mkdir '{folder}/x' 2>/dev/null",
        ],
        capture_output=True,
    )
    if probe.returncode:
        return None
    return [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        f'mount -t tmpfs -o ro tmpfs \'{folder}\' && exec "$0" "$@"',
    ]


def test_a_read_only_run_folder_location_is_one_line_naming_it(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    prefix = _read_only_mount_prefix(folder)
    if prefix is None:
        if os.geteuid() == 0:
            pytest.skip("needs unshare (a read-only mount) or a non-root user")
        folder.chmod(0o555)
        prefix = []
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [
            *prefix,
            sys.executable,
            os.path.join(ROOT, "recipes", "train_sample.py"),
            f"--run_dir={folder}/run",
            "--max_steps=1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert _error_lines(proc) == [
        f"error: --run_dir='{folder}/run': {folder} is not writable (a read-only location?)"
    ], proc.stderr[-2000:]


def test_sizes_are_bounded_with_the_other_flags():
    from keras_memseg.training.config import ConfigError

    assert _parse("sample", ["--crop_size=4096,4096"]).crop_size == (4096, 4096)
    with pytest.raises(ConfigError) as error:
        _parse("sample", ["--crop_size=100000,100000", "--ratio_range=0.5,20", "--max_steps=-1"])
    assert error.value.problems == [
        "--max_steps=-1: an integer >= 0",
        "--crop_size='100000,100000': at most 4096 pixels each (a sanity bound)",
        "--ratio_range='0.5,20.0': at most 8 each (a sanity bound)",
    ]
