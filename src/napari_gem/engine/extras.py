"""Optional dependencies: import one, or say which extra of napari-gem brings it.

A bare ``pip install napari-gem`` is the headless engine and the command line. The napari
window (``[napari]``, ``[pyqt6]``) and large images out of core, zarr stores and clusters
(``[cluster]``: dask, zarr, dask.distributed) are extras; code that needs one asks
:func:`require` at the moment it needs it, so the message names what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

#: What each extra brings, for the messages.
EXTRAS = {
    "napari": "napari, magicgui, qtpy and superqt: the napari widget",
    "pyqt6": "napari with the PyQt6 binding: the napari window",
    "cluster": "dask, zarr and dask.distributed: large images out of core, zarr stores, clusters",
    "transformers": "Hugging Face transformers: transformers: model names",
}


class MissingExtraError(ImportError, RuntimeError):
    """An optional dependency is not installed; the message names the extra that brings it.

    A RuntimeError too, so the command line reports it as one line like any expected failure.
    """


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``extra``.

    ``purpose`` completes "… needs <package>", e.g. ``"reading zarr stores"``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        package = (error.name or module).split(".")[0]
        raise MissingExtraError(
            f"{purpose} needs {package}, which is not installed: "
            f"pip install 'napari-gem[{extra}]' ({EXTRAS[extra]})"
        ) from error


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
