"""python -m keras_memseg.analysis end to end on the bundled sample, with tiny saved models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_memseg.analysis.__main__ import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = [
    "--dataset",
    "sample",
    "--max_images",
    "2",
    "--max_pixels_per_class",
    "50",
    "--embedding",
    "pca",
    "--plot_points",
    "30",
]


def assert_png(path):
    data = open(path, "rb").read()
    assert data[:8] == PNG_MAGIC and len(data) > 5000, (path, len(data))


def test_single_model_with_checkpoints(tiny_models, tmp_path, capsys):
    m = tiny_models
    out = tmp_path / "single"
    rc = main(
        [
            "--model",
            str(m["mcibi_path"]),
            "--out",
            str(out),
            *FAST,
            "--checkpoints",
            str(m["ckpt_a"]),
            str(m["ckpt_b"]),
            str(m["mcibi_path"]),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "mean compactness" in printed and "analysis.json" in printed
    for name in ("embedding.png", "compactness.png", "memory_similarity.png"):
        assert_png(out / name)
    assert not (out / "comparison.md").exists()
    result = json.loads((out / "analysis.json").read_text())
    assert {"dataset", "split", "class_names", "settings", "definitions", "model", "plots"} <= set(
        result
    )
    assert result["dataset"] == "sample" and len(result["class_names"]) == 11
    model = result["model"]
    assert model["model_class"] == "MemorySegmenter" and model["num_images"] == 2
    assert set(model["statistics"]) == {"features", "head_features"}
    stats = model["statistics"]["features"]
    assert {"mean_compactness", "dispersion", "ratio", "classes_present", "per_class"} <= set(stats)
    for entry in stats["per_class"].values():
        assert entry["sampled_pixels"] <= min(50, entry["pixels_seen"])
    assert model["memory"]["empty"] is False and model["memory"]["unseen_classes"] == []
    assert len(model["memory"]["similarity"]) == 11
    vs_centres = model["memory"]["rows_vs_feature_centres"]
    assert 0 <= vs_centres["rows_nearest_to_own_centre"] <= 11
    assert set(vs_centres["per_class"]) == set(result["class_names"])
    # Memory movement a -> b -> b (.weights.h5, .weights.h5, .keras) against NumPy.
    movement = model["memory_movement"]["per_class"]
    a, b = m["memory_a"][:, 0].astype(float), m["memory_b"][:, 0].astype(float)
    for k, name in enumerate(result["class_names"]):
        l2 = movement[name]["l2_distance"]
        assert l2[0] == pytest.approx(np.linalg.norm(b[k] - a[k]), abs=2e-6) and l2[1] == 0
        cos = movement[name]["cosine_distance"]
        if k == 3:  # all zero at checkpoint a: the direction moved is undefined
            assert cos == [None, 0.0]
        else:
            expected = 1 - a[k] @ b[k] / np.linalg.norm(a[k]) / np.linalg.norm(b[k])
            assert cos[0] == pytest.approx(expected, abs=2e-6) and cos[1] == 0.0

    # The CLI's numbers (compiled forward_heads) are the library's (eager) on the same pixels.
    from keras_memseg import datasets
    from keras_memseg.analysis import analyze

    ds = datasets.eval_pipeline(datasets.load("sample", "val"), (224, 168), keep_ratio=True)
    again = analyze(
        m["mcibi"], ds, result["class_names"], max_pixels_per_class=50, seed=0, max_images=2
    )
    assert again.statistics["features"].mean_compactness == pytest.approx(
        stats["mean_compactness"], abs=1e-5
    )


def test_comparison_with_a_preset_folder(tiny_models, tmp_path, capsys):
    m = tiny_models
    preset = tmp_path / "preset"
    m["mcibi"].save_to_preset(str(preset))
    out = tmp_path / "compare"
    rc = main(
        [
            "--model",
            str(preset),
            "--baseline",
            str(m["dlv3_path"]),
            "--out",
            str(out),
            "--name",
            "MCIBI",
            "--baseline_name",
            "DeepLabV3",
            "--eager",
            *FAST,
        ]
    )
    assert rc == 0
    capsys.readouterr()
    for name in ("embedding.png", "compactness.png", "memory_similarity.png"):
        assert_png(out / name)
    table = (out / "comparison.md").read_text()
    assert "| | MCIBI features | MCIBI head_features | DeepLabV3 head_features |" in table
    assert "| Road |" in table
    columns = json.loads((out / "comparison.json").read_text())["columns"]
    assert set(columns) == {"MCIBI features", "MCIBI head_features", "DeepLabV3 head_features"}
    result = json.loads((out / "analysis.json").read_text())
    assert result["baseline"]["model_class"] == "DeepLabV3" and "memory" not in result["baseline"]
    # Same seed and output stride: both models are measured on the same pixels.
    ours = result["model"]["statistics"]["features"]["per_class"]
    theirs = result["baseline"]["statistics"]["head_features"]["per_class"]
    assert all(ours[c]["sampled_pixels"] == theirs[c]["sampled_pixels"] for c in ours)


@pytest.mark.parametrize("case", ["missing", "unreadable", "dataset", "classes", "layer"])
def test_bad_input_is_one_line_exit_2(case, tiny_models, tmp_path, capsys):
    model, dataset, extra = str(tiny_models["mcibi_path"]), "sample", []
    if case == "missing":
        model = str(tmp_path / "nope.keras")
    elif case == "unreadable":
        model = str(tmp_path / "bad.keras")
        open(model, "w").write("not a zip")
    elif case == "dataset":
        dataset = "pascal"
    elif case == "classes":
        dataset = "ade20k"  # 150 classes
    else:
        extra = ["--layers", "features,nope"]
    rc = main(
        [
            "--model",
            model,
            "--dataset",
            dataset,
            "--out",
            str(tmp_path / "o"),
            "--no_plots",
            "--max_images",
            "1",
            "--eager",
            *extra,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    expected = {
        "missing": "nope.keras",
        "unreadable": "bad.keras",
        "dataset": "pascal",
        "classes": "150",
        "layer": "nope",
    }[case]
    assert expected in err


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_memseg.analysis",
            "--model",
            str(tmp_path / "x.keras"),
            "--dataset",
            "sample",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: model not found: {tmp_path / 'x.keras'}"
    )


def test_a_run_folder_names_its_dataset_and_old_test_scale_works(tiny_models, tmp_path, capsys):
    # A run folder as --model: its model.keras, and its config.json's dataset (no --dataset).
    import shutil

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tiny_models["mcibi_path"], run / "model.keras")
    (run / "config.json").write_text(json.dumps({"dataset": "sample"}))
    fast = [a for a in FAST if a not in ("--dataset", "sample")]
    out = tmp_path / "o"
    rc = main(
        [
            "--model",
            str(run),
            "--out",
            str(out),
            "--no_plots",
            "--eager",
            *fast,
            "--test_scale",
            "168",
            "224",
        ]
    )  # the old W H form
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "note: --test_scale W H is now --test_scale H,W" in captured.err
    result = json.loads((out / "analysis.json").read_text())
    assert result["dataset"] == "sample" and result["settings"]["test_scale"] == [168, 224]


def test_without_dataset_a_model_file_asks_for_one(tiny_models, tmp_path, capsys):
    rc = main(["--model", str(tiny_models["mcibi_path"]), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "pass --dataset NAME" in err, err


def test_test_scale_is_height_width(tiny_models, tmp_path, capsys):
    from keras_memseg.analysis.__main__ import _parser

    assert _parser().parse_args(
        ["--model", "m", "--out", "o", "--test_scale", "224,168"]
    ).test_scale == (224, 168)
    assert _parser().parse_args(["--model", "m", "--out", "o", "--verbose"]).verbose == 2
