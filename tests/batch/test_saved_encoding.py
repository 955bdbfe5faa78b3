"""Encode once, ask later: saved encodings give the masks of a direct run, read by blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from batch_helpers import SMALL, blobs, write_zarr

from napari_gem import encode, open_encoding
from napari_gem.batch import segment_files
from napari_gem.batch.saved_encoding import encode_file
from napari_gem.engine.saved_encoding import EncodingMismatchError, EncodingStore, save_encoded
from napari_gem.io import read_output

PROMPTS = ["nucleus", "membrane"]
TILED = SMALL.replace(tiling="always")


def outputs(out, stem, prompt):
    heatmap, _ = read_output(out / f"{stem}_{prompt}_heatmap.zarr")
    mask, _ = read_output(out / f"{stem}_{prompt}_mask.zarr")
    return np.asarray(heatmap), np.asarray(mask)


def test_an_in_memory_encoding_saved_and_asked_gives_the_engines_masks(tmp_path, tiny_gem):
    image = blobs((90, 130))
    encoded = encode(image, tiny_gem, TILED)
    expected = encoded.segment(PROMPTS)
    path = encoded.save(tmp_path / "cells.features.zarr", feature_dtype="float32")
    written = open_encoding(path).segment(PROMPTS, tmp_path / "out", model=tiny_gem, chunk=48)
    assert written[-1].name == "cells_parameters.json"
    for p, prompt in enumerate(PROMPTS):
        heatmap, mask = outputs(tmp_path / "out", "cells", prompt)
        assert np.allclose(heatmap, expected.heatmaps[p], atol=1e-5)
        assert np.array_equal(mask, expected.instances[p])  # the same objects, numbered alike


def test_a_plane_encoded_out_of_core_answers_as_a_direct_out_of_core_run(tmp_path, tiny_gem):
    image = blobs((100, 140), seed=3)
    source = write_zarr(tmp_path / "slide.zarr", image, chunks=(32, 32))
    options = SMALL.replace(min_size=20, fill_holes=30)
    segment_files([source], PROMPTS, tmp_path / "direct", model=tiny_gem, options=options,
                  out_of_core="always", chunk=40, progress=False)
    encoding = encode_file(source, tmp_path / "slide.features.zarr", model=tiny_gem, options=SMALL,
                           out_of_core="always", progress=False, feature_dtype="float32")
    open_encoding(encoding).segment(PROMPTS, tmp_path / "saved", model=tiny_gem,
                                    options=options.as_given(["min_size", "fill_holes"]), chunk=40)
    for prompt in PROMPTS:
        direct = outputs(tmp_path / "direct", "slide", prompt)
        saved = outputs(tmp_path / "saved", "slide", prompt)
        assert np.allclose(saved[0], direct[0], atol=1e-5)
        assert np.array_equal(saved[1], direct[1])
    parameters = json.loads((tmp_path / "saved" / "slide_parameters.json").read_text())
    assert parameters["options"]["min_size"] == 20 and parameters["mode"] == "out-of-core"


class CountingStore(EncodingStore):
    """A saved encoding that remembers the size of every feature read."""

    reads: list = []

    def features(self, cells=None):
        found = super().features(cells)
        CountingStore.reads.append(found.shape[0] * found.shape[1])
        return found


def test_prompts_read_the_features_block_by_block_never_the_whole_grid(tmp_path, tiny_gem):
    from napari_gem.batch.saved_encoding import SavedEncoding

    encoded = encode(blobs((300, 260), seed=7), tiny_gem, TILED)
    path = save_encoded(encoded, tmp_path / "big.features.zarr", block_cells=8)
    cells = encoded.grid_shape[0] * encoded.grid_shape[1]
    CountingStore.reads.clear()
    SavedEncoding(CountingStore(str(path))).segment(["nucleus"], tmp_path / "out", model=tiny_gem,
                                                    chunk=128)
    assert sum(CountingStore.reads) == cells  # every cell read once
    assert max(CountingStore.reads) <= 8 * 8 < cells  # one block at a time


def test_float16_features_change_heatmaps_by_less_than_a_thousandth(tmp_path, tiny_gem):
    encoded = encode(blobs((90, 130)), tiny_gem, TILED)
    expected = encoded.segment(PROMPTS)
    path = encoded.save(tmp_path / "half.features.zarr")  # float16, the default
    open_encoding(path).segment(PROMPTS, tmp_path / "out", model=tiny_gem, chunk=64)
    for p, prompt in enumerate(PROMPTS):
        heatmap, mask = outputs(tmp_path / "out", "half", prompt)
        assert np.abs(heatmap - expected.heatmaps[p]).max() < 1e-3
        assert np.mean((mask > 0) != expected.masks[p]) < 1e-2


def test_a_whole_image_encoding_is_answered_by_the_engine(tmp_path, tiny_gem):
    image = blobs((60, 50))
    encoded = encode(image, tiny_gem, SMALL)
    assert not encoded.tiled
    expected = encoded.segment(PROMPTS)
    path = encoded.save(tmp_path / "small.features.zarr", feature_dtype="float32")
    open_encoding(path).segment(PROMPTS, tmp_path / "out", model=tiny_gem, image=image)
    mask, _ = read_output(tmp_path / "out" / "small_nucleus_mask.tif")
    assert np.array_equal(mask, expected.instances[0])


def test_another_model_image_or_encode_option_is_refused(tmp_path, tiny_gem, tiny_spec):
    from napari_gem.batch import ModelSpec

    image = blobs((90, 130))
    path = encode(image, tiny_gem, TILED).save(tmp_path / "e.features.zarr")
    saved = open_encoding(path)
    other = ModelSpec(tiny_spec.name, tiny_spec.pretrained, method="maskclip",
                      model_configs=tiny_spec.model_configs)
    with pytest.raises(EncodingMismatchError, match="encoded with method='gem', .* not method='maskclip'"):
        saved.segment(PROMPTS, tmp_path / "out", model=other)
    with pytest.raises(EncodingMismatchError, match="encodes another image"):
        saved.segment(PROMPTS, tmp_path / "out", model=tiny_gem, image=blobs((90, 130), seed=1))
    with pytest.raises(ValueError, match="window is an encode option"):
        saved.segment(PROMPTS, tmp_path / "out", model=tiny_gem, options=TILED.replace(window=96))
    assert not (tmp_path / "out").exists()


def test_what_is_not_a_complete_encoding_is_refused_clearly(tmp_path, tiny_gem):
    with pytest.raises(ValueError, match="no saved encoding there"):
        open_encoding(tmp_path / "missing.features.zarr")
    store = write_zarr(tmp_path / "image.zarr", blobs((20, 20)), chunks=(10, 10))
    with pytest.raises(ValueError, match="not a saved encoding"):
        open_encoding(store)


def cli_model(spec) -> list[str]:
    return ["--model", spec.name, "--pretrained", spec.pretrained, "--model-config",
            spec.model_configs[0], "--device", "cpu", "--quiet"]


def test_the_command_line_encodes_once_and_answers_from_the_encoding(tmp_path, tiny_spec, capsys):
    from napari_gem.cli.main import main

    source = write_zarr(tmp_path / "slide.zarr", blobs((100, 120), seed=2), chunks=(32, 32))
    store = tmp_path / "slide.features.zarr"
    encode_args = ["encode", str(source), "--out", str(store), "--window", "64", "--overlap", "16",
                   "--input-size", "64", "--out-of-core", "always", *cli_model(tiny_spec)]
    assert main(encode_args) == 0
    assert EncodingStore.open(store).geometry.tiled
    assert main(["segment", "--encoding", str(store), str(source), "-p", "nucleus", "-o",
                 str(tmp_path / "out"), "--min-size", "10", "--chunk", "48", *cli_model(tiny_spec)]) == 0
    assert "1 written, 0 skipped, 0 failed" in capsys.readouterr().err
    assert (tmp_path / "out" / "slide_nucleus_mask.zarr").is_dir()
    # Another image, or an encode option changed: one clear line, exit 2, nothing written.
    other = write_zarr(tmp_path / "other.zarr", blobs((100, 120), seed=9), chunks=(32, 32))
    assert main(["segment", "--encoding", str(store), str(other), "-p", "nucleus", "-o",
                 str(tmp_path / "out2"), *cli_model(tiny_spec)]) == 2
    assert "encodes another image" in capsys.readouterr().err
    assert main(["segment", "--encoding", str(store), "-p", "nucleus", "-o", str(tmp_path / "out2"),
                 "--input-size", "96", *cli_model(tiny_spec)]) == 2
    assert "input_size is an encode option" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()


def test_encoding_and_prompts_run_on_a_dask_cluster_as_in_process(tmp_path, tiny_spec,
                                                                   one_torch_thread):
    import logging

    from distributed import LocalCluster

    source = write_zarr(tmp_path / "slide.zarr", blobs((90, 110), seed=4), chunks=(32, 32))
    options = SMALL.replace(min_size=10)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster:
        store = encode_file(source, tmp_path / "c.features.zarr", model=tiny_spec, options=SMALL,
                            out_of_core="always", progress=False, scheduler=cluster.scheduler_address)
        open_encoding(store).segment(PROMPTS, tmp_path / "cluster", model=tiny_spec, options=options,
                                     chunk=40, scheduler=cluster.scheduler_address)
    local = encode_file(source, tmp_path / "l.features.zarr", model=tiny_spec, options=SMALL,
                        out_of_core="always", progress=False)
    open_encoding(local).segment(PROMPTS, tmp_path / "local", model=tiny_spec, options=options, chunk=40)
    for prompt in PROMPTS:
        on_cluster = outputs(tmp_path / "cluster", "c", prompt)
        here = outputs(tmp_path / "local", "l", prompt)
        assert np.allclose(on_cluster[0], here[0], atol=1e-6) and np.array_equal(on_cluster[1], here[1])
