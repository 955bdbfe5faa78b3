"""``napari-gem segment``: the batch command line.

``add_segment_parser`` adds the subcommand to the ``napari-gem`` parser and
``run_segment`` runs it. Exit status: 0 when every image was written or skipped,
1 when some image failed, 2 for bad arguments or a model that cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys

from ..batch.models import ModelSpec
from ..batch.runner import OUT_OF_CORE_ABOVE, OUT_OF_CORE_MODES, segment_files
from ..engine import ModelLoadError, SegmentOptions
from ..engine.described import describe
from ..engine.devices import DEVICE_CHOICES, PRECISION_CHOICES
from ..engine.loading import DEFAULT_MODEL, DEFAULT_WEIGHTS
from .errors import report_error
from .method_args import (
    add_method_arguments,
    method_options_from_args,
)
from .option_flags import add_option_flags, options_from_flags

DESCRIPTION = """\
Segment many images with a dense method (--method): for every prompt, write a heatmap,
a mask, an objects table and the parameters of the run. INPUT can be image files (TIFF,
OME-TIFF, PNG, JPEG), zarr or OME-Zarr stores, folders of them, or glob patterns
("data/*.tif"). Stacks are segmented plane by plane. A re-run skips images that are done.
"""

EPILOG = """\
examples:
  napari-gem segment cells/ --prompts "nucleus, membrane" --out results/
  napari-gem segment "scans/*.ome.tif" -p tumour -o out/ --threshold 0.6 --min-size 50
  napari-gem segment big.ome.zarr -p vessel -o out/ --workers 4
  napari-gem segment data/ -p cell -o out/ --scheduler tcp://10.0.0.5:8786
  napari-gem segment cells/ -p nucleus -o out/ --model napari-gem-demo-micrographs
  napari-gem segment --encoding slide.features.zarr -p "tumour, stroma" -o out/

outputs per image (STEM = file name without extension, SLUG = the prompt made file-safe):
  STEM_SLUG_mask.tif       instance labels (uint8/uint16/int32), also as .png when 2D
  STEM_SLUG_heatmap.tif    float32 scores in [0, 1]
  STEM_objects.csv         one row per object: area, centroid, box, mean/max score
  STEM_parameters.json     model, options, thresholds; written last (marks the image done)
  Planes larger than memory (see --out-of-core) get STEM_SLUG_heatmap.zarr and
  STEM_SLUG_mask.zarr instead (every mask option applied, objects across chunks).

exit status: 0 all done, 1 some images failed, 2 bad arguments or model load failure.
"""


def add_segment_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``segment`` to an argparse subparsers object; its handler is :func:`run_segment`."""
    parser = subparsers.add_parser(
        "segment", help="segment many images from the command line (batch)",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_io_arguments(parser)
    add_model_arguments(parser.add_argument_group("model"))
    options = parser.add_argument_group("segmentation (image preparation, scores, masks, refinement)")
    add_option_flags(options, describe(SegmentOptions))
    options.add_argument("--threshold", type=_threshold,
                         help="mask threshold: a number in [0, 1], otsu, or auto (Otsu for "
                         "minmax, 0.5 for calibrated; the default)")
    _add_run_arguments(parser.add_argument_group("running"))
    parser.set_defaults(handler=run_segment)
    return parser


def run_segment(args: argparse.Namespace) -> int:
    """Run the batch for parsed arguments; print a summary; return the exit status."""
    try:
        if not args.inputs and not args.encoding:
            raise ValueError("give the images to segment (INPUT), or a saved encoding (--encoding)")
        model = None if args.encoding and args.model is None else model_from_args(args)
        report = segment_files(
            args.inputs, args.prompts, args.out, model=model, encoding=args.encoding,
            options=options_from_args(args), scheduler=args.scheduler, workers=args.workers,
            redo=args.redo, progress=not args.quiet, recursive=args.recursive,
            out_of_core=args.out_of_core,
            out_of_core_above=args.out_of_core_above, chunk=args.chunk, threads=args.threads,
        )
    except (ValueError, OSError, ModelLoadError) as error:
        # Bad arguments and model problems carry a message fit for a user: one line.
        return report_error(f"napari-gem segment: error: {error}", error, args)
    print(report.summary(), file=sys.stderr)
    return 0 if report.ok else 1


def model_from_args(args: argparse.Namespace) -> ModelSpec:
    pretrained = None if args.pretrained.lower() == "none" else args.pretrained  # none: random
    return ModelSpec(
        name=args.model or DEFAULT_MODEL, pretrained=pretrained, device=args.device,
        precision=None if args.precision == "auto" else args.precision,
        method=args.method, method_options=method_options_from_args(args),
        cache_dir=args.cache_dir, model_configs=tuple(args.model_config),
    )


def options_from_args(args: argparse.Namespace) -> SegmentOptions:
    """SegmentOptions from the options given; the others keep the engine's defaults."""
    given = options_from_flags(args, describe(SegmentOptions))
    if args.threshold is not None:
        given["threshold"] = None if args.threshold == "auto" else args.threshold
    return SegmentOptions(**given)


# -- argument groups ---------------------------------------------------------------------------
def _add_io_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="image files, zarr stores, folders or glob patterns (with --encoding: "
                        "none, or the encoded image, checked to be it)")
    parser.add_argument("--encoding", metavar="STORE",
                        help="answer the prompts from a saved encoding (`napari-gem encode`): no "
                        "vision tower, chunk by chunk; the encode options are the encoding's")
    parser.add_argument("-p", "--prompts", required=True,
                        help='what to look for, comma-separated: "nucleus, membrane"')
    parser.add_argument("-o", "--out", required=True, metavar="DIR",
                        help="output folder (created if needed; subfolders of folder inputs "
                        "are kept with --recursive)")


def add_model_arguments(group) -> None:
    """The model flags (``segment`` and ``encode`` share them)."""
    group.add_argument("--model",
                       help="any model `napari-gem models` lists: an open_clip ViT name, "
                       "napari-gem-demo-micrographs, hf-hub:ORG/REPO, ... (default: ViT-B-16; "
                       "with --encoding, the encoding's model)")
    group.add_argument("--pretrained", default=DEFAULT_WEIGHTS, metavar="TAG_OR_FILE",
                       help="pretrained tag (downloaded once and cached) or the path of a local "
                       "checkpoint file (default: the model's own: openai where a CLIP has "
                       "that tag, the demo's packaged weights, a repository's)")
    group.add_argument("--model-config", action="append", default=[], metavar="JSON",
                       help="extra open_clip model-config JSON file (or folder) to register, "
                       "for custom architectures; the file name is the model name; repeatable")
    group.add_argument("--cache-dir", metavar="DIR",
                       help="where downloaded weights are cached (default: open_clip's)")
    group.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                       help="auto: CUDA, then Apple MPS, then CPU (default: auto)")
    group.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                       help="auto: fp32 on the CPU, bf16/fp16 on a GPU (default: auto)")
    add_method_arguments(group)


def _add_run_arguments(group) -> None:
    group.add_argument("--recursive", action="store_true",
                       help="also look for images in subfolders of folder inputs")
    group.add_argument("--redo", action="store_true",
                       help="segment images again even when their outputs are complete")
    add_out_of_core_arguments(group)


def add_out_of_core_arguments(group, *, chunk: bool = True) -> None:
    """Where the work runs and when planes go window by window (``segment`` and ``encode``)."""
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing dask.distributed cluster, e.g. "
                       "tcp://host:8786 (workers must see the input and output folders)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="start a local dask cluster of N worker processes (default: run "
                       "in this process)")
    group.add_argument("--threads", type=int, metavar="N",
                       help="PyTorch threads per process (default: all cores in-process, "
                       "cores / N with --workers)")
    group.add_argument("--out-of-core", choices=OUT_OF_CORE_MODES, default="auto",
                       dest="out_of_core",
                       help="window-by-window processing into zarr outputs, for TIFF and "
                       "zarr planes larger than memory: auto (planes above "
                       "--out-of-core-above pixels), always, never (default: auto)")
    group.add_argument("--out-of-core-above", type=int, default=OUT_OF_CORE_ABOVE,
                       dest="out_of_core_above", metavar="PIXELS",
                       help="plane size (height x width) for auto (default: 8192 x 8192 = "
                       f"{OUT_OF_CORE_ABOVE})")
    if chunk:
        group.add_argument("--chunk", type=int, default=1024, metavar="PIXELS",
                           help="chunk side of zarr outputs (default: 1024)")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bar (the summary is still printed)")


def _threshold(text: str) -> float | str:
    if text.lower() in ("otsu", "auto"):
        return text.lower()
    return _number(text, "threshold")


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
