import os
import subprocess
import sys

HERE = os.path.dirname(__file__)


def test_mirrored_strategy_memory_sync_semantics():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "mirrored_memory_check.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert proc.stdout.count("max abs err") == 4, proc.stdout
