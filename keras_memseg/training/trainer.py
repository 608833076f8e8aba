"""`train(config)`: one trainer for every recipe (TensorFlow; tf.distribute).

Flow: strategy -> data stream -> model under `strategy.scope()` -> restore the
backup (weights, optimizer, memory, step) -> `fit` in chunks of
`checkpoint_every` steps -> save -> evaluate at the original image size.

Exact resume: the training stream is `train_pipeline(..., seed, repeat=True)`,
an infinite, seeded, deterministic sequence of batches; a run restored at global
step g trains on `stream.skip(g)`, i.e. on exactly the batches an uninterrupted
run would have seen (`skip` re-reads the skipped batches: its cost grows with g).
Keras "epochs" are chunks of `checkpoint_every` steps (progress bar per chunk).
"""

import contextlib
import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_memseg import datasets
from keras_memseg.backbones import get_backbone
from keras_memseg.backbones import load_resnet_weights
from keras_memseg.evaluation import InferenceConfig
from keras_memseg.evaluation import evaluate_dataset
from keras_memseg.evaluation import report_to_json
from keras_memseg.metrics import format_table
from keras_memseg.models import MemorySegmenter
from keras_memseg.training.callbacks import PeriodicEvaluation
from keras_memseg.training.callbacks import ScalarLogger
from keras_memseg.training.callbacks import StepBackupAndRestore
from keras_memseg.training.callbacks import StepCheckpoint
from keras_memseg.training.schedules import PolyDecay
from keras_memseg.training.schedules import TiedMomentum
from keras_memseg.training.strategy import make_strategy
from keras_memseg.training.strategy import worker_info


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    run_dir: str
    report: dict
    steps: int
    train_seconds: float
    history: list


def run_dir_for(config):
    return config.run_dir or os.path.join("runs", config.name)


def augment_config(config):
    """The dataset's `AugmentConfig` with the recipe's overrides applied."""
    aug = datasets.augment_config_for(config.dataset)
    changes = {k: tuple(getattr(config, k)) for k in ("crop_size", "target_scale", "ratio_range")
               if getattr(config, k)}
    if config.test_scale:
        changes["test_scale"] = tuple(config.test_scale)
        changes["test_keep_ratio"] = config.test_keep_ratio
    return dataclasses.replace(aug, **changes)


def inference_config(config, info):
    return InferenceConfig(
        mode=config.eval_mode, crop_size=tuple(config.eval_crop_size),
        stride=tuple(config.eval_stride), scales=tuple(config.eval_scales),
        flip=config.eval_flip, flip_pairs=tuple(info.flip_pairs),
        probs_before_resize=config.probs_before_resize)


@contextlib.contextmanager
def _dtype_policy(name):
    """Sets the global dtype policy while the model is constructed, then restores it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def mixed_precision_policy(config, strategy):
    if not config.mixed_precision:
        return "float32"
    return "mixed_bfloat16" if isinstance(strategy, tf.distribute.TPUStrategy) or \
        not tf.config.list_physical_devices("GPU") else "mixed_float16"


def build_model(config, num_classes, sync_batchnorm, learning_rate):
    """`MemorySegmenter` for `config`; memory momentum tied to `learning_rate` (a schedule)."""
    kwargs = {"sync_batchnorm": sync_batchnorm}
    if config.base_channels:
        kwargs["base_channels"] = config.base_channels
    backbone = get_backbone(config.backbone, output_stride=config.output_stride, **kwargs)
    if config.pretrained:
        load_resnet_weights(backbone, config.pretrained)
    context = None if config.context in ("", "none") else config.context
    return MemorySegmenter(
        backbone, num_classes, context=context, feats_channels=config.feats_channels,
        transform_channels=config.transform_channels, aux_channels=config.aux_channels,
        memory_loss=config.memory_loss,
        memory_loss_start_step=config.memory_loss_start_step,
        memory_momentum=TiedMomentum(learning_rate, config.base_momentum,
                                     base_lr=config.base_lr_m),
        activation=config.activation, output_stride=config.output_stride,
        sync_batchnorm=sync_batchnorm, weight_decay=config.weight_decay,
        dropout=config.dropout)


def _resolve_jit(value):
    return {"true": True, "false": False, "auto": "auto"}[value]


def _segments(start, total, chunk):
    """[(first_step, steps_per_epoch, num_epochs)] covering [start, total) in chunks.

    Example: start 30, total 230, chunk 50 -> [(30, 20, 1), (50, 50, 3), (200, 30, 1)].
    """
    out, step = [], start
    if step % chunk and step < total:
        end = min((step // chunk + 1) * chunk, total)
        out.append((step, end - step, 1))
        step = end
    full = (total - step) // chunk
    if full:
        out.append((step, chunk, full))
        step += full * chunk
    if step < total:
        out.append((step, total - step, 1))
    return out


def train(config, extra_callbacks=(), evaluate=True, strategy=None, train_data=None,
          eval_data=None):
    """Trains (or resumes) the recipe `config`, then evaluates it.

    Returns a `TrainResult`. Writes under `run_dir`: `config.json`, `backup/`
    (BackupAndRestore), `checkpoints/ckpt-<step>.weights.h5`, `logs/`
    (TensorBoard), `model.keras`, `eval.json` and `overlays/`.

    Args:
        config: a `RecipeConfig`.
        extra_callbacks: more Keras callbacks (run after the backup callback).
        evaluate: evaluate on `config.eval_split` after training.
        strategy: a `tf.distribute.Strategy` (default: from `config.strategy`).
        train_data, eval_data: optional datasets of {"image", "label"} used instead
            of `datasets.load(config.dataset, ...)` (labels must fit `config.dataset`).

    Raises:
        keras_memseg.datasets.DatasetNotFoundError: the data is not where the
            loader looks (the recipes print its message and exit 2).
    """
    strategy = strategy or make_strategy(config.strategy, config.tpu)
    _, task_id, is_chief = worker_info()
    info = datasets.get_info(config.dataset)
    keras.utils.set_random_seed(config.seed)
    aug = augment_config(config)
    data_dir = config.data_dir or None
    manual_dir = config.manual_dir or None
    raw_train = train_data
    if raw_train is None:
        raw_train = datasets.load(config.dataset, config.train_split, data_dir, manual_dir)
    stream = datasets.train_pipeline(raw_train, aug, config.global_batch_size,
                                     seed=config.seed, repeat=True)

    run_dir = run_dir_for(config)
    os.makedirs(run_dir, exist_ok=True)
    private_dir = run_dir if is_chief else os.path.join(run_dir, f"worker_{task_id}")
    if is_chief:
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            f.write(config.to_json())

    replicas = strategy.num_replicas_in_sync
    if config.global_batch_size % replicas:
        raise ValueError(f"global_batch_size {config.global_batch_size} is not divisible by "
                         f"the {replicas} replicas")
    total = config.total_steps
    with strategy.scope():
        schedule = PolyDecay(config.learning_rate, total)
        with _dtype_policy(mixed_precision_policy(config, strategy)):
            model = build_model(config, info.num_classes, replicas > 1, schedule)
        # Coupled L2 lives in the model (weight_decay); keras' decoupled decay stays off.
        optimizer = keras.optimizers.SGD(schedule, momentum=config.sgd_momentum)
        model.compile(optimizer=optimizer, jit_compile=_resolve_jit(config.jit_compile))
        crop_h, crop_w = aug.crop_size
        model(np.zeros((1, crop_h, crop_w, 3), "float32"))  # build
        optimizer.build(model.trainable_variables)

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3.15's fit() first reduces one (x, y) batch with strategy.reduce to
        # build the model symbolically; under MultiWorkerMirroredStrategy that fails
        # ("Attempt to convert a value (PerReplica...) to a Tensor"). Model and
        # optimizer are built above, so that symbolic build has nothing to do.
        model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
        # It then reduces the step's logs with strategy.reduce("MEAN", v, axis=0),
        # which rejects scalars: give every log a leading axis of 1.
        train_step = model.train_step
        model.train_step = lambda data: {
            k: tf.reshape(v, [1]) for k, v in train_step(data).items()}

    backup = StepBackupAndRestore(os.path.join(private_dir, "backup"), config.checkpoint_every,
                                  total)
    start = backup.restore(model)
    if start:
        print(f"resumed from {backup.backup_dir} at step {start}/{total}")

    raw_eval = eval_data

    def evaluate_fn(m, show_dir=None, max_examples=None):
        nonlocal raw_eval
        if raw_eval is None:
            raw_eval = datasets.load(config.dataset, config.eval_split, data_dir, manual_dir)
        eval_ds = datasets.eval_pipeline(raw_eval, aug.test_scale, aug.test_keep_ratio)
        return evaluate_dataset(
            m, eval_ds, info.num_classes, inference_config(config, info),
            class_names=info.class_names, palette=info.palette, show_dir=show_dir,
            max_examples=max_examples or config.max_eval_examples or None,
            ignore_label=info.ignore_label, verbose=config.verbose > 0)

    logger = ScalarLogger(os.path.join(run_dir, "logs"), min(100, config.checkpoint_every),
                          enabled=is_chief)
    callbacks = [
        logger,
        PeriodicEvaluation(evaluate_fn, config.eval_every, logger, enabled=is_chief,
                           total_steps=total),
        StepCheckpoint(os.path.join(run_dir, "checkpoints"), config.checkpoint_every, total,
                       keep=config.keep_checkpoints, enabled=is_chief),
        backup,  # after the others: a backup is only written once the step is logged
        *extra_callbacks,
    ]
    history, began = [], time.time()
    for first, steps, epochs in _segments(start, total, config.checkpoint_every):
        epoch0 = first // config.checkpoint_every
        h = _fit(model, stream.skip(first), epochs=epoch0 + epochs, initial_epoch=epoch0,
                 steps_per_epoch=steps, callbacks=callbacks, verbose=config.verbose)
        history.append(h.history)
    train_seconds = time.time() - began

    if is_chief:
        model.save(os.path.join(run_dir, "model.keras"))
        if config.export_dir:
            from keras_memseg.export import export_saved_model

            exported = export_saved_model(model, config.export_dir, name=config.name)
            print(f"exported SavedModel for TF Serving: {exported}")
    report = None
    if evaluate:
        show = config.show_dir or os.path.join(run_dir, "overlays")
        show = None if config.show_dir == "none" or not is_chief else show
        report = evaluate_fn(model, show_dir=show)
        print(format_table(report))
        if is_chief:
            result = report_to_json(report)
            result.update(step=int(keras.ops.convert_to_numpy(optimizer.iterations)),
                          train_seconds=train_seconds)
            with open(os.path.join(run_dir, "eval.json"), "w") as f:
                json.dump(result, f, indent=2)
            logger.write({"val/mIoU": report["mIoU"], "val/aAcc": report["aAcc"],
                          "val/mAcc": report["mAcc"]}, total)
    return TrainResult(model, run_dir, report, total, train_seconds, history)


_XLA_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
               tf.errors.InternalError)


def _fit(model, ds, **kwargs):
    """`model.fit`, retried without XLA if the jit-compiled step fails to compile.

    Compilation happens before the first step runs, so no state has changed.
    """
    try:
        return model.fit(ds, **kwargs)
    except _XLA_ERRORS as error:
        if model.jit_compile is not True or "XLA" not in str(error) and "xla" not in str(error):
            raise
        print(f"warning: jit_compile=True failed ({type(error).__name__}); "
              "falling back to jit_compile=False")
        model.jit_compile = False
        return model.fit(ds, **kwargs)
