"""``napari-gem``: with no subcommand, napari with our widget and a sample image.

Every subcommand's parser is a module of this package (the library packages export
functions only); this module wires them together and turns expected failures into one
clear error line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..engine.extras import require
from .bench import add_bench_parser
from .encode import add_encode_parser
from .errors import report_error
from .evaluate import add_evaluate_parser
from .methods_list import add_methods_parser
from .models_list import add_models_parser
from .segment import add_segment_parser
from .train_simzss import add_train_simzss_parser


def _add_launch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample",
        default="chelsea",
        help="sample image to open (chelsea, astronaut, coffee, rocket, "
        "immunohistochemistry, retina, demo_micrograph, ...); 'none' opens no image",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="offline first run: a generated micrograph with the small demo model trained by "
        "napari-gem (knows only its generated concepts; no download)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-gem",
        description="Type what you are looking for, see where it is: training-free dense "
        "grounding (GEM, MaskCLIP, SCLIP, ClearCLIP, NACLIP, GCLIP, ProxyCLIP) on CLIP-family "
        "vision transformers, Talk2DINO and SimZSS. Without a subcommand, opens napari with "
        "the napari-gem widget and a sample image.",
    )
    _add_launch_options(parser)
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback, not only the one-line message")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    launch = subparsers.add_parser("launch", help="open napari with the widget (the default)")
    _add_launch_options(launch)
    # The project's own experiments (demo training and evaluations, the issue-tied bench
    # rows) are scripts in the repository's benchmarks/ folder, not subcommands.
    for add_parser in (add_bench_parser, add_methods_parser, add_models_parser, add_segment_parser,
                       add_encode_parser, add_evaluate_parser, add_train_simzss_parser):
        add_parser(subparsers)
    return parser


def launch(sample: str, demo: bool = False) -> int:
    """Open napari with the widget docked and ``sample`` loaded; returns when napari closes."""
    napari = require("napari", extra="pyqt6", purpose="the napari window")

    from ..plugin.launch import launch_viewer

    launch_viewer(sample=None if sample == "none" else sample, demo=demo)
    napari.run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in (None, "launch"):
            return launch(args.sample, args.demo)
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("napari-gem: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as error:
        # Expected failures (bad input, missing files, model load errors) carry a
        # user-fit message; a traceback would bury it, unless asked for.
        return report_error(f"napari-gem: error: {error}", error, args)


if __name__ == "__main__":
    sys.exit(main())
