"""benchmarks/compare_reference.py: end to end on tiny settings (ours alone, and a fake
"reference" package standing in for the authors' code), and the target verdicts."""

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest
from benchmark_scripts import load_script
from benchmark_scripts import script_path

SCRIPT = script_path("compare_reference")
TINY = [
    "--backbone",
    "resnet18_v1c",
    "--base_channels",
    "8",
    "--size",
    "64",
    "--steps",
    "1",
    "--warmup",
    "0",
]


def _load_script():
    return load_script("compare_reference")


def _run(args, tmp_path, env=None):
    out = tmp_path / "compare.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), out.with_suffix(".md").read_text()


@pytest.mark.slow  # CI budget, ~50 s: a real training subprocess; the table/derive code is checked by the fast tests here, a batch-1 crash by tests/models/test_batch_one.py
def test_ours_alone_writes_json_and_table(tmp_path):
    payload, table = _run(
        TINY + ["--batch", "1", "--frameworks", "ours_tf", "--models", "deeplabv3"], tmp_path
    )
    assert {
        "settings",
        "hardware",
        "load_at_driver_start",
        "runs",
        "derived",
        "targets",
        "reference_ran",
        "command",
    } <= set(payload)
    assert payload["reference_ran"] is False
    assert payload["settings"]["frameworks"] == ["ours_tf"]
    assert {"cpu", "cpu_count", "platform"} <= set(payload["hardware"])
    row = payload["runs"]["ours_tf"]["deeplabv3"]
    assert row["ok"], row
    assert len(row["step_s"]) == 1 and row["median_ms"] > 0
    assert len(row["load_at_timing_start"]) == 3 and len(row["load_before_worker"]) == 3
    assert row["policy_in"] in ("compile", "constructor")
    assert row["jit_compile"] is False
    assert "Ours alone" in table
    assert (
        "| implementation | MCIBI step | DeepLabV3 step | MCIBI/DeepLabV3 | speed vs authors (x) |"
    ) in table
    assert "| ours, TensorFlow `fit` (jit_compile=False) | not run |" in table
    assert "Targets (printed, not asserted)" in table
    assert (
        "n/a : TF (`fit` default) DeepLabV3 >= 1.3x faster than the authors' "
        "(authors' code not run (no --reference_dir))" in table
    )


FAKE_SSSEG = '''
"""A stand-in for sssegmentation's ssseg.modules: a 1x1-conv "segmentor"."""
import json
import os

import cv2  # noqa: F401 - stubbed by the benchmark when not installed, like the real one
import pandas  # noqa: F401
import torch
from torchvision.ops.boxes import batched_nms  # noqa: F401

LOG = os.environ["FAKE_SSSEG_LOG"]


def _log(**entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry, default=str) + "\\n")


class SSSegInputStructure:
    def __init__(self, mode, images, seg_targets):
        self.images, self.seg_targets = images, seg_targets


class _Output:
    def __init__(self, loss):
        self.loss = loss

    def getsetvariables(self):
        return {"loss": self.loss, "losses_log_dict": {}}


class _Memory(torch.nn.Module):
    def __init__(self, k, c):
        super().__init__()
        self.memory = torch.nn.Parameter(torch.zeros(k, 1, c), requires_grad=False)


class _Segmentor(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, cfg["num_classes"], 1)
        if cfg["type"] == "MCIBI":
            self.memory_module = _Memory(cfg["num_classes"], 4)

    def forward(self, data_meta, **kwargs):
        _log(event="forward", kwargs=kwargs, image_shape=list(data_meta.images.shape),
             ignored=int((data_meta.seg_targets == -100).sum()))
        logits = self.conv(data_meta.images)
        loss = torch.nn.functional.cross_entropy(logits, data_meta.seg_targets, ignore_index=-100)
        if hasattr(self, "memory_module"):
            with torch.no_grad():
                self.memory_module.memory[0] = 1.0
        return _Output(loss)


def BuildSegmentor(segmentor_cfg, mode):
    _log(event="build", cfg=segmentor_cfg, mode=mode)
    return _Segmentor(segmentor_cfg)


def BuildOptimizer(model, optimizer_cfg):
    _log(event="optimizer", cfg=optimizer_cfg)
    keys = ("lr", "momentum", "weight_decay")
    return torch.optim.SGD(model.parameters(), **{k: optimizer_cfg[k] for k in keys})


class _Scheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer

    def updatelr(self):
        return 0.01

    def step(self):
        self.optimizer.step()


def BuildScheduler(optimizer, scheduler_cfg):
    _log(event="scheduler", cfg=scheduler_cfg)
    return _Scheduler(optimizer)
'''


def test_reference_path_on_a_fake_reference(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    reference = tmp_path / "fake_sssegmentation"
    (reference / "ssseg" / "modules").mkdir(parents=True)
    (reference / "ssseg" / "__init__.py").write_text("")
    (reference / "ssseg" / "modules" / "__init__.py").write_text(textwrap.dedent(FAKE_SSSEG))
    log = tmp_path / "fake.log"
    monkeypatch.setenv("FAKE_SSSEG_LOG", str(log))
    payload, table = _run(
        TINY
        + ["--batch", "2", "--frameworks", "reference_torch", "--reference_dir", str(reference)],
        tmp_path,
    )
    assert payload["reference_ran"] is True
    runs = payload["runs"]["reference_torch"]
    assert runs["mcibi"]["ok"] and runs["deeplabv3"]["ok"], runs
    assert runs["mcibi"]["memory_rows_filled"] == 1
    expected_stubs = [
        n for n in ("pandas", "cv2", "torchvision") if importlib.util.find_spec(n) is None
    ]
    assert runs["mcibi"]["stubbed_imports"] == expected_stubs
    assert payload["derived"]["reference_torch"]["mcibi_over_deeplabv3"] == pytest.approx(
        runs["mcibi"]["median_ms"] / runs["deeplabv3"]["median_ms"], abs=1e-3
    )
    assert "| authors' PyTorch (sssegmentation) |" in table

    entries = [json.loads(line) for line in log.read_text().splitlines()]
    builds = {e["cfg"]["type"]: e["cfg"] for e in entries if e["event"] == "build"}
    assert set(builds) == {"MCIBI", "Deeplabv3"}
    for cfg in builds.values():
        assert cfg["num_classes"] == 11
        assert cfg["norm_cfg"] == {"type": "BatchNorm2d"}
        assert cfg["backbone"]["pretrained"] is False
        assert cfg["backbone"]["outstride"] == 8 and cfg["backbone"]["depth"] == 18
    mcibi = builds["MCIBI"]["head"]
    # ResNet-18 at base width 8: C4 has 8 * 8 channels; heads scale with the width.
    assert (mcibi["in_channels"], mcibi["feats_channels"], mcibi["transform_channels"]) == (
        64,
        64,
        32,
    )
    assert mcibi["use_loss"] is True
    assert mcibi["context_within_image"]["cfg"]["dilations"] == [1, 12, 24, 36]
    assert builds["Deeplabv3"]["head"]["dilations"] == [1, 12, 24, 36]
    optimizers = [e["cfg"] for e in entries if e["event"] == "optimizer"]
    assert all((o["lr"], o["momentum"], o["weight_decay"]) == (0.01, 0.9, 5e-4) for o in optimizers)
    forwards = [e for e in entries if e["event"] == "forward"]
    assert len(forwards) == 2  # one step per model (--steps 1 --warmup 0)
    mcibi_kwargs = [f["kwargs"] for f in forwards if f["kwargs"]]
    assert mcibi_kwargs == [{"learning_rate": 0.01, "epoch": 2}]  # memory-loss epoch
    assert all(f["image_shape"] == [2, 3, 64, 64] and f["ignored"] > 0 for f in forwards)


def test_reference_needs_its_directory_and_batch_two(tmp_path):
    for args, message in (
        (["--frameworks", "reference_torch"], "needs --reference_dir"),
        (["--reference_dir", str(tmp_path)], "has no ssseg/modules"),
        (["--batch", "0"], "--batch must be >= 1"),
    ):
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "x.json")],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    (tmp_path / "ssseg" / "modules").mkdir(parents=True)
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--reference_dir",
            str(tmp_path),
            "--batch",
            "1",
            "--out",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--batch >= 2" in proc.stderr, proc.stderr


def test_ratios_and_target_verdicts():
    module = _load_script()

    def ok(ms):
        return {"ok": True, "median_ms": ms}

    runs = {
        "reference_torch": {"mcibi": ok(2000.0), "deeplabv3": ok(1500.0)},
        "ours_tf": {
            "mcibi": {**ok(1000.0), "forward_gflops": 130.0, "forward_gflops_computed": 110.0},
            "deeplabv3": {**ok(800.0), "forward_gflops": 100.0, "forward_gflops_computed": 75.0},
        },
        "ours_tf_xla": {"mcibi": ok(1100.0), "deeplabv3": ok(700.0)},
        "ours_jax": {"mcibi": {"ok": False, "error": "boom"}, "deeplabv3": ok(1200.0)},
    }
    derived = module.derive(runs)
    # Hand-computed: authors'/ours and MCIBI/DeepLabV3 from the medians above.
    assert derived["ours_tf"] == {
        "mcibi_over_deeplabv3": 1.25,
        "speedup_vs_authors_mcibi": 2.0,
        "speedup_vs_authors_deeplabv3": 1.875,
        "flop_ratio_mcibi_over_deeplabv3": 1.3,
        "computed_flop_ratio_mcibi_over_deeplabv3": 1.467,  # 110 / 75
    }
    assert derived["ours_tf_xla"]["xla_over_tf_mcibi"] == 1.1
    assert derived["ours_tf_xla"]["xla_over_tf_deeplabv3"] == 0.875
    assert derived["ours_jax"] == {"speedup_vs_authors_deeplabv3": 1.25}
    assert derived["reference_torch"] == {"mcibi_over_deeplabv3": 1.333}
    lines = module.targets(runs, derived, reference_ran=True)
    verdicts = {line.split(": ", 1)[1]: line.split(":")[0].strip() for line in lines}
    assert verdicts["TF (`fit` default) MCIBI >= 1.3x faster than the authors' (2.00x)"] == "PASS"
    assert (
        verdicts["TF (`fit` default) DeepLabV3 >= 1.3x faster than the authors' (1.88x)"] == "PASS"
    )
    assert verdicts["JAX MCIBI >= 1.3x faster than the authors' (failed)"] == "n/a"
    assert verdicts["JAX DeepLabV3 >= 1.3x faster than the authors' (1.25x)"] == "FAIL"
    assert (
        verdicts["TF with XLA no slower than without, MCIBI (XLA/no-XLA step time 1.10)"] == "FAIL"
    )
    assert (
        verdicts["TF with XLA no slower than without, DeepLabV3 (XLA/no-XLA step time 0.88)"]
        == "PASS"
    )
    ratio = "MCIBI/DeepLabV3 step <= 1.355 (FLOP ratio at 512, K=150, benchmarks/flops.py)"
    assert verdicts[f"ours_tf {ratio} (1.250)"] == "PASS"
    assert verdicts[f"ours_tf_xla {ratio} (1.571)"] == "FAIL"
    assert verdicts[f"ours_jax {ratio} (not measured)"] == "n/a"
    # The measured models' own FLOP ratio (130 / 100 GFLOPs counted by the ours_tf worker).
    measured = (
        "MCIBI/DeepLabV3 step <= 1.3 (forward FLOP ratio of the measured models, "
        "nominal convolutions)"
    )
    assert verdicts[f"ours_tf {measured} (1.250)"] == "PASS"
    assert verdicts[f"ours_tf_xla {measured} (1.571)"] == "FAIL"
    # The ratio of the work as computed is reported beside them, as information only.
    info = [line for line in lines if line.startswith("info: ")]
    assert len(info) == 1 and "as computed" in info[0] and ": 1.467;" in info[0]


def test_compile_adapter_uses_the_new_api_and_falls_back_to_the_old():
    module = _load_script()

    class NewApi:  # training policy in compile
        def __init__(self, **constructor):
            assert not constructor, "the new API takes no policy in the constructor"

        def compile(self, optimizer, weight_decay=0.0, jit_compile=False):
            self.compiled = (optimizer, weight_decay, jit_compile)

    class OldApi:  # training policy in the constructor
        def __init__(self, weight_decay=0.0):
            self.weight_decay = weight_decay

        def compile(self, optimizer, jit_compile=False):
            self.compiled = (optimizer, jit_compile)

    model, where = module.compile_with_policy(
        NewApi, lambda: "sgd", {"weight_decay": 5e-4}, {"weight_decay": 5e-4}, True
    )
    assert where == "compile" and model.compiled == ("sgd", 5e-4, True)
    model, where = module.compile_with_policy(
        OldApi, lambda: "sgd", {"weight_decay": 5e-4}, {"weight_decay": 5e-4}, None
    )
    assert where == "constructor" and model.weight_decay == 5e-4
    assert model.compiled == ("sgd", False)

    class Broken(NewApi):
        def compile(self, optimizer, **kwargs):
            raise TypeError("something else")

    with pytest.raises(TypeError, match="something else"):
        module.compile_with_policy(Broken, lambda: "sgd", {"weight_decay": 5e-4}, {}, None)


def test_training_policy_turns_the_memory_loss_on_for_mcibi_only():
    module = _load_script()
    new, old = module.training_policy("mcibi")
    assert new == {
        "weight_decay": 5e-4,
        "loss_weights": {"memory": 1.0},
        "memory_loss_start_step": 0,
    }
    assert old == {"weight_decay": 5e-4, "memory_loss": True, "memory_loss_start_step": 0}
    assert module.training_policy("deeplabv3") == ({"weight_decay": 5e-4}, {"weight_decay": 5e-4})
