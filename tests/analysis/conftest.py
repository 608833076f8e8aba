"""Tiny MemorySegmenter (memory filled by two fit steps) and DeepLabV3, saved once per session."""

import numpy as np
import pytest

NUM_CLASSES = 11  # the bundled CamVid sample


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Paths and models: `mcibi.keras`, `dlv3.keras`, two `.weights.h5` checkpoints of MCIBI.

    `ckpt_a` holds a hand-set memory (`memory_a`), `ckpt_b` the fitted one (`memory_b`).
    """
    import keras

    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.models import DeepLabV3
    from keras_memseg.models import MemorySegmenter

    root = tmp_path_factory.mktemp("analysis_models")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, (4, 32, 32)).astype("int32")
    mcibi = MemorySegmenter(
        DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes=NUM_CLASSES,
        feats_channels=16,
        transform_channels=8,
        aux_channels=8,
    )
    # Eager: two steps run faster than tracing the training function.
    mcibi.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    mcibi.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 2 steps: every class seen
    memory_b = np.asarray(mcibi.memory_snapshot())
    mcibi.save(root / "mcibi.keras")
    mcibi.save_weights(root / "ckpt_b.weights.h5")
    memory_a = rng.normal(size=memory_b.shape).astype("float32")
    memory_a[3] = 0.0  # class 3 "not seen yet" at checkpoint a
    mcibi.memory.memory.assign(memory_a)
    mcibi.save_weights(root / "ckpt_a.weights.h5")
    mcibi.memory.memory.assign(memory_b)

    dlv3 = DeepLabV3(
        DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes=NUM_CLASSES,
        feats_channels=16,
        aux_channels=8,
    )
    dlv3(x[:1])
    dlv3.save(root / "dlv3.keras")
    return {
        "root": root,
        "mcibi": mcibi,
        "dlv3": dlv3,
        "mcibi_path": root / "mcibi.keras",
        "dlv3_path": root / "dlv3.keras",
        "ckpt_a": root / "ckpt_a.weights.h5",
        "ckpt_b": root / "ckpt_b.weights.h5",
        "memory_a": memory_a,
        "memory_b": memory_b,
    }
