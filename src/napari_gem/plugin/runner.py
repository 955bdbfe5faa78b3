"""The work of one run, as a generator for napari's ``thread_worker`` (no Qt in here).

:func:`run_segmentation` loads (or reuses) the model, encodes each plane (or reuses its
encoding), asks the prompts and returns a :class:`RunOutput`. It yields
:class:`Progress` between steps; finer progress (download bytes, windows of a plane)
goes through the ``report`` callback, which may be called from this thread at any
time. Cancellation is polled through ``cancelled`` between windows and planes.

It never raises: expected failures come back as :class:`RunFailed` in the output's
``error`` so that the caller shows one clear message (and superqt's workers treat
``RuntimeError`` subclasses, such as CUDA out-of-memory, as "worker deleted").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from ..engine import Cancelled, EncodedImage, ModelLoadError, SegmentOptions, encode
from ..engine.errors import is_out_of_memory
from ..engine.loading import segment_defaults
from ..engine.result import MaskSet
from ..engine.software import software_record
from .cache import EncodedCache, ModelCache, ModelSpec
from .exemplar_prompts import ExemplarBoxes
from .planes import PlaneJob, describe_constant
from .regions import labels_key

log = logging.getLogger(__name__)

MASK_MODES = ("binary", "instances", "semantic")
MASK_MODE_LABELS = {
    "binary": "one binary mask per prompt",
    "instances": "instances per prompt",
    "semantic": "one semantic map (all prompts)",
}

@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` steps (``total == 0``: indeterminate)."""

    text: str
    done: int = 0
    total: int = 0


class RunFailed(Exception):
    """A run could not complete; ``str(error)`` is the message for the user."""


@dataclass(frozen=True)
class WorkerFailed:
    """Why a background job stopped, for the user: its worker returns this rather than
    raising (a worker thread that raises a RuntimeError, as ModelLoadError is, ends without
    ``finished``, and the widget would stay busy)."""

    message: str

    @classmethod
    def of(cls, error: Exception, job: str) -> WorkerFailed:
        """The user's message for ``error``, raised while ``job`` ran (call it in the
        ``except`` block: a bug or an unforeseen input is logged with its traceback)."""
        if isinstance(error, (ValueError, OSError, ModelLoadError)):  # messages fit for a user
            return cls(str(error))
        log.exception("napari-gem %s failed", job)
        return cls(f"{type(error).__name__}: {error}")


@dataclass
class RunRequest:
    """Everything a run needs, gathered on the main thread."""

    spec: ModelSpec
    options: SegmentOptions
    prompts: list[str]
    job: PlaneJob
    source_key: tuple  # (layer id, data version, level, channel choice): the cache's source
    mask_mode: str = "binary"
    regions: Callable[[tuple[int, ...]], np.ndarray] | None = None  # plane index -> region labels
    exemplars: ExemplarBoxes | None = None  # plane index -> {"@layer" prompt: its boxes}

    def region_labels(self, index: tuple[int, ...]) -> np.ndarray | None:
        """Plane ``index``'s region labels (None when regions do not come from a layer)."""
        return self.regions(index) if self.regions is not None else None

    def encoding_key(self, index: tuple[int, ...], region_labels: np.ndarray | None = None) -> tuple:
        """The encoded-image cache key of plane ``index`` (the refiner finds the run's encoding
        by it); ``region_labels``: that plane's labels when already read."""
        if region_labels is None:
            region_labels = self.region_labels(index)
        return (self.source_key, index, self.spec.features_key(), self.options.encoding_key(),
                labels_key(region_labels))


@dataclass
class PlaneResult:
    """The result of one plane, at the plane's full resolution."""

    index: tuple[int, ...]  # leading output axes of the plane
    heatmaps: np.ndarray  # float32 [P, H, W]
    presence: np.ndarray  # float32 [P]
    thresholds: np.ndarray  # float32 [P]
    labels: np.ndarray  # binary uint8 / instances int32 [P, H, W], or semantic int32 [H, W]
    skipped: str | None = None  # why the plane was not run (constant, all NaN)


@dataclass
class RunOutput:
    """What a run hands back to the main thread."""

    request: RunRequest
    planes: list[PlaneResult] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    error: RunFailed | None = None
    cancelled: bool = False
    reused: int = 0  # planes whose encoding came from the cache
    regions: dict = field(default_factory=dict)  # plane index -> region labels the run used
    seconds: float = 0.0


@dataclass
class CancelToken:
    """Set by the Cancel button (or by napari closing), polled by the worker."""

    flag: bool = False
    extra: Callable[[], bool] | None = None  # e.g. the worker's own abort_requested

    def set(self) -> None:
        self.flag = True

    def __call__(self) -> bool:
        return self.flag or bool(self.extra and self.extra())


def chosen_options(options: SegmentOptions, spec: ModelSpec) -> SegmentOptions:
    """The form's options with the user's choices marked: a form shows every option, so those
    that differ from the model's own defaults are the ones chosen (the parameters then say
    which values are the user's and which the model's or the engine's)."""
    defaults = SegmentOptions().with_model_defaults(segment_defaults(spec.name)).to_dict()
    values = options.to_dict()
    return options.as_given(name for name, value in values.items() if value != defaults[name])


def labels_for_mode(result, mode: str) -> np.ndarray:
    """The engine result's labels for one mask mode."""
    return MaskSet(result.thresholds, result.masks, result.instances, result.semantic).labels(mode)


def empty_plane(index, prompts, shape, mode, reason) -> PlaneResult:
    count = len(prompts)
    labels_shape = shape if mode == "semantic" else (count, *shape)
    return PlaneResult(
        index=index,
        heatmaps=np.zeros((count, *shape), np.float32),
        presence=np.zeros(count, np.float32),
        thresholds=np.ones(count, np.float32),
        labels=np.zeros(labels_shape, np.uint8 if mode == "binary" else np.int32),
        skipped=reason,
    )


def encode_or_explain(plane, model, options: SegmentOptions, report, cancelled, region_labels=None):
    """``encode`` whose out-of-memory failure says what to change in the widget.

    The engine already retries window batches in halves; what still fails is reported
    with the fields to change.
    """
    try:
        return encode(plane, model, options, progress=report, cancelled=cancelled,
                      region_labels=region_labels)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        detail = str(error).strip().splitlines()[0] if str(error).strip() else "out of memory"
        raise RunFailed(
            f"Out of memory on {model.device} encoding a {plane.shape[0]} x {plane.shape[1]} "
            f"plane ({detail}). To fix: lower 'input size' (now {options.input_size}) or set "
            f"tiling to 'always' with a smaller window (now {options.window}) under Advanced; "
            "or choose precision fp16/bf16, or device CPU, under Model."
        ) from error


def _load_model(spec: ModelSpec, models: ModelCache, report, cancelled) -> object:
    """The model for ``spec``; weights not yet cached download first, with progress."""
    try:
        if not models.is_loaded(spec):
            def bytes_report(done: int, total: int) -> None:
                if cancelled():
                    raise Cancelled("cancelled by the user")
                megabytes = f" {done / 1e6:.0f} / {total / 1e6:.0f} MB" if total else ""
                weights = f" ({spec.pretrained})" if spec.pretrained else ""
                report(Progress(f"downloading {spec.name}{weights}{megabytes}",
                                done // 1024, total // 1024))

            spec.fetch(bytes_report)
        return models.get(spec)
    except ModelLoadError as error:
        raise RunFailed(str(error)) from error


def run_segmentation(
    request: RunRequest,
    models: ModelCache,
    encoded: EncodedCache,
    cancelled: Callable[[], bool],
    report: Callable[[Progress], None] = lambda progress: None,
) -> Generator[Progress, None, RunOutput]:
    """Load the model, encode and segment every planned plane; return a :class:`RunOutput`."""
    output = RunOutput(request=request)
    start = time.perf_counter()
    try:
        yield from _run(request, models, encoded, cancelled, report, output)
    except Cancelled:
        output.cancelled = True
    except RunFailed as error:
        output.error = error
    except Exception as error:  # a bug or an unforeseen input: one clear line, log the rest
        log.exception("napari-gem run failed")
        output.error = RunFailed(f"the run failed: {type(error).__name__}: {error}")
    output.seconds = time.perf_counter() - start
    return output


def _run(request, models, encoded, cancelled, report, output) -> Generator[Progress, None, None]:
    spec, job, prompts = request.spec, request.job, request.prompts
    cached_model = models.is_loaded(spec)
    yield Progress(f"{'using' if cached_model else 'loading'} {spec.name} ({spec.pretrained})")
    model = _load_model(spec, models, report, cancelled)
    if cancelled():
        raise Cancelled("cancelled by the user")

    segment_overrides = request.options.scoring_fields()  # no re-encoding needed for these
    total = len(job.planes)
    first_parameters: dict | None = None
    for number, (index, plane) in enumerate(job.planes):
        label = f"plane {number + 1}/{total}" if total > 1 else "image"
        yield Progress(f"{label}: reading", number, total)
        if cancelled():
            raise Cancelled("cancelled by the user")
        reason = describe_constant(plane)
        if reason is not None:
            output.planes.append(empty_plane(index, prompts, job.plane_shape,
                                             request.mask_mode, reason))
            continue
        region_labels = request.region_labels(index)
        key = request.encoding_key(index, region_labels)
        image: EncodedImage | None = encoded.get(key)
        if image is None:
            def window_report(done: int, steps: int, label=label, number=number) -> None:
                report(Progress(f"{label}: encoding ({done}/{steps})",
                                number * steps + done, total * steps))

            image = encode_or_explain(plane, model, request.options, window_report, cancelled,
                                      region_labels)
            encoded.put(key, image)
        else:
            output.reused += 1
        if cancelled():
            raise Cancelled("cancelled by the user")
        exemplars = request.exemplars(index) if request.exemplars is not None else None
        result = image.segment(prompts, exemplars=exemplars, **segment_overrides)
        if image.regions is not None:
            output.regions[index] = image.regions.labels
        first_parameters = first_parameters or result.parameters
        output.planes.append(PlaneResult(
            index=index,
            heatmaps=result.heatmaps,
            presence=result.presence,
            thresholds=result.thresholds,
            labels=labels_for_mode(result, request.mask_mode),
        ))
    yield Progress("done", total, total)
    output.parameters = _parameters(request, first_parameters or {}, model, output)


def _parameters(request: RunRequest, engine_parameters: dict, model, output: RunOutput) -> dict:
    """The run's record, stored in layer metadata and exported as JSON."""
    job = request.job
    parameters = {
        **{k: v for k, v in engine_parameters.items() if k not in ("thresholds", "presence")},
        "model": model.describe(),
        "options": request.options.to_dict(),
        "option_sources": request.options.sources(),
        "prompts": list(request.prompts),
        "mask_mode": request.mask_mode,
        "source": {
            "layer": job.source_name,
            "plane_shape": list(job.plane_shape),
            "level": job.level,
            "level_shape": list(job.level_shape),
            "channels": job.channel,
            **({"view": job.view} if job.view else {}),
        },
        "software": software_record(),
    }
    skipped = [list(p.index) for p in output.planes if p.skipped]
    if skipped:
        parameters["skipped_planes"] = skipped
    return parameters
