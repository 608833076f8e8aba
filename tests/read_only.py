"""A read-only folder for tests that run a command as a user would.

Root writes through `chmod 0o555`, so the folder becomes a tmpfs mounted read-only in a
private mount namespace (`unshare`): every process of the command is refused, root
included, and the mount ends with the command (nothing is left mounted). Where unshare
cannot do it, a non-root user gets a `chmod 0o555` folder and root skips the test.
"""

import os
import shutil
import subprocess

import pytest

_NAMESPACES = (["--user", "--map-root-user", "--mount"], ["--mount"])


def read_only_prefix(folder):
    """argv prefix that runs a command with `folder` read-only (see the module doc);
    [] after `chmod 0o555` for a non-root user; skips the test for root without unshare."""
    folder = os.fspath(folder)
    if shutil.which("unshare"):
        mount = f"mount -t tmpfs -o ro tmpfs '{folder}'"
        for flags in _NAMESPACES:
            probe = subprocess.run(
                ["unshare", *flags, "sh", "-c", f"{mount} && ! mkdir '{folder}/x' 2>/dev/null"],
                capture_output=True,
            )
            if probe.returncode == 0:
                return ["unshare", *flags, "sh", "-c", f'{mount} && exec "$0" "$@"']
    if os.geteuid() == 0:
        pytest.skip("a read-only folder needs unshare (a private read-only mount) or non-root")
    os.chmod(folder, 0o555)
    return []


def refuse_file_creation(monkeypatch, folder):
    """Makes `tempfile.mkstemp` in `folder` fail as a root-squashed NFS export or a FUSE
    mount would, while `os.access` still says the folder is writable."""
    import tempfile

    folder = os.path.realpath(folder)
    mkstemp = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and os.path.realpath(dir) == folder:
            raise PermissionError(13, "Permission denied", dir)
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
