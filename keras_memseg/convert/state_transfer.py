"""Moving a PyTorch state dict into Keras variables: all checked first, then assigned.

A transfer is a list of `Entry`s, one per Keras layer with weights: the PyTorch
module it comes from (`backbone_net.layer1.0.conv1`) and its kind. The kinds fix
the parameter names and layouts:

| kind     | PyTorch parameters                   | Keras weights                      |
|----------|--------------------------------------|------------------------------------|
| `conv`   | `weight` (O, I, kh, kw) [, `bias`]   | `kernel` (kh, kw, I, O) [, `bias`] |
| `bn`     | `weight`, `bias`, `running_mean`,    | `gamma`, `beta`, `moving_mean`,    |
|          | `running_var`                        | `moving_variance`                  |
| `memory` | the tensor itself, `(K, n, C)`       | `FeatureMemory.memory`, as is      |

`num_batches_tracked` has no Keras counterpart and is dropped. Every unmapped key,
missing key and shape mismatch is reported in one `MappingError`, and a model is
changed only when there are none.
"""

import dataclasses

import keras
import numpy as np

KINDS = ("conv", "bn", "memory")
DROPPED_SUFFIXES = (".num_batches_tracked",)


class MappingError(ValueError):
    """Keys and weights that do not match: every problem, in one message."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One Keras layer (or the memory variable) and the PyTorch module it is loaded from.

    `keras_path` names the layer for messages and mapping tables
    (`backbone/stack0_block0_1_conv`, `aspp/branch_0/conv`, ...).
    """

    torch_prefix: str
    target: object  # a keras Layer, or a keras.Variable for `memory`
    kind: str
    keras_path: str


def _params(entry):
    """`[(torch key, keras variable, weight name, layout transform)]` of one entry."""
    layer, p = entry.target, entry.torch_prefix
    if entry.kind == "memory":
        return [(p, layer, "", None)]
    if entry.kind == "conv":
        out = [(f"{p}.weight", layer.kernel, "kernel", (2, 3, 1, 0))]  # OIHW -> HWIO
        if layer.use_bias:
            out.append((f"{p}.bias", layer.bias, "bias", None))
        return out
    if entry.kind == "bn":
        return [
            (f"{p}.weight", layer.gamma, "gamma", None),
            (f"{p}.bias", layer.beta, "beta", None),
            (f"{p}.running_mean", layer.moving_mean, "moving_mean", None),
            (f"{p}.running_var", layer.moving_variance, "moving_variance", None),
        ]
    raise ValueError(f"unknown entry kind {entry.kind!r}; expected one of {KINDS}")


def conv_entries(layer, torch_prefix, keras_path):
    """The entries of a `ConvBNAct`: conv `prefix.0`, BN `prefix.1` (an nn.Sequential)."""
    return [
        Entry(f"{torch_prefix}.0", layer.conv, "conv", f"{keras_path}/conv"),
        Entry(f"{torch_prefix}.1", layer.bn, "bn", f"{keras_path}/bn"),
    ]


def weight_pairs(entries):
    """`[(PyTorch key, Keras variable, Keras weight path)]` of every parameter the
    entries move (conv kernels are HWIO on the Keras side, OIHW on PyTorch's)."""
    rows = []
    for entry in entries:
        for key, variable, name, _ in _params(entry):
            rows.append((key, variable, f"{entry.keras_path}/{name}" if name else entry.keras_path))
    return rows


def mapping_table(entries):
    """`[(PyTorch key, Keras weight path)]` of every parameter the entries move."""
    return [(key, path) for key, _, path in weight_pairs(entries)]


def _shown(items):
    return ", ".join(items)


def transfer(state, entries, model, source, ignored_prefixes=(), unmapped_weights=()):
    """Checks every key of `state` against `entries`, then assigns all weights.

    Args:
        state: `{torch key: np.ndarray}` (`read_state_dict`).
        entries: the `Entry`s of every weighted layer of `model`.
        model: the Keras model being loaded (for coverage checks and messages).
        source: the checkpoint's name for messages.
        ignored_prefixes: keys dropped on purpose (e.g. `fc.` of a classifier).
        unmapped_weights: Keras variables that no checkpoint holds (e.g. the
            memory's update counter); left as they are.

    Returns the mapping table `[(torch key, keras path)]`. Raises `MappingError`
    listing every unmapped key, missing key and shape mismatch; the model is not
    changed then.
    """
    plan, missing, mismatched, expected, covered = [], [], [], set(), set()
    for entry in entries:
        for key, variable, name, axes in _params(entry):
            expected.add(key)
            covered.add(id(variable))
            where = f"{entry.keras_path}/{name}" if name else entry.keras_path
            if key not in state:
                missing.append(f"{key} (for {where})")
                continue
            value = state[key] if axes is None else np.transpose(state[key], axes)
            if tuple(value.shape) != tuple(variable.shape):
                shape = tuple(state[key].shape)
                mismatched.append(f"{key} {shape} -> {where} {tuple(variable.shape)}")
                continue
            plan.append((variable, value))
    skipped = {id(v) for v in unmapped_weights}
    uncovered = [v.path for v in model.weights if id(v) not in covered | skipped]
    unmapped = sorted(
        key
        for key in state
        if key not in expected
        and not key.endswith(DROPPED_SUFFIXES)
        and not key.startswith(tuple(ignored_prefixes))
    )
    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} unmapped key(s): {_shown(unmapped)}")
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_shown(missing)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_shown(mismatched)}")
    if uncovered:
        problems.append(f"Keras weights without a PyTorch key: {_shown(uncovered)}")
    if problems:
        raise MappingError(
            f"cannot load {source} into {type(model).__name__} "
            f"{model.name!r}: " + "; ".join(problems)
        )
    for variable, value in plan:
        variable.assign(np.asarray(value, dtype=keras.backend.standardize_dtype(variable.dtype)))
    return mapping_table(entries)
