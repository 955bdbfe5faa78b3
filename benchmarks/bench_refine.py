"""``python benchmarks/bench.py``: the time of a stroke refinement after encoding, against the encode itself.

A few generated micrographs (``napari_gem.demo.scene``) at ``--refine-image`` pixels are
encoded with the bench's model; each is then refined from one positive and one negative
stroke (3 px disks) of a present concept. Target (issue 16): a refinement of a 1024² image
takes ≤ 200 ms after encoding, on the CPU. The first refinement of an image also builds
its cached classifier inputs (dense-feature components, filters, the text prior) and is
reported apart.
"""

from __future__ import annotations

import statistics
import time

REFINE_TARGET_MS = 200.0
#: Demo scenes timed (held-out seeds) and refinements per scene after the first.
REFINE_SCENES = 2
REFINE_REPEATS = 3


def add_refine_bench_arguments(parser) -> None:
    parser.add_argument("--refine-image", type=int, default=1024,
                        help="side of the images refined from strokes (0: skip)")


def measure_refinement(model, side: int, input_size: int, scenes: int = REFINE_SCENES,
                       repeats: int = REFINE_REPEATS) -> dict[str, float]:
    """Median seconds of an encode, of a first refinement and of later refinements (``side``² scenes)."""
    from annotator import disk, interior_point

    from napari_gem.demo import scene
    from napari_gem.demo.scenes import EVAL_SEED_START
    from napari_gem.engine.encoded import encode
    from napari_gem.engine.options import SegmentOptions

    options = SegmentOptions(input_size=input_size)
    encodes, firsts, laters = [], [], []
    for seed in range(EVAL_SEED_START, EVAL_SEED_START + scenes):
        image, masks = scene(seed, side)
        concept, truth = sorted(masks.items())[0]
        started = time.perf_counter()
        encoded = encode(image, model, options)
        encodes.append(time.perf_counter() - started)
        positive = disk(truth.shape, interior_point(truth))
        negative = disk(truth.shape, interior_point(~truth)) & ~positive
        for repeat in range(1 + repeats):
            started = time.perf_counter()
            encoded.refine(concept, positive=positive, negative=negative)
            (firsts if repeat == 0 else laters).append(time.perf_counter() - started)
    return {"encode": statistics.median(encodes), "first": statistics.median(firsts),
            "refine": statistics.median(laters)}


def refine_rows(times: dict[str, float], side: int) -> list[tuple[str, str, str, str]]:
    """The bench table's rows for :func:`measure_refinement`."""
    ms = 1000 * times["refine"]
    return [
        (f"encode {side}px (s)", f"{times['encode']:.3f}", "", ""),
        (f"refine {side}px from 2 strokes, first (builds the inputs) (ms)", f"{1000 * times['first']:.0f}",
         "", ""),
        (f"refine {side}px from 2 strokes after encoding (ms)", f"{ms:.0f}", f"<= {REFINE_TARGET_MS:.0f}",
         "yes" if ms <= REFINE_TARGET_MS else "NO"),
        (f"refine / encode {side}px", f"{times['refine'] / times['encode']:.2f}x", "", ""),
    ]

