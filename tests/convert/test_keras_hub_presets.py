"""KerasHub ResNet presets of every structure KerasHub publishes (7x7 stem, ResNet-vd)
load into the dilated backbone and give KerasHub's own features; other structures
are refused. The oracle is the KerasHub model itself, at output stride 32.

KerasHub requires 64 first-stage filters, so these are full-width ResNets with
random weights and random BN statistics (saved as local preset folders).
"""

import json

import keras
import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.convert import load_resnet_weights

keras_hub = pytest.importorskip("keras_hub")

STRUCTURES = {  # KerasHub's presets: resnet_18/50_imagenet, resnet_vd_18/50_imagenet
    "7x7_basic": ([64], [7], [2, 2, 2, 2], "basic_block"),
    "7x7_bottleneck": ([64], [7], [3, 4, 6, 3], "bottleneck_block"),
    "vd_basic": ([32, 32, 64], [3, 3, 3], [2, 2, 2, 2], "basic_block_vd"),
    "vd_bottleneck": ([32, 32, 64], [3, 3, 3], [3, 4, 6, 3], "bottleneck_block_vd"),
}
EXPECTED = {
    "7x7_basic": (18, "7x7", "conv"),
    "7x7_bottleneck": (50, "7x7", "conv"),
    "vd_basic": (18, "deep", "avg_pool"),
    "vd_bottleneck": (50, "deep", "avg_pool"),
}


def _hub_preset(tmp_path, name, pre_activation=False):
    filters, kernels, blocks, block_type = STRUCTURES[name]
    hub = keras_hub.models.ResNetBackbone(
        input_conv_filters=filters,
        input_conv_kernel_sizes=kernels,
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=blocks,
        stackwise_num_strides=[1, 2, 2, 2],
        block_type=block_type,
        use_pre_activation=pre_activation,
    )
    rng = np.random.default_rng(0)
    for layer in hub.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0.0, 0.1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape))
    folder = tmp_path / name
    hub.save_to_preset(str(folder))
    return hub, folder


@pytest.mark.parametrize(
    "name",
    [
        "7x7_basic",
        "7x7_bottleneck",
        "vd_basic",
        pytest.param("vd_bottleneck", marks=pytest.mark.slow),
    ],
)
def test_keras_hub_structures_give_keras_hubs_features(tmp_path, name):
    hub, folder = _hub_preset(tmp_path, name)
    x = np.random.default_rng(1).normal(size=(1, 45, 37, 3)).astype("float32")  # odd sizes
    expected = keras.Model(hub.inputs, hub.pyramid_outputs)(x)
    ours = DilatedResNetBackbone.from_preset(str(folder), output_stride=32)
    assert (ours.depth, ours.stem, ours.shortcut) == EXPECTED[name]
    out = ours(x)
    for level in ("P2", "P3", "P4", "P5"):
        np.testing.assert_allclose(out[level], expected[level], atol=1e-4, rtol=1e-4)
    # The same through load_resnet_weights into a backbone built by hand (dilated).
    depth, stem, shortcut = EXPECTED[name]
    dilated = DilatedResNetBackbone(depth=depth, output_stride=8, stem=stem, shortcut=shortcut)
    load_resnet_weights(dilated, folder)
    np.testing.assert_array_equal(
        dilated.get_layer("stack3_block1_1_conv").kernel,
        hub.get_layer("stack3_block1_1_conv").kernel,
    )
    # ... and refused by a backbone of the paper's structure (deep stem, conv shortcut).
    v1c = DilatedResNetBackbone(depth=depth, output_stride=8)
    before = v1c.get_layer("conv1_conv").kernel.numpy().copy()
    with pytest.raises(ValueError, match="is a ResNet with .* but backbone .* has the deep"):
        load_resnet_weights(v1c, folder)
    np.testing.assert_array_equal(v1c.get_layer("conv1_conv").kernel, before)


def test_pre_activation_presets_are_refused(tmp_path):
    _, folder = _hub_preset(tmp_path, "7x7_basic")
    config = json.loads((folder / "config.json").read_text())
    config["config"]["use_pre_activation"] = True  # KerasHub's resnet_v2_* structure
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="ResNetV2 .pre-activation."):
        DilatedResNetBackbone.from_preset(str(folder))
    with pytest.raises(ValueError, match="ResNetV2"):
        load_resnet_weights(DilatedResNetBackbone(depth=18, stem="7x7"), folder)
