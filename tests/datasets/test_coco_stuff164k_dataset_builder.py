from _helpers import build
from _helpers import builder_test_case
from _helpers import check_examples
from _helpers import dummy_dir

from keras_memseg.datasets.coco_stuff164k.coco_stuff164k_dataset_builder import MemsegCocoStuff164k

CocoStuff164kBuilderTest = builder_test_case(MemsegCocoStuff164k, {"train": 2, "val": 2}, ())


def test_zero_based_labels(tmp_path):
    builder = build(MemsegCocoStuff164k, dummy_dir("coco_stuff164k"), tmp_path)
    items = check_examples(builder, "val", 182, 2)
    values = set().union(*(set(i["label"].ravel().tolist()) for i in items))
    assert 181 in values or 100 in values
