"""benchmarks/inference.py: the #15 target verdicts, and a short run on a trained-model
file with the bundled sample's frames (agreement over several real images)."""

import numpy as np
import pytest
from benchmark_scripts import load_script
from benchmark_scripts import run_script


def _rows(predict_ms, dynamic_ms, agreement):
    return {
        "predict": {"median_ms": predict_ms},
        "tflite/dynamic": {"median_ms": dynamic_ms, "label_agreement": agreement},
    }


def test_tflite_target_needs_both_the_speedup_and_the_agreement():
    script = load_script("inference")
    lines = script.target_lines(
        {
            "a/64x64": _rows(100.0, 50.0, 0.98),  # exactly 2x and 98 %
            "b/64x64": _rows(100.0, 51.0, 0.999),  # 1.96x
            "c/64x64": _rows(100.0, 10.0, 0.979),  # agreement below 98 %
        },
        "r18",
    )
    assert [line.split(":")[0] for line in lines] == ["PASS", "FAIL", "FAIL"]
    assert "(1.96x, 99.9 %)" in lines[1]


def test_predict_ratio_target_pairs_models_of_the_same_size():
    script = load_script("inference")
    results = {
        "mcibi/256x256": {"predict": {"median_ms": 120.0}},
        "deeplabv3/256x256": {"predict": {"median_ms": 100.0}},
        "mcibi/512x512": {"predict": {"median_ms": 130.0}},
        "deeplabv3/512x512": {"predict": {"median_ms": 100.0}},
        "mcibi/128x128": {"predict": {"median_ms": 1.0}},  # no DeepLabV3 at 128: no line
    }
    lines = script.target_lines(results, "r50")
    assert lines == [
        "PASS: 256x256 (r50) MCIBI predict within 1.2x of DeepLabV3's (1.20x)",
        "FAIL: 512x512 (r50) MCIBI predict within 1.2x of DeepLabV3's (1.30x)",
    ]
    failed = {
        "mcibi/256x256": {"predict": {"error": "x"}},
        "deeplabv3/256x256": {"predict": {"median_ms": 100.0}},
    }
    assert script.target_lines(failed, "r50") == []  # a failed variant gives no verdict


@pytest.mark.slow  # CI budget, ~35 s: trains and evaluates; target_lines is checked by the fast tests here
def test_agreement_over_the_sample_frames_of_a_trained_model_file(tmp_path):
    from keras_memseg.training import get_recipe
    from keras_memseg.training.trainer import build_model

    config = get_recipe("sample").replace(
        base_channels=4, feats_channels=8, transform_channels=4, aux_channels=8
    )
    model = build_model(config, 11)
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.memory.memory.assign(np.random.default_rng(0).standard_normal(model.memory.memory.shape))
    model.save(str(tmp_path / "m.keras"))
    out = tmp_path / "inference.json"
    proc, result = run_script(
        "inference",
        [
            f"--model_file={tmp_path / 'm.keras'}",
            "--images=sample",
            "--agreement_images=3",
            "--sizes=32",
            "--runs=1",
            "--warmup=1",
            "--quantizations",
            "none",
            "dynamic",
            "--skip",
            "call",
            "saved_model",
            f"--out={out}",
        ],
        out,
    )
    rows = result["results"]["file/32x32"]
    assert rows["tflite/none"]["agreement_images"] == 3
    # Float TFLite runs the same graph on the same 3 frames: labels agree up to
    # float32 near-ties (a pairing by broadcasting, one image against three, gave ~0.8).
    assert rows["tflite/none"]["label_agreement"] >= 0.99
    assert 0.0 <= rows["tflite/dynamic"]["label_agreement"] <= 1.0
    assert len(result["targets"]) == 1 and "TFLite dynamic-range" in result["targets"][0]
    assert result["targets"][0] in proc.stdout
