"""Fine-tuning to another class set: `with_num_classes`, `load_segmenter(num_classes=)`,
`from_preset(num_classes=)` (issue #29)."""

import numpy as np
import pytest

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import MemorySegmenter
from keras_memseg.models import load_segmenter
from keras_memseg.models.segmenter.new_classes import with_num_classes


def _model(num_classes=5):
    model = MemorySegmenter(
        DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes,
        feats_channels=16,
        transform_channels=8,
        aux_channels=8,
        class_names=[f"c{i}" for i in range(num_classes)],
    )
    model(np.zeros((1, 32, 32, 3), "float32"))
    # Non-trivial values everywhere, so "kept" cannot pass by two fresh initialisations.
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype(weight.dtype))
    return model


def test_only_the_class_dependent_layers_start_fresh():
    model = _model(5)
    new, fresh = with_num_classes(model, 3, class_names=["road", "car", "sky"])
    assert new.num_classes == 3 and new.class_names == ("road", "car", "sky")
    assert sorted(p.split("/")[-2] for p in fresh) == sorted(
        ["classifier"] * 6 + ["feature_memory"] * 2
    )
    old = {id(w): w for w in model.weights}
    assert len(old) == len(new.weights)
    for before, after in zip(model.weights, new.weights):
        if after.path in fresh:
            assert before.shape != after.shape or "num_updates" in after.path
        else:
            np.testing.assert_array_equal(np.asarray(before), np.asarray(after))
    assert new.memory.memory.shape[0] == 3
    assert new(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 32, 32, 3)


def test_load_segmenter_and_from_preset_take_a_new_class_count(tmp_path):
    model = _model(5)
    path = str(tmp_path / "m.keras")
    model.save(path)
    model.save_to_preset(str(tmp_path / "preset"))
    for loaded in (
        load_segmenter(path, num_classes=2),
        MemorySegmenter.from_preset(str(tmp_path / "preset"), class_names=["a", "b"]),
    ):
        assert loaded.num_classes == 2
        np.testing.assert_array_equal(
            np.asarray(loaded.backbone.weights[0]), np.asarray(model.backbone.weights[0])
        )
    same = load_segmenter(path, class_names=[f"k{i}" for i in range(5)])
    assert same.class_names[0] == "k0"
    np.testing.assert_array_equal(np.asarray(same.memory.memory), np.asarray(model.memory.memory))
    with pytest.raises(ValueError, match="2 class_names for num_classes=3"):
        load_segmenter(path, num_classes=3, class_names=["a", "b"])
