"""`load_segmenter` refuses a FIFO, a socket or a device before opening it (reading a FIFO
would block forever), with one line naming the path."""

import os
import signal
import socket

import pytest

from keras_memseg.file_kinds import special_file_kind
from keras_memseg.models import load_segmenter
from keras_memseg.models.loading import ModelFileError


def _timeout(signum, frame):
    raise TimeoutError("load_segmenter blocked on a special file")


@pytest.fixture
def no_hang():
    """Fails the test (instead of hanging the run) if the call blocks for 20 s."""
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_fifo_socket_and_device_are_refused_unopened(tmp_path, no_hang):
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock.keras"))
    try:
        for path, kind in (
            (fifo, "a FIFO (named pipe)"),
            (tmp_path / "sock.keras", "a socket"),
            ("/dev/null", "a character device"),
        ):
            with pytest.raises(ModelFileError) as error:
                load_segmenter(path)
            message = str(error.value)
            assert message.startswith(f"{path} is {kind}, not a regular file or folder")
            assert len(message.splitlines()) == 1
            assert special_file_kind(path) == kind
    finally:
        server.close()
    assert special_file_kind(tmp_path) is None and special_file_kind(tmp_path / "no") is None
