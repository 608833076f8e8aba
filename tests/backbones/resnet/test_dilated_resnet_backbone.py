import keras
import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.backbones import pyramid_feature_model
from keras_memseg.convert import load_resnet_weights


@pytest.mark.parametrize(
    "output_stride, strides", [(8, (4, 8, 8, 8)), (16, (4, 8, 16, 16)), (32, (4, 8, 16, 32))]
)
@pytest.mark.parametrize("depth", [18, 50])
def test_pyramid_shapes(depth, output_stride, strides):
    net = DilatedResNetBackbone(depth=depth, output_stride=output_stride, base_channels=4)
    out = net(np.zeros((1, 64, 64, 3), "float32"))
    expansion = 4 if depth == 50 else 1
    for i, (level, stride) in enumerate(zip(("P2", "P3", "P4", "P5"), strides)):
        assert tuple(out[level].shape) == (1, 64 // stride, 64 // stride, 4 * 2**i * expansion)


def test_v1c_structure_and_batchnorm_settings():
    net = DilatedResNetBackbone(depth=50, output_stride=8, base_channels=8)
    stem = [net.get_layer(f"conv{i}_conv") for i in (1, 2, 3)]
    assert [l.kernel_size for l in stem] == [(3, 3)] * 3
    assert [l.filters for l in stem] == [4, 4, 8]
    # PyTorch-style: the stride sits on the 3x3 conv; dilation contracted in the first block.
    assert net.get_layer("stack1_block0_2_conv").strides == (2, 2)
    assert net.get_layer("stack1_block0_1_conv").strides == (1, 1)
    assert net.get_layer("stack2_block0_2_conv").dilation_rate == (1, 1)
    assert net.get_layer("stack2_block1_2_conv").dilation_rate == (2, 2)
    assert net.get_layer("stack3_block0_2_conv").dilation_rate == (2, 2)
    assert net.get_layer("stack3_block1_2_conv").dilation_rate == (4, 4)
    for layer in net.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert not layer.use_bias
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5 and layer.momentum == 0.9


def test_resnet50_trainable_parameters_match_reference():
    # torchvision ResNet-50 without fc: 23,508,032; V1c swaps the 7x7 stem conv+BN (9,536)
    # for 3x3 convs 3->32, 32->32, 32->64 with BNs (28,768): 23,527,264.
    net = DilatedResNetBackbone(depth=50, output_stride=8)
    count = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    assert count == 23_527_264


def test_unknown_backbone_name():
    with pytest.raises(ValueError, match="unknown backbone preset 'resnet51'.*resnet50_v1c"):
        DilatedResNetBackbone.from_preset("resnet51")
    with pytest.raises(ValueError, match="depth"):
        DilatedResNetBackbone(depth=42)
    with pytest.raises(ValueError, match="output_stride"):
        DilatedResNetBackbone(depth=18, output_stride=4)


def test_config_round_trip():
    net = DilatedResNetBackbone(depth=18, output_stride=16, base_channels=4)
    clone = DilatedResNetBackbone.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
    assert clone.count_params() == net.count_params()


def _hub_resnet(stem=(32, 32, 64)):
    """A real ResNet-18 V1c in KerasHub terms (KerasHub requires 64 first-stage filters)."""
    keras_hub = pytest.importorskip("keras_hub")
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=list(stem),
        input_conv_kernel_sizes=[3, 3, 3],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
    )


@pytest.fixture(scope="module")
def hub_preset(tmp_path_factory):
    hub = _hub_resnet()
    path = tmp_path_factory.mktemp("hub") / "resnet18_v1c"
    hub.save_to_preset(str(path))
    return hub, path


def test_load_from_local_keras_hub_preset(hub_preset):
    hub, path = hub_preset
    x = np.random.default_rng(0).random((1, 64, 64, 3)).astype("float32")
    ours = DilatedResNetBackbone(depth=18, output_stride=32)
    assert load_resnet_weights(ours, path) == len([l for l in ours.layers if l.weights])
    # Same weights, undilated strides: the V1c structure must reproduce hub's output.
    expected = keras.Model(hub.inputs, hub.pyramid_outputs["P5"])(x)
    np.testing.assert_allclose(ours(x)["P5"], expected, atol=1e-4)
    dilated = DilatedResNetBackbone(depth=18, output_stride=8)
    load_resnet_weights(dilated, path)
    np.testing.assert_array_equal(
        dilated.get_layer("stack3_block1_2_conv").kernel,
        hub.get_layer("stack3_block1_2_conv").kernel,
    )
    assert tuple(dilated(x)["P5"].shape) == (1, 8, 8, 512)


def test_wrong_depth_and_shapes_raise(hub_preset, tmp_path):
    _, path = hub_preset
    deeper = DilatedResNetBackbone(depth=34, output_stride=8)
    with pytest.raises(ValueError, match="stack0_block2.*missing"):
        load_resnet_weights(deeper, path)
    narrow = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=64, stem_channels=16)
    with pytest.raises(ValueError, match="incompatible weights.*conv1_conv.*shapes"):
        load_resnet_weights(narrow, path)
    with pytest.raises(ValueError, match="not a KerasHub preset"):
        load_resnet_weights(narrow, tmp_path)


def test_weights_h5_between_output_strides(tmp_path):
    src = DilatedResNetBackbone(depth=18, output_stride=32, base_channels=4)
    src.save_weights(str(tmp_path / "r18.weights.h5"))
    dst = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=4)
    load_resnet_weights(dst, tmp_path / "r18.weights.h5")
    for a, b in zip(src.weights, dst.weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError):
        load_resnet_weights(dst, tmp_path / "missing.weights.h5")
    wrong = DilatedResNetBackbone(depth=50, output_stride=8, base_channels=4)
    with pytest.raises(ValueError, match="cannot load"):
        load_resnet_weights(wrong, tmp_path / "r18.weights.h5")


def test_keras_hub_and_keras_cv_adapters():
    hub = _hub_resnet()
    model = pyramid_feature_model(hub)
    out = model(np.zeros((1, 64, 64, 3), "float32"))
    assert tuple(out["P5"].shape) == (1, 2, 2, 512)
    keras_cv = pytest.importorskip("keras_cv")
    cv = keras_cv.models.ResNetBackbone(  # the class itself: presets would download
        stackwise_filters=[8, 16, 32, 64],
        stackwise_blocks=[1, 1, 1, 1],
        stackwise_strides=[1, 2, 2, 2],
        include_rescaling=False,
        input_shape=(None, None, 3),
    )
    out = pyramid_feature_model(cv)(np.zeros((1, 64, 64, 3), "float32"))
    assert sorted(out) == ["P2", "P3", "P4", "P5"]
    assert tuple(out["P5"].shape)[1:3] == (2, 2)
    with pytest.raises(TypeError, match="pyramid_outputs"):
        pyramid_feature_model(keras.Sequential([keras.layers.Dense(2)]))


@pytest.mark.parametrize("name", sorted(DilatedResNetBackbone.presets))
def test_named_presets_build_their_architecture(name):
    preset = DilatedResNetBackbone.presets[name]
    net = DilatedResNetBackbone.from_preset(name, load_weights=False, output_stride=16)
    assert net.depth == preset["config"]["depth"] and net.output_stride == 16
    count = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    assert count == preset["metadata"]["params"]


def test_named_preset_weights_come_from_the_local_preset_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="resnet18_v1c-b5776b93.pth.*keras_memseg.convert"):
        DilatedResNetBackbone.from_preset("resnet18_v1c")
    source = DilatedResNetBackbone(depth=18, output_stride=32)
    source.save_to_preset(str(tmp_path / "presets" / "resnet18_v1c"))
    loaded = DilatedResNetBackbone.from_preset("resnet18_v1c", output_stride=8)
    assert loaded.output_stride == 8
    for a, b in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="change the weights"):
        DilatedResNetBackbone.from_preset("resnet18_v1c", base_channels=8)


def test_local_preset_folder_round_trip(tmp_path):
    net = DilatedResNetBackbone(depth=18, output_stride=8, base_channels=4)
    net.save_to_preset(str(tmp_path / "r18"))
    loaded = DilatedResNetBackbone.from_preset(str(tmp_path / "r18"))
    assert loaded.get_config() == net.get_config()
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x)["P5"], net(x)["P5"], atol=1e-6)


def test_dtype_argument_reaches_every_layer():
    net = DilatedResNetBackbone(depth=18, base_channels=4, dtype="mixed_bfloat16")
    assert {l.dtype_policy.name for l in net.layers if l.weights} == {"mixed_bfloat16"}
    assert DilatedResNetBackbone.from_config(net.get_config()).dtype_policy.name == "mixed_bfloat16"


def test_the_old_import_path_of_load_resnet_weights_says_where_it_went():
    import keras_memseg.backbones as backbones

    with pytest.raises(AttributeError, match="moved to keras_memseg.convert.load_resnet_weights"):
        backbones.load_resnet_weights  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'load_resnet'"):
        backbones.load_resnet  # noqa: B018
