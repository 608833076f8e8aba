import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_memseg.layers import ASPP
from keras_memseg.layers import PPM
from keras_memseg.layers import ConvBNAct
from keras_memseg.layers import ImageNormalization
from keras_memseg.layers import SegmentationDecoder
from keras_memseg.layers import SelfAttentionBlock
from keras_memseg.layers.ppm import adaptive_pool_matrix

BN_SCALE = 1.0 / np.sqrt(1.0 + 1e-5)  # a fresh BN in inference mode


def _relu(x):
    return np.maximum(x, 0.0)


def _conv1x1(layer, x):
    return x @ layer.conv.kernel.numpy()[0, 0] * BN_SCALE


@pytest.mark.parametrize("size, bins", [(7, 3), (10, 6), (5, 2), (6, 6), (4, 6)])
def test_adaptive_pool_bins_match_pytorch(size, bins):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(size).normal(size=(size,)).astype("float32")
    expected = torch.nn.functional.adaptive_avg_pool1d(torch.tensor(x)[None, None], bins)[0, 0]
    got = keras.ops.convert_to_numpy(adaptive_pool_matrix(bins, size)) @ x
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)


def test_ppm_matches_a_pytorch_style_transcription():
    torch = pytest.importorskip("torch")
    ppm = PPM(filters=3, bins=(1, 2, 3, 6))
    x = np.random.default_rng(0).normal(size=(1, 7, 9, 4)).astype("float32")
    out = ppm(x).numpy()
    branches = [x]
    tx = torch.tensor(x).permute(0, 3, 1, 2)
    for b, branch in zip(ppm.bins, ppm.branches):
        pooled = torch.nn.functional.adaptive_avg_pool2d(tx, b).permute(0, 2, 3, 1).numpy()
        y = torch.tensor(_relu(_conv1x1(branch, pooled))).permute(0, 3, 1, 2)
        up = torch.nn.functional.interpolate(y, size=(7, 9), mode="bilinear", align_corners=False)
        branches.append(up.permute(0, 2, 3, 1).numpy())
    cat = np.concatenate(branches, axis=-1)
    expected = ppm.project(cat).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_aspp_image_pool_equals_bilinear_upsampling_and_static_shapes():
    aspp = ASPP(filters=4, rates=(1, 2))
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype("float32")
    out = aspp(x).numpy()
    pooled = aspp.image_pool(x.mean(axis=(1, 2), keepdims=True)).numpy()
    upsampled = tf.image.resize(pooled, (5, 6), method="bilinear").numpy()
    cat = np.concatenate([b(x).numpy() for b in aspp.branches] + [upsampled], axis=-1)
    np.testing.assert_allclose(out, aspp.project(cat).numpy(), atol=1e-5)
    assert [b.kernel_size for b in aspp.branches] == [1, 3]
    fn = tf.function(lambda t: aspp(t), input_signature=[tf.TensorSpec((1, 8, 8, 3))])
    graph = fn.get_concrete_function().graph
    assert not [op for op in graph.get_operations() if "Resize" in op.type]


def test_self_attention_matches_numpy_transcription():
    block = SelfAttentionBlock(transform_channels=4, out_channels=5)
    rng = np.random.default_rng(2)
    query = rng.normal(size=(2, 3, 4, 6)).astype("float32")
    key_value = rng.normal(size=(2, 2, 5, 7)).astype("float32")
    out = block(query, key_value).numpy()
    q = _relu(_conv1x1(block.query_project[1], _relu(_conv1x1(block.query_project[0], query))))
    k = _relu(_conv1x1(block.key_project[1], _relu(_conv1x1(block.key_project[0], key_value))))
    v = _relu(_conv1x1(block.value_project, key_value))
    q, k, v = q.reshape(2, 12, 4), k.reshape(2, 10, 4), v.reshape(2, 10, 4)
    scores = q @ k.transpose(0, 2, 1) / 2.0  # sqrt(4)
    attn = np.exp(scores - scores.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    context = (attn @ v).reshape(2, 3, 4, 4)
    expected = _relu(_conv1x1(block.out_project, context))
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_head_blocks_follow_the_reference_conventions():
    block = ConvBNAct(4, 3)
    block.build((None, 5, 5, 2))
    assert not block.conv.use_bias and block.bn.epsilon == 1e-5 and block.bn.momentum == 0.9
    decoder = SegmentationDecoder(3, channels=4)
    decoder.build((None, 5, 5, 2))
    assert decoder.classifier.use_bias
    assert isinstance(decoder.drop, keras.layers.SpatialDropout2D)
    leaky = ConvBNAct(4, 1, activation="leaky_relu")
    assert isinstance(leaky.act, keras.layers.LeakyReLU)
    with pytest.raises(ValueError, match="activation"):
        ConvBNAct(4, 1, activation="swish")
    with pytest.raises(ValueError, match="rates"):
        ASPP(4, rates=(0, 2))
    with pytest.raises(ValueError, match="bins"):
        PPM(4, bins=())


@pytest.mark.parametrize(
    "layer",
    [ASPP(8, (1, 6)), PPM(8, (1, 3)), SelfAttentionBlock(4, 8, activation="leaky_relu"),
     ConvBNAct(8, 3, dilation_rate=2), SegmentationDecoder(3, None), ImageNormalization()],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
