"""benchmarks/xla_profile.py: XLA kernel time attributed to Keras layers.

The parsing is checked on hand-written HLO lines and kernel totals (the expected
numbers are worked out here, not by the script); one small real run checks that a
`jax.profiler` trace and XLA's HLO dump still fit together: the memory head's
layers appear for MCIBI and every kernel's time is attributed to a layer.
"""

import pytest
from benchmark_scripts import load_script
from benchmark_scripts import run_script

xla_profile = load_script("xla_profile")

HLO = """
ENTRY %main {
  %ynn_fusion.429 = f32[1984,2560]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_computation.429, metadata={op_name="jit(train_step)/transpose(jvp(aspp))/project/conv/dot_general" stack_frame_id=1635}, backend_config={}
  %slice_bitcast_fusion.12 = f32[1922,2048]{1,0} fusion(%c), kind=kLoop, calls=%fc.12, metadata={op_name="jit(train_step)/jvp(bottleneck)/conv/dynamic_slice" stack_frame_id=2}
  ROOT %copy.3 = f32[4]{0} copy(%d), metadata={op_name="jit(train_step)/sgd/sub"}
  %wrapped_iota = s32[4]{0} fusion(), kind=kLoop, calls=%iota
}
"""


def test_layer_names_drop_jax_transformations():
    assert xla_profile.layer_of(
        "jit(train_step)/transpose(jvp(aspp))/project/conv/dot_general"
    ) == ("aspp/project")
    assert xla_profile.layer_of("jit(train_step)/jvp(bottleneck)/conv/dynamic_slice") == (
        "bottleneck/conv"
    )
    assert xla_profile.layer_of("jit(train_step)/sgd/sub") == "sgd/sub"


def test_kernel_time_goes_to_its_instruction_layer_per_step():
    names = xla_profile.hlo_op_names(HLO)
    assert set(names) == {"ynn_fusion.429", "slice_bitcast_fusion.12", "copy.3"}
    kernels = {"ynn_fusion.429": 30.0, "slice_bitcast_fusion.12": 4.0, "copy.3": 1.0}
    kernels["wrapped_iota"] = 2.0  # no metadata in the HLO
    by_layer, by_kind = xla_profile.attribute(kernels, names, steps=2)
    assert dict(by_layer) == {
        "aspp/project": 15.0,
        "bottleneck/conv": 2.0,
        "sgd/sub": 0.5,
        "(no HLO metadata) wrapped_iota": 1.0,
    }
    assert dict(by_kind) == {
        "ynn_fusion": 15.0,
        "slice_bitcast_fusion": 2.0,
        "copy": 0.5,
        "wrapped_iota": 1.0,
    }


def test_unknown_model_is_refused_in_one_line():
    with pytest.raises(SystemExit, match="--models: 'pspnet'"):
        xla_profile.main(["--models", "pspnet"])


@pytest.mark.slow  # CI budget, ~100 s: an XLA profile of a train step; argument checks stay in the default run
def test_a_small_profile_attributes_the_memory_head(tmp_path):
    out = tmp_path / "xla_profile.json"
    proc, result = run_script(
        "xla_profile",
        [
            "--backbone=resnet18_v1c",
            "--base_channels=8",
            "--size=32",
            "--batch=1",
            "--steps=1",
            "--warmup=0",
            "--models",
            "mcibi",
            f"--out={out}",
        ],
        out,
    )
    run = result["runs"]["mcibi"]
    assert run["ok"], run
    layers = run["by_layer_ms"]
    for layer in ("bottleneck/conv", "fuse_memory/conv", "fuse_context/conv"):
        assert layers.get(layer, 0) > 0, sorted(layers)
    unnamed = sum(v for k, v in layers.items() if k.startswith("(no HLO metadata)"))
    assert unnamed < 0.5 * sum(layers.values()), layers
    # Both rounded for the JSON (0.01 ms per layer, 0.1 ms for the total).
    assert sum(layers.values()) == pytest.approx(
        run["kernel_ms_per_step"], abs=0.1 + 0.01 * len(layers)
    )
    # The table holds the --rows (30) costliest layers, costliest first. (At 32x32 the
    # memory head's convs are too small to be sure of a place among them.)
    table = out.with_suffix(".md").read_text()
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + min(30, len(layers)) + 1, table  # header, layers, total
    assert rows[1][1].strip(" |") == f"{max(layers.values()):.1f}", table
    assert all(row[0][2:] in layers for row in rows[1:-1]), table
