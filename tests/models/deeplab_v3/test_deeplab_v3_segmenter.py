import keras
import numpy as np
import pytest
from keras_testing import run_model_saving_test

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import DeepLabV3
from keras_memseg.models import MemorySegmenter

K = 4


def _data(n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, 3)).astype("float32")
    y = (np.clip(x[..., 0], -1.49, 1.49) + 1.5).astype("int32") % (K - 1)
    return x, y


def tiny(**kwargs):
    return DeepLabV3(
        DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes=K,
        feats_channels=16,
        aux_channels=8,
        aspp_rates=(1, 2),
        dropout=0.0,
        **kwargs,
    )


def test_deeplabv3_baseline_trains_and_round_trips(tmp_path):
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
    x, y = _data()
    history = model.fit(x, y, batch_size=4, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(str(tmp_path / "baseline.keras"))
    loaded = keras.models.load_model(str(tmp_path / "baseline.keras"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_model_contract(tmp_path):
    model = tiny(aux=False)
    x, _ = _data(n=1)
    model(x)
    run_model_saving_test(model, x, tmp_path)
    assert set(model.forward_heads(x)) == {"logits", "head_features"}


def test_policy_has_no_memory_terms(tmp_path):
    model = tiny()
    model.compile(jit_compile=False)
    assert model.loss_weights == {"stage2": 1.0, "aux": 0.4}
    with pytest.raises(ValueError, match="unknown loss_weights keys \\['memory'\\]"):
        model.compile(loss_weights={"memory": 1.0})
    model(_data(n=1)[0])
    model.save_to_preset(str(tmp_path / "preset"))
    with pytest.raises(ValueError, match="not a MemorySegmenter"):
        MemorySegmenter.from_preset(str(tmp_path / "preset"))
