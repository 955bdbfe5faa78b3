"""A long encode can be followed, stopped and resumed: an interrupted run keeps its blocks."""

from __future__ import annotations

import numpy as np
import pytest
from batch_helpers import SMALL, blobs, write_zarr

from napari_gem import open_encoding
from napari_gem.batch.progress import Cancelled, TaskCount
from napari_gem.batch.saved_encoding import encode_file
from napari_gem.engine.saved_encoding import EncodingStore


class Recorder:
    """Hears every task; says stop once ``stop_after`` window blocks are done."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.counts: list[tuple[str, int, int]] = []

    def tasks_done(self, count: TaskCount) -> None:
        self.counts.append((count.label, count.done, count.total))

    def cancelled(self) -> bool:
        done = [d for label, d, _ in self.counts if label == "windows"]
        return self.stop_after is not None and bool(done) and done[-1] >= self.stop_after

    def totals(self, label: str) -> list[int]:
        return sorted({total for name, _, total in self.counts if name == label})


@pytest.fixture
def slide(tmp_path):
    # 1100 px at patch 16 is a 69-cell grid: two 64-cell feature blocks down, one across.
    return write_zarr(tmp_path / "slide.zarr", blobs((1100, 300), seed=5), chunks=(256, 256))


def encode(slide, out, model, progress):
    return encode_file(slide, out, model=model, options=SMALL, out_of_core="always",
                       progress=progress, feature_dtype="float32")


def test_a_cancelled_encode_resumes_with_the_blocks_it_had_not_written(tmp_path, slide, tiny_gem):
    straight = EncodingStore.open(encode(slide, tmp_path / "straight.zarr", tiny_gem, False))
    out = tmp_path / "slide.features.zarr"

    first = Recorder(stop_after=1)
    with pytest.raises(Cancelled, match="windows"):
        encode(slide, out, tiny_gem, first)
    interrupted = EncodingStore(str(out))
    assert len(interrupted.blocks()) == 2 and len(interrupted.pending_blocks()) == 1
    with pytest.raises(ValueError, match="incomplete"):
        open_encoding(out)  # not to be asked until it is whole

    second = Recorder()
    encode(slide, out, tiny_gem, second)
    assert first.totals("windows") == [2] and second.totals("windows") == [1]  # only the rest
    resumed = EncodingStore.open(out)
    assert np.array_equal(resumed.features(), straight.features())
    assert np.array_equal(resumed.clip_embedding(), straight.clip_embedding())


def test_a_finished_encoding_of_the_same_request_is_reused_without_work(tmp_path, slide, tiny_gem):
    out = encode(slide, tmp_path / "slide.features.zarr", tiny_gem, False)
    again = Recorder()
    assert encode(slide, out, tiny_gem, again) == out
    assert again.counts == []  # not even the overview


def test_other_encode_options_start_the_store_afresh(tmp_path, slide, tiny_gem):
    out = tmp_path / "slide.features.zarr"
    with pytest.raises(Cancelled):
        encode(slide, out, tiny_gem, Recorder(stop_after=1))
    other = Recorder()
    encode_file(slide, out, model=tiny_gem, options=SMALL.replace(overlap=8), out_of_core="always",
                progress=other, feature_dtype="float32")
    assert other.totals("windows") == [2]  # a different request: everything again
    assert open_encoding(out).options.overlap == 8


def test_progress_counts_say_how_much_is_left():
    count = TaskCount("windows", total=10, done=0)
    assert count.describe() == "windows 0/10"
    count.done, count.started = 4, count.started - 20.0  # 4 tasks in 20 s: 30 s to go
    assert count.describe() == "windows 4/10, about 30 s left"
