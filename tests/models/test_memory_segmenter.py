import warnings

import keras
import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import DeepLabV3
from keras_memseg.models import MemorySegmenter
from keras_memseg.training import PolyDecay
from keras_memseg.training import TiedMomentum

K = 4


def tiny(context="aspp", output_stride=8, **kwargs):
    backbone = DilatedResNetBackbone(depth=18, output_stride=output_stride, base_channels=8)
    args = dict(feats_channels=16, transform_channels=8, aux_channels=8, aspp_rates=(1, 2, 3),
                dropout=0.0)
    args.update(kwargs)
    return MemorySegmenter(backbone, num_classes=K, context=context, **args)


def _data(n=4, size=32, seed=0, classes=K - 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, 3)).astype("float32")
    # Labels follow the image (learnable) and never use the last class.
    y = (np.clip(x[..., 0], -1.49, 1.49) + 1.5).astype("int32") % classes
    y[:, :2] = 255
    return x, y


@pytest.mark.parametrize("context", ["aspp", "ppm", None])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_shapes(context, output_stride):
    model = tiny(context, output_stride)
    x = np.zeros((2, 32, 48, 3), "float32")
    assert tuple(model(x).shape) == (2, 32, 48, K)
    out = model(x, training=True)
    assert tuple(out["stage1"].shape) == (2, 32, 48, K)
    assert tuple(out["aux"].shape) == (2, 32, 48, K)
    assert tuple(out["features"].shape) == (2, 32 // output_stride, 48 // output_stride, 16)
    assert out["logits"].dtype == "float32"


def _conv(cin, cout, k, bias=False):
    return cin * cout * k * k + (cout if bias else 0)


def test_resnet50_os8_aspp_parameter_count_equals_reference():
    k = 150  # ADE20K
    bn = lambda c: 2 * c  # trainable gamma and beta
    backbone = 23_527_264  # see tests/backbones: torchvision R50 w/o fc, with the V1c stem
    aspp = (_conv(2048, 512, 1) + 3 * _conv(2048, 512, 3) + _conv(2048, 512, 1)
            + _conv(2560, 512, 3) + 6 * bn(512))
    bottleneck = _conv(2048, 512, 3) + bn(512)
    decoder_stage = _conv(512, 512, 1) + bn(512) + _conv(512, k, 1, bias=True)
    attention = (2 * (_conv(512, 256, 1) + bn(256) + _conv(256, 256, 1) + bn(256))  # q, k
                 + _conv(512, 256, 1) + bn(256) + _conv(256, 512, 1) + bn(512))     # v, out
    fuse = _conv(1024, 512, 3) + bn(512)
    aux = _conv(1024, 512, 3) + bn(512) + _conv(512, k, 1, bias=True)
    expected = backbone + aspp + bottleneck + 2 * decoder_stage + 2 * attention + 2 * fuse + aux
    assert expected == 91_410_722  # the number, written out (K = 150)
    model = MemorySegmenter("resnet50_v1c", num_classes=k, context="aspp")
    model(np.zeros((1, 64, 64, 3), "float32"))
    count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert count == expected
    assert tuple(model.memory.memory.shape) == (k, 1, 512)
    assert model.memory.memory.dtype == "float32" and not model.memory.memory.trainable


def test_fit_loss_falls_and_memory_fills_seen_classes_only():
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
    x, y = _data()
    history = model.fit(x, y, batch_size=4, epochs=12, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < 0.9 * losses[0], losses
    memory = model.memory.memory.numpy()
    seen = np.unique(y[y != 255])
    assert np.all(np.any(memory[seen] != 0, axis=-1))
    assert not np.any(memory[K - 1]), "a class never in the labels must keep a zero row"
    assert np.all(np.isfinite(memory))
    assert float(model.memory.num_updates.numpy()) == 12
    for w in model.weights:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(w))), w.path


def test_degenerate_batches_give_no_nan():
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False)
    x = np.ones((2, 32, 32, 3), "float32")  # constant features
    y = np.zeros((2, 32, 32), "int32")
    model.fit(x, y, batch_size=2, epochs=2, verbose=0)
    history = model.fit(x, np.full_like(y, 255), batch_size=2, epochs=1, verbose=0)  # all ignore
    assert np.isfinite(history.history["loss"][0])
    assert np.all(np.isfinite(model.memory.memory.numpy()))


def test_inference_never_updates_memory_and_warns_when_empty():
    model = tiny()
    x, y = _data(n=2)
    with pytest.warns(UserWarning, match="feature memory is all zero"):
        model.predict(x, verbose=0)
    model.memory.memory.assign(np.random.default_rng(0).random((K, 1, 16)).astype("float32"))
    before = model.memory.memory.numpy().copy()
    model.compile(optimizer="sgd", jit_compile=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.predict(x, verbose=0)
        model.evaluate(x, y, verbose=0)
    np.testing.assert_array_equal(model.memory.memory.numpy(), before)


def test_save_load_round_trip_keeps_memory_bit_exact(tmp_path):
    schedule = PolyDecay(0.01, total_steps=10)
    model = tiny(context="ppm", memory_momentum=TiedMomentum(schedule, 0.9, base_lr=0.009),
                 feats_per_class=2)
    model.compile(optimizer=keras.optimizers.SGD(schedule), jit_compile=False)
    x, y = _data(n=2)
    model.fit(x, y, batch_size=2, epochs=3, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.memory.memory.numpy(), model.memory.memory.numpy())
    assert float(loaded.memory.num_updates.numpy()) == 3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert loaded.get_config() == model.get_config()
    assert isinstance(loaded.memory_momentum, TiedMomentum)


def test_memory_loss_starts_at_given_step():
    model = tiny(memory_loss=True, memory_loss_start_step=2)
    model.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False)
    x, y = _data(n=2)
    history = model.fit(x, y, batch_size=2, epochs=4, verbose=0)
    memory_losses = history.history["loss_memory"]
    assert memory_losses[0] == 0.0 and memory_losses[1] == 0.0
    assert memory_losses[2] > 0.0


def test_momentum_schedule_is_tied_to_learning_rate():
    schedule = PolyDecay(0.01, total_steps=4)
    model = tiny(memory_momentum=TiedMomentum(schedule, 0.9, base_lr=0.01))
    model.compile(optimizer=keras.optimizers.SGD(schedule), jit_compile=False)
    x, y = _data(n=1)
    history = model.fit(x, y, batch_size=1, epochs=3, verbose=0)
    expected = [0.9 * ((0.99 * (1 - t / 4) ** 0.9) + 0.01) for t in range(3)]
    np.testing.assert_allclose(history.history["memory_momentum"], expected, rtol=1e-5)


def test_labels_out_of_range_raise():
    model = tiny()
    model.compile(optimizer="sgd", jit_compile=False)
    x, y = _data(n=2)
    y[0, 5, 5] = K + 3
    with pytest.raises(Exception, match="label values must be in"):
        model.fit(x, y, batch_size=2, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"context": "fpn"}, "context"),
        ({"memory_momentum": 1.5}, "memory_momentum"),
        ({"loss_weights": {"stage3": 1.0}}, "loss_weights"),
        ({"sync": "local"}, "sync"),
        ({"activation": "gelu"}, "activation"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)
    with pytest.raises(ValueError, match="unknown backbone"):
        MemorySegmenter("resnet49", num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), num_classes=1)


def test_deeplabv3_baseline_trains_and_round_trips(tmp_path):
    backbone = DilatedResNetBackbone(depth=18, base_channels=8)
    model = DeepLabV3(backbone, num_classes=K, feats_channels=16, aux_channels=8,
                      aspp_rates=(1, 2), dropout=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
    x, y = _data()
    history = model.fit(x, y, batch_size=4, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(str(tmp_path / "baseline.keras"))
    loaded = keras.models.load_model(str(tmp_path / "baseline.keras"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_local_preset_round_trip(tmp_path):
    model = tiny()
    x, _ = _data(n=1)
    model(x)
    model.memory.memory.assign(np.random.default_rng(5).random((K, 1, 16)).astype("float32"))
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = MemorySegmenter.from_preset(str(tmp_path / "preset"))
    np.testing.assert_array_equal(loaded.memory.memory.numpy(), model.memory.memory.numpy())
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="not a DeepLabV3"):
        DeepLabV3.from_preset(str(tmp_path / "preset"))
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        MemorySegmenter.from_preset(str(tmp_path))


@pytest.mark.parametrize("context", ["aspp", "ppm"])
def test_predict_on_several_input_sizes(context):
    # A retrace with unknown H, W must not break the resizes (TF dynamic shapes).
    model = tiny(context)
    model.memory.memory.assign(np.ones((K, 1, 16), "float32"))
    for size in ((32, 32), (48, 40), (40, 56)):
        out = model.predict(np.zeros((1, *size, 3), "float32"), verbose=0)
        assert out.shape == (1, *size, K)
