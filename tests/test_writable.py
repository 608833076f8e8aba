"""keras_memseg.writable: a folder to write into is checked with a real file, not only
`os.access` (which says yes to root for any folder not on a read-only mount)."""

import os
import subprocess
import sys

import pytest

from keras_memseg.writable import can_create_in
from keras_memseg.writable import file_problem
from keras_memseg.writable import folder_problem
from tests.read_only import read_only_prefix
from tests.read_only import refuse_file_creation


def test_new_and_existing_folders_are_fine_and_nothing_is_left(tmp_path):
    (tmp_path / "kept").mkdir()
    assert folder_problem(tmp_path / "new" / "run") is None  # created later, in tmp_path
    assert folder_problem(tmp_path / "kept") is None
    assert file_problem(tmp_path / "new" / "report.json") is None
    assert sorted(os.listdir(tmp_path)) == ["kept"]  # the probes are removed, nothing made


def test_a_file_in_the_way(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    assert folder_problem(notes) == f"{notes} exists and is not a folder"
    assert folder_problem(notes / "run") == (
        f"{notes} is not a folder, so {notes / 'run'} cannot be created"
    )
    assert file_problem(tmp_path) == f"{tmp_path} is a folder"
    assert notes.read_text() == "keep me"


def test_the_probe_decides_where_access_says_yes(tmp_path, monkeypatch):
    # As root, os.access(W_OK) is True for any folder not on a read-only mount (a
    # root-squashed NFS export, a FUSE mount say no only to a real write). Simulated
    # at the probe: creating a file in `locked` fails while access() says yes.
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_file_creation(monkeypatch, locked)
    assert os.access(locked, os.W_OK)
    assert not can_create_in(locked)
    message = f"{locked} is not writable (a read-only location?)"
    assert folder_problem(locked / "a" / "b") == message
    assert file_problem(locked / "report.json") == message
    assert folder_problem(tmp_path / "other") is None


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_proc_is_refused_though_access_may_say_yes():
    # For root os.access("/proc", W_OK) is True; no file can be made there by anyone.
    assert folder_problem("/proc/predictions") == "/proc is not writable (a read-only location?)"


def test_a_read_only_mount_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    prefix = read_only_prefix(folder)
    # This file alone, not the package (whose import loads TensorFlow).
    script = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('w', sys.argv[1])\n"
        "w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)\n"
        "print(w.folder_problem(sys.argv[2]))\n"
    )
    source = os.path.join(os.path.dirname(__file__), "..", "keras_memseg", "writable.py")
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", script, source, str(folder / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{folder} is not writable (a read-only location?)"
