import numpy as np
from keras_testing import run_layer_test
from layer_oracles import conv1x1_bn
from layer_oracles import relu

from keras_memseg.layers import SelfAttentionBlock


def test_layer_contract(tmp_path):
    rng = np.random.default_rng(0)
    query = rng.random((2, 3, 4, 6)).astype("float32")
    key_value = rng.random((2, 2, 5, 7)).astype("float32")
    run_layer_test(
        SelfAttentionBlock,
        {"transform_channels": 4, "out_channels": 8, "activation": "leaky_relu"},
        (query, key_value),
        (2, 3, 4, 8),
        tmp_path=tmp_path,
    )


def test_matches_numpy_transcription():
    block = SelfAttentionBlock(transform_channels=4, out_channels=5)
    rng = np.random.default_rng(2)
    query = rng.normal(size=(2, 3, 4, 6)).astype("float32")
    key_value = rng.normal(size=(2, 2, 5, 7)).astype("float32")
    out = block(query, key_value).numpy()
    q = relu(conv1x1_bn(block.query_project[1], relu(conv1x1_bn(block.query_project[0], query))))
    k = relu(conv1x1_bn(block.key_project[1], relu(conv1x1_bn(block.key_project[0], key_value))))
    v = relu(conv1x1_bn(block.value_project, key_value))
    q, k, v = q.reshape(2, 12, 4), k.reshape(2, 10, 4), v.reshape(2, 10, 4)
    scores = q @ k.transpose(0, 2, 1) / 2.0  # sqrt(4)
    attn = np.exp(scores - scores.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    context = (attn @ v).reshape(2, 3, 4, 4)
    expected = relu(conv1x1_bn(block.out_project, context))
    np.testing.assert_allclose(out, expected, atol=1e-5)
