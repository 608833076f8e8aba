"""Random PyTorch ResNet state dicts (torchvision / open-mmlab V1c naming) and a PyTorch
forward of the dilated ResNet written out with `torch.nn.functional`: the oracle of the
checkpoint converter's backbone tests (`tests/convert/`).

The forward follows torchvision's and mmcv's ResNet: the stride on the 3x3 conv,
symmetric padding, output stride 8 by dilations (1, 1, 2, 4) contracted in each
stage's first block, and the second conv of a basic block never dilated.
"""

import numpy as np
import torch
import torch.nn.functional as F

_ARCH = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}
_STRIDES = {8: ((1, 2, 1, 1), (1, 1, 2, 4)), 32: ((1, 2, 2, 2), (1, 1, 1, 1))}


def resnet_state(depth, base, stem, stem_channels, seed=0):
    """A random ResNet state dict in torchvision (`stem="7x7"`) or open-mmlab V1c
    (`stem="deep"`) naming, with an ImageNet classifier and BN counters."""
    rng = np.random.default_rng(seed)
    kind, counts = _ARCH[depth]
    expansion = 4 if kind == "bottleneck" else 1
    sd = {}

    def conv(name, cout, cin, k):
        sd[f"{name}.weight"] = rng.normal(0.0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k))

    def bn(name, c):
        sd[f"{name}.weight"] = rng.uniform(0.5, 1.5, c)
        sd[f"{name}.bias"] = rng.normal(0.0, 0.1, c)
        sd[f"{name}.running_mean"] = rng.normal(0.0, 0.1, c)
        sd[f"{name}.running_var"] = rng.uniform(0.5, 2.0, c)
        sd[f"{name}.num_batches_tracked"] = np.array(100)

    if stem == "7x7":
        inplanes = 2 * stem_channels
        conv("conv1", inplanes, 3, 7)
        bn("bn1", inplanes)
    else:
        s = stem_channels
        for i, (cout, cin) in enumerate(((s, 3), (s, s), (2 * s, s))):
            conv(f"stem.{3 * i}", cout, cin, 3)
            bn(f"stem.{3 * i + 1}", cout)
        inplanes = 2 * s
    for stage, count in enumerate(counts):
        planes = base * 2**stage
        for block in range(count):
            p = f"layer{stage + 1}.{block}"
            if block == 0 and (stage > 0 or inplanes != planes * expansion):
                conv(f"{p}.downsample.0", planes * expansion, inplanes, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            if kind == "basic":
                conv(f"{p}.conv1", planes, inplanes, 3)
                conv(f"{p}.conv2", planes, planes, 3)
                bn(f"{p}.bn1", planes)
                bn(f"{p}.bn2", planes)
            else:
                conv(f"{p}.conv1", planes, inplanes, 1)
                conv(f"{p}.conv2", planes, planes, 3)
                conv(f"{p}.conv3", planes * expansion, planes, 1)
                for i, c in ((1, planes), (2, planes), (3, planes * expansion)):
                    bn(f"{p}.bn{i}", c)
            inplanes = planes * expansion
    sd["fc.weight"] = rng.normal(0.0, 0.01, (10, inplanes))
    sd["fc.bias"] = np.zeros(10)
    return {
        k: torch.tensor(v, dtype=torch.float32 if v.dtype.kind == "f" else torch.int64)
        for k, v in sd.items()
    }


def torch_forward(sd, images, depth, output_stride, stem):
    """The last stage (NHWC) of the dilated ResNet in eval mode, in PyTorch."""
    kind, counts = _ARCH[depth]
    strides, dilations = _STRIDES[output_stride]
    x = torch.from_numpy(images).permute(0, 3, 1, 2)

    def bn(x, p):
        return F.batch_norm(
            x,
            sd[f"{p}.running_mean"],
            sd[f"{p}.running_var"],
            sd[f"{p}.weight"],
            sd[f"{p}.bias"],
            False,
            0.0,
            1e-5,
        )

    def conv(x, p, stride=1, padding=0, dilation=1):
        return F.conv2d(x, sd[f"{p}.weight"], None, stride, padding, dilation)

    if stem == "7x7":
        x = F.relu(bn(conv(x, "conv1", 2, 3), "bn1"))
    else:
        for i in range(3):
            x = F.relu(bn(conv(x, f"stem.{3 * i}", 2 if i == 0 else 1, 1), f"stem.{3 * i + 1}"))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, count in enumerate(counts):
        for block in range(count):
            p, stride = f"layer{stage + 1}.{block}", strides[stage] if block == 0 else 1
            d = dilations[stage]
            d = d // 2 if block == 0 and d > 1 else d
            identity = x
            if f"{p}.downsample.0.weight" in sd:
                identity = bn(conv(x, f"{p}.downsample.0", stride), f"{p}.downsample.1")
            if kind == "basic":
                y = F.relu(bn(conv(x, f"{p}.conv1", stride, d, d), f"{p}.bn1"))
                y = bn(conv(y, f"{p}.conv2", 1, 1, 1), f"{p}.bn2")
            else:
                y = F.relu(bn(conv(x, f"{p}.conv1"), f"{p}.bn1"))
                y = F.relu(bn(conv(y, f"{p}.conv2", stride, d, d), f"{p}.bn2"))
                y = bn(conv(y, f"{p}.conv3"), f"{p}.bn3")
            x = F.relu(y + identity)
    return x.permute(0, 2, 3, 1).numpy()
