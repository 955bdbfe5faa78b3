"""Images larger than memory: windows as dask tasks, results written into zarr chunk by chunk.

No step holds a whole plane. Per plane, three passes run as dask graphs (in-process
or on a cluster):

1. **Scores on the patch grid.** A setup task fixes the contrast limits (and, in
   calibrated mode, the image-level presence from a strided overview). Window tasks
   run the dense method on batches of windows and return their cosine similarities on the patch
   grid (tiny: a 448-pixel window is 28 x 28 cells). Block tasks blend the windows
   covering a block of the global grid (taper weights, divided by the summed weight)
   and write the block into a temporary grid zarr.
2. **Statistics.** Chunk tasks upsample their part of the grid to pixels (bilinear,
   as the engine does) and return per-prompt minimum, maximum and a histogram. The
   paper's min-max heatmaps need the minimum and maximum of the whole plane, and Otsu's
   threshold needs the histogram; both are reduced on the driver.
3. **Heatmaps.** Chunk tasks upsample again (cheap: the grid is 1/patch² of the pixels),
   normalise and write one chunk of each heatmap zarr.
4. **Masks and objects.** The engine's mask options (threshold, ``fill_holes``,
   ``min_size``, ``instances``) applied across chunk borders, objects with one label each,
   and the objects table (:mod:`.out_of_core_masks`).

Outputs appear under their final names only when complete; the parameters JSON,
written last, marks the image as done.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..engine import SegmentOptions
from ..engine.encoded import overview_embedding, with_background
from ..engine.extras import available
from ..engine.maps import prompt_softmax, similarity_grid, upsample
from ..engine.preprocess import intensity_map, to_pixels, to_rgb
from ..engine.text import resolve_templates
from ..engine.tiling import plan_windows, read_window
from ..io.atomic import write_text_atomically
from ..io.export import output_files, to_json
from ..io.images import TIFF_SUFFIXES, LoadedImage, is_zarr_store, open_image
from ..io.objects import objects_csv
from ..io.planes import PlaneLayout, PlaneView
from .compute import Compute
from .jobs import ImageJob, parameters_header
from .models import model_of, use_torch_threads
from .out_of_core_masks import plane_objects
from .out_of_core_outputs import Outputs, create_outputs, publish
from .whole_image import with_plane_index
from .windows import WindowShape, boxes, cells_around, overlaps

#: What the out-of-core path imports (the ``[cluster]`` extra).
OUT_OF_CORE_MODULES = ("dask", "zarr")
#: Planes with more pixels than this go the out-of-core way when ``out_of_core="auto"``.
OUT_OF_CORE_ABOVE = 8192 * 8192
OTSU_BINS = 256  # as scikit-image's threshold_otsu
GRID_BLOCK_CELLS = 256  # grid cells per side of a blending task (4096 pixels at patch 16)
WINDOWS_PER_TASK = 16

Box = tuple[int, int, int, int]


# -- what the tasks share ------------------------------------------------------------------
@dataclass(frozen=True)
class PlaneRef:
    """One plane of an image file: picklable, opened lazily in whichever process needs it."""

    path: str
    index: tuple[int, ...]

    def open(self) -> PlaneView:
        image, layout = _open_lazily(self.path, os.stat(self.path).st_mtime_ns)
        return PlaneView.of_layout(image.array, layout, self.index)


@lru_cache(maxsize=8)
def _open_lazily(path: str, mtime_ns: int) -> tuple[LoadedImage, PlaneLayout]:
    # Keyed by modification time too: a worker outlives runs, the file may change.
    image = open_image(path, lazy=True)
    return image, PlaneLayout.of(image)


@dataclass(frozen=True)
class Scoring:
    """The prompts and how their scores are made."""

    prompts: tuple[str, ...]
    competitors: tuple[str, ...]  # the prompts, plus background prompts when calibrated
    templates: tuple[str, ...]
    calibrated: bool

    @classmethod
    def of(cls, prompts: Sequence[str], options: SegmentOptions) -> Scoring:
        calibrated = options.score_mode == "calibrated"
        background = options.background_prompts if calibrated else ()
        prompts, competitors = with_background(prompts, background)
        return cls(tuple(prompts), tuple(competitors), resolve_templates(options.templates),
                   calibrated)


@dataclass(frozen=True)
class GridStore:
    """The temporary zarr of blended scores ``[plane, prompt, grid_h, grid_w]``."""

    path: str
    patch_size: int
    grid_shape: tuple[int, int]

    def write(self, plane: int, cells: Box, scores: np.ndarray) -> None:
        import zarr

        row0, row1, col0, col1 = cells
        zarr.open_array(self.path, mode="r+")[plane, :, row0:row1, col0:col1] = scores

    def upsampled(self, plane: int, box: Box) -> torch.Tensor:
        """Scores ``[P, h, w]`` of the pixels in ``box``, bilinear from the grid."""
        import zarr

        row0, row1, col0, col1 = cells_around(box, self.patch_size, self.grid_shape)
        grid = zarr.open_array(self.path, mode="r")[plane, :, row0:row1, col0:col1]
        size = ((row1 - row0) * self.patch_size, (col1 - col0) * self.patch_size)
        pixels = upsample(torch.from_numpy(np.ascontiguousarray(grid))[None], size)[0]
        y0, y1, x0, x1 = box
        top, left = row0 * self.patch_size, col0 * self.patch_size
        return pixels[:, y0 - top : y1 - top, x0 - left : x1 - left]


@dataclass(frozen=True)
class Normalisation:
    """How one plane's scores become heatmaps and masks: ``(score - low) / span >= threshold``."""

    low: np.ndarray  # [P]
    span: np.ndarray  # [P]
    thresholds: np.ndarray  # [P], on the heatmap

    def heatmap(self, scores: np.ndarray, prompt: int) -> np.ndarray:
        # A constant map has nothing to tell apart: zeros, as the engine's min-max gives.
        if self.span[prompt] <= 0:
            return np.zeros_like(scores, dtype=np.float32)
        return ((scores - self.low[prompt]) / self.span[prompt]).astype(np.float32)


# -- tasks -----------------------------------------------------------------------------------
def plane_setup(plane: PlaneRef, model, options: SegmentOptions, scoring: Scoring,
                threads: int | None) -> dict:
    """Contrast mapping of a plane and, when calibrated, its image-level presence scores.

    Both as the engine's tiled mode makes them: the mapping from a bounded sample,
    presence from the CLIP embedding of a strided overview of the plane.
    """
    use_torch_threads(threads)
    view = plane.open()
    mapping = intensity_map(view, options.contrast, options.percentiles)
    presence = None
    if scoring.calibrated:
        loaded = model_of(model)
        embedding = overview_embedding(view, mapping, loaded, options)
        text = loaded.encode_text(scoring.competitors, scoring.templates)
        logits = (text.to(embedding.device) @ embedding)[:, None, None]
        presence = prompt_softmax(logits, loaded.logit_scale, dim=0)[: len(scoring.prompts), 0, 0]
        presence = presence.cpu().numpy()
    return {"mapping": mapping, "presence": presence}


def window_scores(plane: PlaneRef, starts: Sequence[tuple[int, int]], shape: WindowShape,
                  setup: dict, model, scoring: Scoring, options: SegmentOptions,
                  threads: int | None) -> dict[tuple[int, int], np.ndarray]:
    """Cosine similarity ``[competitors, wgh, wgw]`` of each window with every prompt."""
    use_torch_threads(threads)
    loaded, view = model_of(model), plane.open()
    text = loaded.encode_text(scoring.competitors, scoring.templates)
    scores = {}
    for first in range(0, len(starts), options.window_batch):
        batch = starts[first : first + options.window_batch]
        pixels = torch.stack([
            to_pixels(to_rgb(read_window(view, start, shape.window_shape), setup["mapping"]))
            for start in batch
        ])
        features = loaded.encode_image(pixels, with_clip_embedding=False).dense_features
        similarity = similarity_grid(features, text.to(features.device))
        for start, window in zip(batch, similarity.cpu().numpy(), strict=True):
            scores[tuple(start)] = window
    return scores


def blend_block(store: GridStore, plane: int, cells: Box, shape: WindowShape,
                window_results: Sequence[dict], setup: dict, scoring: Scoring,
                logit_scale: float) -> None:
    """Blend the windows covering one block of the grid and write it."""
    scores = blend_windows(cells, shape, window_results, len(scoring.competitors))
    store.write(plane, cells, calibrated_scores(scores, scoring, setup.get("presence"), logit_scale))


def blend_windows(cells: Box, shape: WindowShape, window_results: Sequence[dict],
                  channels: int) -> np.ndarray:
    """``sum(taper * window) / sum(taper)`` ``[channels, h, w]`` of the windows (each
    ``[channels, wgh, wgw]``, keyed by its start) over one block of the grid."""
    row0, row1, col0, col1 = cells
    weighted = np.zeros((channels, row1 - row0, col1 - col0), np.float32)
    weight = np.zeros((row1 - row0, col1 - col0), np.float32)
    taper = shape.taper()
    for results in window_results:
        for start, window in results.items():
            w_row0, w_row1, w_col0, w_col1 = shape.cell_box(start)
            top, bottom = max(row0, w_row0), min(row1, w_row1)
            left, right = max(col0, w_col0), min(col1, w_col1)
            if top >= bottom or left >= right:
                continue
            inside = (slice(top - w_row0, bottom - w_row0), slice(left - w_col0, right - w_col0))
            here = (slice(top - row0, bottom - row0), slice(left - col0, right - col0))
            weighted[(slice(None), *here)] += window[(slice(None), *inside)] * taper[inside]
            weight[here] += taper[inside]
    return weighted / weight


def calibrated_scores(scores: np.ndarray, scoring: Scoring, presence, logit_scale: float) -> np.ndarray:
    """The grid scores as stored: cosine for min-max heatmaps; when calibrated, the softmax
    over competitors on the grid (then upsampled, as the engine does) gated by presence."""
    if not scoring.calibrated:
        return scores
    probabilities = prompt_softmax(torch.from_numpy(scores), logit_scale, dim=0)[: len(scoring.prompts)]
    return (probabilities * torch.from_numpy(np.asarray(presence))[:, None, None]).numpy()


def chunk_extrema(store: GridStore, plane: int, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt minimum and maximum of one chunk's scores."""
    values = store.upsampled(plane, box).numpy()
    return values.min(axis=(1, 2)), values.max(axis=(1, 2))


def chunk_histogram(store: GridStore, plane: int, box: Box, normalisation: Normalisation,
                    ranges: np.ndarray) -> np.ndarray:
    """Per-prompt histogram ``[P, bins]`` of one chunk's heatmap over ``ranges[p]``."""
    values = store.upsampled(plane, box).numpy()
    return np.stack([
        np.histogram(normalisation.heatmap(values[p], p), bins=OTSU_BINS, range=tuple(bounds))[0]
        for p, bounds in enumerate(ranges)
    ])


def write_chunk(store: GridStore, plane: int, box: Box, out_index: tuple[int, ...],
                normalisation: Normalisation, heatmap_paths: Sequence[str]) -> None:
    """Normalise one chunk of every prompt's scores and write it into the heatmap zarrs."""
    import zarr

    values = store.upsampled(plane, box).numpy()
    y0, y1, x0, x1 = box
    region = (*out_index, slice(y0, y1), slice(x0, x1))
    for p, heatmap_path in enumerate(heatmap_paths):
        zarr.open_array(heatmap_path, mode="r+")[region] = normalisation.heatmap(values[p], p)


# -- the driver --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFacts:
    """What the driver must know about the model without holding it."""

    patch_size: int
    logit_scale: float
    description: dict


def segment_large_image(job: ImageJob, prompts: Sequence[str], model, options: SegmentOptions,
                        facts: ModelFacts, compute: Compute, *, chunk: int = 1024,
                        threads: int | None = None) -> list[Path]:
    """Segment one image window by window into zarr outputs; returns the written paths.

    ``model`` is what tasks pass to ``model_of`` (a ModelSpec on a cluster);
    ``compute(tasks, label)`` runs a list of dask delayed tasks and returns their results.
    """
    from dask import delayed

    image = open_image(job.source, lazy=True)
    layout = PlaneLayout.of(image)
    plan = plan_windows(layout.plane_shape, options.window, options.overlap, facts.patch_size)
    shape = WindowShape.of(plan)
    scoring = Scoring.of(prompts, options)
    files = output_files(job.out_dir, job.stem, prompts)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    planes = [PlaneRef(str(job.source), index) for index in layout.plane_indices()]
    store = create_grid_store(job, len(planes), len(prompts), plan.grid_shape, facts.patch_size)
    outputs = create_outputs(files, prompts, layout, job.source, chunk)
    try:
        # Pass 1: window scores blended on the grid.
        setups, block_tasks = [], []
        for number, plane in enumerate(planes):
            setup = delayed(plane_setup, pure=False)(plane, model, options, scoring, threads)
            setups.append(setup)
            block_tasks += _blend_tasks(store, number, plane, plan, shape, setup, model, scoring,
                                        options, facts.logit_scale, threads)
        setups_done = compute(setups + block_tasks, "windows")[: len(planes)]
    except BaseException:
        remove_partials([store.path])
        outputs.remove_partials()
        raise
    return finish_planes(job, image, layout, prompts, options, facts, planes, setups_done, store,
                         outputs, files, compute, chunk)


def finish_planes(job: ImageJob, image: LoadedImage, layout: PlaneLayout, prompts: Sequence[str],
                  options: SegmentOptions, facts: ModelFacts, planes: Sequence[PlaneRef],
                  setups: list[dict], store: GridStore, outputs: Outputs, files, compute: Compute,
                  chunk: int) -> list[Path]:
    """Passes 2 to 4 from the grid of scores (written by windows or from a saved encoding):
    statistics, heatmaps, masks and objects, then the files under their final names and the
    parameters JSON last; returns the written paths."""
    from dask import delayed

    scoring = Scoring.of(prompts, options)
    try:
        # Pass 2: statistics of the upsampled scores, then per-plane normalisation.
        chunk_boxes = boxes(layout.plane_shape, chunk)
        normalisation = _normalise_planes(store, len(planes), chunk_boxes, scoring, options,
                                          compute)

        # Pass 3: heatmap chunks.
        heatmap_paths = [output.level0 for output in outputs.heatmaps]
        mask_paths = [output.level0 for output in outputs.masks]
        write_tasks = [
            delayed(write_chunk, pure=False)(store, number, box, plane.index, normalisation[number],
                                             heatmap_paths)
            for number, plane in enumerate(planes)
            for box in chunk_boxes
        ]
        compute(write_tasks, "chunks")
        shutil.rmtree(store.path)

        # Pass 4: masks, objects (one label each across chunks) and their table.
        objects = _masks_and_objects(job, prompts, planes, layout, normalisation, heatmap_paths,
                                     mask_paths, options, facts, compute, chunk)

        # The pyramids and NGFF metadata, then the outputs under their final names.
        axes = "".join(image.axes[axis] for axis in layout.output_axes)
        written = publish(outputs, files.stem, layout, axes, _per_axis(layout, image.scale, 1.0),
                          _per_axis(layout, image.translate, 0.0), chunk, compute)
    except BaseException:
        remove_partials([store.path, str(job.out_dir / f".{job.stem}_labels.partial")])
        outputs.remove_partials()
        raise
    written.append(write_text_atomically(files.objects, objects_csv(objects, len(layout.output_shape))))
    record = _parameters(job, image, layout, prompts, options, facts, planes, setups,
                         normalisation, files, outputs, chunk)
    written.append(write_text_atomically(files.parameters, to_json(record)))
    return written


def _masks_and_objects(job, prompts, planes, layout, normalisation, heatmap_paths, mask_paths,
                       options, facts, compute, chunk) -> list[dict]:
    """Every plane's object labels, numbered on from plane to plane as the in-memory path
    numbers them, and the objects table (plane by plane, prompt by prompt)."""
    chunk_boxes = boxes(layout.plane_shape, chunk)
    next_label = [0] * len(prompts)
    rows = []
    for number, plane in enumerate(planes):
        for p, prompt in enumerate(prompts):
            count, found = plane_objects(
                heatmap_paths[p], mask_paths[p], plane.index, normalisation[number].thresholds[p],
                options, layout.plane_shape, chunk_boxes, float(facts.patch_size), next_label[p],
                str(job.out_dir / f".{job.stem}_labels.partial"), compute, chunk)
            next_label[p] += count
            rows += with_plane_index([{"prompt": prompt, **row} for row in found], plane.index)
    return rows


def _blend_tasks(store, number, plane, plan, shape, setup, model, scoring, options,
                 logit_scale, threads) -> list:
    from dask import delayed

    window_tasks = []
    for first in range(0, len(plan.starts), WINDOWS_PER_TASK):
        starts = plan.starts[first : first + WINDOWS_PER_TASK]
        task = delayed(window_scores, pure=False)(plane, starts, shape, setup, model,
                                                  scoring, options, threads)
        window_tasks.append((starts, task))
    blocks = []
    for cells in boxes(plan.grid_shape, GRID_BLOCK_CELLS):
        needed = [
            task for starts, task in window_tasks
            if any(overlaps(shape.cell_box(start), cells) for start in starts)
        ]
        blocks.append(delayed(blend_block, pure=False)(
            store, number, cells, shape, needed, setup, scoring, logit_scale))
    return blocks


def _normalise_planes(store: GridStore, planes: int, chunk_boxes: list[Box], scoring: Scoring,
                      options: SegmentOptions, compute: Compute) -> list[Normalisation]:
    """Each plane's normalisation, from at most two cheap passes over the upsampled grid.

    Min-max heatmaps need each prompt's minimum and maximum over the whole plane; Otsu's
    threshold then needs a histogram of the heatmap over its own range (256 bins, as
    scikit-image's ``threshold_otsu`` makes for the in-memory path).
    """
    from dask import delayed

    count = len(scoring.prompts)
    minmax = not scoring.calibrated
    method = options.threshold if options.threshold is not None else (
        "otsu" if minmax else 0.5)
    if not minmax and method != "otsu":
        # Calibrated probabilities are used as they are: nothing to measure first.
        fixed = Normalisation(np.zeros(count), np.ones(count), np.full(count, float(method)))
        return [fixed] * planes

    extrema = compute([
        delayed(chunk_extrema, pure=False)(store, number, box)
        for number in range(planes) for box in chunk_boxes
    ], "extrema")
    per_plane = len(chunk_boxes)
    normalisations, heatmap_ranges = [], []
    for number in range(planes):
        mins, maxs = zip(*extrema[number * per_plane : (number + 1) * per_plane], strict=True)
        low, high = np.min(mins, axis=0).astype(np.float64), np.max(maxs, axis=0).astype(np.float64)
        if minmax:
            span = high - low
            ranges = np.stack([np.zeros(count), np.where(span > 0, 1.0, 0.0)], axis=-1)
        else:
            ranges = np.stack([low, high], axis=-1)
            low, span = np.zeros(count), np.ones(count)
        normalisations.append(Normalisation(low, span, np.full(count, np.nan)))
        heatmap_ranges.append(ranges)
    if method != "otsu":
        return [replace(n, thresholds=np.full(count, float(method))) for n in normalisations]

    histograms = compute([
        delayed(chunk_histogram, pure=False)(store, number, box, normalisations[number],
                                             heatmap_ranges[number])
        for number in range(planes) for box in chunk_boxes
    ], "histograms")
    result = []
    for number, normalisation in enumerate(normalisations):
        counts = np.sum(histograms[number * per_plane : (number + 1) * per_plane], axis=0)
        thresholds = [otsu(counts[p], heatmap_ranges[number][p]) for p in range(count)]
        result.append(replace(normalisation, thresholds=np.asarray(thresholds)))
    return result


def otsu(counts: np.ndarray, bounds: np.ndarray) -> float:
    """Otsu's threshold from a histogram over ``bounds``; 1.0 when there is nothing to split."""
    from skimage.filters import threshold_otsu

    if bounds[1] <= bounds[0] or np.count_nonzero(counts) < 2:
        return 1.0  # as the engine's Otsu for a constant map: the mask stays empty
    edges = np.linspace(bounds[0], bounds[1], OTSU_BINS + 1)
    return float(threshold_otsu(hist=(counts, (edges[:-1] + edges[1:]) / 2)))


# -- files -----------------------------------------------------------------------------------
def create_grid_store(job, planes, prompts, grid_shape, patch_size,
                      block: int = GRID_BLOCK_CELLS) -> GridStore:
    """The temporary grid of scores, in chunks of ``block`` cells: the blocks tasks write
    (one writer per chunk, so workers never write one chunk at once)."""
    import zarr

    path = job.out_dir / f".{job.stem}_grid.partial.zarr"
    if path.exists():
        shutil.rmtree(path)
    block = min(block, max(grid_shape))
    zarr.open_array(str(path), mode="w", shape=(planes, prompts, *grid_shape),
                    chunks=(1, prompts, block, block), dtype="float32")
    return GridStore(str(path), patch_size, tuple(grid_shape))


def lazily_readable(path: Path) -> bool:
    """TIFF and zarr inputs, when the ``[cluster]`` extra is there to read them by windows
    (without it, ``out_of_core="auto"`` runs every image whole)."""
    tiff_or_zarr = is_zarr_store(path) or path.suffix.lower() in TIFF_SUFFIXES
    return tiff_or_zarr and all(available(module) for module in OUT_OF_CORE_MODULES)


def remove_partials(paths: list[str]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _per_axis(layout: PlaneLayout, values, default: float) -> tuple[float, ...]:
    return layout.output_values(values) or (default,) * len(layout.output_shape)


def _output_name(output, out_dir: Path) -> str:
    """Where an output is, for the parameters JSON: its name beside it, else its full path."""
    return output.final.name if output.final.parent == out_dir else str(output.final)


def _parameters(job, image, layout, prompts, options, facts, planes, setups, normalisation,
                files, outputs, chunk) -> dict:
    plane_records = []
    for plane, setup, norm in zip(planes, setups, normalisation, strict=True):
        record = {
            "index": list(plane.index),
            "contrast_limits": [setup["mapping"].low, setup["mapping"].high],
            "thresholds": norm.thresholds.tolist(),
        }
        if setup["presence"] is not None:
            record["presence"] = np.asarray(setup["presence"]).tolist()
        else:
            record["score_min"] = norm.low.tolist()
            record["score_max"] = (norm.low + norm.span).tolist()
        plane_records.append(record)
    return {
        **parameters_header(job, image, layout, "out-of-core", prompts, facts.description,
                            options),
        "objects": files.objects.name,
        "chunk": chunk,
        "planes": plane_records,
        "scale": list(_per_axis(layout, image.scale, 1.0)),
        "translate": list(_per_axis(layout, image.translate, 0.0)),
        "outputs": {
            prompt: {"slug": files.slugs[prompt], "mask": _output_name(mask, job.out_dir),
                     "heatmap": _output_name(heatmap, job.out_dir), "format": "ome-zarr"}
            for prompt, mask, heatmap in zip(prompts, outputs.masks, outputs.heatmaps, strict=True)
        },
    }
