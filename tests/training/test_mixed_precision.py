"""Mixed precision through the `dtype` argument: logits and the memory stay float32,
and the global dtype policy is never touched."""

import keras
import numpy as np

from keras_memseg.training import get_recipe
from keras_memseg.training.trainer import build_model


def test_mixed_bfloat16_keeps_logits_and_memory_float32():
    config = get_recipe("sample").replace(
        base_channels=8, feats_channels=16, transform_channels=8, aux_channels=8
    )
    before = keras.config.dtype_policy().name
    model = build_model(config, 11, dtype="mixed_bfloat16")
    assert keras.config.dtype_policy().name == before
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.backbone.get_layer("conv1_conv").dtype_policy.name == "mixed_bfloat16"
    assert model.bottleneck.conv.compute_dtype == "bfloat16"
    x = np.random.rand(1, 32, 32, 3).astype("float32")
    out = model(x)
    assert out.dtype == "float32" and out.shape == (1, 32, 32, 11)
    assert model.memory.memory.dtype == "float32"
    train_out = model(x, training=True)
    assert train_out["logits"].dtype == "float32"
    config_dtype = model.get_config()["dtype"]
    clone = type(model).from_config(model.get_config())
    assert clone.dtype_policy.name == "mixed_bfloat16", config_dtype
