"""One error line for the user; the traceback too when ``napari-gem --debug`` asked for it."""

from __future__ import annotations

import argparse
import sys
import traceback


def report_error(message: str, error: BaseException, args: argparse.Namespace) -> int:
    """Print ``message`` as the one error line (after the traceback under ``--debug``);
    returns the exit status of a failed command, 2."""
    if getattr(args, "debug", False):
        traceback.print_exception(error, file=sys.stderr)
    print(message, file=sys.stderr)
    return 2
