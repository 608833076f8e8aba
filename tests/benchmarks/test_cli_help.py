"""benchmarks/cli_help.py: runs the helps in fresh processes and records them (no timing
is asserted: the numbers are the benchmark's, in benchmarks/results/)."""

from benchmark_scripts import run_script


def test_a_subset_runs_once_and_is_recorded(tmp_path):
    out = tmp_path / "cli_help.json"
    proc, result = run_script(
        "cli_help", ["--repeats=1", "--commands=help,datasets,recipe", f"--out={out}"], out
    )
    assert set(result["runs"]) == {"help", "datasets", "recipe"}
    for row in result["runs"].values():
        assert row["ok"] and len(row["seconds"]) == 1 and row["median_s"] == row["max_s"]
    assert result["runs"]["recipe"]["command"] == "python recipes/train_cocostuff.py --help"
    assert result["command"].startswith("python benchmarks/cli_help.py --repeats=1")
    assert result["commit"] and result["hardware"]["cpu_count"]
    assert "| `keras-memseg --help` |" in (tmp_path / "cli_help.md").read_text()
    assert "median s" in proc.stdout
