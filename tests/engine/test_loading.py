"""Loading models: local checkpoints, clear errors, devices and precision."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from napari_gem import ModelLoadError, load_model, supported_models
from napari_gem.engine.devices import resolve_device, resolve_precision


def test_a_local_checkpoint_file_loads_through_the_real_path(tiny_model_name, tiny_checkpoint):
    gem = load_model(tiny_model_name, tiny_checkpoint, device="cpu",
                     method_options={"depth": 5, "temperature": 2.0})
    state = torch.load(tiny_checkpoint)["state_dict"]
    torch.testing.assert_close(gem.clip_model.visual.proj, state["visual.proj"])
    assert gem.method == "gem" and gem.method_options.depth == 5 and gem.method_options.temperature == 2.0
    assert gem.dtype == torch.float32 and gem.device.type == "cpu"
    assert gem.describe()["pretrained"] == str(tiny_checkpoint)


def test_a_corrupt_checkpoint_gives_a_clear_error(tiny_model_name, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="could not read checkpoint file .*broken.pt"):
        load_model(tiny_model_name, broken)


def test_a_missing_checkpoint_gives_a_clear_error(tiny_model_name, tmp_path):
    with pytest.raises(ModelLoadError, match="checkpoint file not found"):
        load_model(tiny_model_name, tmp_path / "missing.pt")


def test_unknown_models_and_tags_suggest_what_exists():
    with pytest.raises(ModelLoadError, match="Did you mean ViT-B-16"):
        load_model("ViT-B-17")
    with pytest.raises(ModelLoadError, match="known tags: openai"):
        load_model("ViT-B-16", "openaii")


def test_non_vit_models_are_refused_before_any_download():
    with pytest.raises(ModelLoadError, match="not supported by the dense methods"):
        load_model("RN50", "openai")
    with pytest.raises(ModelLoadError, match="not supported by the dense methods"):
        load_model("convnext_base", "laion400m_s13b_b51k")


def test_offline_download_fails_with_one_clear_message(tmp_path):
    """open_clip's own download path, offline: the user learns what to do."""
    code = (
        "import napari_gem\n"
        "try:\n"
        f"    napari_gem.load_model('ViT-B-32', 'openai', cache_dir={str(tmp_path)!r})\n"
        "except napari_gem.ModelLoadError as error:\n"
        "    print('MESSAGE:', error)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300).stdout
    assert "MESSAGE:" in out
    for needed in ("'ViT-B-32'", "'openai'", str(tmp_path), "local checkpoint file", "offline"):
        assert needed in out, needed
    assert not any(tmp_path.rglob("*.bin"))  # no partial weights left behind


def test_device_and_precision_choices():
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_precision(None, torch.device("cpu")) == torch.float32
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ModelLoadError, match="precision"):
        resolve_precision("fp8", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_bf16_on_cpu_runs(tiny_model_name, tiny_checkpoint):
    gem = load_model(tiny_model_name, tiny_checkpoint, device="cpu", precision="bf16")
    maps = gem.heatmaps(torch.randn(1, 3, 64, 64), ["x"])
    assert maps.dtype == torch.float32 and torch.isfinite(maps).all()


def test_supported_models_are_the_authors_vits_and_tags():
    models = supported_models()
    assert "openai" in models["ViT-B-16"] and "laion2b_s34b_b88k" in models["ViT-B-16"]
    assert set(models) >= {"ViT-B-32", "ViT-B-16-plus-240", "ViT-L-14", "ViT-L-14-336",
                           "ViT-B-32-quickgelu"}
    assert all(tag.startswith(("openai", "laion", "metaclip")) for tags in models.values()
               for tag in tags)


def test_a_model_spec_rebuilds_the_same_model_anywhere(tiny_model_name, tiny_checkpoint, tmp_path,
                                                      monkeypatch):
    import pickle

    from napari_gem.engine.spec import ModelSpec

    monkeypatch.chdir(tiny_checkpoint.parent)
    spec = ModelSpec(tiny_model_name, tiny_checkpoint.name, device="cpu",
                     method_options={"depth": 4})
    assert spec.pretrained == str(tiny_checkpoint)  # relative paths are pinned down
    assert spec.is_file and pickle.loads(pickle.dumps(spec)) == spec
    gem = spec.load()
    assert ModelSpec.from_model(gem) == ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu",
                                                  precision="fp32", method_options={"depth": 4})
    plain = ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu")
    assert spec.features_key() != plain.features_key()
    assert plain.features_key() != ModelSpec(tiny_model_name, str(tiny_checkpoint), device="cpu",
                                             method="clearclip").features_key()
    with pytest.raises(ModelLoadError, match="config not found"):
        ModelSpec(model_configs=(str(tmp_path / "missing.json"),)).load()
