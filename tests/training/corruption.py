"""Damage as a disk does it, for the resume tests."""

import h5py


def flip_a_weight(path):
    """Changes one value of the largest float dataset in place: the file stays a
    readable HDF5 weights file, as after a flipped bit on disk."""
    with h5py.File(path, "r+") as f:
        datasets = []
        f.visititems(lambda n, o: datasets.append(o) if isinstance(o, h5py.Dataset) else None)
        target = max((d for d in datasets if d.dtype.kind == "f"), key=lambda d: d.size)
        values = target[()]
        values.flat[0] += 1.0
        target[...] = values
