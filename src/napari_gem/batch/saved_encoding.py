"""Encode once, ask any prompt later: saved encodings made out of core and answered by chunks.

:func:`encode_file` writes an image's saved encoding (:mod:`napari_gem.engine.saved_encoding`):
a plane larger than memory window by window as dask tasks (the out-of-core path's windows,
features blended block by block straight into the store), a smaller image through the
engine's :func:`~napari_gem.encode` and :meth:`~napari_gem.EncodedImage.save`.

:func:`open_encoding` opens one; :meth:`SavedEncoding.segment` answers prompts from it.
A tiled grid is answered chunk by chunk as dask tasks, with no vision tower: per block of
the grid the cosine with the prompts (read one feature block at a time), then the
out-of-core path's own passes (:func:`.out_of_core.finish_planes`): statistics of the
upsampled scores, heatmap chunks, the engine's masks and objects across chunk borders.
A whole-image grid (a small image resized to the model input) is answered in memory by
the engine. Either way the outputs are those of ``napari-gem segment``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..engine import PromptableModel, SegmentOptions, encode
from ..engine.encoded import EncodedImage, overview_embedding, refuse_encode_options
from ..engine.extras import require
from ..engine.maps import prompt_softmax
from ..engine.preprocess import IntensityMap, intensity_map, to_pixels, to_rgb
from ..engine.saved_encoding import (
    ATTRIBUTE,
    EncodingStore,
    Geometry,
    encoding_record,
    image_fingerprint,
)
from ..engine.text import clean_prompts
from ..engine.tiling import plan_windows, read_window
from ..io.export import output_files, write_outputs
from ..io.images import LoadedImage, image_stem, open_image
from ..io.planes import PlaneLayout, PlaneView
from .execution import open_executor
from .jobs import ImageJob, parameters_header
from .models import ModelSpec, model_identity, model_of, use_torch_threads
from .out_of_core import (
    OUT_OF_CORE_ABOVE,
    WINDOWS_PER_TASK,
    GridStore,
    ModelFacts,
    PlaneRef,
    Scoring,
    blend_windows,
    calibrated_scores,
    create_grid_store,
    finish_planes,
    lazily_readable,
    remove_partials,
)
from .out_of_core_outputs import create_outputs
from .progress import RunObserver
from .windows import WindowShape, overlaps

ENCODING_SUFFIX = ".features.zarr"


# -- encoding a plane out of core ------------------------------------------------------------
def encode_setup(plane: PlaneRef, model, options: SegmentOptions, threads: int | None) -> dict:
    """The plane's contrast mapping and the CLIP embedding of its strided overview."""
    use_torch_threads(threads)
    view = plane.open()
    mapping = intensity_map(view, options.contrast, options.percentiles)
    embedding = overview_embedding(view, mapping, model_of(model), options)
    return {"mapping": mapping, "embedding": embedding.cpu().numpy()}


def window_features(plane: PlaneRef, starts, shape: WindowShape, setup: dict, model,
                    options: SegmentOptions, threads: int | None) -> dict:
    """Dense features ``[E, wgh, wgw]`` of each window (channels first, as blending takes them)."""
    use_torch_threads(threads)
    loaded, view = model_of(model), plane.open()
    found = {}
    for first in range(0, len(starts), options.window_batch):
        batch = starts[first : first + options.window_batch]
        pixels = torch.stack([
            to_pixels(to_rgb(read_window(view, start, shape.window_shape), setup["mapping"]))
            for start in batch])
        with torch.inference_mode():
            features = loaded.encode_image(pixels, with_clip_embedding=False).dense_features
        for start, window in zip(batch, features.float().cpu().numpy(), strict=True):
            found[tuple(start)] = window.transpose(2, 0, 1)
    return found


def blend_feature_block(store: EncodingStore, cells, shape: WindowShape, window_results) -> None:
    """Blend the windows' features over one block of the grid and write it into the store."""
    width = next(iter(next(r for r in window_results if r).values())).shape[0]
    blended = blend_windows(cells, shape, window_results, width)
    store.write_features(cells, blended.transpose(1, 2, 0))


def encode_large_plane(source: Path, out: Path, model, options: SegmentOptions, facts: ModelFacts,
                       compute, *, threads: int | None = None,
                       feature_dtype: str = "float16") -> Path:
    """The saved encoding of a 2D image read window by window (never whole).

    A store already at ``out`` for this very request is resumed: only its missing blocks
    (and the windows they need) are computed; a complete one is returned as it is.
    """
    from dask import delayed

    image = open_image(source, lazy=True)
    plane = PlaneRef(str(source), _only_plane_index(source, PlaneLayout.of(image)))
    layout = PlaneLayout.of(image)
    plan = plan_windows(layout.plane_shape, options.window, options.overlap, facts.patch_size)
    shape = WindowShape.of(plan)
    geometry = Geometry(layout.plane_shape, plan.padded_shape, plan.grid_shape, facts.patch_size,
                        True, len(plan.starts))
    record = encoding_record(facts.description, options, plane.open(), str(source),
                             shape=layout.plane_shape, geometry_of_source=_source_geometry(image))
    if EncodingStore(str(out)).holds(record, feature_dtype, geometry) == "complete":
        return Path(out)
    # The overview first: its embedding says the feature width the store is made with (and
    # its contrast limits are the windows' on a resumed run too: the same request, the same).
    setup = compute([delayed(encode_setup, pure=False)(plane, model, options, threads)], "overview")[0]
    store = EncodingStore.create(out, geometry=geometry, embed_dim=len(setup["embedding"]),
                                 record=record, feature_dtype=feature_dtype, resume=True)
    pending = store.pending_blocks()
    window_tasks = []
    for first in range(0, len(plan.starts), WINDOWS_PER_TASK):
        starts = plan.starts[first : first + WINDOWS_PER_TASK]
        if any(overlaps(shape.cell_box(start), cells) for start in starts for cells in pending):
            window_tasks.append((starts, delayed(window_features, pure=False)(
                plane, starts, shape, setup, model, options, threads)))
    compute([
        delayed(blend_feature_block, pure=False)(
            store, cells, shape,
            [task for starts, task in window_tasks
             if any(overlaps(shape.cell_box(start), cells) for start in starts)])
        for cells in pending], "windows")
    store.finish(setup["embedding"], contrast_limits=[setup["mapping"].low, setup["mapping"].high])
    return Path(out)


def plane_of_file(path: str | os.PathLike) -> PlaneView:
    """The one 2D plane of an image file, lazily where the file allows (a saved encoding's
    fingerprint check reads nine small patches of it)."""
    path = Path(path)
    image = open_image(path, lazy=lazily_readable(path) or None)
    layout = PlaneLayout.of(image)
    return PlaneView.of_layout(image.array, layout, _only_plane_index(path, layout))


def holds_encoding(store: str | os.PathLike, source: str | os.PathLike, description: dict,
                   options: SegmentOptions, feature_dtype: str = "float16") -> bool:
    """Whether the saved encoding at ``store`` is complete and encodes ``source`` for the model
    ``description`` names (identity and precision), ``options``' encode options and the feature
    type: the test :func:`encode_file` returns a store by without work."""
    plane = plane_of_file(source)
    record = encoding_record(description, options, plane, str(source), shape=tuple(plane.shape))
    return EncodingStore(str(store)).holds(record, feature_dtype) == "complete"


def _only_plane_index(source: Path, layout: PlaneLayout) -> tuple[int, ...]:
    if layout.num_planes != 1:
        raise ValueError(f"{source.name}: a saved encoding holds one plane; this image has "
                         f"{layout.num_planes} (encode a 2D image)")
    return next(iter(layout.plane_indices()))


def _source_geometry(image: LoadedImage) -> dict:
    """The source's axes, scale and translate of the encoded plane's own axes, in the plane's
    order (Y, X, then colour): a planar RGB slide (``CYX`` with RGB channels) or one with
    size-1 stack axes is encoded as the ``YX(S)`` picture its plane view gives."""
    layout = PlaneLayout.of(image)
    order = [layout.y, layout.x, *([layout.color] if layout.color is not None else [])]

    def of_plane(values):
        return [values[axis] for axis in order] if values else None

    return {"axes": "".join(image.axes[axis] for axis in order), "format": image.format,
            "scale": of_plane(image.scale), "translate": of_plane(image.translate)}


def encode_file(source: str | os.PathLike, out: str | os.PathLike | None = None, *,
                model: PromptableModel | ModelSpec | None = None,
                options: SegmentOptions | None = None, scheduler=None, workers: int | None = None,
                threads: int | None = None, progress: bool | RunObserver = True,
                out_of_core: str = "auto", out_of_core_above: int | None = None,
                feature_dtype: str = "float16") -> Path:
    """Encode one 2D image file into a saved encoding (default ``SOURCE.features.zarr``
    beside it); planes above ``out_of_core_above`` pixels (or all, ``out_of_core="always"``)
    window by window as dask tasks, in process or on a cluster as :func:`segment_files`.

    A store at ``out`` that already encodes this image with this model, precision and
    encode options is kept: complete, it is returned at once; interrupted (a crash, a
    cancel: :class:`~.progress.Cancelled`), the encode resumes with its missing blocks.
    ``progress``: a tqdm bar (True), nothing (False) or a :class:`~.progress.RunObserver`.
    """
    from ..engine.loading import segment_defaults

    source = Path(source)
    out = Path(out) if out is not None else source.with_name(image_stem(source) + ENCODING_SUFFIX)
    model = model if model is not None else ModelSpec()
    options = (options or SegmentOptions()).with_model_defaults(segment_defaults(model.name))
    if options.regions != "none":
        raise ValueError("regions: a saved encoding does not keep region consistency's regions; "
                         "encode with regions none")
    above = OUT_OF_CORE_ABOVE if out_of_core_above is None else out_of_core_above
    with open_executor(model, scheduler, workers, threads, progress) as executor:
        facts = executor.facts()
        image = open_image(source, lazy=True) if lazily_readable(source) else None
        large = image is not None and out_of_core != "never" and (
            out_of_core == "always" or np.prod(PlaneLayout.of(image).plane_shape) > above)
        if large:
            return encode_large_plane(source, out, executor.model, options, facts,
                                      executor.compute, threads=threads, feature_dtype=feature_dtype)
    loaded = open_image(source)
    layout = PlaneLayout.of(loaded)
    plane = PlaneView.of_layout(loaded.array, layout, _only_plane_index(source, layout))
    pixels = np.asarray(plane)
    record = encoding_record(facts.description, options, pixels, str(source), shape=pixels.shape)
    if EncodingStore(str(out)).holds(record, feature_dtype) == "complete":
        return out
    encoded = encode(pixels, model if isinstance(model, PromptableModel) else model_of(model), options)
    path = encoded.save(out, feature_dtype=feature_dtype, source=str(source))
    _add_source_geometry(path, loaded)
    return path


def _add_source_geometry(path: Path, image: LoadedImage) -> None:
    """The source file's axes and geometry, which an array in memory did not have."""
    import zarr

    group = zarr.open_group(str(path), mode="r+")
    record = dict(group.attrs[ATTRIBUTE])
    record["image"] = {**record["image"], **_source_geometry(image)}
    group.attrs[ATTRIBUTE] = record


# -- asking a saved encoding -------------------------------------------------------------------
def block_scores(encoding: EncodingStore, grid: GridStore, cells, text: np.ndarray, scoring: Scoring,
                 presence, logit_scale: float) -> None:
    """Cosine similarity of one block of saved features with the prompts, written to the grid."""
    features = torch.from_numpy(encoding.features(cells))
    scores = (features @ torch.from_numpy(text).T).permute(2, 0, 1).numpy()
    grid.write(0, cells, calibrated_scores(scores, scoring, presence, logit_scale))


@dataclass(frozen=True)
class SavedEncoding:
    """A saved encoding, opened: what it holds, and :meth:`segment` to ask it prompts."""

    store: EncodingStore

    @property
    def path(self) -> Path:
        return Path(self.store.path)

    @property
    def record(self) -> dict:
        return self.store.record

    @property
    def geometry(self) -> Geometry:
        return self.store.geometry

    @property
    def options(self) -> SegmentOptions:
        """The options it was encoded with."""
        return SegmentOptions.from_dict(self.record["options"])

    def model_spec(self) -> ModelSpec:
        """The model that made it, as a spec (built where it is asked)."""
        model = self.record["model"]
        return ModelSpec(name=model["model"], pretrained=model["pretrained"], method=model.get("method"),
                         method_options=model.get("method_options") or ())

    def segment(self, prompts: Sequence[str] | str, out_dir: str | os.PathLike, *,
                model: PromptableModel | ModelSpec | None = None,
                options: SegmentOptions | None = None, image=None, stem: str | None = None,
                scheduler=None, workers: int | None = None, threads: int | None = None,
                progress: bool | RunObserver = False, chunk: int = 1024) -> list[Path]:
        """Write heatmaps, masks, objects and parameters of ``prompts`` (as ``napari-gem
        segment``) into ``out_dir``; returns the written paths, the parameters JSON last.

        ``model``: the one that made the encoding (default: rebuilt from its record; another
        is refused). ``options``: score and mask options; an encode option chosen with
        another value than the encoding's is refused. ``image``: checked to be the encoded one.
        ``progress``: a tqdm bar per pass, nothing, or a :class:`~.progress.RunObserver`.
        """
        from .prompts import parse_prompts

        prompts = clean_prompts(parse_prompts(prompts))
        model, options = self.check(model, options, image)
        stem = stem or self._stem()
        job = ImageJob(Path(self.record["image"].get("source") or self.path), Path(out_dir), stem)
        with open_executor(model, scheduler, workers, threads, progress) as executor:
            loaded = model_of(executor.model)
            if not self.geometry.tiled:
                return self._in_memory(job, prompts, loaded, options)
            return self._by_chunks(job, prompts, loaded, options, executor.compute, chunk)

    def check(self, model=None, options: SegmentOptions | None = None, image=None):
        """``(model, options)`` to ask this encoding with: the encoding's model when ``model``
        is None, its options with the score and mask options ``options`` chose. Raises
        :class:`~napari_gem.engine.saved_encoding.EncodingMismatchError` (a ValueError) for
        another model or image, and ValueError for a changed encode option or PAMR."""
        model = model if model is not None else self.model_spec()
        self.store.check_model(model_identity(model))
        if image is not None:
            self.store.check_image(image)
        return model, self._asked_options(options)

    def _asked_options(self, options: SegmentOptions | None) -> SegmentOptions:
        encoded = self.options
        if options is None:
            return encoded
        chosen = {name: getattr(options, name) for name in options.given}
        refuse_encode_options(encoded, chosen)
        if chosen.get("refine", "none") != "none":
            raise ValueError("refine: PAMR refines with the image's pixels, which a saved "
                             "encoding does not hold; segment the image itself to refine")
        return encoded.replace(**chosen) if chosen else encoded

    def _stem(self) -> str:
        name = self.path.name
        return name[: -len(ENCODING_SUFFIX)] if name.endswith(ENCODING_SUFFIX) else image_stem(self.path)

    def _stand_in(self) -> LoadedImage:
        """The encoded image's geometry without its pixels (zero bytes: a broadcast)."""
        image = self.record["image"]
        shape = tuple(image["shape"])
        axes = image.get("axes") or ("YX" if len(shape) == 2 else "YXS")
        array = np.broadcast_to(np.zeros((), np.dtype(image.get("dtype") or "float32")), shape)
        scale = tuple(image["scale"]) if image.get("scale") else None
        translate = tuple(image["translate"]) if image.get("translate") else None
        return LoadedImage(self.path, array, axes, image.get("format") or "encoding", scale, translate)

    def _presence(self, loaded, scoring: Scoring, text: np.ndarray) -> np.ndarray:
        embedding = torch.from_numpy(self.store.clip_embedding())
        logits = (torch.from_numpy(text) @ embedding)[:, None, None]
        return prompt_softmax(logits, loaded.logit_scale, dim=0)[: len(scoring.prompts), 0, 0].numpy()

    def _by_chunks(self, job, prompts, loaded, options, compute, chunk) -> list[Path]:
        from dask import delayed

        scoring = Scoring.of(prompts, options)
        text = loaded.encode_text(scoring.competitors, scoring.templates).float().cpu().numpy()
        presence = self._presence(loaded, scoring, text) if scoring.calibrated else None
        geometry, image = self.geometry, self._stand_in()
        layout = PlaneLayout.of(image)
        facts = ModelFacts(geometry.cell, loaded.logit_scale, self.record["model"])
        files = output_files(job.out_dir, job.stem, prompts)
        job.out_dir.mkdir(parents=True, exist_ok=True)
        grid = create_grid_store(job, 1, len(prompts), geometry.grid_shape, geometry.cell,
                                 block=self.store.block_cells)
        outputs = create_outputs(files, prompts, layout, job.source, chunk)
        try:
            compute([delayed(block_scores, pure=False)(self.store, grid, cells, text, scoring,
                                                       presence, loaded.logit_scale)
                     for cells in self.store.blocks()], "scores")
        except BaseException:
            remove_partials([grid.path])
            outputs.remove_partials()
            raise
        low, high = self.record.get("contrast_limits") or (0.0, 1.0)
        setup = {"mapping": IntensityMap(low, high), "presence": presence}
        planes = [PlaneRef(str(job.source), ())]
        return finish_planes(job, image, layout, prompts, options, facts, planes, [setup], grid,
                             outputs, files, compute, chunk)

    def _in_memory(self, job, prompts, loaded, options) -> list[Path]:
        geometry = self.geometry
        encoded = EncodedImage(loaded, self.options, geometry.image_shape,
                               torch.from_numpy(self.store.features()),
                               torch.from_numpy(self.store.clip_embedding()), geometry.covered_shape,
                               geometry.num_windows)
        result = encoded.segment(prompts, **{name: getattr(options, name)
                                             for name in options.scoring_fields()})
        image = self._stand_in()
        layout = PlaneLayout.of(image)
        parameters = {**parameters_header(job, image, layout, "saved-encoding", prompts,
                                          self.record["model"], options),
                      "encoding": str(self.path), "planes": [{"index": [],
                                                              "thresholds": result.thresholds.tolist(),
                                                              "presence": result.presence.tolist()}]}
        return write_outputs(job.out_dir, job.stem, masks=dict(zip(prompts, result.instances, strict=True)),
                             heatmaps=dict(zip(prompts, result.heatmaps, strict=True)),
                             parameters=parameters, objects=result.objects(),
                             scale=layout.output_values(image.scale),
                             translate=layout.output_values(image.translate), overwrite=True)


def open_encoding(path: str | os.PathLike) -> SavedEncoding:
    """Open a saved encoding (``encode(...).save(path)`` or ``napari-gem encode``) to ask it
    prompts with :meth:`SavedEncoding.segment`; a clear ValueError for anything else."""
    require("zarr", extra="cluster", purpose="opening a saved encoding")
    return SavedEncoding(EncodingStore.open(path))


__all__ = ["ENCODING_SUFFIX", "SavedEncoding", "encode_file", "holds_encoding", "image_fingerprint",
           "open_encoding", "plane_of_file"]
