"""Shared helpers for the dataset tests (not a test module)."""

import io
import pathlib

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "keras_memseg" / "datasets"


def dummy_dir(name):
    return PACKAGE / name / "dummy_data"


def build(builder_cls, manual_dir, data_dir, **kwargs):
    """Prepares `builder_cls` from `manual_dir` into `data_dir` and returns it."""
    builder = builder_cls(data_dir=str(data_dir), **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    )
    return builder


def examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def read_png(path):
    return np.asarray(Image.open(path))


def check_examples(builder, split, num_classes, expected_count):
    """Shapes, dtypes and label range of every example of a split."""
    items = examples(builder, split)
    assert len(items) == expected_count
    for item in items:
        image, label = item["image"], item["label"]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert label.dtype == np.uint8 and label.shape == image.shape[:2] + (1,)
        values = set(np.unique(label).tolist())
        assert values <= set(range(num_classes)) | {255}, values
        assert item["file_name"]
    return items


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _official_case():
    try:
        return tfds.testing.DatasetBuilderTestCase
    except ImportError:  # tfds.testing needs `dill`, absent from some environments.
        return None


def builder_test_case(builder_cls, splits, overlapping=()):
    """A TestCase checking registration, info and per-split counts on dummy_data.

    Uses `tfds.testing.DatasetBuilderTestCase` when it can be imported, else
    an equivalent local check of the same properties.
    """
    official = _official_case()
    if official is not None:
        return type(
            f"{builder_cls.__name__}Test",
            (official,),
            {
                "DATASET_CLASS": builder_cls,
                "SPLITS": dict(splits),
                "OVERLAPPING_SPLITS": list(overlapping),
                "SKIP_CHECKSUMS": True,
            },
        )
    import tempfile
    import unittest

    class _Case(unittest.TestCase):
        def test_registered(self):
            self.assertIn(builder_cls.name, tfds.list_builders(with_community_datasets=False))

        def test_info(self):
            with tempfile.TemporaryDirectory() as data_dir:
                builder = builder_cls(data_dir=data_dir)
                self.assertEqual(builder.info.name, builder_cls.name)
                self.assertTrue(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.strip())

        def test_download_and_prepare_as_dataset(self):
            configs = [c.name for c in builder_cls.BUILDER_CONFIGS] or [None]
            for config in configs:
                with self.subTest(config=config), tempfile.TemporaryDirectory() as data_dir:
                    builder = build(
                        builder_cls,
                        builder_cls.code_path.parent / "dummy_data",
                        data_dir,
                        config=config,
                    )
                    self.assertEqual(set(builder.info.splits), set(splits))
                    for split, count in splits.items():
                        self.assertEqual(builder.info.splits[split].num_examples, count)
                        ds = builder.as_dataset(split=split)
                        self.assertEqual(len(list(ds)), count)

    _Case.__name__ = f"{builder_cls.__name__}Test"
    return _Case
