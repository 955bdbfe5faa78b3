"""Loading SimZSS checkpoints: the released layout, clear errors, nothing half-loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from napari_gem import ModelLoadError, load_model
from napari_gem.engine.families.simzss import SimZSSModel, load_simzss
from simzss_helpers import TINY, TINY_TEXT, TINY_VIT, released_layout, save_tiny_checkpoint


def test_a_released_layout_checkpoint_loads_with_its_ddp_prefix(tiny_simzss, tiny_simzss_checkpoint):
    state = torch.load(tiny_simzss_checkpoint)
    network = tiny_simzss.network
    torch.testing.assert_close(network.text.text_projection, state["module.text.text_projection"])
    torch.testing.assert_close(network.vit.cls_token, state["module.visual.vit.model.cls_token"])
    torch.testing.assert_close(network.denoiser_position, state["module.visual.pos_embed"])
    assert tiny_simzss.logit_scale == pytest.approx(float(state["module.logit_scale"].exp()))
    assert isinstance(tiny_simzss, SimZSSModel) and tiny_simzss.method == "simzss"
    assert tiny_simzss.patch_size == 14 and tiny_simzss.embed_dim == 64
    assert tiny_simzss.describe() == {
        "model": TINY, "pretrained": str(tiny_simzss_checkpoint), "method": "simzss", "method_options": {},
        "denoiser": True, "device": "cpu", "precision": "float32",
    }
    assert not any(p.requires_grad for p in network.parameters())


def test_the_variant_without_denoiser_uses_the_normed_vit_patches(tiny_simzss_name, tmp_path):
    path = save_tiny_checkpoint(tmp_path / "no_denoiser.pth", denoiser=False)
    model = load_model(TINY, path, device="cpu")
    assert not model.has_denoiser and model.describe()["denoiser"] is False
    pixels = torch.randn(1, 3, 56, 70)
    with torch.no_grad():
        tokens = model.network.vit.forward_features(pixels)[:, 5:]
    expected = torch.nn.functional.normalize(tokens, dim=-1).reshape(1, 4, 5, 64)
    torch.testing.assert_close(model.encode_image(pixels).dense_features, expected)


def test_a_corrupt_or_missing_checkpoint_gives_a_clear_error(tiny_simzss_name, tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="could not read .*broken.pth as a SimZSS checkpoint"), \
            pytest.warns(UserWarning, match="retrying with weights_only=False"):
        load_model(TINY, broken)
    with pytest.raises(ModelLoadError, match="SimZSS checkpoint file not found"):
        load_model(TINY, tmp_path / "missing.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ModelLoadError, match="holds no state dict of tensors"):
        load_model(TINY, tmp_path / "list.pth")


def test_missing_and_unexpected_keys_are_named(tiny_simzss_name, tmp_path):
    state = released_layout(64, TINY_VIT, TINY_TEXT, 4)
    del state["module.text.ln_final.weight"]
    del state["module.visual.denoiser.mlp.fc2.bias"]
    state["module.decoder.extra"] = torch.zeros(1)
    torch.save(state, tmp_path / "edited.pth")
    with pytest.raises(ModelLoadError) as error:
        load_model(TINY, tmp_path / "edited.pth")
    message = str(error.value)
    for needed in ("missing keys", "text.ln_final.weight", "visual.denoiser.mlp.fc2.bias",
                   "unexpected keys", "decoder.extra"):
        assert needed in message, needed


def test_a_checkpoint_of_another_architecture_is_refused(tiny_simzss_name, tmp_path, tiny_checkpoint):
    state = released_layout(64, TINY_VIT, {"width": 48, "heads": 2, "layers": 2}, 4)
    torch.save(state, tmp_path / "wide_text.pth")
    with pytest.raises(ModelLoadError, match="wrong shape for SimZSS-test-tiny"):
        load_model(TINY, tmp_path / "wide_text.pth")
    with pytest.raises(ModelLoadError, match="does not match the SimZSS layout"):
        load_model(TINY, tiny_checkpoint)  # an open_clip CLIP checkpoint


def test_gem_and_clip_method_options_are_refused(tiny_simzss_name, tiny_simzss_checkpoint):
    with pytest.raises(ModelLoadError, match="depth do not apply to SimZSS"):
        load_model(TINY, tiny_simzss_checkpoint, method_options={"depth": 5})
    with pytest.raises(ModelLoadError, match="method 'gem' does not apply"):
        load_simzss(TINY, tiny_simzss_checkpoint, method="gem")
    with pytest.raises(ModelLoadError, match="pamr do not apply"):
        load_simzss(TINY, tiny_simzss_checkpoint, method="simzss", pamr=True)
    with pytest.raises(ModelLoadError, match="unknown SimZSS model 'SimZSS-ViT-X'"):
        load_model("SimZSS-ViT-X", tiny_simzss_checkpoint)


def test_without_vision_weights_offline_the_message_says_what_to_do(tiny_simzss_name, tmp_path):
    path = save_tiny_checkpoint(tmp_path / "text_only.pth", vit=False)
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})\n"
        "from simzss_helpers import TINY, tiny_architecture\n"
        "import napari_gem\n"
        "from napari_gem.engine.families.simzss import register_architecture\n"
        "register_architecture(TINY, tiny_architecture())\n"
        "try:\n"
        f"    napari_gem.load_model(TINY, {str(path)!r})\n"
        "except napari_gem.ModelLoadError as error:\n"
        "    print('MESSAGE:', error)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert "MESSAGE:" in out.stdout, out.stderr[-2000:]
    for needed in ("no DINOv2 weights", "vit_base_patch14_reg4_dinov2.lvd142m", str(tmp_path / "hf"),
                   "offline", "includes the vision weights"):
        assert needed in out.stdout, needed


def test_a_model_spec_rebuilds_simzss(tiny_simzss_name, tiny_simzss_checkpoint):
    from napari_gem.engine.spec import ModelSpec

    model = ModelSpec(TINY, str(tiny_simzss_checkpoint), device="cpu").load()
    assert isinstance(model, SimZSSModel) and model.pretrained == str(tiny_simzss_checkpoint)


def test_a_model_spec_rebuilds_simzss_and_refuses_clip_methods(tiny_simzss, tiny_simzss_checkpoint):
    from napari_gem import ModelLoadError
    from napari_gem.engine.spec import ModelSpec

    spec = ModelSpec.from_model(tiny_simzss)
    assert spec.method == "simzss" and spec.method_options == () and not spec.uses_clip_method
    assert spec == ModelSpec(TINY, str(tiny_simzss_checkpoint), device="cpu", precision="fp32")
    rebuilt = spec.load()
    assert rebuilt.method == "simzss" and rebuilt.describe() == tiny_simzss.describe()
    with pytest.raises(ModelLoadError, match="SimZSS models take no CLIP method"):
        ModelSpec(TINY, str(tiny_simzss_checkpoint), method="gem")
    with pytest.raises(ModelLoadError, match="SimZSS models take no CLIP method"):
        ModelSpec(TINY, str(tiny_simzss_checkpoint), method_options={"depth": 3})


def test_the_paper_template_set_means_bare_names_for_simzss(tiny_simzss):
    from napari_gem.engine.text import resolve_templates

    assert resolve_templates("paper", tiny_simzss.default_templates) == ("{}",)
    bare = tiny_simzss.encode_text(["cell"])
    torch.testing.assert_close(bare, tiny_simzss.encode_text(["cell"], ["{}"]))
