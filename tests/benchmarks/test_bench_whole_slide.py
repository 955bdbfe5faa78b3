"""``benchmarks/bench_whole_slide.py``: generated pyramidal slides, encoded once, prompts on the encoding."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from benchmark_scripts import benchmark_module

ngff_zarr = pytest.importorskip("ngff_zarr")  # the testing extra: the published NGFF schemas

whole_slide = benchmark_module("bench_whole_slide")

TINY = ["--sizes", "384", "--chunk", "128", "--prompts", "2"]


def rows(out: str, first_cell: str) -> list[list[str]]:
    """The cells of the Markdown table rows whose first cell is ``first_cell``."""
    found = []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_cell:
            found.append(cells)
    return found


def test_the_generated_slide_is_a_valid_pyramid_of_blobs_written_chunk_by_chunk(tmp_path):
    from napari_gem.io.ome_zarr_outputs import level_shapes

    slide = whole_slide.write_slide(tmp_path / "slide.ome.zarr", 384, chunk=128)
    group = zarr.open_group(str(slide), mode="r")
    attrs = dict(group.attrs)
    ngff_zarr.validate(attrs, version="0.4", model="image")
    datasets = attrs["multiscales"][0]["datasets"]
    assert [tuple(group[d["path"]].shape) for d in datasets] == level_shapes((384, 384), 128)
    assert len(datasets) == 3 and group["0"].chunks == (128, 128) and group["0"].dtype == np.uint16
    assert datasets[2]["coordinateTransformations"][0]["scale"] == [4.0, 4.0]
    full, half = np.asarray(group["0"]).astype(np.float64), np.asarray(group["1"])
    assert np.array_equal(half, full.reshape(192, 2, 192, 2).mean(axis=(1, 3)).astype(np.uint16))
    # Any chunk drawn alone is the same chunk (so a slide never has to be in memory whole).
    pattern = whole_slide.SlidePattern.of(384)
    assert np.array_equal(pattern.pixels(128, 256, 256, 384), full[128:256, 256:384])
    # Bright blobs on a dim background: objects to find, not noise alone.
    assert np.percentile(full, 99) > 2 * np.median(full)


def test_the_bench_times_encode_workers_and_prompts_and_reuses_a_recorded_encode(tmp_path, capsys):
    out = tmp_path / "runs"
    assert whole_slide.main([*TINY, "--workers", "1", "--tower", "ViT-B-16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    encodes = rows(printed, "napari-gem-demo-micrographs")
    assert [row[3] for row in encodes[:2]] == ["in process", "1 worker(s)"]
    assert encodes[0][6] == "1.00x" and all(float(row[8]) > 0.1 for row in encodes[:2])  # RSS measured
    prompts = [row for row in encodes if row[2] in ("watershed", "components")]
    assert [(row[2], row[3]) for row in prompts] == [("watershed", "2"), ("components", "2")]
    # The real-size tower (random weights) on the same slide, its cost against the demo's.
    tower = rows(printed, "ViT-B-16")
    assert [row[1] for row in tower] == ["384²"] * 3 and tower[0][3] == "in process"
    assert [row[2] for row in tower[1:]] == ["watershed", "components"]
    assert "PROJECTION (not measured)" in printed and "100000² (10,000 MP)" in printed
    # The prompts' masks went into the slide's own labels group, as NGFF labels pyramids.
    labels = zarr.open_group(str(out / "slide-384.ome.zarr" / "labels"), mode="r")
    demo_labels = ["napari-gem-demo-micrographs-384_nucleus", "napari-gem-demo-micrographs-384_bright-spot"]
    assert labels.attrs["labels"][:2] == demo_labels
    ngff_zarr.validate(dict(labels[demo_labels[0]].attrs), version="0.4", model="label")

    # Asked again with --reuse: no second encode, its recorded figures in the table.
    encode_seconds = encodes[0][4]
    assert whole_slide.main([*TINY, "--workers", "--tower", "", "--instances", "components",
                             "--out", str(out), "--reuse"]) == 0
    again = rows(capsys.readouterr().out, "napari-gem-demo-micrographs")
    assert again[0][3] == "in process (recorded)" and again[0][4] == encode_seconds
    assert [row[2] for row in again[1:]] == ["components"]


def test_the_bench_refuses_a_slide_too_small_in_one_line(capsys):
    assert whole_slide.main(["--sizes", "100"]) == 2
    assert "--sizes: give sides of at least 256 pixels" in capsys.readouterr().err
