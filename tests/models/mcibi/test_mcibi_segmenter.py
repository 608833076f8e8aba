import json
import warnings

import keras
import numpy as np
import pytest
from keras_testing import run_model_saving_test

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import MemorySegmenter
from keras_memseg.optimizers import PolyDecay
from keras_memseg.optimizers import TiedMomentum
from keras_memseg.optimizers import TorchSGD

K = 4


def tiny(context="aspp", output_stride=8, **kwargs):
    backbone = DilatedResNetBackbone(depth=18, output_stride=output_stride, base_channels=8)
    args = dict(
        feats_channels=16, transform_channels=8, aux_channels=8, aspp_rates=(1, 2, 3), dropout=0.0
    )
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
    aspp = (
        _conv(2048, 512, 1)
        + 3 * _conv(2048, 512, 3)
        + _conv(2048, 512, 1)
        + _conv(2560, 512, 3)
        + 6 * bn(512)
    )
    bottleneck = _conv(2048, 512, 3) + bn(512)
    decoder_stage = _conv(512, 512, 1) + bn(512) + _conv(512, k, 1, bias=True)
    attention = (
        2 * (_conv(512, 256, 1) + bn(256) + _conv(256, 256, 1) + bn(256))  # q, k
        + _conv(512, 256, 1)
        + bn(256)
        + _conv(256, 512, 1)
        + bn(512)
    )  # v, out
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
    model = tiny(context="ppm", feats_per_class=2)
    model.compile(
        optimizer=keras.optimizers.SGD(schedule),
        jit_compile=False,
        memory_momentum=TiedMomentum(schedule, 0.9, base_lr=0.009),
    )
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
    model = tiny()
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        jit_compile=False,
        loss_weights={"memory": 1.0},
        memory_loss_start_step=2,
    )
    x, y = _data(n=2)
    history = model.fit(x, y, batch_size=2, epochs=4, verbose=0)
    memory_losses = history.history["loss_memory"]
    assert memory_losses[0] == 0.0 and memory_losses[1] == 0.0
    assert memory_losses[2] > 0.0


def test_momentum_schedule_is_tied_to_learning_rate():
    schedule = PolyDecay(0.01, total_steps=4)
    model = tiny()
    model.compile(
        optimizer=keras.optimizers.SGD(schedule),
        jit_compile=False,
        memory_momentum=TiedMomentum(schedule, 0.9, base_lr=0.01),
    )
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
        ({"sync": "local"}, "sync"),
        ({"activation": "gelu"}, "activation"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)
    with pytest.raises(ValueError, match="unknown backbone preset"):
        MemorySegmenter("resnet49", num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        MemorySegmenter(DilatedResNetBackbone(depth=18, base_channels=8), num_classes=1)


def test_local_preset_round_trip(tmp_path):
    model = tiny()
    x, _ = _data(n=1)
    model(x)
    model.memory.memory.assign(np.random.default_rng(5).random((K, 1, 16)).astype("float32"))
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = MemorySegmenter.from_preset(str(tmp_path / "preset"))
    np.testing.assert_array_equal(loaded.memory.memory.numpy(), model.memory.memory.numpy())
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
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


def test_model_contract(tmp_path):
    model = tiny(context="ppm", feats_per_class=2)
    x, _ = _data(n=1)
    model(x)
    model.memory.memory.assign(np.random.default_rng(3).random((K, 2, 16)).astype("float32"))
    run_model_saving_test(model, x, tmp_path)


def test_saved_config_holds_architecture_not_training_policy(tmp_path):
    model = tiny()
    model.compile(
        optimizer=keras.optimizers.SGD(PolyDecay(0.01, 10)),
        jit_compile=False,
        loss_weights={"memory": 1.0},
        memory_loss_start_step=3,
        weight_decay=1e-4,
    )
    config = model.get_config()
    for key in (
        "memory_momentum",
        "loss_weights",
        "weight_decay",
        "memory_loss_start_step",
        "memory_loss",
    ):
        assert key not in config
    assert "PolyDecay" not in json.dumps(config) and "TiedMomentum" not in json.dumps(config)
    # The compile config (what `load_model(compile=True)` restores) carries the policy.
    x, y = _data(n=2)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    assert loaded.loss_weights == model.loss_weights and loaded.weight_decay == 1e-4
    assert loaded.memory_loss_start_step == 3
    assert isinstance(loaded.memory_momentum, TiedMomentum)


def test_fine_tuning_a_loaded_model_follows_the_new_schedule(tmp_path):
    model = tiny()
    old = PolyDecay(0.01, total_steps=4)
    model.compile(optimizer=keras.optimizers.SGD(old), jit_compile=False)
    x, y = _data(n=2)
    model.fit(x, y, batch_size=2, epochs=4, verbose=0)
    model.save(str(tmp_path / "trained.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "trained.keras"), compile=False)
    assert float(loaded.memory.num_updates.numpy()) == 4
    new = PolyDecay(0.1, total_steps=10)
    loaded.compile(
        optimizer=keras.optimizers.SGD(new),
        jit_compile=False,
        loss_weights={"memory": 1.0},
        memory_loss_start_step=1,
    )
    history = loaded.fit(x, y, batch_size=2, epochs=2, verbose=0).history
    # "auto" momentum: 0.9 * lr_t / lr_0 of the NEW schedule, counted from compile().
    expected = [0.9 * float(new(t)) / 0.1 for t in range(2)]
    np.testing.assert_allclose(history["memory_momentum"], expected, rtol=1e-5)
    assert history["loss_memory"][0] == 0.0 and history["loss_memory"][1] > 0.0


def test_memory_loss_before_its_start_leaves_no_trace():
    x, y = _data(n=2)
    models = []
    for loss_weights in ({"memory": 1.0}, {"memory": 0.0}):
        keras.utils.set_random_seed(0)
        model = tiny()
        model.compile(
            optimizer=keras.optimizers.SGD(0.05),
            jit_compile=False,
            loss_weights=loss_weights,
            memory_loss_start_step=100,
        )
        model.fit(x, y, batch_size=2, epochs=2, verbose=0)
        models.append(model)
    for a, b in zip(models[0].weights, models[1].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"memory_momentum": 1.5}, "memory_momentum"),
        ({"loss_weights": {"stage3": 1.0}}, "unknown loss_weights keys \\['stage3'\\]"),
        ({"loss_weights": {"aux": -1.0}}, "loss_weights\\['aux'\\] must be >= 0"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"memory_loss_start_step": 2.5}, "memory_loss_start_step"),
        ({"loss": "mse"}, "loss must be 'auto' or a callable"),
    ],
)
def test_bad_compile_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny().compile(**kwargs)


def test_auto_policy_is_the_reference_optimizer():
    model = tiny()
    model.compile()
    assert isinstance(model.optimizer, TorchSGD) and model.optimizer.momentum == 0.9
    assert model.weight_decay == 5e-4 and model.memory_momentum == 0.9
    assert model.loss_weights == {"stage2": 1.0, "stage1": 0.4, "aux": 0.4, "memory": 0.0}
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert model.weight_decay == 0.0


def test_legacy_config_drops_policy_with_a_warning():
    config = tiny().get_config()
    config.update(memory_momentum=0.5, weight_decay=1e-4, memory_loss=True)
    config["ignore_index"] = config.pop("ignore_class")
    with pytest.warns(UserWarning, match="training policy is set by compile"):
        model = MemorySegmenter.from_config(config)
    assert model.ignore_class == 255


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 2.7}, "num_classes must be an integer"),
        ({"num_classes": "5"}, "num_classes must be an integer >= 2, got '5'"),
        ({"ignore_class": 2}, "ignore_class 2 is a class id"),
        ({"feats_channels": 0}, "feats_channels"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_constructor_names_the_bad_argument(kwargs, match):
    args = dict(
        backbone=DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes=K,
        feats_channels=16,
        transform_channels=8,
        aux_channels=8,
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MemorySegmenter(**args)


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.zeros((2, 32, 32), "float32"), "integer class ids"),
        (np.zeros((2, 32, 32, 3), "int32"), "RGB colour labels"),
    ],
)
def test_float_and_multichannel_labels_are_refused(labels, match):
    model = tiny()
    model.compile(jit_compile=False)
    with pytest.raises(ValueError, match=match):
        model.fit(_data(n=2)[0], labels, batch_size=2, epochs=1, verbose=0)


def test_a_non_finite_batch_changes_nothing_but_the_counter():
    model = tiny()
    model.compile(jit_compile=False)
    x, y = _data(n=2)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    before = {w.path: w.numpy().copy() for w in model.weights}
    bad = x.copy()
    bad[0, 3, 3, 1] = np.nan
    history = model.fit(bad, y, batch_size=2, epochs=1, verbose=0).history
    assert history["nonfinite_batches"] == [1.0]
    changed = [w.path for w in model.weights if not np.array_equal(w.numpy(), before[w.path])]
    assert changed == ["feature_memory/num_updates"]  # the step counter still advances
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history
    assert history["nonfinite_batches"] == [0.0]
    assert not model.nonfinite_weights()


def test_huge_finite_pixels_change_nothing_but_the_counter():
    # 1e30 is finite, but a BN batch variance of it overflows to inf while the
    # normalised outputs stay finite: the BN statistics are checked too (issue #34).
    model = tiny()
    model.compile(jit_compile=False)
    x, y = _data(n=2)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    before = {w.path: w.numpy().copy() for w in model.weights}
    history = model.fit(np.full_like(x, 1e30), y, batch_size=2, epochs=1, verbose=0).history
    assert history["nonfinite_batches"] == [1.0]
    changed = [w.path for w in model.weights if not np.array_equal(w.numpy(), before[w.path])]
    assert changed == ["feature_memory/num_updates"]
    assert not model.nonfinite_weights()


@pytest.mark.parametrize(
    "optimizer",
    [lambda: keras.optimizers.SGD(float("nan")), lambda: TorchSGD(float("nan"))],
)
def test_a_nan_learning_rate_is_refused_at_compile(optimizer):
    model = tiny()
    with pytest.raises(ValueError, match="^compile: .*'s learning rate is nan"):
        model.compile(optimizer=optimizer(), jit_compile=False)


def test_any_optimizer_skips_a_step_with_non_finite_gradients():
    # Keras' Adam, wrapped by compile() in FiniteStep. The loss term sqrt(sum(0 * logits))
    # is 0 (finite outputs, finite loss) but its gradient is 0 * inf = NaN: every step
    # is skipped and counted, no weight moves.
    from keras import ops

    from keras_memseg.losses import masked_cross_entropy

    def loss(labels, logits):
        return masked_cross_entropy(labels, logits) + ops.sqrt(ops.sum(logits * 0.0))

    model = tiny()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=False)
    assert type(model.optimizer).__name__ == "FiniteStep"
    x, y = _data(n=2)
    model(x)  # builds every weight
    trainable = {w.path: w.numpy().copy() for w in model.trainable_weights}
    model.fit(x, y, batch_size=1, epochs=1, verbose=0)
    assert int(model.optimizer.skipped_steps.numpy()) == 2
    assert int(model.optimizer.iterations.numpy()) == 0
    assert all(np.array_equal(w.numpy(), trainable[w.path]) for w in model.trainable_weights)
    assert not model.nonfinite_weights()


def test_predict_and_evaluate_refuse_non_finite_weights():
    model = tiny()
    model.compile(jit_compile=False)
    x, y = _data(n=2)
    model(x[:1])  # builds every layer
    model.memory.memory.assign(np.ones((K, 1, 16), "float32"))
    kernel = model.decoder_stage2.classifier.kernel
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    with pytest.raises(ValueError, match="predict: weights hold NaN/inf .*classifier/kernel"):
        model.predict(x, verbose=0)
    with pytest.raises(ValueError, match="evaluate: weights hold NaN/inf"):
        model.evaluate(x, y, verbose=0)


def test_labels_of_another_size_than_the_images_are_named():
    model = tiny()
    model.compile(jit_compile=False)
    x, _ = _data(n=2)
    with pytest.raises(
        ValueError, match="labels of size \\(16, 32\\) do not match images of size \\(32, 32\\)"
    ):
        model.fit(x, np.zeros((2, 16, 32), "int32"), batch_size=2, epochs=1, verbose=0)


def _weights(model):
    return {w.path: w.numpy().copy() for w in model.weights}


def _changed(model, before):
    return [w.path for w in model.weights if not np.array_equal(w.numpy(), before[w.path])]


def test_bad_labels_after_a_first_fit_are_refused_before_any_change():
    # The second `fit` is traced with relaxed (unknown) shapes: the static checks of
    # the train step cannot see the labels' size or rank any more.
    model = tiny()
    model.compile(jit_compile=False)
    x, y = _data(n=2)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    before = _weights(model)
    with pytest.raises(ValueError, match="labels of size \\(16, 24\\) do not match"):
        model.fit(x, np.zeros((2, 16, 24), "int32"), batch_size=2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="RGB colour labels"):
        model.fit(x, np.zeros((2, 32, 32, 3), "int32"), batch_size=2, epochs=1, verbose=0)
    assert _changed(model, before) == []


def test_labels_out_of_range_change_nothing():
    model = tiny()
    model.compile(jit_compile=False)
    x, y = _data(n=2)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    before = _weights(model)
    bad = y.copy()
    bad[1, 4, 4] = K + 7
    with pytest.raises(Exception, match="label values must be in"):
        model.fit(x, bad, batch_size=2, epochs=1, verbose=0)
    # Memory, its step counter and the BN statistics are put back before the error.
    assert _changed(model, before) == []


def test_unknown_label_shapes_are_checked_in_the_graph():
    import tensorflow as tf

    model = tiny()
    model.compile(jit_compile=False)
    x, _ = _data(n=2)
    check = tf.function(
        lambda labels, images: model.check_labels(labels, images),
        input_signature=[tf.TensorSpec(None, tf.int32), tf.TensorSpec([None, None, None, 3])],
    )
    assert check(np.zeros((2, 32, 32, 1), "int32"), x).shape == (2, 32, 32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="do not match the size of the images"):
        check(np.zeros((2, 16, 32), "int32"), x)
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than one channel"):
        check(np.zeros((2, 32, 32, 3), "int32"), x)


@pytest.mark.parametrize(
    "call, images, match",
    [
        ("predict", np.zeros((0, 32, 32, 3), "float32"), "predict: got an empty batch"),
        (
            "predict",
            np.zeros((1, 32, 32, 4), "float32"),
            r"predict: images must be a \(batch, height, width, 3\) array, got shape "
            r"\(1, 32, 32, 4\)",
        ),
        ("fit", np.zeros((2, 32, 32, 1), "float32"), r"fit: images must be .* \(2, 32, 32, 1\)"),
        ("evaluate", np.zeros((32, 32, 3), "float32"), r"evaluate: images must be"),
    ],
)
def test_image_arrays_of_the_wrong_shape_are_one_line_errors(call, images, match):
    # Issue #34: these were Keras' UnboundLocalError or 50-line shape errors.
    model = tiny()
    model.compile(jit_compile=False)
    labels = np.zeros(images.shape[:3], "int32") if call != "predict" else None
    args = (images,) if labels is None else (images, labels)
    with pytest.raises(ValueError, match=match):
        getattr(model, call)(*args, verbose=0)


# -- one memory writer, one clock (issue #28) ---------------------------------------------
def test_the_training_forward_pass_computes_the_next_memory_and_writes_nothing():
    model = tiny()
    model.compile(jit_compile=False)
    x, y = _data(n=2)
    out = model((x, y), training=True)
    assert not np.any(model.memory.memory.numpy())  # still empty: nothing written
    assert float(model.memory.num_updates.numpy()) == 0
    assert np.any(keras.ops.convert_to_numpy(out["memory_update"]["memory"]))
    # compute_loss writes it, once.
    model.compute_loss((x, y), y, out, training=True)
    np.testing.assert_array_equal(model.memory.memory.numpy(), out["memory_update"]["memory"])
    assert float(model.memory.num_updates.numpy()) == 1


def test_a_training_forward_pass_without_labels_is_refused_by_compute_loss():
    model = tiny()
    model.compile(jit_compile=False)
    x, y = _data(n=2)
    out = model(x, training=True)
    with pytest.raises(ValueError, match=r"needs the labels .*model\(\(images, labels\)"):
        model.compute_loss(x, y, out, training=True)
    assert not np.any(model.memory.memory.numpy())


def test_the_memory_momentum_follows_the_optimizer_step():
    """One clock: after a skipped step (FiniteStep does not advance `iterations`), the
    memory momentum's schedule stays with the learning rate's, not with the memory's
    own update counter (which does advance)."""
    schedule = PolyDecay(0.01, total_steps=4, power=1.0, min_ratio=0.0)
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(schedule), jit_compile=False)
    x, y = _data(n=2)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    model.fit(bad, y, batch_size=2, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0
    assert float(model.memory.num_updates.numpy()) == 1
    logs = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history
    # Step 0 of the schedule: 0.9 * lr_0 / lr_0 (the counter's step 1 would give 0.675).
    np.testing.assert_allclose(logs["memory_momentum"], [0.9], rtol=1e-6)
    assert int(model.optimizer.iterations.numpy()) == 1


def test_schedules_count_from_compile_with_a_used_optimizer():
    optimizer = TorchSGD(PolyDecay(0.01, total_steps=4, power=1.0, min_ratio=0.0))
    first = tiny()
    first.compile(optimizer=optimizer, jit_compile=False)
    x, y = _data(n=2)
    first.fit(x, y, batch_size=2, epochs=2, verbose=0)
    assert int(optimizer.iterations.numpy()) == 2
    second = tiny()
    second.compile(optimizer=optimizer, jit_compile=False)  # steps count from here
    np.testing.assert_allclose(float(second.optimizer_step()), 0.0)
