"""recipes/evaluate.py: a .keras file, a preset folder or a run's checkpoint + config;
one-line errors for what it cannot evaluate; Cityscapes test-set submissions."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import DeepLabV3
from keras_memseg.models import MemorySegmenter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMMY = os.path.join(ROOT, "keras_memseg", "datasets", "cityscapes", "dummy_data")


def _evaluate(*argv, cwd=None):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the script quiets TensorFlow itself
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "evaluate.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def _model(num_classes, cls=MemorySegmenter):
    kwargs = dict(feats_channels=8, aux_channels=8, aspp_rates=(1, 2))
    if cls is MemorySegmenter:
        kwargs["transform_channels"] = 4
    model = cls(DilatedResNetBackbone(depth=18, base_channels=4), num_classes, **kwargs)
    model(np.zeros((1, 32, 32, 3), "float32"))
    if cls is MemorySegmenter:
        model.memory.memory.assign(np.ones(model.memory.memory.shape, "float32"))
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    model = _model(11)
    model.save(str(root / "model.keras"))
    model.save_to_preset(str(root / "preset"))
    _model(5, DeepLabV3).save(str(root / "five.keras"))
    (root / "notes.keras").write_text("not a model")
    broken = _model(11)
    kernel = broken.decoder_stage2.classifier.kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    broken.save(str(root / "nan.keras"))
    return root


def test_keras_file_and_preset_folder_give_the_same_report(saved, tmp_path):
    reports = []
    for source in ("model.keras", "preset"):
        out = tmp_path / f"{source}.json"
        proc = _evaluate(
            f"--model={saved / source}", "--dataset=sample", "--max_examples=2", f"--out={out}"
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "mIoU" in proc.stdout and "cudart" not in proc.stderr
        reports.append(json.loads(out.read_text()))
        assert (tmp_path / f"{source}_iou.png").stat().st_size > 1000
    assert reports[0] == reports[1] and reports[0]["num_images"] == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model={root}/five.keras"], "--model has 5 classes, --dataset=sample has 11"),
        (["--model={root}/notes.keras"], "is not a .keras model file"),
        (["--model={root}/missing.keras"], "model not found"),
        (["--model={root}/model.keras", "--split=test"], "--split=test: a split of sample"),
        (["--model={root}/model.keras", "--scales=abc"], "--scales=abc: comma-separated floats"),
        (["--model={root}/model.keras", "--mode=fast"], "--mode=fast: whole or slide"),
        (["--model={root}/model.keras", "--dataset=voc"], "--dataset=voc: unknown dataset 'voc'"),
        (["--model={root}/model.keras", "--slide_window=1,2,3"], "argument --slide_window"),
        (["--model={root}/ckpt.weights.h5"], "not found"),
        (["--model={root}/nan.keras"], "evaluate: weights hold NaN/inf"),
    ],
)
def test_bad_inputs_are_one_line_errors(saved, argv, message):
    argv = [a.format(root=saved) for a in argv]
    if not any(a.startswith("--dataset") for a in argv):
        argv.append("--dataset=sample")
    proc = _evaluate(*argv)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]


def test_a_runs_checkpoint_with_its_config(tmp_path):
    from keras_memseg.training import get_recipe
    from keras_memseg.training.trainer import build_model

    config = get_recipe("sample").replace(
        base_channels=4, feats_channels=8, transform_channels=4, aux_channels=8
    )
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(config.to_json())
    model = build_model(config, 11)
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.memory.memory.assign(np.ones(model.memory.memory.shape, "float32"))
    model.save_weights(str(run / "checkpoints" / "ckpt-0000002.weights.h5"))
    proc = _evaluate(
        f"--model={run / 'checkpoints' / 'ckpt-0000002.weights.h5'}",
        "--dataset=sample",
        "--max_examples=1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mIoU" in proc.stdout


def test_cityscapes_test_split_needs_a_submission_and_writes_label_ids(tmp_path):
    model = _model(19)
    model.save(str(tmp_path / "city.keras"))
    common = [
        f"--model={tmp_path / 'city.keras'}",
        "--dataset=cityscapes",
        "--split=test",
        f"--manual_dir={DUMMY}",
        f"--data_dir={tmp_path / 'tfds'}",
    ]
    proc = _evaluate(*common)
    assert proc.returncode == 2 and "labels are withheld" in proc.stderr
    proc = _evaluate(*common, f"--submission_dir={tmp_path / 'sub'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(os.listdir(tmp_path / "sub"))
    assert files == ["berlin_000000_000019_leftImg8bit.png"]
    from PIL import Image

    ids = np.asarray(Image.open(tmp_path / "sub" / files[0]))
    valid = {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33}
    assert set(np.unique(ids)) <= valid


# -- flag checks in-process: `main(argv)` of recipes/evaluate.py ---------------------------
def _alarm(signum, frame):
    raise TimeoutError("evaluate.py blocked (reading a FIFO?)")


@pytest.fixture(scope="module")
def evaluate_main():
    """`run(*argv)`: the exit code of recipes/evaluate.py's `main` for these flags, run in
    this process."""
    import importlib.util

    module = sys.modules.get("recipes_evaluate")
    if module is None:
        sys.path.insert(0, os.path.join(ROOT, "recipes"))  # for `import _console`
        spec = importlib.util.spec_from_file_location(
            "recipes_evaluate", os.path.join(ROOT, "recipes", "evaluate.py")
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["recipes_evaluate"] = module

    def run(*argv):
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(60)  # a regression fails the test instead of hanging the run
        try:
            return module.main(list(argv))
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    return run


@pytest.fixture
def no_evaluation(monkeypatch):
    """Makes the evaluation itself fail the test: the checks must come first."""
    import keras_memseg.evaluation

    def evaluate_dataset(*args, **kwargs):
        raise AssertionError("the evaluation ran before --output was checked")

    monkeypatch.setattr(keras_memseg.evaluation, "evaluate_dataset", evaluate_dataset)


def test_output_is_never_overwritten_and_checked_first(
    saved, tmp_path, evaluate_main, no_evaluation, capsys
):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    (tmp_path / "report_iou.png").write_bytes(b"an earlier chart")
    model = saved / "model.keras"
    before = model.read_bytes()
    cases = [
        (model, model, "is the --model file"),
        (saved / "preset", saved / "preset" / "report.json", "inside the --model preset folder"),
        (saved / "preset", saved / "preset" / "config.json", "inside the --model preset folder"),
        (model, notes, "exists and is never overwritten; choose another path or delete it"),
        (model, tmp_path / "report.json", "report_iou.png (the IoU chart of --out) exists"),
        (model, notes / "report.json", "is not a folder"),
    ]
    for source, output, message in cases:
        code = evaluate_main(f"--model={source}", "--dataset=sample", f"--out={output}")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, (output, err)
        assert err[0].startswith(f"error: --out={output}") and message in err[0], err
    assert model.read_bytes() == before and notes.read_text() == "keep me"
    assert (tmp_path / "report_iou.png").read_bytes() == b"an earlier chart"
    assert not (tmp_path / "report.json").exists()


def test_output_in_a_read_only_folder_is_refused_first(
    saved, tmp_path, evaluate_main, no_evaluation, capsys, monkeypatch
):
    # A read-only mount: access(W_OK) fails with EROFS, for root too. Simulated by
    # os.access, as the tests run as root on writable disks.
    folder = tmp_path / "mounted"
    folder.mkdir()
    access = os.access

    def read_only(path, mode, **kwargs):
        if os.path.realpath(path) == str(folder) and mode & os.W_OK:
            return False
        return access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", read_only)
    for output in (folder / "report.json", folder / "new" / "sub" / "report.json"):
        code = evaluate_main(
            f"--model={saved / 'model.keras'}", "--dataset=sample", f"--out={output}"
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert err[0] == (
            f"error: --out={output}: {folder} is not writable (a read-only location?); "
            "choose a writable path"
        ), err
    assert os.listdir(folder) == []


def test_output_and_show_dir_on_a_read_only_mount_are_refused_first(saved, tmp_path):
    # As a user runs it: the report was computed, then an OSError traceback. Now one
    # line, exit 2, before the model loads (a real read-only mount, root refused too).
    from tests.read_only import read_only_prefix

    folder = tmp_path / "mounted"
    folder.mkdir()
    prefix = read_only_prefix(folder)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    script = os.path.join(ROOT, "recipes", "evaluate.py")
    model = f"--model={saved / 'model.keras'}"
    cases = [
        (
            f"--out={folder}/report.json",
            f"--out={folder}/report.json: {folder} is not writable (a read-only "
            "location?); choose a writable path",
        ),
        (
            f"--show_dir={folder}/overlays",
            f"--show_dir={folder}/overlays: {folder} is not writable (a read-only location?)",
        ),
    ]
    argv = [sys.executable, script, model, "--dataset=sample", *(flag for flag, _ in cases)]
    proc = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {cases[0][1]}"], proc.stderr[-2000:]  # the first bad flag
    proc = subprocess.run(
        [*prefix, *argv[:-2], cases[1][0]], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {cases[1][1]}"], proc.stderr[-2000:]


def test_a_fifo_model_is_refused_unopened(saved, tmp_path, evaluate_main, capsys):
    for name in ("model.keras", "ckpt-1.weights.h5"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        (tmp_path / "config.json").write_text(json.dumps({"dataset": "sample"}))
        assert evaluate_main(f"--model={fifo}", "--dataset=sample") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {fifo} is a FIFO"), err


# -- the shared flag vocabulary: run and preset folders as --model, old spellings ----------
def _tiny_run(folder, with_model=True):
    """A run folder as training writes it: config.json (the RecipeConfig), checkpoints/
    and, once training finished, model.keras."""
    from keras_memseg.training import get_recipe
    from keras_memseg.training.trainer import build_model

    config = get_recipe("sample").replace(
        base_channels=4, feats_channels=8, transform_channels=4, aux_channels=8
    )
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.json").write_text(config.to_json())
    model = build_model(config, 11)
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.memory.memory.assign(np.ones(model.memory.memory.shape, "float32"))
    model.save_weights(str(folder / "checkpoints" / "ckpt-0000002.weights.h5"))
    if with_model:
        model.save(str(folder / "model.keras"))
    return folder


def test_a_run_folder_is_a_model_and_names_its_dataset(tmp_path):
    run = _tiny_run(tmp_path / "run")
    out = tmp_path / "report.json"
    proc = _evaluate(f"--model={run}", "--max_examples=1", f"--out={out}")  # no --dataset
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mIoU" in proc.stdout and json.loads(out.read_text())["num_images"] == 1


def test_without_dataset_a_model_file_asks_for_one(saved, evaluate_main, capsys):
    assert evaluate_main(f"--model={saved / 'model.keras'}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pass --dataset NAME or --data ROOT" in err[0], err


def test_an_unfinished_run_folder_stands_for_its_latest_checkpoint(tmp_path, evaluate_main):
    from keras_memseg.training import evaluate_cli

    run = _tiny_run(tmp_path / "run", with_model=False)
    args = evaluate_cli.parse_args([f"--model={run}"])
    path = evaluate_cli.model_path(args)
    assert path == str(run / "checkpoints" / "ckpt-0000002.weights.h5")
    assert evaluate_cli.dataset_of(args, path)[0] == "sample"


def test_old_spellings_still_work_with_a_note(saved, tmp_path, evaluate_main, capsys):
    from keras_memseg.training import evaluate_cli

    args = evaluate_cli.parse_args(
        ["--model=m", "--crop_size=512,1024", "--stride", "341,341", "--noflip", "--verbose"]
    )
    assert args.slide_window == (512, 1024) and args.slide_stride == (341, 341)
    assert args.flip is False and args.verbose == 2
    notes = capsys.readouterr().err.strip().splitlines()
    assert notes == [
        "note: --crop_size is now --slide_window",
        "note: --stride is now --slide_stride",
        "note: --noflip is now --no-flip",
    ]
    for argv, flip in ((["--flip"], True), (["--flip=false"], False), (["--no-flip"], False)):
        assert evaluate_cli.parse_args(["--model=m", *argv]).flip is flip
    assert evaluate_cli.parse_args(["--model=m", "--test_scale=512,2048"]).test_scale == (512, 2048)
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    code = evaluate_main(
        f"--model={saved / 'model.keras'}", "--dataset=sample", f"--output={notes}"
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[0] == "note: --output is now --out", err
    assert len(err) == 2 and err[1].startswith(f"error: --out={notes}: {notes} exists"), err


def test_the_module_imports_nothing_heavy_at_its_top():
    # Flags are parsed before TensorFlow loads: the module's own top-level imports are
    # the standard library and two light modules (the package's parents are not ours).
    import ast

    from keras_memseg.training import evaluate_cli

    tree = ast.parse(open(evaluate_cli.__file__).read())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    assert names <= {"os", "sys", "keras_memseg.console", "keras_memseg.file_kinds"}, names
