"""The released projection (``vitb_mlp_infonce.pth``): CLIP text space → DINOv2 patch space.

``x = W1 t + b1; x = tanh(x); x = W2 x + b2`` (official src/model.py L303-313: one hidden
layer, tanh, no residual, nothing after the last layer). The file holds exactly four
tensors::

    linear_layer.weight     [D, T]     linear_layer.bias     [D]
    hidden_layers.0.weight  [D, D]     hidden_layers.0.bias  [D]

(D = 768, the DINOv2 width; T = 512, the CLIP text width). Older files name the second
layer ``linear_layer2.*``, renamed on reading as the official loader does (L314-320).
Keys and shapes are checked strictly; a mismatch names the keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ...errors import ModelLoadError, first_line, key_mismatch

OLD_SECOND_LAYER = "linear_layer2."
SECOND_LAYER = "hidden_layers.0."


class ProjectionLayer(nn.Module):
    """Talk2DINO's text projection: linear, tanh, linear."""

    def __init__(self, text_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.linear_layer = nn.Linear(text_dim, embed_dim)
        self.hidden_layers = nn.ModuleList([nn.Linear(embed_dim, embed_dim)])

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.hidden_layers[0](torch.tanh(self.linear_layer(text)))


def read_projection(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a projection file (``.pth`` or ``.safetensors``), old names renamed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"Talk2DINO projection file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelLoadError(
            f"could not read {path} as a Talk2DINO projection ({type(error).__name__}: "
            f"{first_line(error)}). Is the file complete (not a partial download)?") from error
    for wrapper in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()):
        raise ModelLoadError(f"{path} is not a Talk2DINO projection: it holds no state dict of tensors")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    return {SECOND_LAYER + key[len(OLD_SECOND_LAYER):] if key.startswith(OLD_SECOND_LAYER) else key: value
            for key, value in state.items()}


def load_projection(projection: ProjectionLayer, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``projection``, every key and shape accounted for."""
    mismatch = key_mismatch(set(projection.state_dict()), set(state))
    if mismatch:
        raise ModelLoadError(
            f"{source} does not match the Talk2DINO projection layout ({mismatch}). Is it a "
            "Talk2DINO projection such as vitb_mlp_infonce.pth?")
    expected = projection.state_dict()
    wrong = [f"{key} {tuple(value.shape)} (expected {tuple(expected[key].shape)})"
             for key, value in state.items() if value.shape != expected[key].shape]
    if wrong:
        raise ModelLoadError(
            f"{source} has tensors of the wrong shape for this Talk2DINO model: {', '.join(wrong)}")
    projection.load_state_dict({key: value.float() for key, value in state.items()}, strict=True)
