"""PolyDecay and TiedMomentum against the closed forms of the reference's poly schedule."""

import numpy as np
import pytest

from keras_memseg.optimizers import PolyDecay
from keras_memseg.optimizers import TiedMomentum


@pytest.mark.parametrize("lr0,total", [(0.01, 164190), (0.001, 61820), (0.05, 300)])
def test_poly_decay_closed_form(lr0, total):
    schedule = PolyDecay(lr0, total)
    for t in (0, 1, total // 3, total - 1, total, total + 10):
        expected = (lr0 - 0.01 * lr0) * (1 - min(t, total) / total) ** 0.9 + 0.01 * lr0
        np.testing.assert_allclose(float(schedule(t)), expected, rtol=1e-5)


def test_ade20k_memory_momentum_closed_form():
    total = 1000
    momentum = TiedMomentum(PolyDecay(0.01, total), 0.9, base_lr=0.01)
    for t in (0, 10, 500, 999, 1000):
        expected = 0.9 * (0.99 * (1 - t / total) ** 0.9 + 0.01)
        np.testing.assert_allclose(float(momentum(t)), expected, rtol=1e-5)


@pytest.mark.parametrize("lr0,base_lr_m", [(0.001, 0.0009), (0.01, 0.009)])
def test_coco_and_cityscapes_momentum_starts_at_one(lr0, base_lr_m):
    total = 500
    momentum = TiedMomentum(PolyDecay(lr0, total), 0.9, base_lr=base_lr_m)
    np.testing.assert_allclose(float(momentum(0)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(float(momentum(total)), 0.01, rtol=1e-4)
