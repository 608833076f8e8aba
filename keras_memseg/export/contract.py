"""The export contract in plain Python (no TensorFlow): the outputs a SavedModel can
serve, its default bounds, and the checks of the export command's arguments, read by
`keras-memseg export --help` before TensorFlow is imported."""

import os

OUTPUT_KEYS = ("logits", "probabilities", "labels")
DEFAULT_OUTPUTS = ("probabilities", "labels")
DEFAULT_TEST_SCALE = (2048, 512)  # ADE20K / COCO-Stuff: long side <= 2048, short <= 512
DEFAULT_MAX_INPUT_PIXELS = 50_000_000
DEFAULT_MAX_BATCH_SIZE = 32


def check_outputs(outputs):
    """Validates an `outputs` selection; "labels" is always added. Returns a tuple."""
    if isinstance(outputs, str):
        outputs = (outputs,)
    unknown = [key for key in outputs if key not in OUTPUT_KEYS]
    if unknown:
        raise ValueError(f"unknown outputs {unknown}; choose from {OUTPUT_KEYS}")
    return tuple(key for key in OUTPUT_KEYS if key in outputs or key == "labels")


def check_model_name(name):
    """`name` when it is one path component (the model folder under the base folder),
    else ValueError: no separator, not "." or "..", not empty, not absolute, so that
    the export never writes outside its base folder. None stays None.

    Example:
    >>> check_model_name("memseg")
    'memseg'
    >>> check_model_name("../x")
    Traceback (most recent call last):
    ...
    ValueError: name must be one folder name (no '/' or '\\', not '.' or '..', not empty), got '../x'
    """
    if name is None:
        return None
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or any(sep in name for sep in ("/", "\\", "\0"))
        or os.path.isabs(name)
    ):
        raise ValueError(
            "name must be one folder name (no '/' or '\\', not '.' or '..', not empty), "
            f"got {name!r}"
        )
    return name
