"""The authors' segmentor checkpoints <-> `MemorySegmenter` / `DeepLabV3` layers.

Module names of the reference (SegmentationBLWX/sssegmentation: `MCIBI` in
`ssseg/modules/models/segmentors/mcibi/`, `Deeplabv3`, `ASPP`,
`PyramidPoolingModule`, `SelfAttentionBlock`, `DefaultAuxiliaryDecoder`); each
`nn.Sequential(conv, BN, act)` is a `ConvBNAct` (`.0` conv, `.1` BN):

| PyTorch module                                        | Keras layer                      |
|-------------------------------------------------------|----------------------------------|
| `backbone_net.*`                                      | `backbone/*` (see `resnet_keys`) |
| `context_within_image_module.parallel_branches.{i}`   | `aspp/branch_{i}`                |
| `context_within_image_module.global_branch.{1,2}`     | `aspp/image_pool/{conv,bn}`      |
| `context_within_image_module.bottleneck`              | `aspp/project` (`ppm/project`)   |
| `context_within_image_module.branches.{i}.{1,2}`      | `ppm/bin_{b}/{conv,bn}`          |
| `bottleneck`                                          | `bottleneck`                     |
| `decoder_stage1.{0,1}`, `.4` (and `decoder_stage2`)   | `decoder_stage1/block`, `/classifier` |
| `memory_module.memory` (K, n, C)                      | `feature_memory/memory`          |
| `memory_module.self_attention` (`.self_attentions.{j}`) | `attention_memory_0` (`_{j}`)  |
| `  .query_project.{i}`, `.key_project.{i}`            | `  query_{i}`, `key_{i}`         |
| `  .value_project`, `.out_project`                    | `  value`, `out`                 |
| `memory_module.fuse_memory_conv` (n > 1)              | `slot_fuse`                      |
| `memory_module.bottleneck`                            | `fuse_memory`                    |
| `memory_module.self_attention_ms`                     | `attention_context`              |
| `memory_module.bottleneck_ms`                         | `fuse_context`                   |
| `auxiliary_decoder.{0,1}`, `.4`                       | `aux_head/block`, `/classifier`  |
| `aspp_net.*` (DeepLabV3), `decoder.1`                 | `aspp/*`, `decoder/classifier`   |

What the weights cannot tell (output stride, ASPP rates, PPM bins, activation,
dropout) is given by the caller, with the paper's values as defaults.
"""

from keras_memseg.convert.resnet_keys import backbone_entries
from keras_memseg.convert.resnet_keys import resnet_structure
from keras_memseg.convert.state_transfer import Entry
from keras_memseg.convert.state_transfer import conv_entries

BACKBONE_PREFIX = "backbone_net."
_CONTEXT = "context_within_image_module."


def segmentor_kind(state):
    """`"mcibi"`, `"deeplabv3"` or None (not one of the authors' segmentors)."""
    if any(k.startswith("memory_module.") for k in state):
        return "mcibi"
    if any(k.startswith("aspp_net.") for k in state):
        return "deeplabv3"
    return None


def _shape(state, key, source, what):
    if key not in state:
        raise ValueError(f"{source} has no {key!r}: not {what}")
    return tuple(state[key].shape)


def _count(state, prefix):
    """How many consecutive `prefix{i}.` module indices the keys hold."""
    n = 0
    while any(k.startswith(f"{prefix}{n}.") for k in state):
        n += 1
    return n


def _check_aspp(state, prefix, rates, source):
    count = _count(state, f"{prefix}parallel_branches.")
    if count != len(rates):
        raise ValueError(
            f"{source} has {count} ASPP branches but {len(rates)} rates were "
            f"given ({','.join(map(str, rates))}); pass --aspp_rates with "
            f"{count} values"
        )
    for i, rate in enumerate(rates):
        kernel = _shape(state, f"{prefix}parallel_branches.{i}.0.weight", source, "an ASPP module")[
            2:
        ]
        if (kernel == (1, 1)) != (rate == 1):
            raise ValueError(
                f"{source}: ASPP branch {i} has a {kernel[0]}x{kernel[1]} kernel, "
                f"which does not fit rate {rate} (rate 1 is the 1x1 branch)"
            )


def _aux(state, source):
    if not any(k.startswith("auxiliary_decoder.") for k in state):
        return {"aux": False}
    shape = _shape(state, "auxiliary_decoder.0.weight", source, "a single-conv auxiliary decoder")
    return {"aux": True, "aux_channels": shape[0]}


def mcibi_config(
    state,
    source="checkpoint",
    output_stride=8,
    aspp_rates=(1, 12, 24, 36),
    ppm_bins=(1, 2, 3, 6),
    activation="relu",
    dropout=0.1,
    hard_aggregate=False,
):
    """`(backbone arguments, MemorySegmenter arguments)` read from an MCIBI checkpoint."""
    what = "an MCIBI checkpoint of the authors' code"
    backbone = resnet_structure(state, BACKBONE_PREFIX, source)
    feats = _shape(state, "bottleneck.0.weight", source, what)[0]
    num_classes = _shape(state, "decoder_stage2.4.weight", source, what)[0]
    memory = _shape(state, "memory_module.memory", source, what)
    if len(memory) != 3 or memory[0] != num_classes or memory[2] != feats:
        raise ValueError(
            f"{source}: memory_module.memory has shape {memory}, expected "
            f"({num_classes}, n, {feats}) (classes, slots, feats_channels)"
        )
    slots = memory[1]
    attention = (
        "memory_module.self_attention." if slots == 1 else "memory_module.self_attentions.0."
    )
    transform = _shape(state, attention + "key_project.0.0.weight", source, what)[0]
    out_channels = _shape(state, "memory_module.bottleneck.0.weight", source, what)[0]
    if out_channels != feats:
        raise ValueError(
            f"{source}: out_channels {out_channels} differs from feats_channels "
            f"{feats}; MemorySegmenter uses one head width (as every paper config)"
        )
    if any(k.startswith(f"{_CONTEXT}parallel_branches.") for k in state):
        context = "aspp"
        _check_aspp(state, _CONTEXT, aspp_rates, source)
    elif any(k.startswith(f"{_CONTEXT}branches.") for k in state):
        context = "ppm"
        count = _count(state, f"{_CONTEXT}branches.")
        if count != len(ppm_bins):
            raise ValueError(
                f"{source} has {count} PPM branches but {len(ppm_bins)} bins were "
                f"given; pass --ppm_bins with {count} values"
            )
    else:
        context = None
    config = {
        "num_classes": num_classes,
        "context": context,
        "feats_channels": feats,
        "transform_channels": transform,
        "feats_per_class": slots,
        "hard_aggregate": bool(hard_aggregate),
        "dropout": float(dropout),
        "activation": activation,
        "aspp_rates": tuple(aspp_rates),
        "ppm_bins": tuple(ppm_bins),
        "output_stride": output_stride,
        **_aux(state, source),
    }
    return backbone, config


def deeplabv3_config(
    state,
    source="checkpoint",
    output_stride=8,
    aspp_rates=(1, 12, 24, 36),
    activation="relu",
    dropout=0.1,
    **_,
):
    """`(backbone arguments, DeepLabV3 arguments)` read from the authors' DeepLabV3."""
    what = "a DeepLabV3 checkpoint of the authors' code"
    backbone = resnet_structure(state, BACKBONE_PREFIX, source)
    feats = _shape(state, "aspp_net.bottleneck.0.weight", source, what)[0]
    num_classes = _shape(state, "decoder.1.weight", source, what)[0]
    _check_aspp(state, "aspp_net.", aspp_rates, source)
    config = {
        "num_classes": num_classes,
        "feats_channels": feats,
        "aspp_rates": tuple(aspp_rates),
        "dropout": float(dropout),
        "activation": activation,
        "output_stride": output_stride,
        **_aux(state, source),
    }
    return backbone, config


def _attention_entries(block, prefix, path):
    out = []
    for i, layer in enumerate(block.query_project):
        out += conv_entries(layer, f"{prefix}.query_project.{i}", f"{path}/query_{i}")
    for i, layer in enumerate(block.key_project):
        out += conv_entries(layer, f"{prefix}.key_project.{i}", f"{path}/key_{i}")
    out += conv_entries(block.value_project, f"{prefix}.value_project", f"{path}/value")
    out += conv_entries(block.out_project, f"{prefix}.out_project", f"{path}/out")
    return out


def _decoder_entries(decoder, prefix, path):
    """SegmentationDecoder <- `nn.Sequential(conv, BN, act, Dropout2d, conv)`, or
    `nn.Sequential(Dropout2d, conv)` without the conv-BN-act block."""
    if decoder.block is None:
        return [Entry(f"{prefix}.1", decoder.classifier, "conv", f"{path}/classifier")]
    return conv_entries(decoder.block, prefix, f"{path}/block") + [
        Entry(f"{prefix}.4", decoder.classifier, "conv", f"{path}/classifier")
    ]


def _context_entries(module, prefix, path, kind):
    out = []
    if kind == "aspp":
        for i, branch in enumerate(module.branches):
            out += conv_entries(branch, f"{prefix}parallel_branches.{i}", f"{path}/branch_{i}")
        out += [
            Entry(
                f"{prefix}global_branch.1",
                module.image_pool.conv,
                "conv",
                f"{path}/image_pool/conv",
            ),
            Entry(f"{prefix}global_branch.2", module.image_pool.bn, "bn", f"{path}/image_pool/bn"),
        ]
    else:
        for i, (b, branch) in enumerate(zip(module.bins, module.branches)):
            out += [
                Entry(f"{prefix}branches.{i}.1", branch.conv, "conv", f"{path}/bin_{b}/conv"),
                Entry(f"{prefix}branches.{i}.2", branch.bn, "bn", f"{path}/bin_{b}/bn"),
            ]
    return out + conv_entries(module.project, f"{prefix}bottleneck", f"{path}/project")


def segmenter_entries(model):
    """The transfer entries of every weight of a `MemorySegmenter` or `DeepLabV3`."""
    entries = backbone_entries(model.backbone, BACKBONE_PREFIX)
    if model.aux_head is not None:
        entries += _decoder_entries(model.aux_head, "auxiliary_decoder", "aux_head")
    if not hasattr(model, "memory"):  # DeepLabV3
        entries += _context_entries(model.context_module, "aspp_net.", "aspp", "aspp")
        return entries + _decoder_entries(model.decoder, "decoder", "decoder")
    if model.context_module is not None:
        entries += _context_entries(model.context_module, _CONTEXT, model.context, model.context)
    entries += conv_entries(model.bottleneck, "bottleneck", "bottleneck")
    entries += _decoder_entries(model.decoder_stage1, "decoder_stage1", "decoder_stage1")
    entries.append(
        Entry("memory_module.memory", model.memory.memory, "memory", "feature_memory/memory")
    )
    if model.feats_per_class == 1:
        entries += _attention_entries(
            model.attention_memory[0], "memory_module.self_attention", "attention_memory_0"
        )
    else:
        for j, block in enumerate(model.attention_memory):
            entries += _attention_entries(
                block, f"memory_module.self_attentions.{j}", f"attention_memory_{j}"
            )
        entries += conv_entries(model.slot_fuse, "memory_module.fuse_memory_conv", "slot_fuse")
    entries += conv_entries(model.fuse_memory, "memory_module.bottleneck", "fuse_memory")
    if model.attention_context is not None:
        entries += _attention_entries(
            model.attention_context, "memory_module.self_attention_ms", "attention_context"
        )
        entries += conv_entries(model.fuse_context, "memory_module.bottleneck_ms", "fuse_context")
    return entries + _decoder_entries(model.decoder_stage2, "decoder_stage2", "decoder_stage2")
