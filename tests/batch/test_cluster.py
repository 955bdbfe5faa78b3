"""The same batch on a real dask.distributed LocalCluster: identical files."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
from batch_helpers import SMALL, blobs, write_tiff, write_zarr
from PIL import Image

from napari_gem.batch import segment_files

PROMPTS = ["nucleus", "membrane"]


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.ERROR) as local:
        yield local


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_cluster_outputs_equal_in_process_outputs_byte_for_byte(
        tmp_path, cluster, tiny_spec, one_torch_thread):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(blobs((64, 64), dtype=np.uint8)).save(inputs / "photo.png")
    write_tiff(inputs / "stack.tif", blobs((2, 48, 48), seed=1))
    write_zarr(inputs / "large.zarr", blobs((96, 112), seed=2), chunks=(32, 32))
    (inputs / "broken.tif").write_bytes(b"II*\x00 broken")

    # A spec of its own (cache_dir is unused for a checkpoint file): this process then
    # loads a fresh model, as the workers do, whatever earlier tests did with theirs.
    spec = dataclasses.replace(tiny_spec, cache_dir=str(tmp_path / "cache"))

    def run(out: Path, scheduler):
        return segment_files([inputs], PROMPTS, out, model=spec, options=SMALL,
                             scheduler=scheduler, threads=1, out_of_core_above=5000, chunk=48,
                             progress=False)

    local = run(tmp_path / "local", None)
    remote = run(tmp_path / "remote", cluster.scheduler_address)

    for report in (local, remote):
        assert sorted(o.source.name for o in report.written) == [
            "large.zarr", "photo.png", "stack.tif"]
        assert [o.source.name for o in report.failed] == ["broken.tif"]
    assert any(p.suffix == ".zarr" for o in remote.written for p in o.outputs)
    local_files, remote_files = files_of(tmp_path / "local"), files_of(tmp_path / "remote")
    assert local_files.keys() == remote_files.keys() and len(local_files) > 20
    for name, content in local_files.items():
        assert remote_files[name] == content, name


def test_workers_option_starts_a_local_cluster_and_a_bad_model_fails_once(tmp_path, capsys):
    from napari_gem.cli.main import main

    image = write_tiff(tmp_path / "a.tif", blobs((32, 32)))
    status = main(["segment", str(image), "-p", "cell", "-o", str(tmp_path / "out"),
                   "--pretrained", str(tmp_path / "missing.pt"), "--device", "cpu",
                   "--workers", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("napari-gem segment: error:") and "checkpoint file not found" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
