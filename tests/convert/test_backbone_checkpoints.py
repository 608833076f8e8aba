"""Backbone-only PyTorch checkpoints: open-mmlab ResNet-V1c and torchvision ResNet.

Oracles: the authors' recorded backbone output (fixture), and a PyTorch forward of
the torchvision / mmcv ResNet (`tests/torch_resnet_oracle.py`).
"""

import numpy as np
import pytest
import torch
from torch_resnet_oracle import resnet_state
from torch_resnet_oracle import torch_forward

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.convert import MappingError
from keras_memseg.convert import convert_checkpoint
from keras_memseg.convert import load_resnet_weights
from keras_memseg.convert import read_state_dict


def _images(seed=1, shape=(1, 45, 37, 3)):  # odd sizes: stride-2 padding must be symmetric
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


@pytest.mark.parametrize(
    "depth, stem, output_stride",
    [(18, "7x7", 32), (18, "7x7", 8), (50, "7x7", 32), (18, "deep", 8), (50, "deep", 8)],
)
def test_converted_backbone_equals_a_pytorch_forward(tmp_path, depth, stem, output_stride):
    sd = resnet_state(depth, base=8, stem=stem, stem_channels=4)
    torch.save({"state_dict": sd}, tmp_path / "r.pth")
    backbone, mapping = convert_checkpoint(tmp_path / "r.pth", output_stride=output_stride)
    assert (backbone.depth, backbone.stem, backbone.base_channels, backbone.stem_channels) == (
        depth,
        stem,
        8,
        4,
    )
    assert not any(key.startswith("fc.") for key, _ in mapping)
    x = _images()
    expected = torch_forward(sd, x, depth, output_stride, stem)
    # float32 rounding grows with the activations (P5 reaches ~100 for a random-initialised
    # ResNet-50): the margin is relative to their largest magnitude, 4e-6 of it, so that the
    # order in which oneDNN, Eigen and PyTorch sum 4608-term dot products does not matter
    # (observed: 1.5e-4 at a scale of ~100).
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(backbone(x)["P5"], expected, atol=max(1e-4, 4e-6 * scale), rtol=1e-4)


def test_basic_blocks_dilate_only_their_first_conv():
    net = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=8)
    assert net.get_layer("stack3_block1_1_conv").dilation_rate == (4, 4)
    assert net.get_layer("stack3_block1_2_conv").dilation_rate == (1, 1)
    assert net.get_layer("stack3_block0_1_conv").dilation_rate == (2, 2)
    assert DilatedResNetBackbone.from_config(net.get_config()).get_layer(
        "stack3_block1_2_conv"
    ).dilation_rate == (1, 1)
    # A model saved by keras_memseg < 0.2 (no `stem` in its config) keeps its structure.
    old = {
        k: v
        for k, v in net.get_config().items()
        if k not in ("stem", "shortcut", "legacy_basic_dilation")
    }
    legacy = DilatedResNetBackbone.from_config(old)
    assert legacy.legacy_basic_dilation
    assert legacy.get_layer("stack3_block1_2_conv").dilation_rate == (4, 4)


def test_seven_by_seven_stem_layers():
    net = DilatedResNetBackbone(depth=18, base_channels=8, stem="7x7")
    assert net.get_layer("conv1_conv").kernel_size == (7, 7)
    assert net.get_layer("conv1_conv").filters == 8
    assert net.get_layer("conv1_pad").padding == ((3, 3), (3, 3))
    assert all(layer.name not in ("conv2_conv", "conv3_conv") for layer in net.layers)
    clone = DilatedResNetBackbone.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    with pytest.raises(ValueError, match="stem must be one of"):
        DilatedResNetBackbone(depth=18, stem="5x5")
    with pytest.raises(ValueError, match="shortcut must be one of"):
        DilatedResNetBackbone(depth=18, shortcut="max_pool")


def test_v1c_checkpoint_from_the_authors_backbone(tmp_path, state, recorded):
    """The fixture's `backbone_net.*`, saved as an open-mmlab backbone checkpoint."""
    sd = {
        k[len("backbone_net.") :]: torch.from_numpy(v)
        for k, v in state.items()
        if k.startswith("backbone_net.")
    }
    sd["fc.weight"], sd["fc.bias"] = torch.zeros(10, 64), torch.zeros(10)
    torch.save(sd, tmp_path / "r18_v1c.pth")
    backbone, _ = convert_checkpoint(tmp_path / "r18_v1c.pth")
    assert (backbone.depth, backbone.base_channels, backbone.stem_channels, backbone.stem) == (
        18,
        8,
        8,
        "deep",
    )
    image = recorded["eval_image_nhwc"]
    np.testing.assert_allclose(
        backbone(image)["P5"], recorded["eval_backbone_c4"], atol=1e-4, rtol=0
    )
    # The recipes' path: --pretrained=r18_v1c.pth into the recipe's own backbone.
    target = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=8, stem_channels=8)
    assert load_resnet_weights(target, tmp_path / "r18_v1c.pth") == len(
        [layer for layer in target.layers if layer.weights]
    )
    np.testing.assert_allclose(target(image)["P5"], recorded["eval_backbone_c4"], atol=1e-4, rtol=0)


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


def test_extra_missing_and_misshapen_keys_in_one_error(tmp_path):
    sd = resnet_state(18, base=8, stem="deep", stem_channels=4)
    sd["layer5.0.conv1.weight"] = torch.zeros(1)  # extra
    del sd["layer2.1.bn2.running_var"]  # missing
    sd["layer3.0.conv2.weight"] = torch.zeros(32, 32, 1, 1)  # wrong shape
    torch.save(sd, tmp_path / "bad.pth")
    target = DilatedResNetBackbone(depth=18, base_channels=8)
    before = _weights(target)
    with pytest.raises(MappingError) as err:
        load_resnet_weights(target, tmp_path / "bad.pth")
    message = str(err.value)
    assert "1 unmapped key(s): layer5.0.conv1.weight" in message
    assert (
        "1 missing key(s): layer2.1.bn2.running_var (for stack1_block1_2_bn/moving_variance)"
    ) in message
    assert (
        "1 shape mismatch(es): layer3.0.conv2.weight (32, 32, 1, 1) -> "
        "stack2_block0_2_conv/kernel (3, 3, 32, 32)"
    ) in message
    assert "\n" not in message
    for old, new in zip(before, _weights(target)):
        np.testing.assert_array_equal(old, new)  # nothing half-loaded


def test_structures_that_do_not_fit_are_refused(tmp_path, state):
    torch.save(resnet_state(18, base=8, stem="7x7", stem_channels=4), tmp_path / "tv.pth")
    with pytest.raises(ValueError, match="has a 7x7 stem .torchvision. but backbone"):
        load_resnet_weights(DilatedResNetBackbone(depth=18, base_channels=8), tmp_path / "tv.pth")
    vd = resnet_state(50, base=8, stem="deep", stem_channels=4)
    vd["layer1.0.downsample.2.weight"] = vd.pop("layer1.0.downsample.1.weight")
    torch.save(vd, tmp_path / "vd.pth")
    with pytest.raises(ValueError, match="ResNet-vd"):
        convert_checkpoint(tmp_path / "vd.pth")
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, tmp_path / "seg.pth")
    with pytest.raises(ValueError, match="whole segmentor checkpoint"):
        load_resnet_weights(DilatedResNetBackbone(depth=18, base_channels=8), tmp_path / "seg.pth")
    torch.save({"encoder.weight": torch.ones(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a ResNet checkpoint"):
        convert_checkpoint(tmp_path / "other.pth")
    (tmp_path / "weights.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported pretrained source"):
        load_resnet_weights(
            DilatedResNetBackbone(depth=18, base_channels=8), tmp_path / "weights.npz"
        )


def test_read_back_equals_what_was_saved(tmp_path):
    sd = resnet_state(18, base=8, stem="7x7", stem_channels=4)
    torch.save({"model": sd}, tmp_path / "r.pth")
    out = read_state_dict(tmp_path / "r.pth")
    assert sorted(out) == sorted(sd)
