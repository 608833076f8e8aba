"""Errors raised by the data layer and the "where do the files go" messages."""

import os

from keras_memseg.datasets.registry import get_info
from keras_memseg.datasets.registry import looks_like_path


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset's files are not where `load` looks for them.

    The message is `missing_data_message(name)` plus what was actually found,
    so a recipe can print it and exit instead of showing a traceback.
    """


class BadExampleError(ValueError):
    """An image/label pair that cannot be used; the message names the file."""


def missing_data_message(name, manual_dir=None):
    """Tells the user where to put the files for `name` and how to use the sample.

    Args:
        name: a dataset name (see `keras_memseg.datasets.dataset_names()`) or the
            path of a folder dataset (then the layout it needs, even when the
            folder is missing or incomplete).
        manual_dir: the folder that was searched, if any.

    Example:
    >>> print(missing_data_message("camvid").splitlines()[0])
    Dataset 'camvid' needs files you download yourself.
    """
    try:
        spec = get_info(name)
    except (ValueError, FileNotFoundError):
        if not looks_like_path(name):
            raise
        spec = None
    if spec is None or spec.root:
        from keras_memseg.datasets.folder_dataset import LAYOUT

        root = os.path.abspath(os.fspath(name))
        return (
            f"Folder dataset {root} needs {LAYOUT.replace('ROOT', root)}\n"
            "Check it with `keras-memseg datasets ROOT` (python -m keras_memseg.datasets ROOT)."
        )
    if spec.reader:  # shipped with the package
        return f"Dataset {spec.name!r} needs {spec.layout}"
    where = manual_dir if manual_dir else "<manual_dir>"
    return (
        f"Dataset {spec.name!r} needs files you download yourself.\n"
        f"Put {spec.layout}\n"
        f"into {where}, then pass it as\n"
        f"  keras_memseg.datasets.load({spec.name!r}, manual_dir=...)"
        f"  (recipes: --manual_dir=...; add --data_dir=... to choose where the\n"
        f"  prepared TFRecords go). Archives and extracted folders are both accepted.\n"
        f"To try everything offline instead, use the bundled CamVid sample:\n"
        f"  keras_memseg.datasets.load('sample')  (recipes: --dataset=sample)"
    )
