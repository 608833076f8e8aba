"""`DatasetSpec`: everything keras_memseg knows about one dataset, in one record.

Each dataset folder (`keras_memseg/datasets/<name>/`) defines its `SPEC` in `spec.py`
and registers it in its `__init__.py` (`keras_memseg.datasets.registry.register`);
everything that used to switch on a dataset name reads the registry instead: class
names and palette, splits, the training augmentation and test resize, the evaluation
defaults, the on-disk layout quoted in error messages, and the builder that reads it.
Adding a dataset touches one folder. Pure Python: no TensorFlow import.
"""

import dataclasses

IGNORE_CLASS = 255


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation and test resizing settings of one dataset.

    Args:
        target_scale: `Resize` target. With `keep_ratio` only max/min matter
            ((long, short), e.g. (2048, 512)); without it, (w, h).
        ratio_range: the random ratio multiplying `target_scale`.
        keep_ratio: keep the aspect ratio when resizing.
        crop_size: (h, w) of the random crop and of the padded output.
        cat_max_ratio: a crop's largest valid class must stay below this share
            (10 tries); 1.0 disables the check.
        flip_prob: horizontal flip probability.
        flip_pairs: label pairs swapped by a flip (LIP).
        rotate_prob: probability of the LIP rotation (0 = off).
        rotate_degree: the rotation angle is an integer in [-d, d - 1].
        photometric: apply mmseg's PhotoMetricDistortion.
        ignore_class: label of padded / unlabelled pixels.
        test_scale: evaluation `Resize` target (same convention as target_scale).
        test_keep_ratio: keep the aspect ratio at evaluation.

    Example:
    >>> from keras_memseg.datasets import get_info
    >>> cfg = get_info("cityscapes").augment
    >>> cfg.crop_size, cfg.target_scale
    ((512, 1024), (2048, 1024))
    """

    target_scale: tuple = (2048, 512)
    ratio_range: tuple = (0.5, 2.0)
    keep_ratio: bool = True
    crop_size: tuple = (512, 512)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    flip_pairs: tuple = ()
    rotate_prob: float = 0.0
    rotate_degree: int = 30
    photometric: bool = True
    ignore_class: int = IGNORE_CLASS
    test_scale: tuple = (2048, 512)
    test_keep_ratio: bool = True

    def __post_init__(self):
        for field in ("target_scale", "ratio_range", "crop_size", "test_scale"):
            value = getattr(self, field)
            if len(value) != 2 or min(value) <= 0:
                raise ValueError(f"AugmentConfig.{field} needs two positive numbers, got {value}")
        if self.ratio_range[0] > self.ratio_range[1]:
            raise ValueError(f"AugmentConfig.ratio_range {self.ratio_range} is decreasing")
        for field in ("flip_prob", "rotate_prob"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(
                    f"AugmentConfig.{field} must be in [0, 1], got {getattr(self, field)}"
                )
        if not 0.0 < self.cat_max_ratio <= 1.0:
            raise ValueError(
                f"AugmentConfig.cat_max_ratio must be in (0, 1], got {self.cat_max_ratio}"
            )
        if not 0 <= self.ignore_class <= 255:
            raise ValueError(
                f"AugmentConfig.ignore_class must be in [0, 255], got {self.ignore_class}"
            )


@dataclasses.dataclass(frozen=True)
class EvalDefaults:
    """How the reference evaluates a dataset (its single-scale / test-time settings).

    Args:
        mode: `"whole"` or `"slide"`.
        crop_size, stride: the sliding window (h, w) and its step.
        scales: test scales (1.0 = the test-resized image).
        flip: horizontal-flip TTA.
        probs_before_resize: softmax at network resolution before resizing.
    """

    mode: str = "whole"
    crop_size: tuple = (512, 512)
    stride: tuple = (341, 341)
    scales: tuple = (1.0,)
    flip: bool = False
    probs_before_resize: bool = True


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One dataset: classes, splits, augmentation, evaluation, layout, reader.

    Args:
        name: the one name of the dataset everywhere (`load`, recipes, CLIs); the
            TFDS builder is registered as `memseg_<name>`.
        num_classes: training classes K (labels are 0..K-1 or `ignore_class`).
        class_names: K names, index = training id.
        palette: K RGB triples.
        splits: split names the dataset provides.
        train_split, eval_split: the splits the reference trains and evaluates on.
        unlabelled_splits: splits whose labels are withheld (benchmark servers).
        flip_pairs: training-id pairs swapped by a horizontal flip (LIP).
        ignore_class: label value skipped by losses, memory and metrics (255).
        augment: the training augmentation and test resize (`AugmentConfig`).
        evaluation: the evaluation defaults (`EvalDefaults`).
        layout: what to download and where to put it, quoted by error messages.
        builder: `"module:Class"` of its TFDS builder ("" = read directly).
        reader: `"module:function"` reading a split directly (the bundled sample).
        submission: `"module:function"` turning a train-id prediction and its image's
            file name into `(file name, array)` in the benchmark server's format, for
            the `unlabelled_splits` ("" = none).
        variants: other label spaces, `{num_classes: (class_names, palette)}`
            (COCO-Stuff's 171 contiguous ids).
        root: the folder of a folder dataset (`keras_memseg.datasets.from_folder`;
            its `name` is the same path), "" for the registered datasets.
        split_sizes: `{split: number of examples}` of a folder dataset ({} otherwise).

    Example:
    >>> from keras_memseg.datasets import get_info
    >>> spec = get_info("camvid")
    >>> spec.num_classes, spec.class_names[0], spec.ignore_class, spec.splits
    (11, 'Sky', 255, ('train', 'val', 'test'))
    """

    name: str
    num_classes: int
    class_names: tuple
    palette: tuple
    splits: tuple = ("train", "val")
    train_split: str = "train"
    eval_split: str = "val"
    unlabelled_splits: tuple = ()
    flip_pairs: tuple = ()
    ignore_class: int = IGNORE_CLASS
    augment: AugmentConfig = AugmentConfig()
    evaluation: EvalDefaults = EvalDefaults()
    layout: str = ""
    builder: str = ""
    reader: str = ""
    submission: str = ""
    variants: dict = dataclasses.field(default_factory=dict)
    root: str = ""
    split_sizes: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if len(self.class_names) != self.num_classes or len(self.palette) != self.num_classes:
            raise ValueError(
                f"{self.name}: {self.num_classes} classes but "
                f"{len(self.class_names)} names and {len(self.palette)} colours"
            )
        for split in (self.train_split, self.eval_split, *self.unlabelled_splits):
            if split not in self.splits:
                raise ValueError(f"{self.name}: split {split!r} is not in {self.splits}")
        if bool(self.builder) == bool(self.reader):
            raise ValueError(f"{self.name}: give exactly one of builder and reader")
        if self.root and not self.reader:
            raise ValueError(f"{self.name}: a folder dataset (root={self.root!r}) needs a reader")
        for split in self.split_sizes:
            if split not in self.splits:
                raise ValueError(f"{self.name}: split_sizes names {split!r}, not in {self.splits}")

    def with_num_classes(self, num_classes):
        """This spec in another label space of `variants` (e.g. COCO-Stuff 171)."""
        if num_classes is None or int(num_classes) == self.num_classes:
            return self
        if int(num_classes) not in self.variants:
            choices = sorted([self.num_classes, *self.variants])
            if not self.variants:
                raise ValueError(
                    f"num_classes can only be chosen for datasets with several "
                    f"label spaces, not {self.name!r}"
                )
            raise ValueError(f"{self.name} num_classes must be one of {choices}, got {num_classes}")
        names, palette = self.variants[int(num_classes)]
        return dataclasses.replace(
            self, num_classes=int(num_classes), class_names=names, palette=palette
        )
