"""What a path is, found with `os.stat` only: used to refuse FIFOs, sockets and devices
before anything opens them (reading one may block forever). No package imports, so
every layer of the package (backbones, models, predict, export) can use it."""

import os
import stat

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_file_kind(path):
    """What `path` is when it exists but is neither a regular file nor a folder (a FIFO,
    a socket, a device: opening or reading it may block forever), else None.

    Example:
    >>> special_file_kind("/dev/null"), special_file_kind("/"), special_file_kind("/no/such")
    ('a character device', None, None)
    """
    try:
        mode = os.stat(os.fspath(path)).st_mode  # follows symbolic links, as open() does
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return "not a regular file"
