"""Checks every layer and model test runs (KerasHub's `run_layer_test` and
`run_model_saving_test` are the model): output shape, config round trip, registered
serialization, `.keras` save/load with the same outputs, and mixed precision."""

import os

import keras
import numpy as np


def _outputs(value):
    return value if isinstance(value, (list, tuple)) else [value]


def run_layer_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    call_kwargs=None,
    tmp_path=None,
    mixed_precision=True,
    atol=1e-5,
):
    """Runs the shared checks on `cls(**init_kwargs)` called on `input_data`.

    Args:
        input_data: an array or a tuple of arrays (positional call arguments).
        expected_output_shape: the shape of the (first) output.
        tmp_path: a folder for the `.keras` round trip (skipped when None).
        mixed_precision: also check `dtype="mixed_bfloat16"`: the output in the
            compute dtype, every variable float32.
    Returns the layer.
    """
    call_kwargs = call_kwargs or {}
    inputs = input_data if isinstance(input_data, tuple) else (input_data,)
    layer = cls(**init_kwargs)
    output = layer(*inputs, **call_kwargs)
    assert tuple(_outputs(output)[0].shape) == tuple(expected_output_shape)
    if type(layer).compute_output_shape is not keras.layers.Layer.compute_output_shape:
        shapes = [tuple(np.shape(x)) for x in inputs]
        assert tuple(layer.compute_output_shape(*shapes)) == tuple(expected_output_shape)

    config = layer.get_config()
    assert cls.from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == f"keras_memseg>{cls.__name__}", serialized
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is cls and restored.get_config() == config

    if tmp_path is not None:
        symbolic = [
            keras.Input(
                shape=np.shape(x)[1:], batch_size=np.shape(x)[0], dtype=str(np.asarray(x).dtype)
            )
            for x in inputs
        ]
        model = keras.Model(
            symbolic if len(symbolic) > 1 else symbolic[0], layer(*symbolic, **call_kwargs)
        )
        path = os.path.join(str(tmp_path), f"{cls.__name__}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        expected = _outputs(model(list(inputs) if len(inputs) > 1 else inputs[0]))
        got = _outputs(loaded(list(inputs) if len(inputs) > 1 else inputs[0]))
        for e, g in zip(expected, got):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(g), keras.ops.convert_to_numpy(e), atol=atol
            )

    if mixed_precision:
        mixed = cls(**init_kwargs, dtype="mixed_bfloat16")
        out = _outputs(mixed(*inputs, **call_kwargs))[0]
        assert keras.backend.standardize_dtype(out.dtype) == mixed.compute_dtype == "bfloat16"
        for variable in mixed.variables:
            if "float" in str(variable.dtype):
                assert variable.dtype == "float32", variable.path
        assert cls.from_config(mixed.get_config()).dtype_policy.name == "mixed_bfloat16"
    return layer


def run_model_saving_test(model, input_data, tmp_path, atol=1e-6):
    """`.keras` and preset round trips of a called `model` keep config and outputs."""
    expected = keras.ops.convert_to_numpy(model(input_data))
    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(input_data)), expected, atol=atol)
    if hasattr(model, "save_to_preset"):
        preset = os.path.join(str(tmp_path), "preset")
        model.save_to_preset(preset)
        from_preset = type(model).from_preset(preset)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(from_preset(input_data)), expected, atol=atol
        )
    return loaded
