"""Diagnostics of a MemorySegmenter's feature memory: similarity, norms, unseen classes, movement.

The memory `M` of MCIBI (Jin et al., ICCV 2021) holds one row per class and slot,
shape (K, slots, C); a row stays all zero until its class has been seen in
training (the reference code initialises a row with the class mean the first
time). Everything here is NumPy on the memory array.
"""

import dataclasses
import math
import os

import numpy as np

from keras_memseg.analysis.loading import AnalysisInputError
from keras_memseg.analysis.loading import load_segmenter
from keras_memseg.analysis.loading import quiet_optimizer_warning
from keras_memseg.analysis.statistics import json_float
from keras_memseg.analysis.statistics import normalize_rows


def _as_memory(memory):
    memory = np.asarray(memory, dtype=np.float64)
    if memory.ndim == 2:  # (K, C): one slot per class
        memory = memory[:, None, :]
    if memory.ndim != 3:
        raise ValueError(f"memory must be (K, slots, C) or (K, C), got shape {memory.shape}")
    return memory


def cosine_similarity_matrix(rows):
    """Cosine similarity between the rows of (R, C); NaN where a row is all zero.

    Example:
    >>> cosine_similarity_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])).round(3).tolist()
    [[1.0, 0.707, nan], [0.707, 1.0, nan], [nan, nan, nan]]
    """
    rows = np.asarray(rows, dtype=np.float64)
    unit = normalize_rows(rows)
    zero = ~np.any(unit != 0.0, axis=-1)
    similarity = np.clip(unit @ unit.T, -1.0, 1.0)
    similarity[zero, :] = np.nan
    similarity[:, zero] = np.nan
    return similarity


@dataclasses.dataclass(frozen=True)
class MemoryDiagnostics:
    """What a memory looks like.

    Args:
        similarity: (K*slots, K*slots) cosine similarity of the rows (class-major),
            NaN for all-zero rows.
        row_names: K*slots labels of the rows (`"car"`, or `"car/1"` with slots).
        row_norms: (K, slots) L2 norms.
        unseen_classes: class ids whose rows are all zero (never seen in training).
        most_similar: per class, (other class id, similarity) of the most similar
            other class (by the mean of the slots' rows), or (-1, NaN).
    """

    similarity: np.ndarray
    row_names: tuple
    row_norms: np.ndarray
    unseen_classes: tuple
    most_similar: tuple

    def to_json(self, class_names):
        names = list(class_names)
        return {
            "row_names": list(self.row_names),
            "similarity": [[json_float(v) for v in row] for row in self.similarity],
            "row_norms": {
                names[k]: [json_float(v) for v in self.row_norms[k]] for k in range(len(names))
            },
            "unseen_classes": [names[k] for k in self.unseen_classes],
            "most_similar": {
                names[k]: ({"class": names[o], "similarity": json_float(s)} if o >= 0 else None)
                for k, (o, s) in enumerate(self.most_similar)
            },
        }


def memory_diagnostics(memory, class_names=None):
    """Cosine-similarity matrix, row norms and never-seen classes of a memory.

    Args:
        memory: (K, slots, C) array (`model.memory.memory`), or (K, C).
        class_names: K names (default "0", "1", ...).

    Returns:
        `MemoryDiagnostics`.

    Example:
    >>> m = np.array([[[1.0, 0.0]], [[0.0, 2.0]], [[0.0, 0.0]]])
    >>> d = memory_diagnostics(m, ["a", "b", "c"])
    >>> d.unseen_classes, d.row_norms[:, 0].tolist(), float(d.similarity[0, 1])
    ((2,), [1.0, 2.0, 0.0], 0.0)
    """
    memory = _as_memory(memory)
    k, slots, _ = memory.shape
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a memory of {k} classes")
    rows = memory.reshape(k * slots, -1)
    row_names = tuple(
        names[i] if slots == 1 else f"{names[i]}/{j}" for i in range(k) for j in range(slots)
    )
    unseen = tuple(int(i) for i in np.flatnonzero(~np.any(memory != 0.0, axis=(1, 2))))
    class_similarity = cosine_similarity_matrix(memory.mean(axis=1))
    most_similar = []
    for i in range(k):
        others = np.where(np.arange(k) == i, np.nan, class_similarity[i])
        if np.all(np.isnan(others)):
            most_similar.append((-1, math.nan))
        else:
            j = int(np.nanargmax(others))
            most_similar.append((j, float(others[j])))
    return MemoryDiagnostics(
        similarity=cosine_similarity_matrix(rows),
        row_names=row_names,
        row_norms=np.linalg.norm(memory, axis=-1),
        unseen_classes=unseen,
        most_similar=tuple(most_similar),
    )


def memory_to_centres(memory, centres):
    """Cosine distances between each class's memory (slots averaged) and the class centres.

    Use the centres of the layer the memory lives in (`features`, F): a row that is
    far from its own class's centre, or nearer another class's, is a memory that
    does not describe its class's pixels at test time.

    Args:
        memory: (K, slots, C) or (K, C).
        centres: (K, C) class centres (`EmbeddingStatistics.centres`, NaN rows for
            absent classes).

    Returns:
        (K, K) array: `[k, j]` = 1 - cos(memory row k, centre j); NaN where either is
        missing (unseen class, absent class).

    Example:
    >>> m = np.array([[[1.0, 0.0]], [[1.0, 1.0]]])
    >>> memory_to_centres(m, np.array([[0.0, 1.0], [1.0, 0.0]])).round(3).tolist()
    [[1.0, 0.0], [0.293, 0.293]]
    """
    rows = normalize_rows(_as_memory(memory).mean(axis=1))
    centres = np.asarray(centres, dtype=np.float64)
    missing = ~np.any(rows != 0.0, axis=-1)
    distances = 1.0 - rows @ normalize_rows(np.nan_to_num(centres)).T
    distances[missing, :] = np.nan
    distances[:, np.any(np.isnan(centres), axis=-1)] = np.nan
    return distances


def memory_to_centres_json(distances, class_names):
    """Per class: distance of its memory row to its own centre, and the nearest centre."""
    out = {}
    for k, name in enumerate(class_names):
        row = distances[k]
        nearest = None if np.all(np.isnan(row)) else class_names[int(np.nanargmin(row))]
        out[name] = {
            "own_centre_distance": json_float(row[k]),
            "nearest_centre": nearest,
            "nearest_centre_distance": json_float(np.nanmin(row)) if nearest is not None else None,
        }
    own = np.array([distances[k, k] for k in range(len(class_names))])
    return {
        "per_class": out,
        "mean_own_centre_distance": json_float(np.nanmean(own))
        if np.any(np.isfinite(own))
        else None,
        "rows_nearest_to_own_centre": int(
            sum(1 for k, name in enumerate(class_names) if out[name]["nearest_centre"] == name)
        ),
    }


def memory_movement(memories):
    """How far each class's memory moved between consecutive snapshots.

    Per class and consecutive pair (t, t+1), with the class's slots flattened into
    one vector: the cosine distance `1 - cos(M_t[k], M_t+1[k])` (NaN when either is
    all zero: the class was not seen yet) and the L2 distance `|M_t+1[k] - M_t[k]|`.

    Args:
        memories: a sequence of T >= 2 memories (K, slots, C), e.g. one per epoch.

    Returns:
        dict of (T-1, K) arrays: `"cosine_distance"`, `"l2_distance"`.

    Example:
    >>> a = np.array([[[1.0, 0.0]], [[0.0, 0.0]]])
    >>> b = np.array([[[0.0, 2.0]], [[3.0, 4.0]]])
    >>> moved = memory_movement([a, b])
    >>> moved["cosine_distance"].tolist(), moved["l2_distance"].round(4).tolist()
    ([[1.0, nan]], [[2.2361, 5.0]])
    """
    memories = [_as_memory(m) for m in memories]
    if len(memories) < 2:
        raise ValueError(f"memory_movement needs at least 2 memories, got {len(memories)}")
    shapes = {m.shape for m in memories}
    if len(shapes) > 1:
        raise ValueError(f"memories of different shapes: {sorted(shapes)}")
    flat = [m.reshape(m.shape[0], -1) for m in memories]  # (K, slots*C)
    cosine, l2 = [], []
    for before, after in zip(flat[:-1], flat[1:]):
        ub, ua = normalize_rows(before), normalize_rows(after)
        defined = np.any(ub != 0.0, axis=-1) & np.any(ua != 0.0, axis=-1)
        cos = np.clip(np.sum(ub * ua, axis=-1), -1.0, 1.0)
        cosine.append(np.where(defined, 1.0 - cos, np.nan))
        l2.append(np.linalg.norm(after - before, axis=-1))
    return {"cosine_distance": np.stack(cosine), "l2_distance": np.stack(l2)}


def movement_to_json(movement, class_names, labels=None):
    """`memory_movement` output as `{class: {"cosine_distance": [...], "l2_distance": [...]}}`."""
    out = {}
    for k, name in enumerate(class_names):
        out[name] = {
            key: [json_float(v) for v in movement[key][:, k]]
            for key in ("cosine_distance", "l2_distance")
        }
    return {"steps": list(labels) if labels is not None else None, "per_class": out}


def load_memory(path, model=None):
    """The feature memory (K, slots, C) stored in a checkpoint.

    Args:
        path: a `.keras` model file, a `.weights.h5` file, or a preset folder.
        model: for `.weights.h5` only: a MemorySegmenter of the same architecture
            (it is not modified: the weights are loaded into a copy).

    Returns:
        float32 NumPy array.

    Raises:
        AnalysisInputError: unreadable file, no memory, or `.weights.h5` without model.
    """
    return load_memories([path], model)[0]


def load_memories(paths, model=None):
    """`load_memory` for several checkpoints (one model copy for all the `.weights.h5`)."""
    import keras

    memories, clone = [], None
    for path in paths:
        path = os.fspath(path)
        if path.endswith(".weights.h5"):
            if model is None:
                raise AnalysisInputError(
                    f"{path}: reading a .weights.h5 file needs the model it belongs to (model=...)"
                )
            if clone is None:
                clone = keras.saving.deserialize_keras_object(
                    keras.saving.serialize_keras_object(model)
                )
                clone.build_from_config(model.get_build_config() or {})
            try:
                with quiet_optimizer_warning():
                    clone.load_weights(path)
            except Exception as error:  # noqa: BLE001 - reported as one line
                raise AnalysisInputError(
                    f"cannot load weights {path} into {type(model).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else error!r}"
                ) from None
            source = clone
        else:
            source = load_segmenter(path)
        if not hasattr(source, "memory_snapshot"):
            raise AnalysisInputError(
                f"{path} holds a {type(source).__name__}, which has no feature memory"
            )
        memories.append(np.asarray(source.memory_snapshot(), np.float32))
    return memories
