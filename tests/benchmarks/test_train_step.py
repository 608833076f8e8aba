"""benchmarks/train_step.py --conv_path conv: every convolution of the timed step goes down
Conv2D's path (the worker reports what each one computed with)."""

import pytest
from benchmark_scripts import run_script


def _run(tmp_path, conv_path):
    out = tmp_path / f"{conv_path}.json"
    _, result = run_script(
        "train_step",
        [
            "--size=32",
            "--classes=3",
            "--steps=1",
            "--warmup=1",
            "--jit",
            "off",
            "--models",
            "deeplabv3",
            "--skip",
            "flops",
            "update",
            f"--conv_path={conv_path}",
            f"--out={out}",
        ],
        out,
    )
    assert result["settings"]["conv_path"] == conv_path
    (row,) = [v for k, v in result["steps"].items() if "deeplabv3" in k]
    assert row["ok"] and row["median_ms"] > 0, row
    return row["conv_strategies"]


@pytest.mark.slow  # CI budget, ~45 s: traces two train steps in subprocesses
def test_conv_path_sends_every_matmul_conv_down_conv2d(tmp_path):
    # The default ("auto") reports its 1x1 matmuls and dilated tap sums the same way; the
    # policy's own choices are tested in tests/layers. One run keeps the suite short.
    assert set(_run(tmp_path, "conv")) == {"conv"}
