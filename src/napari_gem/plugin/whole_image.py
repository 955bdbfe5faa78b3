"""The whole image at full resolution, from napari, through the batch path (no Qt here).

A multiscale slide is too large for one in-memory run, so "whole image" runs the way
``napari-gem encode`` and ``napari-gem segment --encoding`` do, on the layer's file: the
image is encoded once, window by window, into a saved encoding beside the outputs (a store
that already encodes it with this model and these encode options is reused; an interrupted
one resumes), then the prompts are answered from the encoding chunk by chunk. The outputs
are the batch's (OME-Zarr pyramids; masks in the image's own ``labels/`` when it is a
writable OME-Zarr) and open as multiscale layers over the image.

:func:`plan_whole_image` checks the layer and the settings (one clear sentence for what is
wrong), :func:`run_whole_image` does the work (in a worker thread: it blocks), and
:func:`result_layers` says which layers show the result.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..batch.progress import RunObserver
from ..batch.saved_encoding import ENCODING_SUFFIX, encode_file, holds_encoding, open_encoding
from ..engine import SegmentOptions
from ..engine.spec import ModelSpec
from ..io.images import image_stem
from .layers import META
from .planes import spatial_ndim
from .reader import read_export

#: What a dask scheduler address looks like: ``tcp://host:8786``, ``tls://...``, ``inproc://...``,
#: ``host:8786``.
SCHEDULER_ADDRESS = re.compile(r"[a-z]+://\S+|[\w.\-]+:\d+")


@dataclass(frozen=True)
class WholeImageRequest:
    """One whole-image job: the image file, what to ask it, where the outputs go."""

    source: Path
    prompts: tuple[str, ...]
    spec: ModelSpec
    options: SegmentOptions
    out_dir: Path
    scheduler: str | None = None  # a dask scheduler address; None: this machine

    @property
    def stem(self) -> str:
        return image_stem(self.source)

    @property
    def encoding(self) -> Path:
        """The saved encoding: beside the outputs, named after the image."""
        return self.out_dir / f"{self.stem}{ENCODING_SUFFIX}"

    @property
    def parameters(self) -> Path:
        return self.out_dir / f"{self.stem}_parameters.json"


@dataclass
class WholeImageResult:
    """What a job did: the outputs' record, whether the encoding was reused, how long."""

    request: WholeImageRequest
    encoding: Path  # the saved encoding it used (made, resumed or reused)
    reused_encoding: bool = False
    seconds: float = 0.0
    dashboard: str | None = None

    @property
    def parameters(self) -> Path:
        """The outputs' parameters JSON (written last: the job's outputs are complete)."""
        return self.request.parameters


def layer_file(layer) -> Path | None:
    """The file or store a layer was opened from (None: made in memory)."""
    path = getattr(getattr(layer, "source", None), "path", None)
    return Path(path) if path else None


def plan_whole_image(layer, prompts, spec: ModelSpec | None, options: SegmentOptions, *,
                     source: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
                     scheduler: str | None = None) -> WholeImageRequest:
    """The job for ``layer`` (``source``: its file when napari does not know it); raises
    ``ValueError`` with what to change when the job cannot run."""
    from ..batch.out_of_core import lazily_readable

    if spec is None:
        raise ValueError("Choose a checkpoint file under Model, or switch to a pretrained tag.")
    if not prompts:
        raise ValueError("Type at least one prompt (what to look for).")
    if spatial_ndim(layer) != 2:
        raise ValueError(f"'{layer.name}' is a stack ({layer.ndim} axes): 'whole image' runs one 2D "
                         "slide; use 'this view' or 'level that fits' for stacks")
    path = Path(source) if source else layer_file(layer)
    if path is None:
        raise ValueError(f"'{layer.name}' was not opened from a file: 'whole image' reads the slide "
                         "from its file (OME-Zarr, zarr or TIFF) window by window; give it under "
                         "'slide file'")
    if not path.exists():
        raise ValueError(f"slide file not found: {path}")
    if not lazily_readable(path):
        raise ValueError(f"{path.name}: 'whole image' reads OME-Zarr, zarr or TIFF files window by "
                         "window (with the [cluster] extra installed); convert the image, or use "
                         "'this view'")
    if options.regions != "none" or options.refine != "none":
        raise ValueError("region consistency and PAMR need the whole image in memory: set them to "
                         "none under Advanced for 'whole image'")
    if scheduler and not SCHEDULER_ADDRESS.fullmatch(scheduler):
        raise ValueError(f"dask scheduler {scheduler!r} is not an address: give one like "
                         "tcp://host:8786 (or leave it empty for this machine)")
    folder = Path(out_dir) if out_dir else path.parent / f"{image_stem(path)}.napari-gem"
    return WholeImageRequest(path, tuple(prompts), spec, options, folder, scheduler or None)


def run_whole_image(request: WholeImageRequest, model, observer: RunObserver) -> WholeImageResult:
    """Encode (or reuse, or resume) and answer the prompts; blocks until done.

    ``model``: the loaded model (this machine) or ``request.spec`` (a cluster's workers load
    it). ``observer`` hears every task and may stop the job (:class:`~napari_gem.Cancelled`,
    raised here; what was written stays, so the same job resumes).
    """
    import time

    from ..batch.execution import open_executor

    start = time.perf_counter()
    request.out_dir.mkdir(parents=True, exist_ok=True)
    passes = _Passes(observer)
    with open_executor(model, request.scheduler, None, None, passes) as executor:
        # One client for both steps (None here: in this process), so a cluster's workers keep
        # the model between them.
        client, dashboard = getattr(executor, "client", None), executor.dashboard
        encoding = _encoding_beside_the_slide(request, executor.facts().description)
        encode_file(request.source, encoding, model=model, options=request.options,
                    scheduler=client, progress=passes, out_of_core="always")
        open_encoding(encoding).segment(
            list(request.prompts), request.out_dir, model=model, options=request.options,
            stem=request.stem, scheduler=client, progress=passes)
    return WholeImageResult(request, encoding, reused_encoding="windows" not in passes.labels,
                            seconds=time.perf_counter() - start, dashboard=dashboard)


def _encoding_beside_the_slide(request: WholeImageRequest, description: dict) -> Path:
    """``SLIDE.features.zarr`` beside the slide (where ``napari-gem encode`` writes by default)
    when it already holds this encode, by :func:`encode_file`'s own test (model and precision,
    encode options, image); else the outputs folder's store. A store beside the slide for
    another request is the user's: never written over."""
    beside = request.source.with_name(request.stem + ENCODING_SUFFIX)
    if beside.is_dir() and holds_encoding(beside, request.source, description, request.options):
        return beside
    return request.encoding


class _Passes:
    """An observer that remembers which passes ran (no "windows": the encoding was reused)."""

    def __init__(self, observer: RunObserver) -> None:
        self.observer, self.labels = observer, set()

    def tasks_done(self, count) -> None:
        self.labels.add(count.label)
        self.observer.tasks_done(count)

    def cancelled(self) -> bool:
        return self.observer.cancelled()


def result_layers(result: WholeImageResult, image_layer) -> list[tuple]:
    """Layer data tuples of the job's heatmaps and masks, multiscale, placed over
    ``image_layer`` (its level-0 scale and translate) and named after the prompts."""
    layers = []
    for data, meta, kind in read_export(result.parameters):
        prompt = meta["metadata"][META]["prompt"]
        role = "mask" if kind == "labels" else "heatmap"
        meta = {**meta, "name": f"{prompt} {role} (whole image)",
                "scale": tuple(image_layer.scale)[-2:], "translate": tuple(image_layer.translate)[-2:]}
        meta["metadata"][META].update(source_name=image_layer.name, whole_image=True)
        layers.append((data, meta, kind))
    return layers


__all__ = ["WholeImageRequest", "WholeImageResult", "layer_file", "plan_whole_image",
           "result_layers", "run_whole_image"]
