"""``napari-gem encode``: an image's saved encoding, asked any prompt later.

``napari-gem encode SLIDE --out SLIDE.features.zarr`` runs the vision tower once (a plane
larger than memory window by window, in this process or on a dask cluster);
``napari-gem segment --encoding SLIDE.features.zarr -p ...`` then answers prompts from it
without the vision tower. Exit status: 0 written, 2 bad arguments or a model that cannot load.
"""

from __future__ import annotations

import argparse
import sys

from ..batch.saved_encoding import ENCODING_SUFFIX, encode_file
from ..engine import ModelLoadError, SegmentOptions
from ..engine.described import describe
from ..engine.saved_encoding import FEATURE_DTYPES
from .errors import report_error
from .option_flags import add_option_flags
from .segment import add_model_arguments, add_out_of_core_arguments, model_from_args, options_from_args

DESCRIPTION = """\
Encode one 2D image (TIFF, OME-TIFF, PNG, JPEG, zarr or OME-Zarr) once: its dense features,
CLIP embedding, model, options and geometry go into a zarr store that
`napari-gem segment --encoding STORE -p PROMPTS -o DIR` answers any prompt from, chunk by chunk,
without running the vision tower again.
"""

EPILOG = f"""\
examples:
  napari-gem encode slide.ome.zarr --out slide{ENCODING_SUFFIX} --workers 2
  napari-gem segment --encoding slide{ENCODING_SUFFIX} -p "tumour, stroma" -o out/
"""


def add_encode_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``encode`` to an argparse subparsers object; its handler is :func:`run_encode`."""
    parser = subparsers.add_parser(
        "encode", help="encode an image once into a saved encoding (prompts later in seconds)",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", metavar="IMAGE", help="the image file or zarr store to encode")
    parser.add_argument("-o", "--out", metavar="STORE",
                        help=f"the saved encoding to write (default: IMAGE's stem + {ENCODING_SUFFIX} "
                        "beside it)")
    parser.add_argument("--feature-dtype", choices=FEATURE_DTYPES, default="float16",
                        help="how the features are stored: float16 unit vectors with float32 norms "
                        "(half the size; heatmaps within 1e-3) or float32 (default: float16)")
    add_model_arguments(parser.add_argument_group("model"))
    options = parser.add_argument_group("image preparation (the encode options)")
    add_option_flags(options, [item for item in describe(SegmentOptions) if item.stage == "encode"])
    add_out_of_core_arguments(parser.add_argument_group("running"), chunk=False)
    parser.set_defaults(handler=run_encode, threshold=None)
    return parser


def run_encode(args: argparse.Namespace) -> int:
    """Encode the image for parsed arguments; print where the encoding went; exit status."""
    try:
        path = encode_file(
            args.image, args.out, model=model_from_args(args), options=options_from_args(args),
            scheduler=args.scheduler, workers=args.workers, threads=args.threads,
            progress=not args.quiet, out_of_core=args.out_of_core,
            out_of_core_above=args.out_of_core_above, feature_dtype=args.feature_dtype)
    except (ValueError, OSError, ModelLoadError) as error:
        return report_error(f"napari-gem encode: error: {error}", error, args)
    print(f"encoded {args.image} -> {path}", file=sys.stderr)
    return 0
