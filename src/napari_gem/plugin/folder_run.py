"""Run on a folder: the batch (:func:`napari_gem.batch.segment_files`) with the widget's settings.

The Qt-free half of the widget's "Run on a folder" section (:mod:`.panels.folder` is the
other): :class:`FolderFields` describes its fields once, :func:`plan_folder_run` checks what
they say and plans the run, :func:`run_folder` runs it (in a worker thread) with the
model the widget's own runs use, :func:`rows_of` turns each image's outcome into table
rows, and :func:`outcome_layers` reads an image and its outputs as layer data that
overlay each other.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

from ..batch import BatchReport, ImageOutcome, segment_files
from ..batch.jobs import plan_jobs
from ..batch.report import SKIPPED, WRITTEN
from ..engine import SegmentOptions
from ..engine.described import option
from ..engine.model_cache import ModelCache
from ..engine.spec import ModelSpec
from ..io.images import open_image
from ..io.inputs import expand_inputs
from ..io.planes import PlaneLayout
from .reader import read_export, read_record
from .run_settings import split_prompts
from .runner import Progress, WorkerFailed, chosen_options

#: Metadata key on the layers a row opened: the parameters JSON they came from.
OPENED_FROM = "napari_gem_folder_run"


@dataclass(frozen=True)
class FolderFields:
    """The section's own fields (the panel builds them from these descriptions)."""

    folder_input: str = option(
        "", kind="path", label="images",
        help="a folder of images, or a glob pattern such as /data/*.tif: each image is "
        "segmented with the settings above (model, method, options, prompts)")
    folder_output: str = option(
        "", kind="path", label="output folder",
        help="where each image's masks, heatmaps, objects table and parameters go (the files "
        "`napari-gem segment` writes); created if needed")
    folder_recursive: bool = option(
        False, kind="bool", label="recursive",
        help="also look for images in subfolders (kept as subfolders of the output folder)")
    folder_redo: bool = option(
        False, kind="bool", label="redo",
        help="segment images again even when their outputs are complete (else a re-run "
        "resumes: images done with these very settings are skipped)")


@dataclass(frozen=True)
class PlannedImage:
    """One input as the table names it, and where its parameters JSON goes."""

    name: str  # its path below the input folder
    parameters: Path | None  # None for an input that is no image (it is only reported)


@dataclass
class FolderRun:
    """A folder run as the widget describes it, checked and planned."""

    inputs: str
    out_dir: Path
    prompts: list[str]
    spec: ModelSpec
    options: SegmentOptions
    recursive: bool = False
    redo: bool = False
    images: dict[Path, PlannedImage] = field(default_factory=dict)  # by source path

    @property
    def total(self) -> int:
        """How many outcomes the run will report (images, and inputs that are no image)."""
        return len(self.images)

    def describe(self, source: Path) -> PlannedImage:
        return self.images.get(source) or PlannedImage(source.name, None)


@dataclass(frozen=True)
class FolderRow:
    """One row of the results table: an image's prompt, or an image that has no outputs."""

    image: str
    prompt: str
    objects: int | None
    status: str  # the outcome's: written, skipped, failed or cancelled
    reason: str
    parameters: Path | None  # the outputs to open (None: nothing to open)


def plan_folder_run(inputs: str, out_dir: str, *, prompts: str, spec: ModelSpec | None,
                    options: SegmentOptions, recursive: bool = False,
                    redo: bool = False) -> FolderRun:
    """Check what the fields say and list the inputs; ``ValueError`` says what to fix.

    ``options`` are the widget's (every field shown): those that differ from the model's
    defaults count as the user's, as for the widget's own runs.
    """
    inputs, out_text = str(inputs).strip(), str(out_dir).strip()
    if not inputs:
        raise ValueError("Choose the images to run on under 'images': a folder, or a glob "
                         "pattern such as /data/*.tif.")
    if not out_text:
        raise ValueError("Choose an output folder for the masks and heatmaps.")
    chosen = split_prompts(prompts)
    if not chosen:
        raise ValueError("Type at least one prompt (what to look for), e.g. 'nucleus'.")
    if spec is None:
        raise ValueError("Choose a checkpoint file under Model, or switch to a pretrained tag.")
    out = Path(out_text).expanduser()
    _refuse_output_among_inputs(Path(inputs).expanduser(), out, recursive)
    found = expand_inputs([inputs], recursive=recursive)
    if not found.images:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in found.skipped[:3])
        raise ValueError(f"No images found in {inputs}" + (f" ({reasons})." if reasons else "."))
    images = {job.source: PlannedImage(_shown_name(image.subfolder, job.source), job.parameters)
              for image, job in zip(found.images, plan_jobs(found.images, out), strict=True)}
    images.update({path: PlannedImage(path.name, None) for path, _ in found.skipped})
    return FolderRun(inputs, out, chosen, spec, chosen_options(options, spec), recursive, redo,
                     images)


def _refuse_output_among_inputs(inputs: Path, out: Path, recursive: bool) -> None:
    # Masks and heatmaps written among the images would be segmented as images next time.
    if not inputs.is_dir():
        return
    folder, target = inputs.resolve(), out.resolve()
    if target == folder or (recursive and folder in target.parents):
        where = "the image folder" if target == folder else "a subfolder of the image folder"
        raise ValueError(f"The output folder is {where}: its masks and heatmaps would be read "
                         "as images on the next run. Choose another output folder.")


def _shown_name(subfolder: Path, source: Path) -> str:
    return (subfolder / source.name).as_posix()


def run_folder(run: FolderRun, models: ModelCache, *,
               on_outcome: Callable[[ImageOutcome], None] | None = None,
               should_stop: Callable[[], bool] | None = None,
               ) -> Generator[Progress, None, BatchReport | WorkerFailed]:
    """Segment every image of ``run`` in this process: what ``napari-gem segment`` does with
    the same settings; returns the report, or why the run could not start its images.

    A generator for a napari worker: it yields a :class:`Progress` while the model loads
    (from ``models``, the widget's cache: one copy for the widget's runs and the folder's);
    ``on_outcome`` hears each image as it is decided.
    """
    yield Progress(f"folder: loading {run.spec.name}", 0, run.total)
    try:
        model = models.get(run.spec)
        return segment_files(
            [run.inputs], run.prompts, run.out_dir, model=model, options=run.options,
            recursive=run.recursive, redo=run.redo, progress=False, on_outcome=on_outcome,
            should_stop=should_stop)
    except Exception as error:  # the model did not load, a bug, ...: one clear line
        return WorkerFailed.of(error, "folder run")


def rows_of(outcome: ImageOutcome, run: FolderRun) -> list[FolderRow]:
    """The table rows of one outcome: one per prompt when its outputs exist, else one row
    saying why (failed, cancelled, not an image)."""
    planned = run.describe(outcome.source)
    record = read_record(planned.parameters) if outcome.status in (WRITTEN, SKIPPED) else None
    if record is None:
        return [FolderRow(planned.name, "", None, outcome.status, outcome.reason, None)]
    counts = _object_counts(planned.parameters.parent / record.get("objects", ""))
    return [FolderRow(planned.name, prompt, counts.get(prompt, 0) if counts is not None else None,
                      outcome.status, outcome.reason, planned.parameters)
            for prompt in record.get("prompts", [])]


def _object_counts(table: Path) -> Counter | None:
    """Objects per prompt from an objects CSV (None when it cannot be read)."""
    try:
        with table.open(newline="", encoding="utf-8") as handle:
            return Counter(row["prompt"] for row in csv.DictReader(handle))
    except (OSError, KeyError, csv.Error):
        return None


def outcome_layers(parameters: Path) -> tuple[tuple, list[tuple]]:
    """An image and its outputs at one geometry: ``((data, add_image keywords), layer data of
    the heatmaps and masks)``. The image comes as its outputs' axes see it (stack axes, then
    Y, X; a colour axis last: RGB, or one layer per channel), at the scale and translate
    the outputs were written with. Every layer's metadata names ``parameters`` under
    :data:`OPENED_FROM`."""
    record = json.loads(Path(parameters).read_text(encoding="utf-8"))
    image = open_image(record["source"])
    layout = PlaneLayout.of(image)
    data = image.to_dask() if image.lazy else image.array
    order = layout.output_axes if layout.color is None else (*layout.output_axes, layout.color)
    data = data.transpose(order)
    tag = {OPENED_FROM: str(parameters)}
    keywords = {"name": Path(record["source"]).name, "scale": record["scale"],
                "translate": record["translate"], "metadata": tag}
    if layout.color is not None:
        if data.shape[-1] in (3, 4):
            keywords["rgb"] = True
        else:  # one gray layer per channel, each with the outputs' geometry
            keywords["channel_axis"] = data.ndim - 1
    outputs = read_export(parameters)
    for _, meta, _ in outputs:
        meta.setdefault("metadata", {}).update(tag)
    return (data, keywords), outputs
