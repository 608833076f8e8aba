"""ScalarLogger writes real TensorBoard scalars: read back with TensorBoard's own reader."""

import glob

import keras
import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from keras_memseg.backbones import DilatedResNetBackbone
from keras_memseg.models import MemorySegmenter
from keras_memseg.training.callbacks import ScalarLogger


def read_scalars(log_dir):
    """{tag: [(step, value), ...]} from the event files under `log_dir`, via TensorBoard."""
    files = glob.glob(f"{log_dir}/events.out.tfevents.*")
    assert len(files) == 1, files
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    acc.Reload()
    out = {}
    for tag in acc.Tags()["tensors"]:
        events = acc.Tensors(tag)
        # tf.summary.scalar writes a rank-0 float tensor tagged for the scalars plugin.
        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        assert plugin == "scalars", (tag, plugin)
        out[tag] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events]
    return out


def test_fit_logs_loss_lr_momentum_and_val_miou(tmp_path):
    keras.utils.set_random_seed(0)
    model = MemorySegmenter(
        DilatedResNetBackbone(depth=18, base_channels=8),
        num_classes=3,
        feats_channels=16,
        transform_channels=8,
        aux_channels=8,
    )
    schedule = keras.optimizers.schedules.PolynomialDecay(0.01, 10, end_learning_rate=0.001)
    model.compile(optimizer=keras.optimizers.SGD(schedule), memory_momentum=0.75)
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, (4, 32, 32)).astype("int32")
    logger = ScalarLogger(str(tmp_path), every=2)
    history = model.fit(x, y, batch_size=1, epochs=1, verbose=0, callbacks=[logger])
    logger.write({"val/mIoU": 0.375, "val/aAcc": np.float32(0.5)}, 4)

    scalars = read_scalars(tmp_path)
    assert {
        "train/loss",
        "train/learning_rate",
        "train/memory_momentum",
        "val/mIoU",
        "val/aAcc",
    } <= set(scalars)
    assert [s for s, _ in scalars["train/loss"]] == [2, 4]  # every 2 optimizer steps
    # The running mean at the last step of the epoch is what fit's history reports.
    np.testing.assert_allclose(scalars["train/loss"][-1][1], history.history["loss"][-1], rtol=1e-6)
    # Poly decay (power 1) at the step just taken (0-based: steps 1 and 3).
    expected_lr = [(0.01 - 0.001) * (1 - s / 10) + 0.001 for s in (1, 3)]
    np.testing.assert_allclose(
        [v for _, v in scalars["train/learning_rate"]], expected_lr, rtol=1e-6
    )
    np.testing.assert_allclose([v for _, v in scalars["train/memory_momentum"]], [0.75, 0.75])
    assert scalars["val/mIoU"] == [(4, 0.375)]
    assert scalars["val/aAcc"] == [(4, 0.5)]


def test_write_shapes_and_non_finite(tmp_path):
    logger = ScalarLogger(str(tmp_path), every=1)
    logger.write(
        {
            "train/a": np.array([2.5]),  # MultiWorkerMirroredStrategy: shape [1]
            "train/nan": float("nan"),
            "train/vector": np.ones(3),
            "val/mIoU": 0.25,
        },
        7,
    )
    logger.write({"val/mIoU": 0.5}, 9)
    scalars = read_scalars(tmp_path)
    assert set(scalars) == {"train/a", "val/mIoU"}
    assert scalars["train/a"] == [(7, 2.5)]
    assert scalars["val/mIoU"] == [(7, 0.25), (9, 0.5)]


def test_disabled_writes_nothing(tmp_path):
    logger = ScalarLogger(str(tmp_path / "logs"), every=1, enabled=False)
    logger.write({"val/mIoU": 0.5}, 1)
    assert not (tmp_path / "logs").exists()


def test_tensorboard_lists_the_runs_tags(tmp_path):
    # What `tensorboard --logdir runs/` serves: the multiplexer over every run folder.
    from tensorboard.backend.event_processing import plugin_event_multiplexer

    ScalarLogger(str(tmp_path / "runs" / "sample" / "logs"), every=1).write(
        {"train/loss": 1.5, "val/mIoU": 0.25}, 3
    )
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path / "runs"))
    mux.Reload()
    tags = mux.PluginRunToTagToContent("scalars")
    assert set(tags) == {"sample/logs"}
    assert set(tags["sample/logs"]) == {"train/loss", "val/mIoU"}
