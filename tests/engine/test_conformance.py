"""Conformance: every offered model runs as the reference library loads its tag.

For each curated catalogue entry and a sample of open_clip's pretrained table covering each
architecture class (open_clip ViT with GELU and with QuickGELU tags, timm SigLIP 2, timm
EVA-02, timm PE-Core, ``hf-hub:`` with a timm trunk and a Hugging Face text tower, ``hf-hub:``
open_clip ViTs, transformers CLIP and SigLIP), random weights are written into a Hugging Face
cache laid out as the hub would, under the tag's (or repository's) real name. They are
loaded through :func:`napari_gem.load_model` with the network blocked, and compared with the
reference library's own model of the architecture the tag was trained with (open_clip's
``-quickgelu`` twin loading the same tag, open_clip's ``hf-hub:`` loader, transformers'
``AutoModel``), on: the pooled image embedding, the text embedding through the model's own
tokenizer, the preprocessing constants, and the context length. Each comparison also shows
that the wrong reading would fail (GELU for QuickGELU weights, CLIP's normalisation for
SigLIP's, a repository's stray tokenizer for BiomedCLIP's PubMedBERT, an attention mask for
SigLIP's text).

Sizes: the open_clip configs of the real names are replaced for the test by configs of the
same architecture class with small widths, depths and images (``trunk_models.SHRUNK_CONFIGS``:
the activation, pooling, RoPE, text tower kind, tokenizer and context length are the real
ones; the width is not what these checks are about), so the whole suite runs in well under
two minutes on two CPU cores.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

import open_clip  # noqa: E402
from trunk_models import SHRUNK_CONFIGS  # noqa: E402

from model_folders import (  # noqa: E402
    BIOMEDCLIP,
    PUBMEDBERT,
    block_network,
    cache_biomedclip,
    cache_tag_weights,
    put_folder_in_hub_cache,
    random_transformers_clip,
    save_word_tokenizer,
    write_open_clip_folder,
)
from napari_gem import load_model  # noqa: E402
from napari_gem.engine.preprocess import CLIP_MEAN, CLIP_STD  # noqa: E402

TOLERANCE = 1e-5
#: A wrong reading must move the compared value by more than this.
WRONG_BY = 1e-4
PROMPT = "a photo of a cell nucleus."
#: What was compared, per entry, with the largest difference (printed with -s for the report).
TABLE: list[tuple[str, str, float]] = []


def _record(entry: str, what: str, ours: torch.Tensor, reference: torch.Tensor) -> float:
    difference = float((ours.float() - reference.float()).abs().max())
    TABLE.append((entry, what, difference))
    print(f"\n{entry:<48} {what:<40} {difference:.2e}", end="")
    return difference


def _constants(config: dict) -> tuple:
    return config["mean"], config["std"]


def _normalised(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.fixture
def no_network(monkeypatch):
    return block_network(monkeypatch)


@pytest.fixture
def shrunk(monkeypatch):
    """open_clip's real model names with their test-size configs (for this test only)."""
    for name, config in SHRUNK_CONFIGS.items():
        monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, name, config)


@pytest.fixture
def hub_offline(monkeypatch, tmp_path):
    """The reference libraries read the test's cache as the hub's own offline mode does (and as
    their default cache: open_clip builds a Hugging Face text tower without ``cache_dir``)."""
    from huggingface_hub import constants

    def offline():
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return offline


def _cache_hf_tokenizer(cache, repo: str) -> None:
    """A small tokenizer where the hub keeps ``repo``'s (with the repository's config.json)."""
    folder = cache / "_staging" / repo.replace("/", "--")
    save_word_tokenizer(folder)
    (folder / "config.json").write_text('{"architecture": "timm"}')
    put_folder_in_hub_cache(cache, repo, folder)


#: (name, tag, the open_clip name the tag was trained as): curated rows and a sample of
#: open_clip's table, one or more per architecture class.
OPEN_CLIP_TAGS = [
    ("ViT-B-16", "openai", "ViT-B-16-quickgelu"),
    ("ViT-B-32", "laion400m_e31", "ViT-B-32-quickgelu"),
    ("ViT-L-14-336", "openai", "ViT-L-14-336-quickgelu"),
    ("ViT-B-16", "laion2b_s34b_b88k", "ViT-B-16"),
    ("ViT-B-16", "dfn2b", "ViT-B-16-quickgelu"),
    ("ViT-B-16-quickgelu", "metaclip_fullcc", "ViT-B-16-quickgelu"),
    ("ViT-B-16-SigLIP2", "webli", "ViT-B-16-SigLIP2"),
    ("ViT-B-16-SigLIP2-512", "webli", "ViT-B-16-SigLIP2-512"),
    ("EVA02-B-16", "merged2b_s8b_b131k", "EVA02-B-16"),
    ("PE-Core-B-16", "meta", "PE-Core-B-16"),
]


@pytest.mark.parametrize(("name", "tag", "trained_as"), OPEN_CLIP_TAGS,
                         ids=[f"{n}/{t}" for n, t, _ in OPEN_CLIP_TAGS])
def test_an_open_clip_tag_runs_as_open_clip_loads_it_in_its_trained_architecture(
        name, tag, trained_as, shrunk, tmp_path, no_network, hub_offline):
    cache_tag_weights(tmp_path, name, tag)
    tokenizer_repo = SHRUNK_CONFIGS[name]["text_cfg"].get("hf_tokenizer_name")
    if tokenizer_repo:
        _cache_hf_tokenizer(tmp_path, tokenizer_repo)

    ours = load_model(name, tag, cache_dir=str(tmp_path), device="cpu")
    assert no_network == []
    hub_offline()
    reference = open_clip.create_model(trained_as, pretrained=tag, cache_dir=str(tmp_path)).eval()
    reference_tokenizer = open_clip.get_tokenizer(trained_as, cache_dir=str(tmp_path))
    entry = f"{name} / {tag}"

    config = reference.visual.preprocess_cfg
    assert ours.trunk.normalisation == (tuple(config["mean"]), tuple(config["std"]))
    assert ours.clip_model.visual.preprocess_cfg["mean"] == tuple(config["mean"])
    assert ours._text_cache._tokenizer.context_length == reference_tokenizer.context_length
    assert ours.describe()["activation"] == ("quick_gelu" if "quickgelu" in trained_as else
                                             ours.trunk.activation)

    size = ours.native_size
    torch.manual_seed(1)
    pixels = torch.rand(1, 3, size, size)
    with torch.no_grad():
        expected = F.normalize(reference.encode_image(_normalised(pixels, *_constants(config))), dim=-1)
        got = ours.encode_image(_normalised(pixels, CLIP_MEAN, CLIP_STD)).clip_embedding
        assert _record(entry, "pooled image embedding", got, expected) <= TOLERANCE
        expected_text = F.normalize(reference.encode_text(reference_tokenizer([PROMPT])), dim=-1)
        got_text = ours.encode_text([PROMPT], templates=["{}"])
        assert _record(entry, "text embedding (own tokenizer)", got_text, expected_text) <= TOLERANCE

        # The other activation (QuickGELU for GELU weights, GELU for QuickGELU ones) must show:
        # in the text embedding always, in the image embedding for open_clip's own ViTs.
        trained_config = open_clip.get_model_config(trained_as)
        text_cfg = trained_config["text_cfg"]
        if "act_kwargs" in text_cfg:  # SigLIP's tanh GELU (QuickGELU takes no `approximate`)
            other_activation = {"quick_gelu": True,
                                "text_cfg": {k: v for k, v in text_cfg.items() if k != "act_kwargs"}}
        else:
            other_activation = {"quick_gelu": not trained_config.get("quick_gelu", False)}
        wrong = open_clip.create_model(trained_as, pretrained=None, **other_activation).eval()
        wrong.load_state_dict(reference.state_dict())
        other_text = F.normalize(wrong.encode_text(reference_tokenizer([PROMPT])), dim=-1)
        assert _record(entry, "wrong: other activation (text)", other_text, expected_text) > WRONG_BY
        if hasattr(reference.visual, "transformer"):
            other = F.normalize(wrong.encode_image(_normalised(pixels, *_constants(config))), dim=-1)
            assert _record(entry, "wrong: other activation (image)", other, expected) > WRONG_BY
        if tuple(config["mean"]) != CLIP_MEAN:  # CLIP's normalisation must show
            clip_pixels = _normalised(pixels, CLIP_MEAN, CLIP_STD)
            clip_normalised = F.normalize(reference.encode_image(clip_pixels), dim=-1)
            assert _record(entry, "wrong: CLIP normalisation (image)", clip_normalised, expected) > WRONG_BY


def test_biomedclip_runs_as_open_clip_loads_its_repository_with_pubmedberts_tokenizer(
        tmp_path, no_network, hub_offline):
    """A cached hf-hub: repository loads from its snapshot; the tokenizer is still the one its
    config names (PubMedBERT's), not a tokenizer that happens to sit in the repository."""
    cache_biomedclip(tmp_path, repo_tokenizer=True)
    name = f"hf-hub:{BIOMEDCLIP}"

    ours = load_model(name, cache_dir=str(tmp_path), device="cpu")
    assert no_network == []
    hub_offline()
    reference = open_clip.create_model(name, cache_dir=str(tmp_path)).eval()
    reference_tokenizer = open_clip.get_tokenizer(name, cache_dir=str(tmp_path))
    entry = "BiomedCLIP (hf-hub:)"
    assert reference_tokenizer.tokenizer.name_or_path.endswith(PUBMEDBERT) or \
        "BiomedBERT" in reference_tokenizer.tokenizer.name_or_path
    assert ours._text_cache._tokenizer.context_length == reference_tokenizer.context_length == 64

    config = reference.visual.preprocess_cfg
    assert ours.trunk.normalisation == (tuple(config["mean"]), tuple(config["std"]))
    torch.manual_seed(1)
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = F.normalize(reference.encode_image(_normalised(pixels, *_constants(config))), dim=-1)
        got = ours.encode_image(_normalised(pixels, CLIP_MEAN, CLIP_STD)).clip_embedding
        assert _record(entry, "pooled image embedding", got, expected) <= TOLERANCE
        tokens = reference_tokenizer([PROMPT])
        expected_text = F.normalize(reference.encode_text(tokens), dim=-1)
        assert _record(entry, "text embedding (own tokenizer)", ours.encode_text([PROMPT], ["{}"]),
                       expected_text) <= TOLERANCE
        from open_clip.tokenizer import HFTokenizer

        snapshot = next((tmp_path / f"models--{BIOMEDCLIP.replace('/', '--')}" / "snapshots").iterdir())
        stray = HFTokenizer(str(snapshot), context_length=64)([PROMPT])
        assert not torch.equal(stray, tokens)
        wrong = F.normalize(reference.encode_text(stray), dim=-1)
        assert _record(entry, "wrong: the repository's own tokenizer", wrong, expected_text) > WRONG_BY


#: The curated open_clip repositories and the open_clip architecture their configs hold.
VIT_REPOSITORIES = {"imageomics/bioclip": "ViT-B-16", "imageomics/bioclip-2": "ViT-L-14",
                    "wisdomik/QuiltNet-B-16": "ViT-B-16", "wisdomik/QuiltNet-B-32": "ViT-B-32"}


@pytest.mark.parametrize("repo", list(VIT_REPOSITORIES))
def test_an_open_clip_vit_repository_runs_as_open_clip_loads_it(repo, shrunk, tmp_path, no_network,
                                                                  hub_offline):
    staging = tmp_path / "_staging" / "repo"
    write_open_clip_folder(staging, VIT_REPOSITORIES[repo])
    put_folder_in_hub_cache(tmp_path, repo, staging)
    ours = load_model(f"hf-hub:{repo}", cache_dir=str(tmp_path), device="cpu")
    assert no_network == []
    hub_offline()
    reference = open_clip.create_model(f"hf-hub:{repo}", cache_dir=str(tmp_path)).eval()
    tokenizer = open_clip.get_tokenizer(f"hf-hub:{repo}", cache_dir=str(tmp_path))
    assert ours._text_cache._tokenizer.context_length == tokenizer.context_length
    assert ours.trunk.normalisation == (tuple(reference.visual.preprocess_cfg["mean"]),
                                        tuple(reference.visual.preprocess_cfg["std"]))
    size = ours.native_size
    pixels = torch.rand(1, 3, size, size)
    with torch.no_grad():
        expected = F.normalize(reference.encode_image(_normalised(pixels, CLIP_MEAN, CLIP_STD)), dim=-1)
        got = ours.encode_image(_normalised(pixels, CLIP_MEAN, CLIP_STD)).clip_embedding
        assert _record(f"{repo} (hf-hub:)", "pooled image embedding", got, expected) <= TOLERANCE
        expected_text = F.normalize(reference.encode_text(tokenizer([PROMPT])), dim=-1)
        assert _record(f"{repo} (hf-hub:)", "text embedding (own tokenizer)",
                       ours.encode_text([PROMPT], ["{}"]), expected_text) <= TOLERANCE


def _random_siglip():
    torch.manual_seed(8)
    vision = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4,
                  image_size=64, patch_size=16)
    text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=16, max_position_embeddings=16)
    config = transformers.SiglipConfig(vision_config=vision, text_config=text)
    return transformers.SiglipModel(config).eval()


@pytest.mark.parametrize("repo", ["vinid/plip", "flaviagiammarino/pubmed-clip-vit-base-patch32",
                                  "google/siglip-base-patch16-224"])
def test_a_transformers_model_runs_as_transformers_loads_it(repo, tmp_path, no_network):
    """CLIP text with its attention mask; SigLIP text on input_ids alone, max-length padded,
    as SigLIP was trained (transformers' own SiglipModel attends to a mask when one is given)."""
    siglip = "siglip" in repo
    staging = tmp_path / "_staging"
    model = _random_siglip() if siglip else random_transformers_clip()
    model.save_pretrained(staging)
    save_word_tokenizer(staging)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(staging))
    if siglip:  # SigLIP's tokenizer carries its training length (64 for the real one)
        tokenizer.model_max_length = 16
        tokenizer.save_pretrained(staging)
    put_folder_in_hub_cache(tmp_path, repo, staging)

    ours = load_model(f"transformers:{repo}", cache_dir=str(tmp_path), device="cpu")
    assert no_network == []
    reference = transformers.AutoModel.from_pretrained(repo, cache_dir=str(tmp_path),
                                                       local_files_only=True).eval()
    mean, std = ((0.5,) * 3, (0.5,) * 3) if siglip else (CLIP_MEAN, CLIP_STD)
    assert ours.trunk.normalisation == (mean, std)
    entry = f"transformers:{repo}"
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = F.normalize(reference.get_image_features(pixel_values=_normalised(pixels, mean, std))
                               .pooler_output, dim=-1)
        got = ours.encode_image(_normalised(pixels, CLIP_MEAN, CLIP_STD)).clip_embedding
        assert _record(entry, "pooled image embedding", got, expected) <= TOLERANCE
        batch = tokenizer([PROMPT], padding="max_length" if siglip else True, truncation=True,
                          return_tensors="pt")
        inputs = {"input_ids": batch["input_ids"]} if siglip else dict(batch)
        expected_text = F.normalize(reference.get_text_features(**inputs).pooler_output, dim=-1)
        assert _record(entry, "text embedding (own tokenizer)", ours.encode_text([PROMPT], ["{}"]),
                       expected_text) <= TOLERANCE
        if siglip:
            masked = F.normalize(reference.get_text_features(**batch).pooler_output, dim=-1)
            assert _record(entry, "wrong: with attention mask (text)", masked, expected_text) > WRONG_BY
