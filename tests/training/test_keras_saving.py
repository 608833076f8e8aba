"""`cache_attribute_skipsets`: Keras' saving walk reuses its skip-sets, and what a
save writes is exactly what Keras writes without them (the uncached save is the oracle)."""

import keras
import numpy as np
from keras.src.backend.common import global_state
from keras.src.saving import saving_lib

from keras_memseg.training.callbacks import weights_file_arrays
from keras_memseg.training.keras_saving import _TYPES
from keras_memseg.training.keras_saving import cache_attribute_skipsets


def _model():
    from keras_memseg.training import get_recipe
    from keras_memseg.training.trainer import build_model
    from keras_memseg.training.trainer import compile_model

    config = get_recipe("sample").replace(
        base_channels=4, feats_channels=8, transform_channels=4, aux_channels=8
    )
    model = build_model(config, 11)
    compile_model(model, config)
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.optimizer.build(model.trainable_variables)
    return model


def test_the_cache_is_used_and_the_saved_file_is_unchanged(tmp_path, monkeypatch):
    for obj_type in _TYPES:  # start uncached, whatever ran before in this process
        global_state.set_global_attribute(f"saving_attr_skiplist_{obj_type}", None)
    model = _model()
    model.save_weights(str(tmp_path / "plain.weights.h5"))

    assert set(cache_attribute_skipsets()) == set(_TYPES)
    assert cache_attribute_skipsets() == ()  # already cached: nothing to do
    built = []
    original = keras.layers.Layer.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Layer, "__init__", counting)
    assert saving_lib.get_attr_skipset("Layer") is saving_lib.get_attr_skipset("Layer")
    model.save_weights(str(tmp_path / "cached.weights.h5"))
    assert built == []  # no throw-away reference layers during the save
    monkeypatch.undo()

    plain = weights_file_arrays(tmp_path / "plain.weights.h5")
    cached = weights_file_arrays(tmp_path / "cached.weights.h5")
    assert len(plain) > 100 and sorted(plain) == sorted(cached)
    for name in plain:
        np.testing.assert_array_equal(plain[name], cached[name], err_msg=name)
    clone = _model()
    clone.load_weights(str(tmp_path / "cached.weights.h5"))
    for a, b in zip(model.weights, clone.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
