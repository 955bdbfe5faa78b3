"""Where a pretrained tag's weights come from: the local cache first, the network if reachable.

The one module that knows which hub files open_clip reads: loading asks it for a cached
file, and the widget asks it to download with visible progress (:func:`fetch_weights`).

open_clip asks the Hugging Face hub about a tag's file even when it is cached, and with
no network huggingface_hub retries each request with back-off (5 tries, ~30 s) for two
candidate files: about a minute before the user learns anything. So, before open_clip
runs:

- weights already in the hub cache are loaded from their local file, with no network
  call at all (the file of a tag never changes);
- otherwise one short HTTP request (2 s at most, through the proxy if one is set)
  tells whether the download host answers; if not, the caller fails at once with its
  offline message;
- otherwise open_clip downloads as usual.
"""

from __future__ import annotations

import io
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from ...errors import Cancelled, ModelLoadError, first_line

#: Seconds one reachability probe may take (name lookup and TCP connect).
PROBE_TIMEOUT_S = 2.0


class HubUnreachable(ConnectionError):
    """The tag's weights are not cached and their download host cannot be reached."""


def _hf_candidates(hf_hub: str) -> tuple[str, list[str]]:
    """Repo id and the files open_clip would try, in its order (safetensors first)."""
    from open_clip.pretrained import HF_WEIGHTS_NAME, _get_safe_alternatives

    repo_id, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    return repo_id, [*_get_safe_alternatives(filename), filename]


def hub_location(name: str, tag: str) -> str:
    """The ``repository/file`` a tag's weights come from on the Hugging Face Hub ("" when
    they come from a plain URL, or the tag is unknown)."""
    import open_clip
    from open_clip.pretrained import has_hf_hub

    config = open_clip.get_pretrained_cfg(name, tag) or {}
    return config.get("hf_hub", "") if has_hf_hub() else ""


def cached_hub_file(hf_hub: str, cache_dir: str | None = None) -> str | None:
    """The local path of a hub tag's weights when they are in the cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    repo_id, filenames = _hf_candidates(hf_hub)
    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme or 'https'}://{parsed.netloc}/"


def reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``url``'s server answers one HTTP request within ``timeout`` seconds.

    Any HTTP answer counts (even an error status); a refused or silent connection, a
    failed name lookup or TLS handshake does not. A TCP connect alone is not enough:
    captive portals and intercepting firewalls accept connections they never serve.
    Goes through ``HTTPS_PROXY`` / ``HTTP_PROXY`` as urllib does, and runs in a daemon
    thread because name lookup has no timeout of its own.
    """
    result: list[bool] = []

    def probe() -> None:
        request = urllib.request.Request(_origin(url), method="HEAD")
        # A fresh opener reads the proxy settings now (urlopen's is built only once).
        opener = urllib.request.build_opener(urllib.request.ProxyHandler())
        try:
            with opener.open(request, timeout=timeout):
                result.append(True)
        except urllib.error.HTTPError:
            result.append(True)  # the server answered
        except (OSError, ValueError):
            result.append(False)

    thread = threading.Thread(target=probe, name="napari-gem-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def weights_source(name: str, tag: str, cache_dir: str | None = None) -> str:
    """What to pass open_clip as ``pretrained``: a cached file's path, or the tag to download.

    Raises :class:`HubUnreachable` when the weights are not cached and the host they
    would come from cannot be reached (or ``HF_HUB_OFFLINE`` is set).
    """
    import open_clip

    config = open_clip.get_pretrained_cfg(name, tag) or {}
    hf_hub, url = hub_location(name, tag), config.get("url", "")
    if hf_hub:  # open_clip prefers the hub when both are listed
        cached = cached_hub_file(hf_hub, cache_dir)
        if cached:
            return cached
        from huggingface_hub import constants

        source = constants.ENDPOINT
        if _hub_offline():
            raise HubUnreachable("HF_HUB_OFFLINE is set and the weights are not cached")
    elif url:
        folder = cache_dir or os.path.expanduser("~/.cache/clip")
        if os.path.isfile(os.path.join(folder, os.path.basename(url))):
            return tag  # open_clip checks the cached file's checksum with no network
        source = url
    else:
        return tag
    if not reachable(source):
        raise HubUnreachable(
            f"not cached, and {_origin(source)} did not answer within {PROBE_TIMEOUT_S:g} s"
        )
    return tag


def is_cached(name: str, tag: str, cache_dir: str | None = None) -> bool:
    """Whether ``name``/``tag``'s hub weights are in the local cache (False for URL weights)."""
    hf_hub = hub_location(name, tag)
    return bool(hf_hub) and cached_hub_file(hf_hub, cache_dir) is not None


def _reporting_tqdm(report: Callable[[int, int], None]) -> type:
    from tqdm import tqdm

    class ReportingTqdm(tqdm):
        """A silent tqdm that forwards byte counts to ``report``."""

        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            kwargs["disable"] = False
            kwargs["file"] = io.StringIO()  # the caller shows progress, not the terminal
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            out = super().update(n)
            report(int(self.n), int(self.total or 0))
            return out

    return ReportingTqdm


def fetch_weights(name: str, tag: str, report: Callable[[int, int], None],
                  cache_dir: str | None = None) -> str | None:
    """Download ``name``/``tag``'s hub weights into the cache, reporting ``(done, total)`` bytes.

    The very file open_clip will read (same repository, same safetensors-first order),
    so open_clip then finds it cached. Returns the cached file, or None when the weights
    are not on the hub (open_clip downloads URL weights itself). Raises
    :class:`HubUnreachable` within :data:`PROBE_TIMEOUT_S` when the hub does not answer
    (no retries with back-off). ``report`` may raise to stop the download (the hub keeps
    the partial file and resumes it next time).
    """
    hf_hub = hub_location(name, tag)
    if not hf_hub:
        return None
    cached = cached_hub_file(hf_hub, cache_dir)
    if cached:
        return cached
    from huggingface_hub import constants, hf_hub_download

    try:
        from huggingface_hub.errors import RemoteEntryNotFoundError as MissingFile
    except ImportError:  # older huggingface_hub
        from huggingface_hub.errors import EntryNotFoundError as MissingFile

    if _hub_offline():
        raise HubUnreachable("HF_HUB_OFFLINE is set and the weights are not cached")
    if not reachable(constants.ENDPOINT):
        raise HubUnreachable(
            f"not cached, and {_origin(constants.ENDPOINT)} did not answer within {PROBE_TIMEOUT_S:g} s"
        )
    repository, candidates = _hf_candidates(hf_hub)
    for filename in candidates:
        try:
            return hf_hub_download(repository, filename, cache_dir=cache_dir,
                                   tqdm_class=_reporting_tqdm(report))
        except MissingFile:  # the repository has no such file: try the next candidate
            continue
    raise HubUnreachable(f"{repository} has none of {', '.join(candidates)}")


#: Files a Hugging Face tokenizer may need; at least one of them must be present.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model")


def cached_file(repo: str, filename: str, cache_dir=None) -> str | None:
    """The cached path of one hub file, or None (no network call)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
    return found if isinstance(found, str) and os.path.isfile(found) else None


def text_tower_missing(config: dict, cache_dir, local_folder: Path | None) -> list[str]:
    """What a Hugging Face text tower still needs from the hub cache (empty when all is there)."""
    text = config.get("model_cfg", config).get("text_cfg", {})
    missing = []
    model = text.get("hf_model_name")
    if model and not cached_file(model, "config.json", cache_dir):
        missing.append(f"the text tower's config ({model}/config.json)")
    tokenizer = text.get("hf_tokenizer_name")
    has_local_tokenizer = local_folder is not None and any(
        (local_folder / f).is_file() for f in TOKENIZER_FILES)
    if tokenizer and not has_local_tokenizer and not any(
            cached_file(tokenizer, f, cache_dir) for f in TOKENIZER_FILES):
        missing.append(f"the tokenizer ({tokenizer})")
    return missing


def text_tower_repos(config: dict) -> list[tuple[str, tuple[str, ...]]]:
    """The ``(repository, file patterns)`` a Hugging Face text tower reads: its config and tokenizer."""
    text = config.get("model_cfg", config).get("text_cfg", {})
    repos = []
    if text.get("hf_model_name"):
        repos.append((text["hf_model_name"], ("config.json",)))
    if text.get("hf_tokenizer_name"):
        repos.append((text["hf_tokenizer_name"], (*TOKENIZER_FILES, "vocab.txt", "special_tokens_map.json")))
    return repos


def offline_reason() -> str | None:
    """Why the hub cannot be reached now (``HF_HUB_OFFLINE``, or no answer), or None when it can."""
    from huggingface_hub import constants

    if _hub_offline():
        return "HF_HUB_OFFLINE is set"
    if not reachable(constants.ENDPOINT):
        return f"{constants.ENDPOINT} did not answer within {PROBE_TIMEOUT_S:g} s"
    return None


# -- whole repositories (hf-hub:, transformers:), downloaded with byte progress ----------------
def _check_hub_reachable() -> None:
    reason = offline_reason()
    if reason:
        raise HubUnreachable(reason)


def repo_files(repo: str, patterns: tuple[str, ...]) -> list[tuple[str, int]]:
    """``(file, bytes)`` of a repository's top-level files matching ``patterns`` (one hub API call).

    Of two weight formats, only the safetensors file is kept (the loaders read it first).
    """
    from fnmatch import fnmatch

    from huggingface_hub import HfApi, constants

    info = HfApi(endpoint=constants.ENDPOINT).model_info(repo, files_metadata=True)
    files = [(s.rfilename, int(s.size or 0)) for s in info.siblings or []
             if "/" not in s.rfilename and any(fnmatch(s.rfilename, p) for p in patterns)]
    names = {name for name, _ in files}
    if any(name.endswith(".safetensors") for name in names):
        files = [(name, size) for name, size in files if not name.endswith(".bin")]
    return files


def download_repo_files(plan: list[tuple[str, list[tuple[str, int]]]], report: Callable[[int, int], None],
                        cache_dir: str | None = None) -> None:
    """Download ``[(repo, [(file, bytes), ...]), ...]`` into the hub cache, reporting
    ``(done, total)`` bytes over all of them (cached files count as done at once).

    ``report`` may raise to stop (the hub keeps partial files and resumes them next time).
    """
    from huggingface_hub import hf_hub_download

    total = sum(size for _, files in plan for _, size in files)
    done = 0
    report(done, total)
    for repo, files in plan:
        for filename, size in files:
            if not cached_file(repo, filename, cache_dir):
                offset = done
                hf_hub_download(repo, filename, cache_dir=cache_dir, tqdm_class=_reporting_tqdm(
                    lambda n, _total, offset=offset: report(offset + n, total)))
            done += size
            report(done, total)


def fetch_repo(repo: str, patterns: tuple[str, ...], report: Callable[[int, int], None],
               cache_dir: str | None = None,
               more: Callable[[str], list[tuple[str, tuple[str, ...]]]] | None = None) -> str:
    """Download a repository's ``patterns`` files with byte progress; the cached snapshot folder.

    ``more(folder)``, given the folder once the repository's small ``*.json`` files are in,
    names further ``(repo, patterns)`` to fetch in the same progress (a text tower's config
    and tokenizer). Raises :class:`HubUnreachable` within :data:`PROBE_TIMEOUT_S` when the
    hub does not answer or ``HF_HUB_OFFLINE`` is set.
    """
    _check_hub_reachable()
    files = repo_files(repo, patterns)
    configs = [(name, size) for name, size in files if name.endswith(".json")]
    download_repo_files([(repo, configs)], lambda done, total: None, cache_dir)
    folder = snapshot_folder(repo, [name for name, _ in files], cache_dir)
    plan = [(repo, files)]
    for other, other_patterns in (more(folder) if more and folder else []):
        plan.append((other, repo_files(other, other_patterns)))
    download_repo_files(plan, report, cache_dir)
    return snapshot_folder(repo, [name for name, _ in files], cache_dir) or ""


def snapshot_folder(repo: str, names, cache_dir) -> str | None:
    """The cached snapshot folder of ``repo`` holding the first of ``names`` found (no network)."""
    for name in names:
        found = cached_file(repo, name, cache_dir)
        if found:
            return str(Path(found).parent)
    return None


@contextmanager
def download_errors(name: str, cache_folder: str) -> Iterator[None]:
    """A failed repository download as one :class:`ModelLoadError` naming the model and the
    cache folder (``Cancelled`` passes through)."""
    try:
        yield
    except Cancelled:
        raise
    except Exception as error:
        detail = str(error) if isinstance(error, HubUnreachable) else \
            f"{type(error).__name__}: {first_line(error)}"
        raise ModelLoadError(
            f"could not download {name} ({detail}). Downloads are cached in {cache_folder}; "
            "on a machine without the hub, fetch them on a connected one (see docs/models.md) "
            "and copy that folder over."
        ) from error
