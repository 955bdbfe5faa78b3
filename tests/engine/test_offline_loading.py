"""Loading a pretrained tag with the network blocked: cached weights load, others fail fast.

The network is blocked inside the test process (every socket connect and name lookup
raises), and ``HF_HUB_OFFLINE`` is unset, so this is what a user on a plane gets.
"""

from __future__ import annotations

import socket
import time

import pytest
import torch

from model_folders import put_in_hub_cache  # noqa: F401  (also used by test_trunks)
from napari_gem import ModelLoadError, load_model
from napari_gem.engine.families.clip import hub


@pytest.fixture
def no_network(monkeypatch):
    """Block every connection and name lookup; record the attempts. No back-off sleeps."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def no_sleep(seconds):
        raise AssertionError(f"something waited {seconds} s for the network (retry back-off)")

    monkeypatch.setattr(time, "sleep", no_sleep)
    return attempts


def test_a_real_tag_finds_its_weights_in_the_hub_cache_with_no_network(tmp_path, no_network):
    """ViT-B-32 'openai' comes from timm/vit_base_patch32_clip_224.openai (safetensors first)."""
    cached = put_in_hub_cache(tmp_path, "timm/vit_base_patch32_clip_224.openai",
                              "open_clip_model.safetensors")
    assert hub.weights_source("ViT-B-32", "openai", str(tmp_path)) == str(cached)
    assert no_network == []  # found without a single connection attempt


def test_cached_weights_of_a_tag_load_with_no_network(tiny_model_name, tiny_checkpoint, tmp_path,
                                                      no_network, monkeypatch):
    import open_clip.pretrained as pretrained

    tag_config = pretrained._pcfg(hf_hub="napari-gem-tests/tiny-clip/")
    monkeypatch.setitem(pretrained._PRETRAINED, tiny_model_name, {"cached_tag": tag_config})
    state = torch.load(tiny_checkpoint)["state_dict"]
    put_in_hub_cache(tmp_path, "napari-gem-tests/tiny-clip", "open_clip_pytorch_model.bin",
                     state_dict=state)

    gem = load_model(tiny_model_name, "cached_tag", cache_dir=tmp_path, device="cpu")

    torch.testing.assert_close(gem.clip_model.visual.proj, state["visual.proj"])
    assert gem.describe()["pretrained"] == "cached_tag"
    assert no_network == []


def test_uncached_weights_with_no_network_fail_at_once_with_the_clear_message(tmp_path,
                                                                               no_network):
    with pytest.raises(ModelLoadError) as caught:
        load_model("ViT-B-32", "openai", cache_dir=tmp_path)
    message = str(caught.value)
    for needed in ("'ViT-B-32'", "'openai'", str(tmp_path), "local checkpoint file", "offline",
                   "https://huggingface.co/ did not answer"):
        assert needed in message, needed
    assert len(no_network) == 1  # one short probe, then no hub request and no retries
    assert not any(tmp_path.rglob("*.bin")) and not any(tmp_path.rglob("*.safetensors"))


def test_the_probe_goes_through_the_https_proxy_when_one_is_set(no_network, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not hub.reachable("https://huggingface.co")
    assert no_network == [(("proxy.example.org", 3128),)]


def test_a_server_that_accepts_connections_but_never_answers_is_unreachable():
    """Intercepting firewalls accept TCP connections they never serve: wait 2 s, no more."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        started = time.monotonic()
        assert not hub.reachable(f"http://127.0.0.1:{port}", timeout=0.5)
        assert time.monotonic() - started < 2.0
