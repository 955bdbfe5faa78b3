"""Errors that tell the truth: a checkpoint that does not fit says so (architecture, keys, shapes);
only a failure to reach the network says "offline"."""

from __future__ import annotations

import socket

import pytest
import torch

from napari_gem import ModelLoadError, load_model
from napari_gem.engine.families.clip.family import _weights_failure
from napari_gem.engine.load_failures import is_network_failure, weights_mismatch


def _state_dict_error() -> RuntimeError:
    """torch's own error for a state dict that does not fit (a real load, not a copied message)."""
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    state = module.state_dict()
    state["0.weight"] = torch.zeros(5, 4)
    del state["1.bias"]
    state["2.weight"] = torch.zeros(1)
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        return error
    raise AssertionError("the state dict loaded")


def test_a_checkpoint_of_another_shape_names_the_architecture_and_the_keys(tiny_model_name, tiny_checkpoint,
                                                                          tmp_path):
    state = torch.load(tiny_checkpoint)["state_dict"]
    state["visual.proj"] = torch.zeros(64, 16)
    del state["logit_scale"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "other.pt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(ModelLoadError) as caught:
        load_model(tiny_model_name, path, device="cpu")
    message = str(caught.value)
    assert f"does not fit the {tiny_model_name} architecture" in message
    assert "size mismatch for visual.proj (checkpoint [64, 16], model [64, 32])" in message
    assert "missing keys: logit_scale" in message and "unexpected keys: extra.weight" in message
    assert "offline" not in message


def test_a_tag_whose_weights_do_not_fit_says_so_not_offline():
    message = _weights_failure("ViT-B-16", "openai", None, _state_dict_error())
    assert message.startswith("the openai weights do not fit the ViT-B-16 architecture: ")
    assert "size mismatch for 0.weight (checkpoint [5, 4], model [3, 4])" in message
    assert "missing keys: 1.bias" in message and "unexpected keys: 2.weight" in message
    assert "offline" not in message


def test_only_a_network_failure_gets_the_offline_advice():
    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except OSError as low:
            raise RuntimeError("download failed") from low
    except RuntimeError as error:
        network = error
    assert is_network_failure(network) and is_network_failure(ConnectionRefusedError())
    assert "offline" in _weights_failure("ViT-B-16", "openai", None, network)
    bug = ValueError("a bug in a config")
    assert not is_network_failure(bug) and weights_mismatch(bug) is None
    message = _weights_failure("ViT-B-16", "openai", None, bug)
    assert "offline" not in message
    assert message == "could not load ViT-B-16 with the openai weights (ValueError: a bug in a config)"
