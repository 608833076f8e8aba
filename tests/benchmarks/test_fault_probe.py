"""benchmarks/fault_probe.py: the classifiers on made-up outcomes, the file snapshots, and
two cheap cases end to end (a refused flag as a subprocess, a constructor call) with the
shape of the JSON and of the markdown table."""

import json
import os
import subprocess
import sys
import tempfile

from benchmark_scripts import load_script
from benchmark_scripts import script_path

SCRIPT = script_path("fault_probe")


def _load_script():
    return load_script("fault_probe")


def test_command_outcomes_are_classified():
    probe = _load_script()
    clear = probe.cli_error(
        2, "", "error: --max_steps=-5: an integer >= 0\n", ["--max_steps"], expect_rc=2
    )
    assert (clear.status, clear.deviations) == ("clear_error", [])
    assert "--max_steps=-5" in clear.why
    traceback = 'Traceback (most recent call last):\n  File "x.py"\nValueError: --max_steps\n'
    assert probe.cli_error(1, "", traceback, ["--max_steps"]).status == "traceback"
    assert probe.cli_error(0, "trained", "", ["--max_steps"]).status == "silent"
    unclear = probe.cli_error(2, "", "error: something went wrong\n", ["--max_steps"])
    assert unclear.status == "traceback" and "unclear" in unclear.why
    other_code = probe.cli_error(1, "", "error: --max_steps bad\n", ["--max_steps"], expect_rc=2)
    assert other_code.status == "clear_error" and other_code.deviations


def test_library_outcomes_are_classified():
    probe = _load_script()

    def bad():
        raise ValueError("num_classes must be an integer >= 2, got 2.7")

    assert probe.lib_error(bad, ["num_classes"]).status == "clear_error"
    assert probe.lib_error(bad, ["feats_channels"]).status == "traceback"
    assert probe.lib_error(lambda: 3, ["num_classes"]).status == "silent"


def test_snapshots_tell_lost_from_touched(tmp_path):
    probe = _load_script()
    for name in ("keep.txt", "change.txt", "gone.txt", "touch.txt", ".lock"):
        (tmp_path / name).write_text(name)
    before = probe.snapshot(tmp_path)
    assert ".lock" not in before
    (tmp_path / "change.txt").write_text("other bytes")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "new.txt").write_text("new")
    stamp = (tmp_path / "touch.txt").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "touch.txt", ns=(stamp, stamp))
    diff = probe.compare(before, probe.snapshot(tmp_path))
    assert diff == {
        "missing": ["gone.txt"],
        "changed": ["change.txt"],
        "touched": ["touch.txt"],
        "added": ["new.txt"],
    }


def test_two_cases_end_to_end(tmp_path):
    out = tmp_path / "probe.json"
    cases = ["validation/flag_dataset_voc", "constructor_feats_channels_0"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--only", "validation", "--cases", *cases, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    payload = json.loads(out.read_text())
    assert {
        "command",
        "hardware",
        "load_average",
        "seconds",
        "statuses",
        "summary",
        "cases",
    } <= set(payload)
    assert payload["statuses"] == ["ok", "clear_error", "traceback", "silent", "lost"]
    assert len(payload["load_average"]["start"]) == 3
    assert [r["cases"] for r in payload["runs"]] == [2]
    rows = payload["cases"]
    assert [r["case"] for r in rows] == ["flag_dataset_voc", "constructor_feats_channels_0"]
    for row in rows:
        assert {
            "group",
            "case",
            "status",
            "expected",
            "as_documented",
            "why",
            "deviations",
            "commands",
            "seconds",
            "load_average_at_start",
        } <= set(row)
        assert row["status"] in payload["statuses"]
    flag, constructor = rows
    assert flag["commands"][0]["command"].startswith("python recipes/train_sample.py ")
    assert "--dataset=voc" in flag["commands"][0]["command"]
    assert flag["commands"][0]["exit_code"] == 2
    assert (flag["status"], flag["as_documented"]) == ("clear_error", True), flag
    assert (constructor["status"], constructor["as_documented"]) == ("clear_error", True)
    assert "feats_channels" in constructor["why"]
    total = payload["summary"]["total"]
    assert total == {
        "tried": 2,
        "ok": 0,
        "clear_error": 2,
        "traceback": 0,
        "silent": 0,
        "lost": 0,
        "as_documented": 2,
    }
    assert set(payload["summary"]) == {"validation", "total"}
    table = out.with_suffix(".md").read_text()
    assert (
        "| group | tried | ok | clear error | traceback | silent | lost | as documented |" in table
    )
    assert "| **total** | 2 | 0 | 2 | 0 | 0 | 0 | 2 |" in table
    assert "| validation/flag_dataset_voc | clear_error | clear_error |" in table


def test_update_merges_rows_in_case_order():
    probe = _load_script()
    (g1, n1), (g2, n2), (g3, n3) = [(spec.group, spec.name) for spec in probe.CASES[:3]]

    def row(group, name, status):
        return {
            "group": group,
            "case": name,
            "status": status,
            "expected": "ok",
            "as_documented": status == "ok",
        }

    previous = {
        "command": "python benchmarks/fault_probe.py",
        "seconds": 60.0,
        "load_average": {"start": [1, 1, 1], "end": [2, 2, 2]},
        "cases": [row(g1, n1, "ok"), row(g3, n3, "lost")],
    }
    rows, runs = probe.merge(previous, [row(g3, n3, "ok"), row(g2, n2, "traceback")])
    assert [(r["case"], r["status"]) for r in rows] == [(n1, "ok"), (n2, "traceback"), (n3, "ok")]
    assert runs == [
        {
            "command": "python benchmarks/fault_probe.py",
            "seconds": 60.0,
            "load_average": {"start": [1, 1, 1], "end": [2, 2, 2]},
            "cases": 2,
        }
    ]
    assert probe.summarise(rows)["total"]["tried"] == 3


def test_results_hold_no_case_folder_paths():
    probe = _load_script()
    case = os.path.join(tempfile.gettempdir(), "fault_probe-ab12", "nonfinite-x-9z")
    row = {"why": [f"exit 2: --model {case}/nan.keras: bad"]}
    assert probe.scrub_paths(row) == {"why": ["exit 2: --model <case>/nan.keras: bad"]}


def test_the_table_has_one_row_per_case_and_each_runner_takes_its_arguments():
    import inspect

    probe = _load_script()
    names = [(spec.group, spec.name) for spec in probe.CASES]
    assert len(names) == len(set(names)) == 62
    for spec in probe.CASES:
        assert spec.group in probe.GROUPS and spec.expected in probe.STATUSES, spec
        assert spec.broken, spec.name
        inspect.signature(spec.run).bind(None, **spec.args)  # the case, then the row's args
