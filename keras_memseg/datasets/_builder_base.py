"""Shared TFDS builder logic: features, manual_dir access, pairing, skipping bad examples."""

import inspect
import logging
import re

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import utils as tfds_utils

from keras_memseg.datasets import _validation
from keras_memseg.datasets._source import ManualSource
from keras_memseg.datasets.errors import BadExampleError
from keras_memseg.datasets.errors import DatasetNotFoundError
from keras_memseg.datasets.errors import missing_data_message
from keras_memseg.datasets.registry import get_info

_LOG = logging.getLogger("keras_memseg.datasets")


class SegmentationBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the keras_memseg builders; subclasses list pairs and pick a label table.

    Features: `image` (uint8 HxWx3), `label` (uint8 HxWx1, training ids, 255
    ignore), `file_name` (the image's path relative to `manual_dir`).
    Class names and palette are in `info.metadata`.

    Args:
        skip_bad_examples: when True, undecodable / mismatched / out-of-range
            examples (and images without a label) are skipped instead of
            raising; they are logged with their names and kept in
            `self.skipped_examples` as `(file, reason)` pairs.
        **kwargs: passed to `tfds.core.GeneratorBasedBuilder` (data_dir, config, ...).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First keras_memseg release."}
    DATASET_NAME = None  # canonical keras_memseg name
    IMAGE_FORMAT = "jpeg"
    HOMEPAGE = None

    @tfds_utils.classproperty
    @classmethod
    def code_path(cls):
        """Path of the builder's module (tfds' default needs importlib_resources)."""
        return epath.Path(inspect.getfile(cls))

    def __init__(self, *, skip_bad_examples=False, **kwargs):
        self.skip_bad_examples = bool(skip_bad_examples)
        self.skipped_examples = []
        super().__init__(**kwargs)

    def download_and_prepare(self, *args, **kwargs):
        """TFDS `download_and_prepare`; an empty split raises `DatasetNotFoundError`.

        TFDS asserts "No examples were yielded" (naming no file) when a split
        ends up empty, e.g. when `skip_bad_examples` dropped every example; that
        is re-raised naming the dataset, the split and `manual_dir`.
        """
        try:
            return super().download_and_prepare(*args, **kwargs)
        except AssertionError as error:
            if "No examples were yielded" not in str(error):
                raise
            config = kwargs.get("download_config")
            raise DatasetNotFoundError(
                self._empty_split_message(str(error), getattr(config, "manual_dir", None))
            ) from error

    def _empty_split_message(self, tfds_message, manual_dir):
        """One line for a split that TFDS found empty (split name parsed from its message)."""
        found = re.search(r"split [\"']([^\"']+)[\"']", tfds_message)
        split = found.group(1) if found else "?"
        skipped = len(self.skipped_examples)
        reason = f" ({skipped} bad examples were skipped, see the log)" if skipped else ""
        return (
            f"{self.DATASET_NAME} split {split!r}: no usable examples in manual_dir "
            f"{manual_dir}{reason}"
        )

    # -- metadata -------------------------------------------------------------
    def _num_classes(self):
        return None

    def dataset_info(self):
        """The static `keras_memseg.datasets.DatasetInfo` for this builder/config."""
        return get_info(self.DATASET_NAME, num_classes=self._num_classes())

    def _info(self):
        info = self.dataset_info()
        return self.dataset_info_from_configs(
            description=(
                f"{self.DATASET_NAME} for keras_memseg: labels are training ids "
                f"0..{info.num_classes - 1}, 255 = ignore."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(
                        shape=(None, None, 3), encoding_format=self.IMAGE_FORMAT
                    ),
                    "label": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            homepage=self.HOMEPAGE,
            metadata=tfds.core.MetadataDict(
                num_classes=info.num_classes,
                class_names=list(info.class_names),
                palette=[list(colour) for colour in info.palette],
                ignore_class=info.ignore_class,
                flip_pairs=[list(pair) for pair in info.flip_pairs],
            ),
        )

    # -- manual_dir -----------------------------------------------------------
    def _source(self, dl_manager):
        try:
            manual_dir = dl_manager.manual_dir
        except Exception as error:  # tfds raises AssertionError for a missing dir.
            raise DatasetNotFoundError(
                f"{error}\n{missing_data_message(self.DATASET_NAME)}"
            ) from error
        source = ManualSource(manual_dir, self.DATASET_NAME)
        if source.is_empty():
            raise DatasetNotFoundError(
                f"manual_dir {manual_dir} is empty.\n"
                + missing_data_message(self.DATASET_NAME, manual_dir)
            )
        return source

    def _require_root(self, source, anchor, candidates=("",)):
        """Prefix under which `anchor` lives, or a DatasetNotFoundError saying what is missing."""
        prefix = source.find_root(anchor, candidates)
        if prefix is None:
            raise DatasetNotFoundError(
                f"{anchor} not found in {source.root} (looked in the folder, one folder "
                "deeper and inside its .zip archives).\n"
                + missing_data_message(self.DATASET_NAME, source.root)
            )
        return prefix

    # -- list files -------------------------------------------------------------
    def _read_list(self, source, list_rel):
        """Non-blank lines of list file `list_rel` as `(line_number, stripped_line)`.

        Accepts CRLF / CR line ends, a UTF-8 byte-order mark and surrounding
        whitespace. Raises `DatasetNotFoundError("<path>: no examples listed")`
        when the file lists nothing.
        """
        text = source.read(list_rel).decode("utf-8-sig")
        lines = [
            (number, line.strip())
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
        if not lines:
            raise DatasetNotFoundError(f"{source.describe(list_rel)}: no examples listed")
        return lines

    def _dedupe(self, listed, list_where):
        """Keeps the first of repeated pairs, logging one warning line (mmseg keeps them all).

        Args:
            listed: `[(pair, line_number, line)]` in list order.
            list_where: the list file, for messages.

        Returns:
            (pairs, origins): the unique pairs in order and `{pair: (list_where,
            line_number, line)}` of their first line, for `_check_pairs`.
        """
        origins, repeats = {}, []
        for pair, number, line in listed:
            if pair in origins:
                repeats.append(f"line {number} repeats line {origins[pair][1]}")
            else:
                origins[pair] = (list_where, number, line)
        if repeats:
            _LOG.warning(
                "%s: %d repeated lines ignored, each example is used once (%s)",
                list_where,
                len(repeats),
                ", ".join(repeats[:5]) + (", ..." if len(repeats) > 5 else ""),
            )
        return list(origins), origins

    # -- pairing and generation -----------------------------------------------
    def _check_inside(self, source, pairs, origins=None):
        """Refuses any file that resolves outside `manual_dir` (even with skip_bad_examples).

        Args:
            pairs: list of `(image_rel, label_rel)`; label_rel None = no label.
            origins: optional `{pair: (list_where, line_number, line)}`; when the
                pair came from a list file the message names its line.
        """
        origins = origins or {}
        for pair in pairs:
            for rel in pair:
                if rel is None or source.is_inside(rel):
                    continue
                origin = origins.get(pair)
                if origin is None:
                    raise DatasetNotFoundError(source.outside_message(rel))
                list_where, number, line = origin
                raise DatasetNotFoundError(
                    f"{list_where} line {number}: entry {line!r} names {rel}, which resolves "
                    f"to {source.resolve(rel)}, outside manual_dir {source.real_root}; "
                    "refusing to read it"
                )

    def _check_pairs(self, source, pairs, what, official_count, origins=None):
        """Raises (or, with skip_bad_examples, drops) pairs whose files are missing.

        Files resolving outside `manual_dir` are always refused (`_check_inside`).

        Args:
            pairs: list of `(image_rel, label_rel)`; label_rel None = no label.
            what: e.g. "train split" for the message.
            official_count: official number of examples, quoted in the message.
            origins: optional `{pair: (list_where, line_number, line)}` for messages.
        """
        self._check_inside(source, pairs, origins)
        missing = [
            (image_rel, label_rel)
            for image_rel, label_rel in pairs
            if not source.exists(image_rel)
            or (label_rel is not None and not source.exists(label_rel))
        ]
        if not missing:
            return pairs
        n_images = sum(source.exists(image_rel) for image_rel, _ in pairs)
        n_labels = sum(label_rel is not None and source.exists(label_rel) for _, label_rel in pairs)
        n_expected_labels = sum(label_rel is not None for _, label_rel in pairs)
        first = []
        for image_rel, label_rel in missing[:5]:
            lost = image_rel if not source.exists(image_rel) else label_rel
            first.append(source.describe(lost))
        message = (
            f"{self.DATASET_NAME} {what} looks incomplete (half-extracted archive?): "
            f"expected {len(pairs)} images and {n_expected_labels} labels "
            f"(official count {official_count}), found {n_images} images and "
            f"{n_labels} labels in {source.root}. Missing e.g.: {', '.join(first)}"
        )
        if not self.skip_bad_examples:
            raise DatasetNotFoundError(message)
        for image_rel, _ in missing:
            self._skip(source.describe(image_rel), "image or label file missing")
        missing_set = set(missing)
        return [pair for pair in pairs if pair not in missing_set]

    def _read_raw_label(self, source, label_rel):
        """Raw (H, W) id map of `label_rel`; subclasses override for non-PNG labels."""
        return _validation.decode_label_png(source.read(label_rel), source.describe(label_rel))

    def _label_table(self, label_rel):
        """256-entry raw -> training id table for `label_rel` (-1 = invalid)."""
        raise NotImplementedError

    def _example(self, source, image_rel, label_rel):
        image_where = source.describe(image_rel)
        image, image_value = _validation.decode_image(source.read(image_rel), image_where)
        if label_rel is None:  # e.g. Cityscapes test: no public labels.
            width, height = image.size
            label = np.full((height, width), 255, np.uint8)
        else:
            label_where = source.describe(label_rel)
            raw = self._read_raw_label(source, label_rel)
            _validation.check_same_size(image, raw, image_where, label_where)
            label = _validation.map_label(raw, self._label_table(label_rel), label_where)
        return {
            "image": image_value,
            "label": _validation.encode_label_png(label),
            "file_name": image_rel,
        }

    def _skip(self, where, reason):
        self.skipped_examples.append((where, reason))
        _LOG.warning("skipping %s: %s", where, reason)

    def _generate_examples(self, source, pairs):
        """Yields `(key, example)` for each pair, raising or skipping bad ones."""
        skipped_before = len(self.skipped_examples)
        for image_rel, label_rel in pairs:
            try:
                example = self._example(source, image_rel, label_rel)
            except BadExampleError as error:
                if not self.skip_bad_examples:
                    raise
                self._skip(source.describe(image_rel), str(error))
                continue
            yield image_rel, example
        newly = self.skipped_examples[skipped_before:]
        if newly:
            _LOG.warning(
                "%s: skipped %d bad examples (skip_bad_examples=True): %s",
                self.DATASET_NAME,
                len(newly),
                ", ".join(where for where, _ in newly),
            )
