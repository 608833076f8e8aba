"""Recipe configs: one frozen dataclass, the paper's values per dataset (spec 2.2, 4).

A `RecipeConfig` is plain data; `keras_memseg.training.trainer.train(config)` runs it
and the recipe scripts expose every field as an absl flag.
"""

import dataclasses
import json
import typing


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Everything a training + evaluation run needs.

    Schedule: `total_steps = epochs * (num_train_examples // global_batch_size)`
    (drop_last), unless `max_steps` > 0 overrides it. LR is poly (power 0.9,
    floor 0.01 lr0) per step; the memory momentum is `0.9 * lr_t / base_lr_m`.

    Args (groups):
        dataset, train_split, eval_split, data_dir, manual_dir: the data.
        backbone, base_channels (0 = standard width), pretrained (a preset folder
            or .weights.h5 for `load_resnet_weights`, "" = from scratch),
            output_stride, context, feats_channels, transform_channels,
            aux_channels, activation, dropout: the model.
        crop_size (h, w), target_scale, ratio_range: training augmentation
            overrides (empty = the dataset's `augment_config_for` values).
        global_batch_size, learning_rate, weight_decay, sgd_momentum, epochs,
            num_train_examples, max_steps: the optimisation.
        base_momentum, base_lr_m, memory_loss, memory_loss_start_epoch
            (0-based epoch; 1 = "from the second epoch"): the memory.
        test_scale, test_keep_ratio (empty = dataset default), eval_mode,
            eval_crop_size, eval_stride, eval_scales, eval_flip,
            probs_before_resize, max_eval_examples (0 = all): evaluation.
        strategy ("auto", "default", "mirrored", "multi_worker", "tpu"), tpu,
            mixed_precision, jit_compile ("auto", "true", "false"): devices.
        run_dir (empty = runs/<name>), export_dir (non-empty: SavedModel export after
        training), checkpoint_every (steps), keep_checkpoints,
            eval_every (steps, 0 = only at the end), show_dir ("" = <run>/overlays,
            "none" = off), seed, verbose: bookkeeping.
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
    # bookkeeping
    run_dir: str = ""
    export_dir: str = ""  # non-empty: also write a TF Serving SavedModel <export_dir>/<name>/<N>
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    eval_every: int = 0
    show_dir: str = ""
    seed: int = 0
    verbose: int = 1

    def __post_init__(self):
        if self.jit_compile not in ("auto", "true", "false"):
            raise ValueError(f"jit_compile must be auto/true/false, got {self.jit_compile!r}")
        if self.strategy not in ("auto", "default", "mirrored", "multi_worker", "tpu"):
            raise ValueError(f"unknown strategy {self.strategy!r}")
        if self.global_batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("global_batch_size and checkpoint_every must be >= 1")

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
        out.update(steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps,
                   memory_loss_start_step=self.memory_loss_start_step)
        return out

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def field_types():
    """{field name: Python type} of `RecipeConfig` (for flag parsing)."""
    hints = typing.get_type_hints(RecipeConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(RecipeConfig)}


_ADE20K = RecipeConfig()  # the defaults are the ADE20K R50 recipe

RECIPES = {
    "ade20k": _ADE20K.replace(memory_loss=True, eval_split="val"),
    # base_lr_m = 0.9 * lr0 for COCO-Stuff and Cityscapes: the momentum starts at 1.0.
    "cocostuff10k": _ADE20K.replace(
        name="cocostuff10k", dataset="cocostuff10k", eval_split="test", learning_rate=0.001,
        weight_decay=1e-4, epochs=110, num_train_examples=9000, base_lr_m=0.0009),
    "cityscapes": _ADE20K.replace(
        name="cityscapes", dataset="cityscapes", train_split="trainval", eval_split="val",
        epochs=440, num_train_examples=3475, base_lr_m=0.009, eval_mode="slide",
        eval_crop_size=(1024, 512), eval_stride=(341, 341)),
    "lip": _ADE20K.replace(
        name="lip", dataset="lip", global_batch_size=32, epochs=150, num_train_examples=30462,
        activation="leaky_relu", eval_flip=True),
    # Bundled CamVid sample: a few minutes on 2 CPU cores, from scratch.
    "sample": _ADE20K.replace(
        name="sample", dataset="sample", backbone="resnet18_v1c", base_channels=16,
        feats_channels=32, transform_channels=16, aux_channels=32, crop_size=(128, 128),
        global_batch_size=8, learning_rate=0.05, weight_decay=1e-4, epochs=50,
        num_train_examples=48, base_lr_m=0.05, checkpoint_every=50, keep_checkpoints=2,
        eval_every=100, dropout=0.1, export_dir="saved_models"),
}


def get_recipe(name):
    """The paper recipe for `name` ("ade20k", "cocostuff10k", "cityscapes", "lip", "sample").

    Example:
    >>> cfg = get_recipe("cocostuff10k")
    >>> cfg.learning_rate, cfg.weight_decay, cfg.base_lr_m, cfg.total_steps
    (0.001, 0.0001, 0.0009, 61820)
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]
