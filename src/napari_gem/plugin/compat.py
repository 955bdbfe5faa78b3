"""Work-arounds for clashes between napari's environment and the model's dependencies."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def keep_triton_away_from_mesa_llvm() -> bool:
    """Stop ``triton`` from loading when Mesa's LLVM is already in this process.

    With software OpenGL (Mesa llvmpipe: virtual machines, remote desktops, Xvfb),
    napari's canvas loads Mesa's ``libLLVM``; triton bundles another LLVM, and loading it
    afterwards crashes the process (a segmentation fault on ``import open_clip``, which
    imports torchvision, torch._dynamo and triton). GEM never needs triton (it is only
    used by ``torch.compile``), so in that situation ``import triton`` is made to fail
    cleanly. Returns True when the guard was put in place.
    """
    if "triton" in sys.modules or not sys.platform.startswith("linux"):
        return False
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    if "libLLVM" not in maps:
        return False
    sys.modules["triton"] = None  # ``import triton`` raises ImportError: torch treats it as absent
    log.info("napari-gem: Mesa's LLVM is loaded (software OpenGL); triton disabled in this "
             "session to avoid a crash (torch.compile is not used by GEM)")
    return True
