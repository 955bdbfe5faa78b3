"""Fetching open_clip weights from the Hugging Face Hub with visible progress.

open_clip downloads weights itself, but its progress bar goes to the terminal. Before
:func:`napari_gem.load_model` runs, :func:`fetch_weights` downloads the very file
open_clip will ask for (same repository, same safetensors-first order) into the same
cache, reporting bytes as they arrive; open_clip then finds it cached.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

from tqdm import tqdm

from ..engine import Cancelled
from ..engine.loading import cache_folders

#: ``report(done_bytes, total_bytes)``; total is 0 when unknown.
ByteReport = Callable[[int, int], None]

HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"


class WeightsUnavailable(RuntimeError):
    """The weights are neither cached nor downloadable; the message says what to do."""


def _safe_alternatives(filename: str) -> list[str]:
    # Mirrors open_clip.pretrained._get_safe_alternatives (private there): safetensors
    # files are preferred when a repository has them.
    names = []
    if filename == HF_WEIGHTS_NAME:
        names.append("open_clip_model.safetensors")
    if filename != HF_WEIGHTS_NAME and filename.endswith((".bin", ".pth")):
        names.append(filename[:-4] + ".safetensors")
    return names


def hub_files(name: str, tag: str) -> tuple[str, list[str]] | None:
    """``(repository, candidate file names)`` open_clip loads ``name``/``tag`` from, or None.

    None when the weights do not come from the Hugging Face Hub (a plain URL, or no
    such tag), in which case open_clip downloads them itself.
    """
    from open_clip.pretrained import get_pretrained_cfg

    hub = get_pretrained_cfg(name, tag).get("hf_hub", "")
    if not hub:
        return None
    repository, filename = os.path.split(hub)
    filename = filename or HF_WEIGHTS_NAME
    return repository, [*_safe_alternatives(filename), filename]


def is_cached(name: str, tag: str, cache_dir: str | None = None) -> bool:
    """Whether the weights of ``name``/``tag`` are in the local Hub cache already."""
    files = hub_files(name, tag)
    if files is None:
        return False
    from huggingface_hub import try_to_load_from_cache

    repository, candidates = files
    return any(
        isinstance(try_to_load_from_cache(repository, f, cache_dir=cache_dir), str)
        for f in candidates
    )


def _reporting_tqdm(report: ByteReport) -> type:
    class ReportingTqdm(tqdm):
        """A silent tqdm that forwards byte counts to ``report``."""

        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            kwargs["disable"] = False
            kwargs["file"] = io.StringIO()  # the activity dock shows it, not the terminal
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            out = super().update(n)
            report(int(self.n), int(self.total or 0))
            return out

    return ReportingTqdm


def fetch_weights(
    name: str, tag: str, report: ByteReport, cache_dir: str | None = None
) -> str | None:
    """Download the weights of ``name``/``tag`` into the Hub cache, reporting bytes.

    Returns the cached file, or None when open_clip fetches these weights by itself (no
    Hub file). Raises :class:`WeightsUnavailable` when the Hub cannot be reached and
    nothing is cached. ``report`` may raise :class:`~napari_gem.Cancelled` to stop the
    download (the Hub keeps the partial file and resumes it next time).
    """
    files = hub_files(name, tag)
    if files is None:
        return None
    from huggingface_hub import hf_hub_download

    try:
        from huggingface_hub.errors import RemoteEntryNotFoundError as MissingFile
    except ImportError:  # older huggingface_hub
        from huggingface_hub.errors import EntryNotFoundError as MissingFile

    repository, candidates = files
    if is_cached(name, tag, cache_dir):
        return None
    last_error: Exception | None = None
    for filename in candidates:
        try:
            return hf_hub_download(
                repository, filename, cache_dir=cache_dir, tqdm_class=_reporting_tqdm(report)
            )
        except Cancelled:
            raise
        except MissingFile as error:  # the repository has no such file: try the next candidate
            last_error = error
        except Exception as error:  # offline, proxy, permissions: say what to do
            last_error = error
            break
    folders = " or ".join(cache_folders(cache_dir))
    reason = str(last_error).strip().splitlines()[0][:200] if last_error else "unknown error"
    raise WeightsUnavailable(
        f"could not download the weights of {name} ({tag}) from the Hugging Face Hub "
        f"({type(last_error).__name__}: {reason}). Weights are cached in {folders}: on an "
        "offline machine, copy that cache over from a connected one, or choose "
        "'checkpoint file' under Model and pick a local file."
    )
