"""``segment_files``: many images, one model, outputs on disk, resumable."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..engine import PromptableModel, SegmentOptions
from ..engine.extras import require
from ..engine.loading import segment_defaults
from ..io.images import open_image
from ..io.inputs import expand_inputs
from ..io.planes import PlaneLayout
from .execution import open_executor
from .jobs import ImageJob, plan_jobs
from .models import ModelSpec, model_identity
from .out_of_core import OUT_OF_CORE_ABOVE, OUT_OF_CORE_MODULES, lazily_readable, segment_large_image
from .prompts import parse_prompts
from .report import CANCELLED, FAILED, SKIPPED, BatchReport, ImageOutcome, attempt, describe_error

OUT_OF_CORE_MODES = ("auto", "always", "never")


def segment_files(
    inputs: Iterable[str | os.PathLike],
    prompts: Sequence[str] | str,
    out_dir: str | os.PathLike,
    *,
    model: PromptableModel | ModelSpec | None = None,
    options: SegmentOptions | None = None,
    scheduler=None,
    workers: int | None = None,
    redo: bool = False,
    progress: bool = True,
    recursive: bool = False,
    out_of_core: str = "auto",
    out_of_core_above: int = OUT_OF_CORE_ABOVE,
    chunk: int = 1024,
    threads: int | None = None,
    encoding: str | os.PathLike | None = None,
    on_outcome: Callable[[ImageOutcome], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BatchReport:
    """Segment every image of ``inputs`` for ``prompts`` and write the outputs to ``out_dir``.

    ``inputs``: files, folders (their images; subfolders too with ``recursive``) and
    glob patterns. ``model``: a loaded model (any method), or a :class:`ModelSpec` (default: ViT-B-16
    with OpenAI weights); on a cluster every worker rebuilds it from its spec. The model's
    option defaults (its family's) fill every option ``options`` does not set explicitly.
    ``scheduler``: a dask scheduler address or ``distributed.Client``; ``workers``:
    start a LocalCluster of that many processes; neither: run in this process.

    Images whose parameters JSON records this very run (prompts, options, model) are
    skipped unless ``redo``; interrupted ones are done again. Planes larger
    than ``out_of_core_above`` pixels (TIFF and zarr inputs; ``out_of_core="always"``
    for all of those) are processed window by window into zarr outputs with chunks of
    ``chunk`` pixels; runs with regions keep every image in memory (``"always"`` is
    refused). ``threads`` limits PyTorch threads per process.

    ``encoding``: a saved encoding (:func:`napari_gem.open_encoding`) answers the prompts
    instead of the vision tower; ``inputs`` may then be empty or the one encoded image (checked
    to be it), ``model`` None (the encoding's own), and encode options must be the encoding's.

    ``on_outcome`` is called with each outcome as it is decided (an image written, failed,
    skipped or cancelled), once for every outcome of the report. ``should_stop`` is asked
    before each image starts: once it answers True, no further image starts and each one
    not started is a ``"cancelled"`` outcome (a re-run does it; what was written stays). On
    a cluster, images already handed to the workers may still finish.

    Returns a :class:`BatchReport`; a bad image is recorded as failed and the batch
    goes on. Raises ValueError for bad arguments (no images found, empty prompts) and
    :class:`napari_gem.ModelLoadError` when the model cannot be loaded.
    """
    prompts = parse_prompts(prompts)
    told = on_outcome or (lambda outcome: None)
    if encoding is not None:
        report = _segment_encoding(encoding, list(inputs), prompts, out_dir, model, options,
                                   scheduler, workers, threads, progress, chunk)
        told(report.outcomes[0])
        return report
    model = model if model is not None else ModelSpec()
    # The model's defaults (e.g. the demo's input size) for every option not chosen, as in napari.
    options = (options or SegmentOptions()).with_model_defaults(segment_defaults(model.name))
    if out_of_core not in OUT_OF_CORE_MODES:
        raise ValueError(f"out_of_core must be one of {', '.join(OUT_OF_CORE_MODES)}")
    out_of_core = _in_memory_when_needed(out_of_core, options)
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of pixels, got {chunk}")
    if out_of_core == "always":  # before any work, not once per image
        for module in OUT_OF_CORE_MODULES:
            require(module, extra="cluster", purpose="out_of_core='always'")
    found = expand_inputs(inputs, recursive=recursive)
    if not found.images:
        reasons = "; ".join(f"{path}: {reason}" for path, reason in found.skipped)
        raise ValueError("no input images found" + (f" ({reasons})" if reasons else ""))

    jobs = plan_jobs(found.images, Path(out_dir))
    request = {"prompts": prompts, "options": options.to_dict(), "model": model_identity(model)}
    outcomes: dict[ImageJob, ImageOutcome] = {}

    def decided(job: ImageJob, outcome: ImageOutcome) -> None:
        outcomes[job] = outcome
        told(outcome)

    todo = []
    for job in jobs:
        if not redo and job.done_for(request):
            decided(job, ImageOutcome(job.source, SKIPPED, reason="already done (use redo)"))
        else:
            todo.append(job)

    stopping = should_stop or (lambda: False)
    if todo and not stopping():
        with (
            open_executor(model, scheduler, workers, threads, progress) as executor,
            _image_bar(len(todo), progress) as bar,
        ):
            def finished(job: ImageJob, outcome: ImageOutcome) -> None:
                decided(job, outcome)
                _advance(bar, outcome)

            # Loads the model (on a cluster: on one worker) before any image is touched,
            # so a model that cannot load fails once, with its own message.
            facts = executor.facts()
            large, whole = _split_by_size(todo, out_of_core, out_of_core_above, finished)
            # On a cluster whole images start now and run alongside the large ones.
            finished_whole = executor.run_images(whole, prompts, options)
            for job in large:
                if stopping():
                    break
                finished(job, _run_large(job, prompts, executor, options, facts, chunk, threads))
            # In this process each image starts as its outcome is asked for: asking
            # ``should_stop`` first stops the batch between images.
            while not stopping() and (pair := next(finished_whole, None)) is not None:
                finished(*pair)
    for job in todo:
        if job not in outcomes:
            decided(job, ImageOutcome(job.source, CANCELLED,
                                      reason="cancelled before it started (a re-run does it)"))

    report = BatchReport([outcomes[job] for job in jobs])
    for path, reason in found.skipped:
        report.outcomes.append(ImageOutcome(path, SKIPPED, reason=reason))
        told(report.outcomes[-1])
    return report


def _segment_encoding(encoding, inputs, prompts, out_dir, model, options, scheduler, workers,
                      threads, progress, chunk) -> BatchReport:
    """The prompts answered from a saved encoding: one outcome, for the encoded image.

    A mismatched model, image or option is raised (a wrong question, before any work), a
    failure while writing is the outcome's."""
    from .saved_encoding import open_encoding, plane_of_file

    saved = open_encoding(encoding)
    image = None
    if inputs:
        found = expand_inputs(inputs)
        if len(found.images) != 1:
            raise ValueError(f"a saved encoding answers for the one image it encodes; "
                             f"{len(found.images)} images were given")
        image = plane_of_file(found.images[0].path)
    model, options = saved.check(model, options, image)
    source = Path(saved.record["image"].get("source") or encoding)
    outcome = attempt(source, lambda: saved.segment(
        prompts, out_dir, model=model, options=options, scheduler=scheduler,
        workers=workers, threads=threads, progress=progress, chunk=chunk))
    return BatchReport([outcome])


def _in_memory_when_needed(out_of_core: str, options: SegmentOptions) -> str:
    """Regions (superpixels, votes over whole regions) and PAMR (whole-image refinement) are
    steps the out-of-core path cannot take: such runs keep every image in memory, and
    ``"always"`` is refused before any work, rather than skipping the step out of core."""
    needs = [name for name, on in (("regions", options.regions != "none"),
                                   ("refine", options.refine != "none")) if on]
    if not needs:
        return out_of_core
    if out_of_core == "always":
        verb = "this option needs" if len(needs) == 1 else "these options need"
        raise ValueError(f"{' and '.join(needs)}: {verb} each image in memory, so it cannot run "
                         "with out_of_core='always' (--out-of-core always)")
    return "never"


def _split_by_size(jobs, mode, above, failed) -> tuple[list[ImageJob], list[ImageJob]]:
    """Jobs for the out-of-core path and for the whole-image path.

    Only TIFF and zarr inputs can be read window by window; for those, opening the
    image reads just its header, and an unreadable one fails right here (``failed(job,
    outcome)`` is told).
    """
    large, whole = [], []
    for job in jobs:
        if mode == "never" or not lazily_readable(job.source):
            whole.append(job)
            continue
        try:
            image = open_image(job.source, lazy=True)
        except Exception as error:
            failed(job, ImageOutcome(job.source, FAILED, reason=describe_error(error)))
            continue
        height, width = PlaneLayout.of(image).plane_shape
        (large if mode == "always" or height * width > above else whole).append(job)
    return large, whole


def _run_large(job, prompts, executor, options, facts, chunk, threads) -> ImageOutcome:
    return attempt(job.source, lambda: segment_large_image(
        job, prompts, executor.model, options, facts, executor.compute, chunk=chunk,
        threads=threads))


def _image_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="napari-gem", unit="image", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def _advance(bar, outcome: ImageOutcome) -> None:
    if outcome.status == FAILED:
        bar.write(f"failed: {outcome.source}: {outcome.reason}", file=sys.stderr)
    bar.set_postfix_str(outcome.source.name, refresh=False)
    bar.update(1)

