"""segment_files(on_outcome=, should_stop=): outcomes as they come, and stopping between images."""

from __future__ import annotations

from batch_helpers import SMALL, blobs, write_tiff

from napari_gem.batch import segment_files

PROMPTS = ["nucleus"]


def _folder(tmp_path, count: int = 3):
    folder = tmp_path / "in"
    folder.mkdir()
    for number in range(count):
        write_tiff(folder / f"image{number}.tif", blobs((48, 56), seed=number))
    (folder / "broken.tif").write_bytes(b"not a tiff at all")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_every_outcome_is_told_once_as_it_is_decided(tmp_path, tiny_gem):
    folder = _folder(tmp_path)
    told = []

    report = segment_files([folder], PROMPTS, tmp_path / "out", model=tiny_gem, options=SMALL,
                           progress=False, on_outcome=told.append)

    assert sorted(map(id, told)) == sorted(map(id, report.outcomes))
    by_name = {outcome.source.name: outcome.status for outcome in told}
    assert by_name == {"image0.tif": "written", "image1.tif": "written", "image2.tif": "written",
                       "broken.tif": "failed", "notes.txt": "skipped"}
    # Written images are told in the order they were segmented, each once its files exist.
    written = [outcome for outcome in told if outcome.status == "written"]
    assert all(path.exists() for outcome in written for path in outcome.outputs)

    again = []
    segment_files([folder], PROMPTS, tmp_path / "out", model=tiny_gem, options=SMALL,
                  progress=False, on_outcome=again.append)
    assert sorted((o.source.name, o.status) for o in again if o.source.name.startswith("image")) == [
        ("image0.tif", "skipped"), ("image1.tif", "skipped"), ("image2.tif", "skipped")]


def test_should_stop_ends_the_batch_after_the_current_image_and_a_rerun_resumes(tmp_path, tiny_gem):
    folder = _folder(tmp_path)
    written = []

    def stop_after_one() -> bool:
        return len(written) >= 1

    def tell(outcome) -> None:
        if outcome.status == "written":
            written.append(outcome)

    report = segment_files([folder], PROMPTS, tmp_path / "out", model=tiny_gem, options=SMALL,
                           progress=False, on_outcome=tell, should_stop=stop_after_one)

    statuses = sorted(outcome.status for outcome in report.outcomes
                      if outcome.source.name.startswith("image"))
    assert statuses == ["cancelled", "cancelled", "written"]
    assert all("cancelled before it started" in o.reason for o in report.cancelled)
    # A cancelled image is not a failure (the broken file fails as its header is read).
    assert [o.source.name for o in report.failed] == ["broken.tif"]
    assert "2 cancelled" in report.summary().splitlines()[0]
    assert not any((tmp_path / "out" / f"{o.source.stem}_parameters.json").exists()
                   for o in report.cancelled)

    resumed = segment_files([folder], PROMPTS, tmp_path / "out", model=tiny_gem, options=SMALL,
                            progress=False)
    done_before = written[0].source.name
    assert [o.source.name for o in resumed.skipped if o.source.suffix == ".tif"] == [done_before]
    assert sorted(o.source.name for o in resumed.written) == sorted(
        o.source.name for o in report.cancelled)


def test_stopped_before_the_first_image_loads_no_model_and_starts_nothing(tmp_path):
    from napari_gem.batch import ModelSpec

    folder = _folder(tmp_path, count=2)
    # A model that cannot load: asking for it would raise, so no model is asked for.
    spec = ModelSpec("napari-gem-no-such-model", str(tmp_path / "missing.pt"), device="cpu")

    report = segment_files([folder], PROMPTS, tmp_path / "out", model=spec, options=SMALL,
                           progress=False, should_stop=lambda: True)

    assert sorted(o.status for o in report.outcomes) == ["cancelled", "cancelled", "cancelled",
                                                         "skipped"]
    assert not (tmp_path / "out").exists()
