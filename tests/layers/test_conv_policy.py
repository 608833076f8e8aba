"""The conv-path policy: its table per backend and device, the setting, device kinds, which
layers follow it, and files written before it (issue #28) loading with it active."""

import doctest
import io
import os
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.layers import ASPP
from keras_memseg.layers import ConvBNAct
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers import conv_policy
from keras_memseg.layers.conv_policy import choose
from keras_memseg.layers.conv_policy import computed_as
from keras_memseg.layers.conv_policy import conv2d
from keras_memseg.layers.conv_policy import conv_path
from keras_memseg.layers.conv_policy import follows_conv_path
from keras_memseg.layers.conv_policy import get_conv_path
from keras_memseg.layers.conv_policy import set_conv_path
from keras_memseg.models import load_segmenter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
ATOL = 1e-5

ASPP36 = ((2, 32, 32, 2048), (3, 3, 2048, 512), (1, 1), (36, 36), "same")  # one in-map tap
ASPP12 = ((2, 32, 32, 2048), (3, 3, 2048, 512), (1, 1), (12, 12), "same")
HEAD3X3 = ((2, 32, 32, 2048), (3, 3, 2048, 512), (1, 1), (1, 1), "same")
NARROW3X3 = ((2, 64, 64, 64), (3, 3, 64, 64), (1, 1), (1, 1), "same")
ONE = ((2, 32, 32, 2048), (1, 1, 2048, 512), (1, 1), (1, 1), "same")
UNKNOWN_HW_DILATED = ((2, None, None, 64), (3, 3, 64, 64), (1, 1), (12, 12), "same")
STRIDED = ((2, 64, 64, 256), (1, 1, 256, 512), (2, 2), (1, 1), "valid")

# (backend, device, geometry) -> computation under "auto": the table of the module docstring.
AUTO = [
    ("tensorflow", "cpu", ONE, "matmul"),
    ("jax", "cpu", ((2, None, None, 64), (1, 1, 64, 256), (1, 1), (1, 1), "valid"), "matmul"),
    ("torch", "cpu", ONE, "conv"),
    ("tensorflow", "cpu", STRIDED, "conv"),
    ("tensorflow", "cpu", HEAD3X3, "taps"),  # wide
    ("jax", "cpu", ((2, 32, 32, 128), (3, 3, 128, 128), (1, 1), (1, 1), "same"), "taps"),
    ("tensorflow", "cpu", NARROW3X3, "conv"),
    ("tensorflow", "cpu", ((2, None, None, 2048),) + HEAD3X3[1:], "conv"),
    ("tensorflow", "cpu", ((2, 32, 32, 64), (3, 3, 64, 64), (1, 1), (4, 4), "same"), "taps"),
    ("jax", "cpu", UNKNOWN_HW_DILATED, "padded_taps"),
    ("tensorflow", "cpu", ((2, 32, 32, 64), (3, 3, 64, 64), (1, 1), (4, 4), "valid"), "conv"),
    ("tensorflow", "cpu", ((2, 128, 128, 3), (3, 3, 3, 32), (2, 2), (1, 1), "valid"), "conv"),
    ("torch", "cpu", ASPP12, "conv"),
    ("torch", "cpu", ASPP36, "taps"),
    ("torch", "cpu", UNKNOWN_HW_DILATED, "conv"),
    ("torch", "cpu", ((2, 32, 32, 8), (1, 1, 8, 8), (1, 1), (36, 36), "same"), "conv"),
    # GPU (measured: JAX on an H100) and TPU (unmeasured): the backend's conv everywhere.
    *[
        (b, d, g, "conv")
        for b in ("tensorflow", "jax", "torch")
        for d in ("gpu", "tpu")
        for g in (ONE, HEAD3X3, ASPP12, ASPP36, UNKNOWN_HW_DILATED)
    ],
    ("numpy", "cpu", ASPP12, "conv"),  # a backend the table does not know
]


@pytest.mark.parametrize("backend, device, geometry, expected", AUTO)
def test_auto_table(backend, device, geometry, expected):
    assert choose(backend, device, *geometry) == expected


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
@pytest.mark.parametrize("device", ["cpu", "gpu", "tpu"])
@pytest.mark.parametrize(
    "geometry, matmul",
    [
        (ONE, "matmul"),
        (HEAD3X3, "taps"),
        (NARROW3X3, "taps"),
        (ASPP12, "taps"),
        (UNKNOWN_HW_DILATED, "padded_taps"),
        (((2, None, None, 64),) + NARROW3X3[1:], "padded_taps"),
        (STRIDED, "conv"),  # no matmul form: strided
        (((2, 9, 9, 3), (3, 3, 3, 4), (1, 1), (2, 2), "valid"), "conv"),  # "valid" kxk
    ],
)
def test_settings_override_the_table(backend, device, geometry, matmul):
    assert choose(backend, device, *geometry, setting="matmul") == matmul
    assert choose(backend, device, *geometry, setting="conv") == "conv"


def test_bad_arguments_say_what_is_allowed():
    with pytest.raises(
        ValueError, match=r"device must be one of \('cpu', 'gpu', 'tpu'\), got 'cuda'"
    ):
        choose("jax", "cuda", *ONE)
    with pytest.raises(ValueError, match="setting must be one of .* got 'fast'"):
        choose("jax", "cpu", *ONE, setting="fast")
    with pytest.raises(ValueError, match="conv path must be one of"):
        set_conv_path("taps")


def test_setting_set_scoped_and_from_the_environment(monkeypatch):
    monkeypatch.delenv(conv_policy.ENV, raising=False)
    assert get_conv_path() == "auto"
    monkeypatch.setenv(conv_policy.ENV, "conv")
    assert get_conv_path() == "conv"
    try:
        set_conv_path("matmul")  # the process setting wins over the variable
        assert get_conv_path() == "matmul"
        with conv_path("auto"):
            assert get_conv_path() == "auto"
            with pytest.raises(RuntimeError):
                with conv_path("conv"):
                    assert get_conv_path() == "conv"
                    raise RuntimeError
            assert get_conv_path() == "auto"
        assert get_conv_path() == "matmul"
    finally:
        set_conv_path(None)
    assert get_conv_path() == "conv"
    monkeypatch.setenv(conv_policy.ENV, "fastest")
    with pytest.raises(ValueError, match=r"\$KERAS_MEMSEG_CONV_PATH must be one of"):
        get_conv_path()


def _graph_ops(layer, shape):
    fn = tf.function(layer, input_signature=[tf.TensorSpec(shape)])
    return {op.type for op in fn.get_concrete_function().graph.get_operations()}


def test_the_device_kind_decides(monkeypatch):
    """The same layer traced on a (faked) GPU takes Conv2D's path, on a CPU the tap sum."""
    layer = conv2d(4, 3, padding="same", dilation_rate=4)
    layer.build((None, 8, 8, 3))
    monkeypatch.setattr(conv_policy, "device_kind", lambda inputs=None: "gpu")
    assert computed_as(layer, (2, 8, 8, 3)) == "conv"
    assert "SpaceToBatchND" in _graph_ops(layer, [2, 8, 8, 3])
    monkeypatch.setattr(conv_policy, "device_kind", lambda inputs=None: "cpu")
    assert computed_as(layer, (2, 8, 8, 3)) == "taps"
    ops = _graph_ops(layer, [2, 8, 8, 3])
    assert "MatMul" in ops and "SpaceToBatchND" not in ops


def test_device_kind_here():
    expected = "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    assert conv_policy.device_kind() == expected


def test_grouped_and_channels_first_are_conv2d():
    with conv_path("matmul"):
        assert computed_as(conv2d(4, 1, groups=2), (1, 8, 8, 4), "cpu") == "conv"
        layer = conv2d(4, 1, data_format="channels_first")
        assert computed_as(layer, (1, 4, 8, 8), "cpu") == "conv"


def _convs(layer):
    return [x for x in layer._flatten_layers() if isinstance(x, keras.layers.Conv2D)]


def _all_follow(convs):
    return bool(convs) and all(
        type(c) is keras.layers.Conv2D and follows_conv_path(c) for c in convs
    )


def test_every_conv_of_the_backbone_and_heads_follows_the_policy():
    net = DilatedResNetBackbone(depth=18, base_channels=8)
    assert _all_follow(_convs(net))
    names = {layer.name for layer in _convs(net)}
    assert {"conv1_conv", "stack0_block0_1_conv", "stack3_block1_2_conv"} <= names
    assert "stack1_block0_0_conv" in names  # the 1x1 strided shortcut
    # A functional backbone rebuilt from its config runs its constructor again.
    again = DilatedResNetBackbone.from_config(net.get_config())
    assert _all_follow(_convs(again))
    aspp = ASPP(filters=4, rates=(1, 12))
    assert _all_follow([b.conv for b in aspp.branches]) and aspp.branches[1].conv.name == "conv"
    assert _all_follow([ConvBNAct(4, 3).conv])
    assert _all_follow([SegmentationDecoder(3, channels=4).classifier])


@pytest.mark.parametrize("name", ["mcibi.keras", "mcibi_preset", "deeplabv3.keras"])
def test_models_saved_by_keras_memseg_0_1_load_with_the_policy(name):
    """Files written before `MatmulConv2D` existed (plain Conv2D configs; their outputs are
    `tests/models/segmenter/test_compat.py`'s) come back with every conv following it."""
    with pytest.warns(UserWarning, match="training policy is set by compile"):
        model = load_segmenter(os.path.join(FIXTURES, "keras_memseg_0_1", name))
    convs = _convs(model)
    assert len(convs) > 20 and _all_follow(convs)


def _stored_weights(keras_file):
    """name -> array of every variable in a `.keras` file's weights, as stored."""
    with zipfile.ZipFile(keras_file) as z:
        data = io.BytesIO(z.read("model.weights.h5"))
    stored = {}
    with h5py.File(data, "r") as f:
        f.visititems(lambda k, v: stored.update({k: v[()]} if isinstance(v, h5py.Dataset) else {}))
    return stored


def test_file_saved_while_matmul_conv2d_was_a_subclass_loads():
    """Configs naming "keras_memseg>MatmulConv2D", with `conv2d...` weight paths (see the
    fixture's README), load bit-exactly as Conv2D layers following the policy."""
    folder = os.path.join(FIXTURES, "matmul_conv2d_subclass")
    path = os.path.join(folder, "functional.keras")
    model = keras.saving.load_model(path)
    convs = [
        model.get_layer("dilated"),
        model.get_layer("classifier"),
        model.get_layer("block").conv,
    ]
    assert _all_follow(convs)
    assert repr(convs[0]) == "<Conv2D name=dilated, built=True>"
    stored = _stored_weights(path)
    for key, layer in (("layers/conv2d_1", "dilated"), ("layers/conv2d_2", "classifier")):
        for i, variable in enumerate(model.get_layer(layer).weights):
            np.testing.assert_array_equal(variable.numpy(), stored[f"{key}/vars/{i}"])
    recorded = np.load(os.path.join(folder, "outputs.npz"))
    with conv_path("matmul"):
        np.testing.assert_allclose(model(recorded["images"]), recorded["outputs"], atol=ATOL)
    # What the model saves now: plain Conv2D configs, the same weight paths.
    config = keras.saving.serialize_keras_object(model.get_layer("dilated"))
    assert (config["class_name"], config["registered_name"]) == ("Conv2D", None)


def test_old_name_reads_as_conv2d_and_says_where_it_went():
    import keras_memseg.layers

    with pytest.raises(AttributeError, match="moved to keras_memseg.layers.conv2d"):
        keras_memseg.layers.MatmulConv2D  # noqa: B018
    layer = conv2d(5, 3, padding="same", dilation_rate=12, use_bias=False, name="conv")
    old_config = {
        "module": None,
        "class_name": "Conv2D",
        "registered_name": "keras_memseg>MatmulConv2D",
        "config": layer.get_config(),
    }
    again = keras.saving.deserialize_keras_object(old_config)
    assert type(again) is keras.layers.Conv2D and follows_conv_path(again)
    assert again.get_config() == layer.get_config()


def test_importing_starts_no_device():
    """`JAX_PLATFORMS=tpu` on a machine without one: anything that initialised JAX's
    devices at import would raise."""
    code = "import keras_memseg.layers, keras_memseg.backbones; print('imported')"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "tpu", "PYTHONPATH": ROOT}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "imported" in proc.stdout, proc.stderr[-3000:]


def test_tf_distribute_replicas_follow_the_setting():
    """MirroredStrategy over two logical CPUs (a fresh process): see the check's docstring."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "matmul_conv_backend_check.py"), "--mirrored"],
        env={**env, "PYTHONPATH": ROOT},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "OK tensorflow" in proc.stdout, proc.stderr[-6000:]


def test_docstring_examples():
    result = doctest.testmod(conv_policy, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
