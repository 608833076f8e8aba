"""The authors' segmentor checkpoints: their DeepLabV3 baseline, the MCIBI variants that
the fixture does not cover (PPM, no context, several slots, no aux head), and the
errors. Oracles: a PyTorch forward of their DeepLabV3 head written out here, and
round trips through the authors' key names."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.convert import MappingError
from keras_memseg.convert import convert_state_dict
from keras_memseg.convert.segmentor_keys import segmenter_entries
from keras_memseg.convert.state_transfer import weight_pairs
from keras_memseg.models import DeepLabV3
from keras_memseg.models import MemorySegmenter


def _deeplabv3_state(state, seed=0):
    """The authors' DeepLabV3 (`aspp_net`, `decoder`, `auxiliary_decoder`) with the
    fixture's backbone and ASPP, and a random classifier."""
    rng = np.random.default_rng(seed)
    out = {k: v for k, v in state.items() if k.startswith(("backbone_net.", "auxiliary_decoder."))}
    for key, value in state.items():
        if key.startswith("context_within_image_module."):
            out["aspp_net." + key[len("context_within_image_module.") :]] = value
    out["decoder.1.weight"] = rng.normal(0.0, 0.3, (5, 16, 1, 1)).astype("float32")
    out["decoder.1.bias"] = rng.normal(0.0, 0.1, 5).astype("float32")
    return out


def _torch_aspp_head(sd, c4, rates=(1, 12, 24, 36)):
    """Their `ASPP` + `decoder` in eval mode, on the NHWC backbone output."""
    x = torch.from_numpy(c4).permute(0, 3, 1, 2)
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items()}

    def cbr(x, conv, bn, padding=0, dilation=1):
        y = F.conv2d(x, t[f"{conv}.weight"], None, 1, padding, dilation)
        y = F.batch_norm(
            y,
            t[f"{bn}.running_mean"],
            t[f"{bn}.running_var"],
            t[f"{bn}.weight"],
            t[f"{bn}.bias"],
            False,
            0.0,
            1e-5,
        )
        return F.relu(y)

    branches = []
    for i, rate in enumerate(rates):
        p = f"aspp_net.parallel_branches.{i}"
        branches.append(cbr(x, f"{p}.0", f"{p}.1", 0 if rate == 1 else rate, rate))
    pooled = cbr(
        F.adaptive_avg_pool2d(x, 1), "aspp_net.global_branch.1", "aspp_net.global_branch.2"
    )
    branches.append(F.interpolate(pooled, size=x.shape[2:], mode="bilinear", align_corners=False))
    y = cbr(torch.cat(branches, 1), "aspp_net.bottleneck.0", "aspp_net.bottleneck.1", 1)
    y = F.conv2d(y, t["decoder.1.weight"], t["decoder.1.bias"])
    return y.permute(0, 2, 3, 1).numpy()


def test_authors_deeplabv3_equals_a_pytorch_forward(state, recorded):
    sd = _deeplabv3_state(state)
    model, mapping = convert_state_dict(sd, dropout=0.0)
    assert isinstance(model, DeepLabV3)
    assert (model.num_classes, model.feats_channels, model.aux_channels) == (5, 16, 16)
    assert ("decoder.1.weight", "decoder/classifier/kernel") in mapping
    image = recorded["eval_image_nhwc"]
    expected = _torch_aspp_head(sd, recorded["eval_backbone_c4"])
    np.testing.assert_allclose(model.forward_heads(image)["logits"], expected, atol=1e-4, rtol=0)


def _as_torch_state(model):
    """The model's weights under the authors' key names (the inverse of the converter)."""
    out = {}
    for key, variable, _ in weight_pairs(segmenter_entries(model)):
        value = variable.numpy()
        out[key] = np.transpose(value, (3, 2, 0, 1)) if value.ndim == 4 else value
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"context": "ppm", "ppm_bins": (1, 2, 3), "feats_per_class": 2, "aux": False},
        {"context": None, "activation": "leaky_relu", "aux_channels": 8},
    ],
)
def test_mcibi_variants_round_trip(kwargs):
    backbone = DilatedResNetBackbone(depth=18, base_channels=8, stem="7x7")
    source = MemorySegmenter(
        backbone, num_classes=4, feats_channels=16, transform_channels=8, dropout=0.0, **kwargs
    )
    source(np.zeros((1, 32, 32, 3), "float32"))
    rng = np.random.default_rng(0)
    for w in source.weights:
        value = rng.normal(size=w.shape).astype("float32")
        w.assign(np.abs(value) + 0.5 if w.path.endswith("moving_variance") else value)
    options = {k: kwargs[k] for k in ("ppm_bins", "activation") if k in kwargs}
    model, _ = convert_state_dict(_as_torch_state(source), dropout=0.0, **options)
    config, expected = model.get_config(), source.get_config()
    for key in (
        "num_classes",
        "context",
        "feats_channels",
        "transform_channels",
        "feats_per_class",
        "aux",
        "activation",
        "ppm_bins",
    ):
        assert config[key] == expected[key], key
    if source.aux:
        assert config["aux_channels"] == expected["aux_channels"]
    assert model.backbone.stem == "7x7"
    for a, b in zip(source.weights, model.weights):
        if "num_updates" not in a.path:
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    x = rng.normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(x), source(x), atol=1e-5)


def test_every_problem_of_a_segmentor_checkpoint_in_one_error(state):
    sd = dict(state)
    sd["memory_module.extra.weight"] = np.zeros(1, "float32")
    del sd["decoder_stage1.1.running_mean"]
    sd["memory_module.bottleneck_ms.0.weight"] = np.zeros((16, 32, 1, 1), "float32")
    with pytest.raises(MappingError) as err:
        convert_state_dict(sd)
    message = str(err.value)
    assert "unmapped key(s): memory_module.extra.weight" in message
    assert (
        "missing key(s): decoder_stage1.1.running_mean (for decoder_stage1/block/bn/"
        "moving_mean)" in message
    )
    assert (
        "memory_module.bottleneck_ms.0.weight (16, 32, 1, 1) -> fuse_context/conv/kernel "
        "(3, 3, 32, 16)" in message
    )


def test_what_the_model_cannot_hold_is_named(state):
    sd = dict(state)
    sd["memory_module.bottleneck.0.weight"] = np.zeros((8, 32, 3, 3), "float32")
    with pytest.raises(ValueError, match="out_channels 8 differs from feats_channels 16"):
        convert_state_dict(sd)
    sd = dict(state)
    sd["memory_module.memory"] = np.zeros((5, 1, 8), "float32")
    with pytest.raises(ValueError, match=r"memory_module.memory has shape \(5, 1, 8\)"):
        convert_state_dict(sd)
    sd = {k: v for k, v in state.items() if not k.startswith("bottleneck.")}
    with pytest.raises(ValueError, match="has no 'bottleneck.0.weight': not an MCIBI"):
        convert_state_dict(sd)
