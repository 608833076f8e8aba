"""The command-line entry points print their own lines, not TensorFlow's start-up chatter."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", ["keras_memseg.export", "keras_memseg.convert"])
def test_command_help_has_a_silent_stderr(command):
    # Without the muted start-up, TensorFlow prints `cudart_stub.cc` / `cuInit` lines
    # here on every machine without a GPU.
    proc = subprocess.run(
        [sys.executable, "-m", command, "--help"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: python -m " + command)
