import keras
import numpy as np
import pytest
from keras_testing import run_layer_test
from layer_oracles import conv1x1_bn
from layer_oracles import relu

from keras_memseg.layers import PPM
from keras_memseg.layers.ppm import adaptive_pool_matrix


def test_layer_contract(tmp_path):
    run_layer_test(
        PPM,
        {"filters": 8, "bins": (1, 3)},
        np.random.default_rng(0).random((2, 7, 5, 4)).astype("float32"),
        (2, 7, 5, 8),
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("size, bins", [(7, 3), (10, 6), (5, 2), (6, 6), (4, 6)])
def test_adaptive_pool_bins_match_pytorch(size, bins):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(size).normal(size=(size,)).astype("float32")
    expected = torch.nn.functional.adaptive_avg_pool1d(torch.tensor(x)[None, None], bins)[0, 0]
    got = keras.ops.convert_to_numpy(adaptive_pool_matrix(bins, size)) @ x
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)


def test_matches_a_pytorch_style_transcription():
    torch = pytest.importorskip("torch")
    ppm = PPM(filters=3, bins=(1, 2, 3, 6))
    x = np.random.default_rng(0).normal(size=(1, 7, 9, 4)).astype("float32")
    out = ppm(x).numpy()
    branches = [x]
    tx = torch.tensor(x).permute(0, 3, 1, 2)
    for b, branch in zip(ppm.bins, ppm.branches):
        pooled = torch.nn.functional.adaptive_avg_pool2d(tx, b).permute(0, 2, 3, 1).numpy()
        y = torch.tensor(relu(conv1x1_bn(branch, pooled))).permute(0, 3, 1, 2)
        up = torch.nn.functional.interpolate(y, size=(7, 9), mode="bilinear", align_corners=False)
        branches.append(up.permute(0, 2, 3, 1).numpy())
    cat = np.concatenate(branches, axis=-1)
    expected = ppm.project(cat).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_bad_bins():
    with pytest.raises(ValueError, match="bins"):
        PPM(4, bins=())
