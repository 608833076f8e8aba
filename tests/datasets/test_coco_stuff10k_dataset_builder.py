import numpy as np
import scipy.io
from _helpers import build
from _helpers import builder_test_case
from _helpers import check_examples
from _helpers import dummy_dir

from keras_memseg.datasets._coco_stuff_classes import UNUSED_IDS
from keras_memseg.datasets.coco_stuff10k.coco_stuff10k_dataset_builder import MemsegCocoStuff10k

CocoStuff10kBuilderTest = builder_test_case(MemsegCocoStuff10k, {"train": 3, "test": 2}, ())


def _raw(item):
    name = item["file_name"].decode().replace("images/", "annotations/").replace(".jpg", ".mat")
    return scipy.io.loadmat(dummy_dir("coco_stuff10k") / name)["S"].astype(np.int64)


def test_182_way(tmp_path):
    builder = build(MemsegCocoStuff10k, dummy_dir("coco_stuff10k"), tmp_path)
    for item in check_examples(builder, "train", 182, 3):
        raw = _raw(item)
        expected = np.where((raw == 0) | (raw == 255), 255, raw - 1)
        np.testing.assert_array_equal(item["label"][..., 0], expected)


def test_171_contiguous(tmp_path):
    builder = build(MemsegCocoStuff10k, dummy_dir("coco_stuff10k"), tmp_path, config="171")
    kept = [i for i in range(182) if i not in UNUSED_IDS]
    assert len(kept) == 171
    for item in check_examples(builder, "test", 171, 2):
        raw = _raw(item)
        zero_based = np.where((raw == 0) | (raw == 255), 255, raw - 1)
        expected = np.vectorize(lambda v: kept.index(v) if v in kept else 255)(zero_based)
        np.testing.assert_array_equal(item["label"][..., 0], expected)
    assert builder.info.metadata["num_classes"] == 171
