"""What went wrong when a model could not be built, told truthfully.

A checkpoint that does not fit the architecture is named as such, with the offending keys
and shapes; only a failure to reach the network gets the "offline" advice; anything else
is shown as it is (its type and first line), since guessing would send the user the wrong way.
"""

from __future__ import annotations

import re
import socket
import urllib.error

from .errors import first_line

_MISSING = re.compile(r"Missing key\(s\) in state_dict: (.*?)\.\s*$", re.MULTILINE)
_UNEXPECTED = re.compile(r"Unexpected key\(s\) in state_dict: (.*?)\.\s*$", re.MULTILINE)
_SIZE = re.compile(r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\((\[.*?\])\) from "
                   r"checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)")


def weights_mismatch(error: BaseException, limit: int = 6) -> str | None:
    """"size mismatch for visual.proj (checkpoint [64, 16], model [64, 32]); missing keys: ...;
    unexpected keys: ..." when ``error`` is torch's state-dict mismatch, else None."""
    text = str(error)
    if "Error(s) in loading state_dict" not in text:
        return None
    parts = []
    sizes = _SIZE.findall(text)
    if sizes:
        shown = [f"{key} (checkpoint {given}, model {wanted})" for key, given, wanted in sizes[:limit]]
        parts.append("size mismatch for " + ", ".join(shown) + _more(len(sizes), limit))
    for label, pattern in (("missing keys", _MISSING), ("unexpected keys", _UNEXPECTED)):
        found = pattern.search(text)
        if found:
            keys = [key.strip(' "') for key in found.group(1).split(",")]
            parts.append(f"{label}: {', '.join(keys[:limit])}{_more(len(keys), limit)}")
    return "; ".join(parts) or first_line(error)


def _more(count: int, limit: int) -> str:
    return f" (and {count - limit} more)" if count > limit else ""


def is_network_failure(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) is a failure to reach the network:
    no connection, a timeout, an unknown host, or the hub's offline mode."""
    kinds = _network_error_types()
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kinds):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _network_error_types() -> tuple[type[BaseException], ...]:
    # ConnectionError covers the CLIP hub's HubUnreachable (the download host did not answer).
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror, urllib.error.URLError]
    try:
        import requests

        kinds += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:
        pass
    try:
        from huggingface_hub import errors as hub_errors

        kinds += [hub_errors.LocalEntryNotFoundError, hub_errors.OfflineModeIsEnabled]
    except (ImportError, AttributeError):
        pass
    try:
        import httpx

        kinds += [httpx.ConnectError, httpx.TimeoutException]
    except ImportError:
        pass
    return tuple(kinds)
