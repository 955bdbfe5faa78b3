"""``benchmarks/bench.py``: the method rows against the plain encode, bf16, PAMR, prompt re-runs."""

from __future__ import annotations

import pytest

from benchmark_scripts import benchmark_module

bench = benchmark_module("bench").main


def test_bench_prints_a_row_per_method_and_pamr(tiny_model_name, capsys, tmp_path):
    out = tmp_path / "bench.md"
    code = bench(["--model", tiny_model_name, "--input-size", "64", "--repeats", "1",
                 "--rerun-image", "64", "--tiled-image", "0", "--pamr-image", "96", "--out", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    for row in ("GEM / plain", "NACLIP / plain", "GCLIP / plain", "MaskCLIP (no-res) / plain",
                "PAMR 96px, 5 prompts (s)", "5 new prompts on encoded 64px (ms)",
                "GEM / plain, worst of 1 interleaved pairs", "GEM fp32 / GEM bf16 (speed-up)",
                "bf16 vs fp32 heatmaps: lowest correlation"):
        assert row in table
    assert out.read_text().strip() == table[table.index("| measurement"):].strip()


def test_bench_skips_the_rows_given_a_zero_side(tiny_model_name, capsys):
    code = bench(["--model", tiny_model_name, "--input-size", "64", "--repeats", "1",
                 "--methods", "gem", "--no-bf16", "--rerun-image", "0", "--tiled-image", "0",
                 "--pamr-image", "0"])
    assert code == 0
    table = capsys.readouterr().out
    assert "GEM / plain" in table
    assert "new prompts" not in table and "PAMR" not in table and "tiled" not in table


def test_bench_refuses_an_unknown_method(tiny_model_name, capsys):
    with pytest.raises(SystemExit, match="unknown method"):
        bench(["--model", tiny_model_name, "--methods", "gem,segformer", "--tiled-image", "0"])
