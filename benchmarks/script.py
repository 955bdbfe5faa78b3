"""Running a benchmark as a script: its own parser, and one clear error line for bad input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from napari_gem.engine.errors import ModelLoadError


def run_script(parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int],
               argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run ``handler``; bad input or a model that cannot load: one line, exit 2."""
    args = parser.parse_args(argv)
    try:
        return int(handler(args))
    except (ValueError, ModelLoadError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
