"""Old names and old call forms that still work, each warning once per process.

Every deprecated path names what replaces it and the version that removes it
(docs/api.md, "Deprecated", lists them all).
"""

from __future__ import annotations

import warnings

#: The version that removes every deprecated name and call form listed in docs/api.md.
REMOVED_IN = "0.3.0"

_warned: set[str] = set()


def warn_deprecated(what: str, instead: str, *, stacklevel: int = 3) -> None:
    """One ``DeprecationWarning`` per ``what`` per process: "``what`` is deprecated ...".

    ``stacklevel`` points at the user's line (3: the caller of the function that calls this).
    """
    if what in _warned:
        return
    _warned.add(what)
    warnings.warn(f"{what} is deprecated and will be removed in napari-gem {REMOVED_IN}: "
                  f"use {instead}", DeprecationWarning, stacklevel=stacklevel)
