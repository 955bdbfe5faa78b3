"""``napari-gem``: with no subcommand, napari with our widget and a sample image.

Subcommands are contributed by their own packages (batch, evaluation, benchmark);
this module only wires them together and turns expected failures into one clear
error line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .bench import add_bench_parser
from .methods_list import add_methods_parser
from .models_list import add_models_parser


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
        description="Type what you are looking for, see where it is: GEM and other "
        "training-free dense methods (GCLIP, NACLIP, SCLIP, ClearCLIP, MaskCLIP) on open_clip "
        "vision transformers, and SimZSS. Without a "
        "subcommand, opens napari with the napari-gem widget and a sample image.",
    )
    _add_launch_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    launch = subparsers.add_parser("launch", help="open napari with the widget (the default)")
    _add_launch_options(launch)
    add_bench_parser(subparsers)
    add_methods_parser(subparsers)
    add_models_parser(subparsers)
    _add_subcommand_parsers(subparsers)
    return parser


def _add_subcommand_parsers(subparsers) -> None:
    from ..batch.cli import add_segment_parser
    from ..demo.quality import add_demo_eval_parser
    from ..evaluation.cli import add_evaluate_parser
    from ..simzss_training.cli import add_train_simzss_parser

    add_segment_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_train_simzss_parser(subparsers)
    add_demo_eval_parser(subparsers)


def launch(sample: str, demo: bool = False) -> int:
    """Open napari with the widget docked and ``sample`` loaded; returns when napari closes."""
    import napari

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
        # user-fit message; a traceback would bury it.
        print(f"napari-gem: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
