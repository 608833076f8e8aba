"""Repository-level promises: README's two commands, CI running the second, the formatter."""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _quick_start_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start (two commands)", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_quick_start_is_two_commands():
    install_and_run, test = _quick_start_commands()
    assert "pip install -e ." in install_and_run and "recipes/train_sample.py" in install_and_run
    assert (ROOT / "recipes" / "train_sample.py").exists()
    assert 'pip install -e ".[test]"' in test and "pytest" in test


def test_ci_runs_readme_command_two_as_written():
    _, test = _quick_start_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    # README's command 2 after the CI's own venv activation, character for character.
    command = test.split("&&", 1)[1].strip()
    assert command in ci.splitlines(), (command, ci)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the [test] extra")
@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_code_is_formatted_and_linted(args):
    proc = subprocess.run(
        ["ruff", *args, "keras_memseg", "recipes", "benchmarks", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
