"""benchmarks/sample_recipe.py: the phase accounting, and a short run of the real recipe
through its timers (what it records: command, commit, no temporary path)."""

import pytest
from benchmark_scripts import load_script
from benchmark_scripts import run_script


def _load_script():
    return load_script("sample_recipe")


def test_phases_subtract_what_ran_inside_the_steps_and_keep_the_rest_as_other():
    script = _load_script()
    marks = [
        ("startup", 0.0, 6.0),
        ("first_step", 10.0, 30.0),
        ("steps", 30.0, 100.0),
        ("checkpoint_and_backup", 40.0, 41.0),  # inside the steps
        ("evaluation", 60.0, 64.0),  # periodic: inside the steps
        ("evaluation", 105.0, 107.0),  # final: after them
        ("export", 100.0, 105.0),
    ]
    got = script.phases(marks, 110.0)
    assert got["steps"] == 65.0  # 70 - 1 - 4
    assert got["evaluation"] == 6.0 and got["checkpoint_and_backup"] == 1.0
    assert got["other"] == 110.0 - (6 + 20 + 65 + 1 + 6 + 5)  # 10 - 6 and 107 - 110
    assert sum(got.values()) == 110.0


def test_no_baseline_from_another_run_is_kept():
    script = _load_script()
    assert not [name for name in vars(script) if name.startswith("BASELINE")]


@pytest.mark.slow  # CI budget, ~45 s: the recipe in a subprocess; the phase accounting is checked by the fast tests here
def test_a_short_run_of_the_recipe_through_the_timers(tmp_path):
    out = tmp_path / "r.json"
    flags = ["--max_steps=2", "--eval_every=0", "--checkpoint_every=1", "--export_dir="]
    flags += [f"--run_dir={tmp_path / 'run'}", "--max_eval_examples=2", "--show_dir=none"]
    proc, result = run_script("sample_recipe", ["--out", str(out), "--", *flags], out)
    phases = result["phases"]
    assert result["steps"] == 2 and 0.0 <= result["miou"] <= 1.0
    for name in ("startup", "setup", "first_step", "steps", "checkpoint_and_backup", "evaluation"):
        assert phases[name] > 0, (name, phases)
    assert "export" not in phases  # --export_dir= disables it
    assert abs(sum(phases.values()) - result["total_seconds"]) < 0.05
    assert "target" not in result and "baseline_seconds" not in result
    assert result["command"].startswith("python benchmarks/sample_recipe.py --out ")
    assert result["command"].endswith(" -- " + " ".join(flags))
    assert {"commit", "changed_files", "date", "hardware"} <= set(result)
    assert result["recipe_flags"] == flags  # given run and export folders: no scratch one
    assert out.with_suffix(".md").read_text().count("|") > 10
