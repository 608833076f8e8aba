"""Argument and input-array checks of the segmenters: one-line errors naming the input."""

import numbers

from keras_memseg.losses.label_checks import check_label_shape


def check_int(name, value, minimum):
    """`int(value)` after checking it is an integer >= minimum (not 2.7, not True, not
    the string "5").

    Example:
    >>> check_int("num_classes", 5.0, 2)
    5
    >>> check_int("num_classes", "5", 2)
    Traceback (most recent call last):
    ...
    ValueError: num_classes must be an integer >= 2, got '5'
    """
    if (
        isinstance(value, (bool, str, bytes))
        or not isinstance(value, numbers.Real)
        or not float(value).is_integer()
        or int(value) < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_ignore_class(ignore_class, num_classes):
    """`int(ignore_class)` after checking it is an integer outside `[0, num_classes)`."""
    if isinstance(ignore_class, bool) or not float(ignore_class).is_integer():
        raise ValueError(f"ignore_class must be an integer, got {ignore_class!r}")
    if 0 <= int(ignore_class) < num_classes:
        raise ValueError(
            f"ignore_class {ignore_class} is a class id (num_classes is "
            f"{num_classes}); use a value outside [0, {num_classes}), e.g. 255"
        )
    return int(ignore_class)


def check_label_arrays(x, y):
    """Labels given as an array beside image arrays: integer, one channel, same size."""
    if y is None or not hasattr(y, "shape") or not hasattr(y, "dtype"):
        return
    images = x.get("images") if isinstance(x, dict) else x
    image_shape = tuple(images.shape) if hasattr(images, "shape") else None
    if "float" in str(y.dtype):
        raise ValueError(
            f"labels must be integer class ids, got {y.dtype} (cast them after "
            "checking they hold whole numbers)"
        )
    check_label_shape(tuple(y.shape), image_shape)


def check_image_arrays(x, what, channels):
    """Images given as an array: (batch, height, width, channels), at least one image.

    Datasets and generators are not looked into (their batches are checked in the step).
    """
    images = x.get("images") if isinstance(x, dict) else x
    if not (hasattr(images, "shape") and hasattr(images, "dtype")):
        return
    shape = tuple(images.shape)
    if len(shape) != 4 or (channels is not None and shape[-1] != channels):
        want = channels if channels is not None else "channels"
        raise ValueError(
            f"{what}: images must be a (batch, height, width, {want}) array, got shape {shape}"
        )
    if shape[0] == 0:
        raise ValueError(f"{what}: got an empty batch of shape {shape}; pass at least one image")
