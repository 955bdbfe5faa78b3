"""Loading a pretrained tag with the network blocked: cached weights load, others fail fast.

The network is blocked inside the test process (every socket connect and name lookup
raises), and ``HF_HUB_OFFLINE`` is unset, so this is what a user on a plane gets.
"""

from __future__ import annotations

import socket
import time

import pytest
import torch

from model_folders import block_network, put_in_hub_cache  # noqa: F401  (also used by test_trunks)
from napari_gem import ModelLoadError, load_model
from napari_gem.engine.families.clip import hub


@pytest.fixture
def no_network(monkeypatch):
    """Block every connection and name lookup; record the attempts. No back-off sleeps."""
    return block_network(monkeypatch)


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


# -- every part from the cache: tokenizers, text towers, configs ---------------------------------
def _cache_siglip2(cache, monkeypatch):
    import open_clip
    from trunk_models import SHRUNK_CONFIGS

    from model_folders import cache_tag_weights, put_folder_in_hub_cache, save_word_tokenizer

    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, "ViT-B-16-SigLIP2",
                        SHRUNK_CONFIGS["ViT-B-16-SigLIP2"])
    cache_tag_weights(cache, "ViT-B-16-SigLIP2", "webli")
    save_word_tokenizer(cache / "_staging" / "tokenizer")
    put_folder_in_hub_cache(cache, "timm/ViT-B-16-SigLIP2", cache / "_staging" / "tokenizer")
    return "ViT-B-16-SigLIP2", "webli"


def _cache_biomedclip(cache, monkeypatch):
    from model_folders import BIOMEDCLIP, cache_biomedclip

    cache_biomedclip(cache)
    return f"hf-hub:{BIOMEDCLIP}", None


def _cache_plip(cache, monkeypatch):
    from model_folders import put_folder_in_hub_cache, write_transformers_folder

    write_transformers_folder(cache / "_staging" / "plip")
    put_folder_in_hub_cache(cache, "vinid/plip", cache / "_staging" / "plip")
    return "transformers:vinid/plip", None


CACHED_FAMILIES = {"open_clip (SigLIP 2: Hugging Face tokenizer)": _cache_siglip2,
                   "open_clip_hub (BiomedCLIP: PubMedBERT text tower and tokenizer)": _cache_biomedclip,
                   "transformers (PLIP)": _cache_plip}


@pytest.mark.parametrize("family", list(CACHED_FAMILIES))
def test_a_cached_model_loads_every_part_from_the_cache_with_the_network_down(family, tmp_path, no_network,
                                                                             monkeypatch):
    """A microscope PC behind a firewall, nothing set offline: no hub request, no retry, <= 10 s.
    (Before, on this 2-core machine: SigLIP 2 waited 47-142 s on its tokenizer's retries;
    BiomedCLIP waited 24 s on its text tower's config with a cache_dir, or took its tokenizer
    from the repository folder.)"""
    pytest.importorskip("transformers")
    name, tag = CACHED_FAMILIES[family](tmp_path, monkeypatch)
    started = time.monotonic()
    model = load_model(name, tag, cache_dir=tmp_path, device="cpu")
    model.encode_text(["a photo of a cell"])
    assert time.monotonic() - started <= 10.0
    assert no_network == []  # not one connection attempt: everything came from the cache


def test_biomedclips_tokenizer_is_pubmedberts_on_every_cached_load(tmp_path, no_network):
    """open_clip would take the tokenizer from the cached repository's own folder (local-dir:),
    which here holds a different one; the config names PubMedBERT's, and that is what loads."""
    transformers = pytest.importorskip("transformers")
    from model_folders import BIOMEDCLIP, PUBMEDBERT, cache_biomedclip

    cache_biomedclip(tmp_path, repo_tokenizer=True)
    pubmedbert = next((tmp_path / f"models--{PUBMEDBERT.replace('/', '--')}" / "snapshots").iterdir())
    expected = transformers.AutoTokenizer.from_pretrained(str(pubmedbert))(
        ["a photo of a cell nucleus"], padding="max_length", max_length=64)["input_ids"]
    for _ in range(2):
        model = load_model(f"hf-hub:{BIOMEDCLIP}", cache_dir=tmp_path, device="cpu")
        assert model.tokenizer(["a photo of a cell nucleus"]).tolist() == expected
    assert no_network == []


def test_a_cached_proxy_loads_from_its_file_with_the_network_down(tmp_path, no_network, monkeypatch):
    """ProxyCLIP's (and Talk2DINO's) timm weights, cached: read from the file, no hub request."""
    import timm
    from huggingface_hub import constants
    from safetensors.torch import save_file

    from napari_gem.engine.vfm_loading import build_proxy_module, hub_repository

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    name = "vit_small_patch16_224.dino"
    torch.manual_seed(2)
    reference = timm.create_model(name, pretrained=False).eval()
    staging = tmp_path / "_staging"
    staging.mkdir()
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, staging / "model.safetensors")
    put_in_hub_cache(tmp_path, hub_repository(name), "model.safetensors",
                     payload=(staging / "model.safetensors").read_bytes())
    started = time.monotonic()
    module = build_proxy_module(name, None)
    assert time.monotonic() - started <= 10.0
    torch.testing.assert_close(module.pos_embed, reference.pos_embed)
    assert no_network == []
