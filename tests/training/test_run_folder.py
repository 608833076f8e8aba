"""One run per folder (an OS lock naming the holder) and resume only with the same config."""

import json
import os
import subprocess
import sys
import time

import pytest

from keras_memseg.training.run_folder import RunFolder
from keras_memseg.training.run_folder import RunFolderError
from keras_memseg.training.run_folder import config_differences


def test_a_second_run_into_a_locked_folder_names_the_holder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; sys.path.insert(0, sys.argv[1]);"
                "from keras_memseg.training.run_folder import RunFolder;"
                "run = RunFolder(sys.argv[2]).open({'a': 1}); print('locked', flush=True); time.sleep(60)"
            ),
            os.getcwd(),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=f"in use by another run \\(pid {holder.pid}\\)"):
            RunFolder(tmp_path).open({"a": 1})
        assert json.loads((tmp_path / "config.json").read_text()) == {"a": 1}
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with RunFolder(tmp_path).open({"a": 1}):  # released when the holder died
        pass


def test_resume_with_another_config_is_refused_before_anything_is_written(tmp_path):
    with RunFolder(tmp_path).open({"feats_channels": 32, "verbose": 1}) as run:
        assert not run.resumed
    before = (tmp_path / "config.json").stat().st_mtime_ns
    with pytest.raises(RunFolderError, match="feats_channels: 32 -> 48.*another --run_dir"):
        RunFolder(tmp_path).open({"feats_channels": 48, "verbose": 1})
    assert (tmp_path / "config.json").stat().st_mtime_ns == before
    with RunFolder(tmp_path).open({"feats_channels": 32, "verbose": 0}) as run:  # bookkeeping
        assert run.resumed
    (tmp_path / "config.json").write_text("{torn")
    with pytest.raises(RunFolderError, match="unreadable"):
        RunFolder(tmp_path).open({"feats_channels": 32})


def test_differences_ignore_bookkeeping_fields():
    assert config_differences({"lr": 1, "eval_flip": False}, {"lr": 1, "eval_flip": True}) == []
    assert config_differences({"lr": 1}, {"lr": 2}) == ["lr: 1 -> 2"]
    # Thread pools are a device setting: a run written before they were fields (no
    # key) or with other sizes resumes.
    assert config_differences({"lr": 1}, {"lr": 1, "intra_op_parallelism_threads": 1}) == []
    assert (
        config_differences({"inter_op_parallelism_threads": 0}, {"inter_op_parallelism_threads": 4})
        == []
    )
