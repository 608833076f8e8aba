"""Reading a PyTorch checkpoint into a flat `{key: numpy array}` state dict.

PyTorch is the optional `[torch]` extra; it is imported only here, only when a
checkpoint is read, and only with `torch.load(..., weights_only=True)` (tensors and
plain containers, no pickled code).
"""

import os

import numpy as np

TORCH_MISSING = 'reading PyTorch checkpoints needs torch: pip install "keras-memseg[torch]"'
# Wrappers around the state dict: the authors' `{"model": ...}`, open-mmlab's
# `{"state_dict": ..., "meta": ...}`.
_WRAPPERS = ("model", "state_dict")
_DATA_PARALLEL_PREFIX = "module."


class CheckpointError(ValueError):
    """A file that is not a readable PyTorch state dict (one-line message)."""


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _unwrap(obj, path):
    for key in _WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return obj[key]
    if isinstance(obj, dict):
        return obj
    raise CheckpointError(
        f"{path} holds a {type(obj).__name__}, not a state dict (a dict of "
        "tensors, possibly under 'model' or 'state_dict')"
    )


def read_state_dict(path):
    """`{key: np.ndarray}` of the PyTorch checkpoint at `path`.

    Accepts a plain state dict or one wrapped in `"model"` / `"state_dict"`, with or
    without the `module.` prefix of `DataParallel`. Floating tensors become float32.

    Args:
        path: a `.pth` file written by `torch.save`.

    Raises `FileNotFoundError`, `ImportError` (no torch) or `CheckpointError`, each
    with a one-line message naming `path`.

    Example:
    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.pth")
    >>> torch.save({"state_dict": {"module.fc.weight": torch.ones(2, 3)}}, path)
    >>> {k: v.shape for k, v in read_state_dict(path).items()}
    {'fc.weight': (2, 3)}
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        import torch
    except ImportError:
        raise ImportError(TORCH_MISSING) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and "weights only" errors alike
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint that torch.load(..., "
            f"weights_only=True) can read ({_first_line(error)})"
        ) from None
    state = _unwrap(obj, path)
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not state or not_tensors:
        shown = ", ".join(not_tensors[:5]) + (" ..." if len(not_tensors) > 5 else "")
        raise CheckpointError(
            f"{path} is not a state dict of tensors"
            + (f" (entries that are not tensors: {shown})" if shown else " (it is empty)")
        )
    keys = list(state)
    if all(k.startswith(_DATA_PARALLEL_PREFIX) for k in keys):
        keys = [k[len(_DATA_PARALLEL_PREFIX) :] for k in keys]
    out = {}
    for key, tensor in zip(keys, state.values()):
        value = tensor.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        out[key] = np.asarray(value.numpy())
    return out
