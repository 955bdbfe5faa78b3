"""``python benchmarks/bench_whole_slide.py``: a whole slide encoded once, then prompts on its saved encoding.

For each ``--sizes`` side it generates a pyramidal OME-Zarr slide (uint16, NGFF 0.4,
``--chunk``-pixel chunks, levels halved until one chunk holds a level), written chunk by
chunk: smooth background noise with bright, object-like blobs. It then measures

- the encode (:func:`napari_gem.batch.saved_encoding.encode_file` into a saved encoding, out of core,
  in process) and its seconds per megapixel, against the smallest slide's (flat is the
  target: a window costs the same wherever it is);
- the peak resident memory of the process that runs the windows (the driver in process,
  each worker process with ``--workers``): target ≤ 1.5 GB with the demo model, flat in
  the slide's size;
- ``--prompts`` new prompts asked in one call on the saved encoding, once per
  ``--instances`` mode (watershed, components), and their share of the encode (target
  ≤ 5 %), with the peak memory of that call;
- on the smallest slide, the throughput with each of ``--workers`` LocalCluster workers
  against the in-process run timed in the same script;
- a real-size tower (``--tower``, random weights: the same cost as trained ones) on the
  smallest slide, last (this process keeps the models it loaded), since the prompts'
  share depends on how expensive the tower is;
- a PROJECTION of a ``--project-side``² slide on N workers from the measured rate.

``--out DIR`` keeps the slides and encodings; a later run with ``--reuse`` asks prompts of
the encodings found there and reads their encode figures from the record written beside
them (a long encode measured once, prompts measured again after a change).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from script import run_script
from timing import PeakMemory, emit_table

#: Prompts asked on each saved encoding (the demo model's vocabulary).
PROMPTS = ("nucleus", "bright spot", "ring", "fibre", "crystal", "debris", "diatom")
DEMO_MODEL = "napari-gem-demo-micrographs"
MEMORY_TARGET_GB = 1.5
PROMPT_SHARE_TARGET = 0.05
#: Background noise: one random value per ``FIELD_STEP`` pixels, interpolated in between.
FIELD_STEP = 128
#: One possible blob per ``BLOB_CELL``² pixels, kept inside its cell.
BLOB_CELL = 40


# -- the generated slide ----------------------------------------------------------------------
@dataclass(frozen=True)
class SlidePattern:
    """What a generated slide looks like, decided up front so that any chunk can be drawn alone."""

    side: int
    field: np.ndarray  # coarse background values, one per FIELD_STEP pixels
    present: np.ndarray  # per blob cell: whether it holds a blob
    centre: np.ndarray  # per blob cell: the blob's centre (y, x) inside the cell
    radius: np.ndarray
    brightness: np.ndarray

    @classmethod
    def of(cls, side: int, seed: int = 0) -> SlidePattern:
        rng = np.random.default_rng(seed)
        steps = side // FIELD_STEP + 2
        cells = -(-side // BLOB_CELL)
        radius = rng.uniform(5.0, 14.0, (cells, cells))
        centre = np.stack([rng.uniform(radius + 1, BLOB_CELL - radius - 1) for _ in range(2)], axis=-1)
        return cls(side, rng.normal(0.0, 1.0, (steps, steps)), rng.random((cells, cells)) < 0.45,
                   centre, radius, rng.uniform(0.4, 1.0, (cells, cells)))

    def pixels(self, y0: int, y1: int, x0: int, x1: int, seed: int = 0) -> np.ndarray:
        """The slide's uint16 pixels in rows ``y0:y1``, columns ``x0:x1``."""
        from scipy.ndimage import map_coordinates

        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        background = map_coordinates(self.field, [ys / FIELD_STEP, xs / FIELD_STEP], order=3)
        cy, cx = (ys // BLOB_CELL).astype(int), (xs // BLOB_CELL).astype(int)
        dy = ys - (cy * BLOB_CELL + self.centre[cy, cx, 0])
        dx = xs - (cx * BLOB_CELL + self.centre[cy, cx, 1])
        inside = np.clip(1.0 - (dy**2 + dx**2) / self.radius[cy, cx] ** 2, 0.0, None)
        blobs = np.where(self.present[cy, cx], self.brightness[cy, cx] * np.sqrt(inside), 0.0)
        noise = np.random.default_rng((seed, y0, x0)).normal(0.0, 0.03, ys.shape)
        value = 0.25 + 0.05 * background + 0.6 * blobs + noise
        return (np.clip(value, 0.0, 1.0) * 65535).astype(np.uint16)


def write_slide(path: Path, side: int, chunk: int = 1024, seed: int = 0) -> Path:
    """A pyramidal OME-Zarr (NGFF 0.4) slide of ``side``² pixels, written chunk by chunk."""
    import zarr

    from napari_gem.io.ome_zarr_outputs import create_multiscale, downsample_block, level_shapes, multiscales

    pattern = SlidePattern.of(side, seed)
    level0 = zarr.open_array(create_multiscale(path, (side, side), "uint16", (chunk, chunk), chunk),
                             mode="r+")
    for y0, y1, x0, x1 in _boxes((side, side), chunk):
        level0[y0:y1, x0:x1] = pattern.pixels(y0, y1, x0, x1, seed)
    shapes = level_shapes((side, side), chunk)
    for level in range(1, len(shapes)):
        for box in _boxes(shapes[level], chunk):
            downsample_block(str(path), level, (), box, "image")
    entry = multiscales("slide", "YX", (side, side), chunk, (1.0, 1.0), (0.0, 0.0), "0.4", "image")
    zarr.open_group(str(path), mode="r+").attrs["multiscales"] = [entry]
    return path


def _boxes(shape, chunk: int):
    height, width = shape
    for y0 in range(0, height, chunk):
        for x0 in range(0, width, chunk):
            yield y0, min(y0 + chunk, height), x0, min(x0 + chunk, width)


# -- measuring ---------------------------------------------------------------------------------
@dataclass
class EncodeRun:
    """One measured encode: seconds, and the peak memory of the process that ran the windows."""

    seconds: float
    peak_bytes: int
    recorded: bool = False

    @staticmethod
    def record_path(encoding: Path) -> Path:
        return encoding.with_name(encoding.name + ".bench.json")

    def save(self, encoding: Path) -> None:
        record = {"seconds": self.seconds, "peak_bytes": self.peak_bytes}
        self.record_path(encoding).write_text(json.dumps(record))

    @classmethod
    def load(cls, encoding: Path) -> EncodeRun | None:
        path = cls.record_path(encoding)
        if not (encoding.exists() and path.exists()):
            return None
        return cls(**json.loads(path.read_text()), recorded=True)


def measure_encode(slide: Path, encoding: Path, spec, workers: int | None = None) -> EncodeRun:
    """Encode ``slide`` out of core into ``encoding`` (in process, or on ``workers`` workers)."""
    from napari_gem.batch.models import loaded_model
    from napari_gem.batch.saved_encoding import encode_file

    shutil.rmtree(encoding, ignore_errors=True)
    if workers is None:
        loaded_model(spec)  # loaded before the clock starts (workers load theirs inside it)
    with PeakMemory(interval=0.05) as memory:
        start = time.perf_counter()
        encode_file(slide, encoding, model=spec, workers=workers, progress=False, out_of_core="always")
        seconds = time.perf_counter() - start
    return EncodeRun(seconds, memory.worker if workers else memory.driver)


def measure_prompts(encoding: Path, prompts, out_dir: Path, chunk: int, instances: str) -> tuple[float, int]:
    """Seconds and peak resident memory to answer ``prompts`` in one call on the saved
    encoding, objects numbered the way ``instances`` says (every output written)."""
    from napari_gem import SegmentOptions
    from napari_gem.batch.saved_encoding import open_encoding

    shutil.rmtree(out_dir, ignore_errors=True)
    saved = open_encoding(encoding)
    with PeakMemory(interval=0.05) as memory:
        start = time.perf_counter()
        saved.segment(list(prompts), out_dir, options=SegmentOptions(instances=instances), chunk=chunk)
        seconds = time.perf_counter() - start
    return seconds, memory.driver


# -- the run ---------------------------------------------------------------------------------
ENCODE_COLUMNS = ("model", "slide", "megapixels", "encode on", "encode s", "s / MP", "vs baseline",
                  "MP / s", "peak RSS GB", "memory target")
PROMPT_COLUMNS = ("model", "slide", "instances", "prompts", "prompts s", "s / prompt", "peak RSS GB",
                  "prompts / encode", "target")
PROJECTION_COLUMNS = ("PROJECTION (not measured)", "workers", "hours")


def _model_spec(name: str):
    from napari_gem.batch.models import ModelSpec

    return ModelSpec(name=name) if name == DEMO_MODEL else ModelSpec(name=name, pretrained=None)


def bench(args: argparse.Namespace) -> int:
    sizes = sorted(set(args.sizes))
    if not sizes or min(sizes) < 256:
        raise ValueError("--sizes: give sides of at least 256 pixels")
    if not 0 <= args.prompts <= len(PROMPTS):
        raise ValueError(f"--prompts: between 0 (encode only) and {len(PROMPTS)}")
    if any(n < 1 for n in args.workers):
        raise ValueError("--workers: each must be at least 1")
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="whole-slide-"))
    root.mkdir(parents=True, exist_ok=True)
    encodes, prompt_rows, rates = [], [], {}

    def measure(model: str, side: int, workers: int | None) -> None:
        encoding, run = _encoded(root, side, model, workers, args.reuse)
        if model == args.model and workers is None:
            rates[side] = run.seconds / (side * side / 1e6)
        encodes.append(_encode_row(model, side, workers, run, rates[sizes[0]]))
        _progress(ENCODE_COLUMNS, encodes[-1])
        if workers is None:  # prompts are asked in process; workers' rows time the encode
            for instances in args.instances if args.prompts else ():
                prompt_rows.append(_prompt_row(model, side, encoding, run, instances, args))
                _progress(PROMPT_COLUMNS, prompt_rows[-1])

    try:
        for side in sizes:
            slide = root / f"slide-{side}.ome.zarr"
            if not (args.reuse and slide.exists()):
                write_slide(slide, side, args.chunk)
            measure(args.model, side, None)
            for workers in args.workers if side == sizes[0] else ():
                measure(args.model, side, workers)
        if args.tower:  # last: this process keeps its models, whose memory later rows would count
            measure(args.tower, sizes[0], None)
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    emit_table(encodes, args.table, ENCODE_COLUMNS)
    if prompt_rows:
        print()
        emit_table(prompt_rows, None, PROMPT_COLUMNS)
    print()
    emit_table(projection_rows(rates, args.project_side, args.project_workers), None, PROJECTION_COLUMNS)
    return 0


def _encoded(root: Path, side: int, model: str, workers: int | None, reuse: bool) -> tuple[Path, EncodeRun]:
    """The saved encoding of the ``side``² slide by ``model``: made and timed now, or found
    with its record."""
    encoding = root / (f"{Path(model).name}-{side}" + (f"-w{workers}" if workers else "") + ".features.zarr")
    run = EncodeRun.load(encoding) if reuse else None
    if run is None:
        run = measure_encode(root / f"slide-{side}.ome.zarr", encoding, _model_spec(model), workers)
        run.save(encoding)
    return encoding, run


def _encode_row(model: str, side: int, workers: int | None, run: EncodeRun,
                baseline: float) -> tuple[str, ...]:
    megapixels = side * side / 1e6
    where = f"{workers} worker(s)" if workers else "in process"
    if run.recorded:
        where += " (recorded)"
    gigabytes = run.peak_bytes / 1e9
    return (Path(model).name, f"{side}²", f"{megapixels:.1f}", where, f"{run.seconds:.1f}",
            f"{run.seconds / megapixels:.2f}", f"{run.seconds / megapixels / baseline:.2f}x",
            f"{megapixels / run.seconds:.3f}", f"{gigabytes:.2f}",
            "met" if gigabytes <= MEMORY_TARGET_GB else "MISSED")


def _prompt_row(model: str, side: int, encoding: Path, run: EncodeRun, instances: str,
                args: argparse.Namespace) -> tuple[str, ...]:
    prompts = PROMPTS[: args.prompts]
    out = encoding.with_name(encoding.name.replace(".features.zarr", f"-{instances}"))
    seconds, peak = measure_prompts(encoding, prompts, out, args.chunk, instances)
    share = seconds / run.seconds
    return (Path(model).name, f"{side}²", instances, str(len(prompts)), f"{seconds:.1f}",
            f"{seconds / len(prompts):.2f}", f"{peak / 1e9:.2f}", f"{share:.3f}",
            "met" if share <= PROMPT_SHARE_TARGET else "MISSED")


def _progress(columns, row) -> None:
    """Each row as it is measured (a long run shows where it is)."""
    print(" | ".join(f"{name}={value}" for name, value in zip(columns, row, strict=True)),
          file=sys.stderr, flush=True)


def projection_rows(rates: dict[int, float], side: int, workers: list[int]) -> list[tuple[str, ...]]:
    """Hours for a ``side``² slide on N workers, each at the largest measured slide's rate."""
    if not rates:
        return []
    measured = max(rates)
    megapixels = side * side / 1e6
    label = (f"{side}² ({megapixels:,.0f} MP) at the {measured}² in-process rate "
             f"({rates[measured]:.2f} s/MP), linear in workers")
    return [(label, str(n), f"{megapixels * rates[measured] / n / 3600:.2f}") for n in workers]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench_whole_slide.py", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384],
                        help="sides of the generated slides, in pixels")
    parser.add_argument("--model", default=DEMO_MODEL, help="the model that encodes every slide")
    parser.add_argument("--tower", default="ViT-B-16",
                        help="a real-size tower (random weights) timed on the smallest slide; '' skips it")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                        help="LocalCluster workers timed on the smallest slide (none: skip)")
    parser.add_argument("--prompts", type=int, default=5,
                        help="new prompts asked in one call (0: encode only)")
    parser.add_argument("--instances", nargs="+", default=["watershed", "components"],
                        choices=["watershed", "components"], help="how the prompts' objects are numbered")
    parser.add_argument("--chunk", type=int, default=1024, help="chunk side of the slides and the outputs")
    parser.add_argument("--out", help="keep slides, encodings and outputs here (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the slides and encodings (with their recorded encode figures) in --out")
    parser.add_argument("--project-side", type=int, default=100_000, help="the projected slide's side")
    parser.add_argument("--project-workers", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--table", help="also write the encode table (Markdown) here")
    return parser


def main(argv=None) -> int:
    return run_script(build_parser(), bench, argv)


if __name__ == "__main__":
    raise SystemExit(main())
