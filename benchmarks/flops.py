"""Forward FLOPs of a Keras model, counted from its TensorFlow graph (TF backend only).

    python benchmarks/flops.py [--backbones resnet50_v1c resnet18_v1c] [--size 512]
        [--classes 150] [--out benchmarks/results/flops.json]

Traces `model(x, training=False)` at a fixed input shape into a concrete
function and sums, over the graph's ops, 2 x multiply-accumulates of every
Conv2D / DepthwiseConv2dNative / MatMul / BatchMatMul / Einsum (the
multiply-accumulate count is exact from the static shapes; element-wise ops,
BN, softmax and resizes are not counted, as usual for FLOP tables). Two counts:
"nominal" (dilated convs at their nominal output and kh*kw taps, not TF's padded
SpaceToBatch blocks: the usual FLOP-table convention) and "computed" (the
matmuls the conv policy runs, `keras_memseg.layers.conv_policy`: taps that only read
padding are skipped,
so a DeepLabV3 ASPP at rates 12/24/36 on a 32x32 or 64x64 map counts far less
than nominal, while the MCIBI head's undilated 3x3 convs count ~their nominal
size). Used by `train_step.py` and `compare_reference.py`; runnable on its own
to write both per backbone, with the per-op-type split, to --out (JSON) and print the
ratios. The counts follow from the graph alone: they do not depend on the machine.
"""

import argparse
import collections
import contextlib
import math
import os
import pathlib
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _shape(tensor):
    dims = tensor.shape.as_list()
    if any(d is None for d in dims):
        raise ValueError(f"{tensor.name} has a dynamic shape {dims}: give a static input shape")
    return dims


def _einsum_macs(op):
    equation = op.get_attr("equation").decode()
    inputs, output = equation.split("->")
    sizes = {}
    for spec, tensor in zip(inputs.split(","), op.inputs):
        spec = spec.replace("...", "")
        dims = _shape(tensor)[-len(spec) :] if spec else []
        for letter, dim in zip(spec, dims):
            sizes[letter] = dim
    return math.prod(sizes.values())


def _atrous_output(op):
    """The conv's output, or for TF's atrous form (SpaceToBatchND -> Conv2D ->
    BatchToSpaceND) the BatchToSpaceND output: the nominal dilated-conv output,
    without the block padding TF executes (which adds ~27 % at rate 36 on 64x64)."""
    if op.inputs[0].op.type != "SpaceToBatchND":
        return op.outputs[0]
    tensor = op.outputs[0]
    for _ in range(3):
        for consumer in tensor.consumers():
            if consumer.type == "BatchToSpaceND":
                return consumer.outputs[0]
        if not tensor.consumers():
            break
        tensor = tensor.consumers()[0].outputs[0]
    raise ValueError(f"no BatchToSpaceND after atrous conv {op.name}")


def op_macs(op):
    """Multiply-accumulates of one graph op (0 for ops that are not counted)."""
    kind = op.type
    if kind in ("Conv2D", "DepthwiseConv2dNative"):
        out = _shape(_atrous_output(op))
        kh, kw, cin, mult = _shape(op.inputs[1])
        per_output = kh * kw * (cin if kind == "Conv2D" else 1)
        return math.prod(out) * per_output
    if kind == "MatMul":
        a = _shape(op.inputs[0])
        k = a[0] if op.get_attr("transpose_a") else a[1]
        return math.prod(_shape(op.outputs[0])) * k
    if kind in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = _shape(op.inputs[0])
        k = a[-2] if op.get_attr("adj_x") else a[-1]
        return math.prod(_shape(op.outputs[0])) * k
    if kind == "Einsum":
        return _einsum_macs(op)
    return 0


def graph_flops(graph):
    """(total FLOPs, {op type: FLOPs}, {op name prefix: FLOPs}) of a tf.Graph, nested functions included."""
    by_type = collections.Counter()
    by_scope = collections.Counter()
    graphs = [graph]
    seen = set()
    while graphs:
        g = graphs.pop()
        for op in g.get_operations():
            macs = op_macs(op)
            if macs:
                by_type[op.type] += 2 * macs
                scope = re.sub(r"^(StatefulPartitionedCall/)+", "", op.name).split("/")
                by_scope["/".join(scope[:2])] += 2 * macs
        for name, func in getattr(g, "_functions", {}).items():
            if name not in seen:
                seen.add(name)
                graphs.append(func.graph)
    return sum(by_type.values()), dict(by_type), dict(by_scope)


def nominal_convolutions():
    """Every conv traced as the backend's own (`conv_path("conv")`), so that a dilated
    conv is counted at its nominal kh*kw taps (the usual FLOP-table convention), not at
    the in-map taps the tap sum computes."""
    from keras_memseg.layers.conv_policy import conv_path

    return conv_path("conv")


def model_flops(model, input_shape, nominal=True):
    """Forward (inference) FLOPs of `model` for an input of `input_shape` (B, H, W, 3):
    with `nominal`, convolutions counted at their nominal size (`nominal_convolutions`);
    otherwise the multiply-adds of the graph as it runs (the conv policy's in-map taps)."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    with nominal_convolutions() if nominal else contextlib.nullcontext():
        concrete = fn.get_concrete_function(tf.TensorSpec(input_shape, tf.float32))
    return graph_flops(concrete.graph)


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    here = pathlib.Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    import _common

    from keras_memseg.models import DeepLabV3
    from keras_memseg.models import MemorySegmenter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet50_v1c", "resnet18_v1c"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--out", default=str(here / "results" / "flops.json"))
    args = parser.parse_args(argv)
    shape = (1, args.size, args.size, 3)
    payload = {
        "benchmark": "flops",
        **_common.run_record("flops", argv),
        "settings": {"size": args.size, "classes": args.classes, "batch": 1},
        "backbones": {},
    }
    for backbone in args.backbones:
        result = {}
        for name, cls in (("deeplabv3", DeepLabV3), ("mcibi", MemorySegmenter)):
            model = cls(backbone, args.classes)
            total, by_type, by_scope = model_flops(model, shape)
            aux = sum(v for k, v in by_scope.items() if "aux_head" in k)
            result[name] = {
                "gflops": round(total / 1e9, 2),
                "gflops_without_aux": round((total - aux) / 1e9, 2),
                "computed_gflops": round(model_flops(model, shape, nominal=False)[0] / 1e9, 2),
                "by_op_type_gflops": {k: round(v / 1e9, 3) for k, v in sorted(by_type.items())},
                "by_scope_gflops": {k: round(v / 1e9, 3) for k, v in sorted(by_scope.items())},
            }
        for key in ("gflops", "gflops_without_aux", "computed_gflops"):
            result[f"ratio_{key}"] = round(result["mcibi"][key] / result["deeplabv3"][key], 3)
            print(
                f"{backbone} MCIBI / DeepLabV3 forward {key} at {args.size}x{args.size}: "
                f"{result[f'ratio_{key}']}"
            )
        payload["backbones"][backbone] = result
    _common.write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
