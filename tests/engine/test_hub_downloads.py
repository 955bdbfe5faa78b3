"""Downloads of hf-hub: and transformers: repositories report bytes; offline they fail fast.

A small Hugging Face hub runs on 127.0.0.1 in the test (its API's file list with sizes,
and the files): huggingface_hub downloads from it exactly as from huggingface.co. No
other network is used.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from model_folders import FAKE_COMMIT, open_clip_config, write_open_clip_folder
from napari_gem import ModelLoadError, load_model
from napari_gem.engine.families import family_for


class FakeHub:
    """Repositories ``{repo: {file: bytes}}`` served as the Hugging Face hub serves them."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}
        self.downloads: list[str] = []

    def add_folder(self, repo: str, folder: Path) -> None:
        self.repos[repo] = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}

    def handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _route(self) -> None:
                path = self.path.split("?")[0]
                if path.startswith("/api/models/"):
                    repo = "/".join(path[len("/api/models/"):].split("/")[:2])
                    if repo not in hub.repos:
                        return self._send(404, b'{"error": "Repository not found"}',
                                          {"X-Error-Code": "RepoNotFound"})
                    siblings = [{"rfilename": name, "size": len(data)}
                                for name, data in hub.repos[repo].items()]
                    body = json.dumps({"id": repo, "sha": FAKE_COMMIT, "siblings": siblings}).encode()
                    return self._send(200, body, {"Content-Type": "application/json"})
                parts = path.strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
                    data = hub.repos.get(repo, {}).get(filename)
                    if data is None:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"})
                    if self.command == "GET":
                        hub.downloads.append(f"{repo}/{filename}")
                    return self._send(200, data, {"X-Repo-Commit": FAKE_COMMIT,
                                                  "ETag": f'"{hashlib.sha1(data).hexdigest()}"'})
                return self._send(200)

            do_GET = do_HEAD = _route

        return Handler


@pytest.fixture
def fake_hub(monkeypatch):
    """A hub on 127.0.0.1 as huggingface_hub's endpoint; HF_HUB_OFFLINE unset."""
    from huggingface_hub import constants

    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), hub.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    yield hub
    server.shutdown()
    server.server_close()


def _reports():
    seen: list[tuple[int, int]] = []
    return seen, lambda done, total: seen.append((done, total))


def _assert_progress(seen, total: int) -> None:
    assert seen and seen[-1] == (total, total) and total > 0
    assert all(t == total for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # never goes back
    assert len({d for d, _ in seen}) >= 3  # more than a start and an end


def test_an_hf_hub_repository_downloads_its_config_weights_and_text_tower_with_byte_progress(
        fake_hub, tmp_path, tiny_model_name):
    folder = tmp_path / "served"
    write_open_clip_folder(folder, tiny_model_name)
    config = open_clip_config(tiny_model_name)
    config["model_cfg"]["text_cfg"].update(hf_model_name="lab/tiny-bert", hf_tokenizer_name="lab/tiny-bert")
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    (folder / "open_clip_pytorch_model.bin").write_bytes(b"0" * 5000)  # the other format: skipped
    fake_hub.add_folder("lab/tiny-clip", folder)
    fake_hub.repos["lab/tiny-bert"] = {"config.json": b'{"model_type": "bert"}', "vocab.txt": b"a\nb\n",
                                       "pytorch_model.bin": b"1" * 7000}  # a text tower's weights: not read
    cache = tmp_path / "cache"
    family = family_for("hf-hub:lab/tiny-clip")
    assert not family.is_cached("hf-hub:lab/tiny-clip", None, str(cache))

    seen, report = _reports()
    family.fetch("hf-hub:lab/tiny-clip", None, report, str(cache))

    expected = ["open_clip_config.json", "open_clip_model.safetensors"]
    text_tower = len(b'{"model_type": "bert"}') + len(b"a\nb\n")
    total = sum(len(fake_hub.repos["lab/tiny-clip"][f]) for f in expected) + text_tower
    _assert_progress(seen, total)
    assert sorted(fake_hub.downloads) == sorted(
        [f"lab/tiny-clip/{f}" for f in expected] + ["lab/tiny-bert/config.json", "lab/tiny-bert/vocab.txt"])
    assert family.is_cached("hf-hub:lab/tiny-clip", None, str(cache))


def test_a_transformers_repository_downloads_with_byte_progress_then_loads_offline(
        fake_hub, tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from huggingface_hub import constants

    from model_folders import write_transformers_folder

    write_transformers_folder(tmp_path / "served")
    fake_hub.add_folder("lab/tiny-hf-clip", tmp_path / "served")
    cache = str(tmp_path / "cache")
    seen, report = _reports()
    family_for("transformers:lab/tiny-hf-clip").fetch("transformers:lab/tiny-hf-clip", None, report, cache)

    _assert_progress(seen, sum(len(data) for data in fake_hub.repos["lab/tiny-hf-clip"].values()))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = load_model("transformers:lab/tiny-hf-clip", None, device="cpu", cache_dir=cache)
    assert model.encode_image(torch.randn(1, 3, 64, 64)).dense_features.shape == (1, 4, 4, 32)


def test_a_local_dir_fetches_only_its_text_towers_files(fake_hub, tmp_path, tiny_model_name):
    folder = tmp_path / "biomed-like"
    write_open_clip_folder(folder, tiny_model_name)
    config = open_clip_config(tiny_model_name)
    config["model_cfg"]["text_cfg"].update(hf_model_name="lab/tiny-bert", hf_tokenizer_name="lab/tiny-bert")
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    fake_hub.repos["lab/tiny-bert"] = {"config.json": b'{"model_type": "bert"}', "vocab.txt": b"a\nb\n"}
    name, cache = f"local-dir:{folder}", str(tmp_path / "cache")
    family = family_for(name)
    assert not family.is_cached(name, None, cache)
    seen, report = _reports()
    family.fetch(name, None, report, cache)
    assert seen[-1] == (26, 26) and sorted(fake_hub.downloads) == [
        "lab/tiny-bert/config.json", "lab/tiny-bert/vocab.txt"]
    assert family.is_cached(name, None, cache)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("name", ["hf-hub:imageomics/bioclip", "transformers:vinid/plip"])
def test_offline_a_fetch_fails_within_5_s_naming_what_is_missing_and_the_cache(name, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    seen, report = _reports()
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as error:
        family_for(name).fetch(name, None, report, str(tmp_path))
    assert time.monotonic() - started <= 5
    message = str(error.value)
    assert "config" in message and "weights" in message and str(tmp_path) in message
    assert "did not answer" in message and seen == []


def test_a_repository_the_hub_does_not_have_is_one_clear_error(fake_hub, tmp_path):
    with pytest.raises(ModelLoadError, match="could not download hf-hub:lab/absent.*RepositoryNotFound"):
        family_for("hf-hub:lab/absent").fetch("hf-hub:lab/absent", None, lambda d, t: None, str(tmp_path))
