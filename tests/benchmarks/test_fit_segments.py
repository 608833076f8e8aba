"""benchmarks/fit_segments.py: both pipelines timed, the tail is fit minus its last batch."""

from benchmark_scripts import run_script


def test_a_short_run_times_both_pipelines(tmp_path):
    out = tmp_path / "fit.json"
    _, result = run_script(
        "fit_segments",
        ["--segment_s=0.3", "--repeats=2", "--crop=16", "--batch_size=2", f"--out={out}"],
        out,
    )
    rows = result["results"]
    # The pipeline as built has autotuning off; the comparison switches it back on.
    assert [row["autotune_enabled"] for row in rows.values()] == [False, True]
    for row in rows.values():
        assert len(row["segments"]) == 2
        for seg in row["segments"]:
            assert 0 < seg["last_batch_end_s"] <= seg["fit_s"]
            assert abs(seg["fit_s"] - seg["last_batch_end_s"] - seg["idle_tail_s"]) < 2e-3
    assert "| train_pipeline as built (autotuning off) |" in out.with_suffix(".md").read_text()
