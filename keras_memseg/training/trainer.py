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

import dataclasses
import json
import os
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_memseg import datasets
from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.backbones.resnet.resnet_pretrained import resolve_source
from keras_memseg.console import progress_verbosity
from keras_memseg.convert import load_resnet_weights
from keras_memseg.evaluation import compiled_forward
from keras_memseg.evaluation import evaluate_dataset
from keras_memseg.evaluation import report_to_json
from keras_memseg.evaluation.charts import save_iou_chart
from keras_memseg.metrics import format_table
from keras_memseg.models import MemorySegmenter
from keras_memseg.models import load_segmenter
from keras_memseg.optimizers import PolyDecay
from keras_memseg.optimizers import TiedMomentum
from keras_memseg.optimizers import TorchSGD
from keras_memseg.tensorflow_runtime import set_thread_counts
from keras_memseg.training.callbacks import DiskFullError
from keras_memseg.training.callbacks import NonFiniteMonitor
from keras_memseg.training.callbacks import PeriodicEvaluation
from keras_memseg.training.callbacks import ScalarLogger
from keras_memseg.training.callbacks import StepBackupAndRestore
from keras_memseg.training.callbacks import StepCheckpoint
from keras_memseg.training.callbacks import ensure_space
from keras_memseg.training.callbacks import is_disk_full
from keras_memseg.training.callbacks import state_bytes
from keras_memseg.training.callbacks import step_of
from keras_memseg.training.config import ConfigError
from keras_memseg.training.config import init_model_path
from keras_memseg.training.config import path_problems
from keras_memseg.training.keras_saving import cache_attribute_skipsets
from keras_memseg.training.run_folder import RunFolder
from keras_memseg.training.strategy import make_strategy
from keras_memseg.training.strategy import worker_info


class NonFiniteTrainingError(RuntimeError):
    """Training stopped: it kept producing NaN/inf batches (see `NonFiniteMonitor`)."""


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    run_dir: str
    report: dict
    steps: int
    train_seconds: float
    history: list
    # One line when the run resumed in a way that cannot match an uninterrupted run.
    resume_note: str = None


def run_dir_for(config):
    return config.run_dir or os.path.join("runs", config.name)


def augment_config(config):
    """The dataset's `AugmentConfig` with the recipe's overrides applied."""
    aug = datasets.get_info(config.dataset).augment
    changes = {
        k: tuple(getattr(config, k))
        for k in ("crop_size", "target_scale", "ratio_range")
        if getattr(config, k)
    }
    if config.test_scale:
        changes["test_scale"] = tuple(config.test_scale)
        changes["test_keep_ratio"] = config.test_keep_ratio
    return dataclasses.replace(aug, **changes)


def model_from_run(weights, run_config):
    """The model of a run's `config.json` with `weights` (e.g. `ckpt-<step>.weights.h5`)
    loaded into it. Raises ValueError / FileNotFoundError saying which file is wrong."""
    from keras_memseg.training.config import RecipeConfig

    for path in (weights, run_config):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"not found: {path}")
    try:
        with open(run_config) as f:
            fields = json.load(f)
        names = {field.name for field in dataclasses.fields(RecipeConfig)}
        config = RecipeConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in names}
        )
    except (ValueError, TypeError) as error:
        raise ValueError(f"{run_config} is not a run's config.json: {error}") from None
    info = datasets.get_info(config.dataset)
    model = build_model(config, info.num_classes, info=info)
    crop_h, crop_w = augment_config(config).crop_size
    model(np.zeros((1, crop_h, crop_w, 3), "float32"))
    try:
        model.load_weights(weights, skip_mismatch=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds here
        raise ValueError(
            f"cannot load {weights} into the model of {run_config}: "
            f"{type(error).__name__}: {str(error)[:300]}"
        ) from None
    return model


def mixed_precision_policy(config, strategy):
    if not config.mixed_precision:
        return "float32"
    return (
        "mixed_bfloat16"
        if isinstance(strategy, tf.distribute.TPUStrategy)
        or not tf.config.list_physical_devices("GPU")
        else "mixed_float16"
    )


def _backbone(config, sync_batchnorm=False, dtype=None):
    """The `DilatedResNetBackbone` of `config`, with random weights."""
    overrides = {"base_channels": config.base_channels} if config.base_channels else {}
    return DilatedResNetBackbone.from_preset(
        config.backbone,
        load_weights=False,
        output_stride=config.output_stride,
        sync_batchnorm=sync_batchnorm,
        dtype=dtype,
        **overrides,
    )


def one_line(error, limit=600):
    """`str(error)` on one line (whitespace runs collapsed), at most `limit` characters."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_pretrained(config):
    """Loads `--pretrained` into a throwaway backbone of `config`'s architecture, so that
    a file of another architecture, a pickle payload (`torch.load(weights_only=True)`
    refuses it unexecuted) or an unreadable file is a `ConfigError` line naming the flag
    before the run folder is created. A no-op without `--pretrained`."""
    if not config.pretrained:
        return
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notes, Keras' skips
            warnings.simplefilter("ignore")
            load_resnet_weights(_backbone(config), resolve_source(config.pretrained))
    except (ValueError, OSError, ImportError, KeyError, TypeError) as error:
        raise ConfigError([f"--pretrained={config.pretrained!r}: {one_line(error)}"]) from None


def preflight(config, run_dir):
    """Refuses, before anything is written, path flags that cannot work (`ConfigError`,
    one line each): see `keras_memseg.training.config.path_problems`."""
    problems = path_problems(config, run_dir)
    if problems:
        raise ConfigError(problems)


def build_model(config, num_classes, sync_batchnorm=False, dtype=None, info=None):
    """The `MemorySegmenter` architecture of `config` (pretrained backbone if set).

    With `info` (the dataset's `DatasetSpec`), the model also carries the dataset's class
    names, palette and ignore class, and the recipe's test resize and inference settings
    (`model.preprocessor`), so that `model.keras` is enough to predict, evaluate and export.
    """
    if config.init_from:
        model = load_segmenter(init_model_path(config.init_from), num_classes=num_classes)
    else:
        model = _new_model(config, num_classes, sync_batchnorm, dtype)
    if info is not None:
        aug = augment_config(config)
        model.set_dataset_info(
            info,
            test_scale=tuple(aug.test_scale),
            keep_ratio=aug.test_keep_ratio,
            mode=config.eval_mode,
            slide_window=tuple(config.eval_crop_size),
            slide_stride=tuple(config.eval_stride),
            scales=tuple(config.eval_scales),
            flip=config.eval_flip,
            probs_before_resize=config.probs_before_resize,
        )
    return model


def _new_model(config, num_classes, sync_batchnorm=False, dtype=None):
    backbone = _backbone(config, sync_batchnorm, dtype)
    if config.pretrained:
        load_resnet_weights(backbone, resolve_source(config.pretrained))
    context = None if config.context in ("", "none") else config.context
    return MemorySegmenter(
        backbone,
        num_classes,
        context=context,
        feats_channels=config.feats_channels,
        transform_channels=config.transform_channels,
        aux_channels=config.aux_channels,
        activation=config.activation,
        output_stride=config.output_stride,
        sync_batchnorm=sync_batchnorm,
        dropout=config.dropout,
        dtype=dtype,
    )


def compile_model(model, config, jit_compile=False):
    """The recipe's training policy: the reference's SGD with a poly schedule, coupled
    weight decay, the memory momentum tied to the learning rate, the memory loss."""
    schedule = PolyDecay(config.learning_rate, config.total_steps)
    model.compile(
        optimizer=TorchSGD(schedule, momentum=config.sgd_momentum),
        memory_momentum=TiedMomentum(schedule, config.base_momentum, base_lr=config.base_lr_m),
        loss_weights={"memory": 1.0 if config.memory_loss else 0.0},
        memory_loss_start_step=config.memory_loss_start_step,
        weight_decay=config.weight_decay,
        jit_compile=jit_compile,
    )
    return model


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


def dataset_info(config, class_names=None):
    """`config.dataset`'s `DatasetSpec`, with `class_names` (and a generated palette)
    instead of its classes when given."""
    info = datasets.get_info(config.dataset)
    if class_names is None:
        return info
    from keras_memseg.datasets._palette import voc_palette

    names = tuple(str(name) for name in class_names)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError([f"class_names={list(names)!r}: two or more distinct names"])
    return dataclasses.replace(
        info,
        num_classes=len(names),
        class_names=names,
        palette=voc_palette(len(names)),
        variants={},
    )


def _summary(config, aug, total, replicas, run_dir):
    """The run's first console line: what is trained on what, for how long, where."""
    crop = "x".join(str(v) for v in aug.crop_size)
    return (
        f"{config.name}: MCIBI {config.backbone} ({config.context}) on "
        f"{config.dataset}/{config.train_split}, {total} steps of batch "
        f"{config.global_batch_size} ({replicas} replica{'s' if replicas > 1 else ''}), "
        f"crop {crop}, lr {config.learning_rate:g}; run folder {run_dir}\n"
        f"  {backbone_origin(config)}"
    )


def backbone_origin(config):
    """Where the backbone's starting weights come from, as the run summary says it."""
    if config.init_from:
        return f"model: the trained segmenter {config.init_from} (fine-tuned)"
    if config.pretrained:
        return f"backbone: ImageNet weights from {config.pretrained}"
    return (
        "backbone: random initialisation (the paper starts from ImageNet weights: "
        "--pretrained=PRESET_OR_FILE, see docs/guides/pretrained_weights.md)"
    )


def train(
    config,
    extra_callbacks=(),
    evaluate=True,
    strategy=None,
    train_data=None,
    eval_data=None,
    class_names=None,
):
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
            of `datasets.load(config.dataset, ...)` (labels must fit `config.dataset`,
            or `class_names`).
        class_names: the K class names of `train_data` when they are not those of
            `config.dataset` (whose augmentation and evaluation settings still apply):
            the model gets K classes, these names and a generated palette.

    Raises:
        keras_memseg.datasets.DatasetNotFoundError: the data is not where the
            loader looks (the recipes print its message and exit 2).
        keras_memseg.training.run_folder.RunFolderError: another run holds the run
            folder, or it holds a run of another config (nothing was written), or it
            cannot be written.
        ConfigError: a flag that cannot work, found before the run folder is made:
            `--pretrained` (missing, not a regular file or preset folder, not loadable
            into this architecture), `--run_dir` / `--export_dir` / `--show_dir` (a
            file, a read-only location), thread pools that cannot apply.
        keras_memseg.datasets.BadExampleError: an image or label of the dataset is
            unusable (the message names the file); the run folder stays resumable.
        NonFiniteTrainingError: `max_nonfinite_batches` batches in a row were
            NaN/inf; the last backup and checkpoint are from a finite state.
    """
    run_dir = run_dir_for(config)
    preflight(config, run_dir)
    try:
        set_thread_counts(config.inter_op_parallelism_threads, config.intra_op_parallelism_threads)
    except RuntimeError as error:
        raise ConfigError([f"--{error}"]) from None
    cache_attribute_skipsets()  # checkpoints, backups and model.save ~40 % faster
    strategy = strategy or make_strategy(config.strategy, config.tpu)
    check_pretrained(config)  # after the strategy: it starts TensorFlow's runtime
    _, task_id, is_chief = worker_info()
    private_dir = run_dir if is_chief else os.path.join(run_dir, f"worker_{task_id}")
    # Locked for the whole run; a resume with another config is refused here, before
    # any file is written or any weight touched.
    run_folder = RunFolder(private_dir).open(config.to_dict())
    try:
        return _train(
            config,
            strategy,
            is_chief,
            run_dir,
            private_dir,
            extra_callbacks,
            evaluate,
            train_data,
            eval_data,
            resumed=run_folder.resumed,
            class_names=class_names,
        )
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise DiskFullError(f"{one_line(error)}; {_resume_hint(run_dir, private_dir)}") from None
    finally:
        run_folder.release()


def _resume_hint(run_dir, private_dir):
    """Where the same command would resume `run_dir` from (after a full disk)."""
    newest = StepBackupAndRestore(
        os.path.join(private_dir, "backup"), 1, 1, os.path.join(run_dir, "checkpoints")
    ).candidates()
    where = f"step {step_of(newest[0][1])} ({newest[0][1]})" if newest else "step 0"
    return f"free some space and run the same command again: it resumes from {where}"


def _train(
    config,
    strategy,
    is_chief,
    run_dir,
    private_dir,
    extra_callbacks,
    evaluate,
    train_data,
    eval_data,
    resumed=False,
    class_names=None,
):
    info = dataset_info(config, class_names)
    keras.utils.set_random_seed(config.seed)
    aug = augment_config(config)
    data_dir = config.data_dir or None
    manual_dir = config.manual_dir or None
    raw_train = train_data
    if raw_train is None:
        raw_train = datasets.load(config.dataset, config.train_split, data_dir, manual_dir)
    stream = datasets.train_pipeline(
        raw_train, aug, config.global_batch_size, seed=config.seed, repeat=True
    )

    replicas = strategy.num_replicas_in_sync
    if config.global_batch_size % replicas:
        raise ConfigError(
            [
                f"--global_batch_size={config.global_batch_size}: a multiple of "
                f"the {replicas} replicas"
            ]
        )
    total = config.total_steps
    with strategy.scope():
        model = build_model(
            config,
            info.num_classes,
            replicas > 1,
            dtype=mixed_precision_policy(config, strategy),
            info=info,
        )
        compile_model(model, config, jit_compile=_resolve_jit(config.jit_compile))
        crop_h, crop_w = aug.crop_size
        model(np.zeros((1, crop_h, crop_w, 3), "float32"))  # build
        model.optimizer.build(model.trainable_variables)
    optimizer = model.optimizer

    checkpoint_dir = os.path.join(run_dir, "checkpoints")
    checkpoint = StepCheckpoint(
        checkpoint_dir,
        config.checkpoint_every,
        total,
        keep=config.keep_checkpoints,
        enabled=is_chief,
    )
    backup = StepBackupAndRestore(
        os.path.join(private_dir, "backup"),
        config.checkpoint_every,
        total,
        checkpoint_dir=checkpoint_dir,
        checkpoint=checkpoint,
    )
    start = backup.restore(model)
    if start:
        print(f"resumed from {backup.restored_from} at step {start}/{total}")
    elif resumed:
        print(
            f"note: {run_dir} holds no backup or checkpoint yet: training starts from step 0 "
            "with the run's seed, as the first attempt did"
        )

    raw_eval = eval_data
    # One traced forward for every evaluation of the run (periodic and final), built
    # at the first: a new `compiled_forward` per call would retrace the model each time.
    forward = None

    def evaluate_fn(m, show_dir=None, max_examples=None):
        nonlocal raw_eval, forward
        if m is not model:
            raise ValueError("the trainer's evaluate_fn evaluates the model it trains")
        if raw_eval is None:
            raw_eval = datasets.load(config.dataset, config.eval_split, data_dir, manual_dir)
        eval_ds = datasets.eval_pipeline(raw_eval, aug.test_scale, aug.test_keep_ratio)
        if forward is None:
            forward = compiled_forward(model)
        return evaluate_dataset(
            m,
            eval_ds,
            info.num_classes,
            model.preprocessor.inference_config(),  # the recipe's, set by build_model
            class_names=info.class_names,
            palette=info.palette,
            show_dir=show_dir,
            max_examples=max_examples or config.max_eval_examples or None,
            ignore_class=info.ignore_class,
            forward=forward,
            verbose=config.verbose > 0,
        )

    logger = ScalarLogger(
        os.path.join(run_dir, "logs"), min(100, config.checkpoint_every), enabled=is_chief
    )
    monitor = NonFiniteMonitor(config.max_nonfinite_batches)
    callbacks = [
        monitor,
        logger,
        PeriodicEvaluation(
            evaluate_fn, config.eval_every, logger, enabled=is_chief, total_steps=total
        ),
        checkpoint,
        backup,  # after the others: a backup is only written once the step is logged
        *extra_callbacks,
    ]
    if is_chief and config.verbose:
        print(_summary(config, aug, total, replicas, run_dir))
    history, began = [], time.time()
    for first, steps, epochs in _segments(start, total, config.checkpoint_every):
        epoch0 = first // config.checkpoint_every
        h = model.fit(
            stream.skip(first),
            epochs=epoch0 + epochs,
            initial_epoch=epoch0,
            steps_per_epoch=steps,
            shuffle=False,  # the pipeline shuffles (seeded)
            callbacks=callbacks,
            verbose=progress_verbosity(min(config.verbose, 1)),
        )
        history.append(h.history)
        if monitor.stopped_at is not None:
            raise NonFiniteTrainingError(
                f"training stopped at step {monitor.stopped_at}: {monitor.limit} batches in a "
                "row had NaN/inf images or outputs (they changed nothing; the last backup and "
                f"checkpoint are from a finite state). Check the data of {config.dataset!r} and "
                "run the same command again to resume, or start a new --run_dir with a "
                "lower --learning_rate (a run folder keeps its recipe)"
            )
    train_seconds = time.time() - began
    # A run that ends diverged writes no model: NaN/inf weights, or its last batches
    # all skipped as non-finite (finite but huge weights give NaN outputs from then on;
    # two in a row at the end, since one bad image at the end is no divergence).
    diverged = model.nonfinite_weights()
    if diverged or monitor.in_a_row >= 2:
        what = (
            f"NaN/inf in {len(diverged)} weights ({diverged[0]}, ...)"
            if diverged
            else f"its last {monitor.in_a_row} batches in a row NaN/inf"
        )
        raise NonFiniteTrainingError(
            f"training ended with {what}: model.keras was not written (the model diverged; "
            "the last backup and checkpoint are from a finite state). Start a new --run_dir "
            "with a lower --learning_rate"
        )

    if is_chief:
        model_path = os.path.join(run_dir, "model.keras")
        ensure_space(model_path, int(state_bytes(model) * 1.25) + 2**20)
        model.save(model_path)
        if config.export_dir:
            from keras_memseg.export import export_saved_model

            exported = export_saved_model(
                model,
                config.export_dir,
                name=config.name,
                test_scale=aug.test_scale,
                keep_ratio=aug.test_keep_ratio,
            )
            print(f"exported SavedModel for TF Serving: {exported}")
    report = None
    if evaluate:
        show = config.show_dir or os.path.join(run_dir, "overlays")
        show = None if config.show_dir == "none" or not is_chief else show
        report = evaluate_fn(model, show_dir=show)
        print(format_table(report))
        if is_chief:
            result = report_to_json(report)
            result.update(
                step=int(keras.ops.convert_to_numpy(optimizer.iterations)),
                train_seconds=train_seconds,
            )
            with open(os.path.join(run_dir, "eval.json"), "w") as f:
                json.dump(result, f, indent=2)
            save_iou_chart(
                report,
                os.path.join(run_dir, "iou.png"),
                palette=info.palette,
                title=f"{config.dataset} {config.eval_split}",
            )
            logger.write(
                {
                    "val/mIoU": report["mIoU"],
                    "val/aAcc": report["aAcc"],
                    "val/mAcc": report["mAcc"],
                },
                total,
            )
    return TrainResult(
        model, run_dir, report, total, train_seconds, history, resume_note=backup.not_exact
    )
