"""Whether this process can write into a folder, found before any work starts: a
read-only mount, a folder without write permission or a file in the way is one line
naming the path, not an `OSError` once a report is computed or a model trained. No
package imports, so every layer (predict, export, training, the recipes) can use it."""

import os
import tempfile


def can_create_in(folder):
    """Whether a file can be created (and removed) in the existing `folder`.

    `os.access` answers from the permission bits, and for root it says yes to any
    folder that is not on a read-only mount; a real file is the only sure answer (a
    root-squashed NFS export, a FUSE mount, a full disk say no only then).

    Example:
    >>> can_create_in(tempfile.mkdtemp()), can_create_in("/proc")
    (True, False)
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    try:
        os.remove(probe)
    except OSError:
        pass
    return True


def folder_problem(path):
    """Why `path` cannot be used as a folder to write into, or None if it can.

    It must be a folder or not exist yet; then its nearest existing parent (the folder
    it will be created in) must be a folder this process can create files in
    (`can_create_in`).

    Example:
    >>> folder_problem(os.path.join(tempfile.mkdtemp(), "new", "run")) is None
    True
    >>> folder_problem("/proc/run")
    '/proc is not writable (a read-only location?)'
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path) and not os.path.isdir(path):
        return f"{path} exists and is not a folder"
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is not a folder, so {path} cannot be created"
    if not can_create_in(existing):
        return f"{existing} is not writable (a read-only location?)"
    return None


def file_problem(path):
    """Why a new file `path` cannot be written, or None: its folder's `folder_problem`,
    or `path` is an existing folder.

    Example:
    >>> file_problem("/proc/report.json")
    '/proc is not writable (a read-only location?)'
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        return f"{path} is a folder"
    return folder_problem(os.path.dirname(path))
