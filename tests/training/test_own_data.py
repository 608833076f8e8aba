"""Training on the user's own data: a folder dataset (`--data ROOT`, `folder_recipe`) and
`trainer.train(train_data=..., class_names=...)` (issue #29)."""

import json
import os

import numpy as np
import pytest

from keras_memseg.datasets.sample.as_folder import write_sample_folder
from keras_memseg.training.config import ConfigError
from keras_memseg.training.config import RecipeConfig
from keras_memseg.training.config import folder_recipe
from keras_memseg.training.config import get_recipe

TINY = dict(
    backbone="resnet18_v1c",
    base_channels=8,
    feats_channels=16,
    transform_channels=8,
    aux_channels=8,
    crop_size=(48, 48),
    global_batch_size=2,
    max_steps=2,
    checkpoint_every=2,
    max_eval_examples=2,
    show_dir="none",
    export_dir="",
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "fields"
    write_sample_folder(root)
    return root


def test_folder_recipe_takes_the_folder(folder):
    config = folder_recipe(folder)
    assert config.dataset == str(folder.resolve()) and config.name == "fields"
    assert (config.train_split, config.eval_split) == ("train", "val")
    assert config.num_train_examples == 48  # counted from the files
    assert (config.global_batch_size, config.epochs, config.backbone) == (8, 100, "resnet50_v1c")
    paper = folder_recipe(folder, recipe="ade20k")
    assert paper.memory_loss and paper.num_train_examples == 48 and paper.dataset == config.dataset
    # The config survives its JSON (a run folder's config.json names the folder).
    fields = json.loads(config.to_json())
    assert RecipeConfig(**{k: fields[k] for k in ("name", "dataset")}).dataset == config.dataset


def test_a_dataset_that_is_neither_name_nor_folder_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as error:
        get_recipe("camvid").replace(dataset=str(tmp_path / "nowhere"))
    assert error.value.problems[0].startswith("--dataset=")
    assert "nowhere" in error.value.problems[0]
    with pytest.raises(ConfigError, match="or a dataset folder"):
        get_recipe("camvid").replace(dataset="pascal")


def test_the_run_summary_says_where_the_backbone_starts():
    from keras_memseg.training.trainer import backbone_origin

    assert "random initialisation" in backbone_origin(get_recipe("sample"))
    pretrained = get_recipe("sample").replace(pretrained="resnet18_v1c")
    assert backbone_origin(pretrained) == "backbone: ImageNet weights from resnet18_v1c"


def test_train_on_a_tf_data_dataset_with_its_own_classes(tmp_path):
    import tensorflow as tf

    from keras_memseg.training import trainer

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 40, 56, 3)).astype("uint8")
    labels = rng.integers(0, 3, (4, 40, 56)).astype("uint8")
    data = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    config = get_recipe("sample").replace(
        name="fields",
        run_dir=str(tmp_path / "run"),
        num_train_examples=4,
        intra_op_parallelism_threads=0,
        **TINY,
    )
    names = ["soil", "crop", "weed"]
    result = trainer.train(config, train_data=data, eval_data=data, class_names=names)
    assert result.model.num_classes == 3
    assert list(result.report["class_names"]) == names
    with pytest.raises(ConfigError, match="class_names"):
        trainer.dataset_info(config, ["soil", "soil"])


def test_the_trained_model_carries_the_folder_classes(folder, tmp_path):
    from keras_memseg.models import load_segmenter
    from keras_memseg.training import trainer

    config = folder_recipe(folder).replace(
        run_dir=str(tmp_path / "run"), intra_op_parallelism_threads=0, **TINY
    )
    config = config.replace(test_scale=(96, 72), eval_mode="slide", eval_crop_size=(64, 64))
    result = trainer.train(config)
    model = load_segmenter(os.path.join(result.run_dir, "model.keras"))
    assert model.class_names[:2] == ("Sky", "Building") and model.palette[0] == (128, 128, 128)
    pre = model.preprocessor
    assert (pre.test_scale, pre.mode, pre.slide_window) == ((96, 72), "slide", (64, 64))


def test_fine_tune_a_trained_run_on_another_class_set(folder, tmp_path):
    import tensorflow as tf

    from keras_memseg.models import load_segmenter
    from keras_memseg.training import trainer
    from keras_memseg.training.run_folder import config_differences

    first = folder_recipe(folder).replace(
        run_dir=str(tmp_path / "first"), intra_op_parallelism_threads=0, **TINY
    )
    trained = trainer.train(first, evaluate=False).model
    rng = np.random.default_rng(1)
    data = tf.data.Dataset.from_tensor_slices(
        {
            "image": rng.integers(0, 256, (4, 40, 56, 3)).astype("uint8"),
            "label": rng.integers(0, 2, (4, 40, 56)).astype("uint8"),
        }
    )
    second = first.replace(
        run_dir=str(tmp_path / "second"), init_from=str(tmp_path / "first"), num_train_examples=4
    )
    result = trainer.train(second, train_data=data, eval_data=data, class_names=["a", "b"])
    assert result.model.num_classes == 2 and result.model.class_names == ("a", "b")
    saved = load_segmenter(os.path.join(result.run_dir, "model.keras"))
    assert saved.num_classes == 2
    # The second run starts from the first run's saved weights (an exact oracle: the file),
    # not from a fresh initialisation.
    start = trainer.build_model(second, 2)
    first_saved = load_segmenter(os.path.join(tmp_path, "first", "model.keras"))
    for ours, theirs in zip(start.backbone.weights, first_saved.backbone.weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    np.testing.assert_array_equal(
        np.asarray(first_saved.backbone.weights[0]), np.asarray(trained.backbone.weights[0])
    )
    # A missing --init_from is one line before anything is written.
    with pytest.raises(ConfigError, match="--init_from="):
        trainer.train(second.replace(init_from=str(tmp_path / "none"), run_dir=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()
    # A config.json of an earlier version (no init_from) resumes.
    assert config_differences({"lr": 1}, {"lr": 1, "init_from": ""}) == []


def test_pretrained_takes_a_converted_backbone_preset_name(tmp_path, monkeypatch):
    from keras_memseg.backbones import DilatedResNetBackbone
    from keras_memseg.backbones.resnet.resnet_pretrained import resolve_source
    from keras_memseg.training.config import path_problems

    monkeypatch.setenv("KERAS_MEMSEG_HOME", str(tmp_path))
    config = get_recipe("sample").replace(pretrained="resnet18_v1c")
    problems = path_problems(config, str(tmp_path / "run"))
    assert len(problems) == 1 and "is not converted yet" in problems[0]
    assert "keras-memseg convert resnet18_v1c-b5776b93.pth --preset resnet18_v1c" in problems[0]
    folder = tmp_path / "presets" / "resnet18_v1c"
    DilatedResNetBackbone(depth=18, base_channels=16).save_to_preset(str(folder))
    assert resolve_source("resnet18_v1c") == str(folder)
    assert path_problems(config, str(tmp_path / "run")) == []
