"""benchmarks/onednn.py: the settings per CPU, the crash column, the derived lines."""

import pytest
from benchmark_scripts import load_script
from benchmark_scripts import run_script


def test_settings_add_the_avx2_cap_only_where_the_cpu_has_avx512():
    onednn = load_script("onednn")
    assert set(onednn.settings_for({"avx2"})) == {"eigen", "onednn"}
    with_avx512 = onednn.settings_for({"avx2", "avx512f"})
    assert with_avx512["onednn_avx2"] == {
        "TF_ENABLE_ONEDNN_OPTS": "1",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
    }


def test_derived_lines_compare_the_medians_and_name_every_crash():
    onednn = load_script("onednn")
    ok = lambda ms: {"ok": True, "exit": 0, "median_ms": ms, "first_step_s": 1.0}
    runs = {
        "eigen/deeplabv3/1": [ok(100.0), ok(120.0)],
        "onednn/deeplabv3/1": [ok(80.0), ok(80.0)],
        "onednn_avx2/deeplabv3/1": [{"ok": False, "exit": -11, "error": "Segmentation fault"}],
    }
    settings = {"eigen": {}, "onednn": {}, "onednn_avx2": {}}
    lines = onednn.derive(runs, settings)
    assert lines[0] == ("deeplabv3 batch 1: oneDNN step 80 ms vs Eigen 110 ms (1.38x)")
    assert lines[-1] == "native crashes or failures: onednn_avx2/deeplabv3/1"
    payload = {
        "hardware": {"cpu": "X", "cpu_count": 2},
        "commit": "abc",
        "load_average_at_start": [1],
        "load_average_at_end": [1],
        "command": "python benchmarks/onednn.py",
        "runs": runs,
        "derived": lines,
    }
    assert "| onednn_avx2 | deeplabv3 | 1 | -11 | crash | - |" in onednn.table(payload)


@pytest.mark.slow  # ~45 s; the crash itself is guarded by tests/models/test_batch_one.py
def test_a_batch_one_probe_runs_in_a_subprocess(tmp_path):
    out = tmp_path / "onednn.json"
    _, result = run_script(
        "onednn",
        [
            "--settings=onednn",
            "--models=mcibi",
            "--batches=1",
            "--size=32",
            "--base_channels=4",
            "--steps=1",
            "--warmup=0",
            "--rounds=1",
            f"--out={out}",
        ],
        out,
    )
    (row,) = result["runs"]["onednn/mcibi/1"]
    assert row["exit"] == 0 and row["ok"] and row["onednn_enabled"] is True
    assert result["derived"][-1] == "native crashes or failures: none"
    assert "cpu_flags" in result["hardware"]
