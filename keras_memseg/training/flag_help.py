"""What `keras-memseg train --help` says of each `RecipeConfig` field: a description
(`HELP`), an example value (`EXAMPLES`), and the group it is listed under (`GROUPS`).

Plain data, no imports: the help is printed before TensorFlow is imported. The flag of a
field is `--<field>` except where `FLAG_NAMES` gives the name users type (the field's own
name stays an alias). `tests/training/test_cli.py` checks that every field has a
description, an example and exactly one group.
"""

# Listed in this order under these titles.
GROUPS = {
    "data": ("dataset", "train_split", "eval_split", "data_dir", "manual_dir"),
    "model": (
        "backbone",
        "base_channels",
        "pretrained",
        "init_from",
        "output_stride",
        "context",
        "feats_channels",
        "transform_channels",
        "aux_channels",
        "activation",
        "dropout",
    ),
    "augmentation": ("crop_size", "target_scale", "ratio_range"),
    "optimisation": (
        "global_batch_size",
        "learning_rate",
        "weight_decay",
        "sgd_momentum",
        "epochs",
        "num_train_examples",
        "max_steps",
    ),
    "memory": ("base_momentum", "base_lr_m", "memory_loss", "memory_loss_start_epoch"),
    "evaluation": (
        "test_scale",
        "test_keep_ratio",
        "eval_mode",
        "eval_crop_size",
        "eval_stride",
        "eval_scales",
        "eval_flip",
        "probs_before_resize",
        "max_eval_examples",
    ),
    "devices": (
        "strategy",
        "tpu",
        "mixed_precision",
        "jit_compile",
        "inter_op_parallelism_threads",
        "intra_op_parallelism_threads",
    ),
    "bookkeeping": (
        "name",
        "run_dir",
        "export_dir",
        "checkpoint_every",
        "keep_checkpoints",
        "eval_every",
        "show_dir",
        "seed",
        "verbose",
        "max_nonfinite_batches",
    ),
}

# field -> the flag users type, when it is not the field's name (the field's name is kept
# as an alias: `--eval_crop_size=512,512` still works).
FLAG_NAMES = {"eval_crop_size": "slide_window", "eval_stride": "slide_stride"}

HELP = {
    # data
    "dataset": "a registered dataset (keras-memseg datasets lists them) or a dataset folder "
    "(classes.txt, images/<split>/, labels/<split>/). A dataset other than the recipe's "
    "takes that dataset's splits, evaluation settings and training-set size",
    "train_split": "the split trained on",
    "eval_split": "the split scored after training (and every --eval_every steps); its labels "
    "must be public",
    "data_dir": "where the prepared (TFDS) dataset is written and read; empty: TFDS's default "
    "(~/tensorflow_datasets)",
    "manual_dir": "the folder holding the downloaded archives or extracted files the dataset "
    "is prepared from; empty: <data_dir>/downloads/manual",
    # model
    "backbone": "the dilated ResNet of the model (a DilatedResNetBackbone preset)",
    "base_channels": "width of the backbone's first stage; 0: the standard width (64). Small "
    "values make tiny models for tests and CPUs",
    "init_from": "fine-tune: start from a trained segmenter (a run folder, a .keras file, a "
    "preset folder or a converted named preset), its architecture as saved (the model flags "
    "above are not used); the classifiers and the memory start fresh when the dataset has "
    "another class count, every other weight is loaded",
    "pretrained": "backbone weights: a converted backbone preset's name (resnet50_v1c), a "
    "preset folder, a .weights.h5 or the authors' PyTorch "
    "checkpoint (.pth); checked, and loaded once, before the run folder is created; "
    "empty: from scratch",
    "output_stride": "input size / feature size of the backbone: 8 (dilated, the paper's), "
    "16 or 32 (cheaper, coarser)",
    "context": "context module of the decoder: aspp (DeepLabV3, the paper's), ppm (PSPNet), "
    "or none",
    "feats_channels": "channels of the decoder's features (and of the memory's entries)",
    "transform_channels": "channels of the memory read-out's query/key transform",
    "aux_channels": "channels of the auxiliary head on the backbone's stage 3",
    "activation": "activation of the decoder: relu or leaky_relu",
    "dropout": "dropout rate before the classifiers, in [0, 1)",
    # augmentation
    "crop_size": "height,width of the random training crop (HxW also accepted), each side at "
    "most 4096 pixels; empty: the dataset's",
    "target_scale": "the training resize target before the random ratio, as the dataset "
    "states it (width,height; with keep-ratio resizing: long side,short side), each at "
    "most 8192 pixels; empty: the dataset's",
    "ratio_range": "low,high random scale ratio applied to --target_scale, at most 8; empty: "
    "the dataset's",
    # optimisation
    "global_batch_size": "images per training step, over all devices",
    "learning_rate": "initial learning rate of SGD; decays with a poly schedule (power 0.9) "
    "to 1% of it",
    "weight_decay": "L2 weight decay of SGD",
    "sgd_momentum": "momentum of SGD, in [0, 1)",
    "epochs": "passes over the training set; steps = epochs * (num_train_examples // "
    "global_batch_size)",
    "num_train_examples": "images in the training split (sets the steps per epoch)",
    "max_steps": "stop after this many steps instead (0: the whole schedule); a quick run",
    # memory
    "base_momentum": "the memory's update momentum at the start, in [0, 1]",
    "base_lr_m": "the momentum follows the learning rate: momentum = base_momentum * lr_t / "
    "base_lr_m",
    "memory_loss": "add the memory's own loss term (the paper uses it on ADE20K)",
    "memory_loss_start_epoch": "first epoch (0-based) of the memory loss; 1: from the second epoch",
    # evaluation
    "test_scale": "the evaluation resize target as height,width (HxW also accepted), each at "
    "most 8192 pixels; with --test_keep_ratio the two numbers bound the long and the short "
    "side. Stored in the config (--config_only) as the datasets' (width, height); "
    "empty: the dataset's",
    "test_keep_ratio": "keep the aspect ratio when resizing to --test_scale",
    "eval_mode": "whole: one pass over the resized image; slide: overlapping windows "
    "(--slide_window, --slide_stride)",
    "eval_crop_size": "height,width of the sliding window of --eval_mode=slide, each side at "
    "most 4096 pixels",
    "eval_stride": "height,width step between sliding windows",
    "eval_scales": "test-time scales, averaged (multi-scale evaluation: 0.5,0.75,1.0,1.25,1.5,"
    "1.75)",
    "eval_flip": "also average the horizontally flipped image (LIP swaps its left/right classes)",
    "probs_before_resize": "softmax before resizing the logits to the image size (as the "
    "reference)",
    "max_eval_examples": "score only this many images (0: all)",
    # devices
    "strategy": "tf.distribute strategy: auto (every local GPU, or the TPU of --tpu), default "
    "(one device), mirrored, multi_worker (TF_CONFIG) or tpu",
    "tpu": "the TPU to connect to (a name or grpc:// address) for --strategy=tpu or auto",
    "mixed_precision": "compute in float16 (GPU) or bfloat16 (TPU) with float32 weights",
    "jit_compile": "XLA-compile the training step: auto (on TPU and GPU), true or false",
    "inter_op_parallelism_threads": "TensorFlow's CPU threads running independent ops side by "
    "side; 0: TensorFlow's default",
    "intra_op_parallelism_threads": "TensorFlow's CPU threads inside one op; 0: TensorFlow's "
    "default",
    # bookkeeping
    "name": "the run's name (the folder runs/<name> and the export's model name)",
    "run_dir": "the run folder (config.json, checkpoints, logs, model.keras, eval.json); "
    "must be writable; empty: runs/<name>. The same command resumes a run from it",
    "export_dir": "also export a TF Serving SavedModel to <export_dir>/<name>/<version> after "
    "training; empty: no export",
    "checkpoint_every": "write a checkpoint every this many steps",
    "keep_checkpoints": "checkpoints kept (the oldest are deleted); 0: keep all",
    "eval_every": "also score --eval_split every this many steps (0: only at the end)",
    "show_dir": "colour overlays (image | label | prediction) of the final evaluation; empty: "
    "<run>/overlays; none: off",
    "seed": "random seed of the weights, the data order and the augmentation",
    "verbose": "0: quiet, 1: progress, 2: also TensorFlow's and the libraries' own log lines "
    "(--verbose alone means 2)",
    "max_nonfinite_batches": "stop after this many NaN/inf batches in a row (0: never)",
}

# field -> a value to show as `e.g. --flag=VALUE`.
EXAMPLES = {
    "dataset": "coco_stuff164k",
    "train_split": "train",
    "eval_split": "val",
    "data_dir": "~/tensorflow_datasets",
    "manual_dir": "~/downloads/ADEChallengeData2016",
    "backbone": "resnet101_v1c",
    "base_channels": "16",
    "init_from": "runs/ade20k",
    "pretrained": "resnet50_v1c",
    "output_stride": "16",
    "context": "ppm",
    "feats_channels": "256",
    "transform_channels": "128",
    "aux_channels": "256",
    "activation": "leaky_relu",
    "dropout": "0.1",
    "crop_size": "512,512",
    "target_scale": "2048,512",
    "ratio_range": "0.5,2.0",
    "global_batch_size": "8",
    "learning_rate": "0.005",
    "weight_decay": "1e-4",
    "sgd_momentum": "0.9",
    "epochs": "50",
    "num_train_examples": "3475",
    "max_steps": "20",
    "base_momentum": "0.9",
    "base_lr_m": "0.009",
    "memory_loss": "true",
    "memory_loss_start_epoch": "0",
    "test_scale": "512,2048",
    "test_keep_ratio": "false",
    "eval_mode": "slide",
    "eval_crop_size": "512,512",
    "eval_stride": "341,341",
    "eval_scales": "0.75,1.0,1.25",
    "eval_flip": "true",
    "probs_before_resize": "false",
    "max_eval_examples": "100",
    "strategy": "mirrored",
    "tpu": "my-tpu",
    "mixed_precision": "true",
    "jit_compile": "true",
    "inter_op_parallelism_threads": "2",
    "intra_op_parallelism_threads": "1",
    "name": "ade20k_bs8",
    "run_dir": "runs/try",
    "export_dir": "saved_models",
    "checkpoint_every": "500",
    "keep_checkpoints": "5",
    "eval_every": "2000",
    "show_dir": "none",
    "seed": "1",
    "verbose": "2",
    "max_nonfinite_batches": "0",
}
