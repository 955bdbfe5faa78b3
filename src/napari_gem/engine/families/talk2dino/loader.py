"""Building Talk2DINO: the projection file first (checked strictly), then the frozen parts.

``load_model("talk2dino-vitb14", "vitb_mlp_infonce.pth")`` reads the projection, checks
that the backbone and the text tower are given or cached (or can be downloaded) within
seconds, and builds everything before returning; every failure is one
:class:`~napari_gem.engine.errors.ModelLoadError`.
"""

from __future__ import annotations

import os

from ...errors import ModelLoadError
from .architecture import get_architecture
from .model import Talk2DinoModel, Talk2DinoNetwork
from .options import Talk2DinoOptions
from .parts import build_backbone, build_text_tower, check_parts
from .projection import ProjectionLayer, load_projection, read_projection


def build_talk2dino(name: str, pretrained: str | os.PathLike | None,
                    options: Talk2DinoOptions | None = None, cache_dir: str | None = None) -> Talk2DinoModel:
    """Talk2DINO ``name`` on the CPU in float32 from its projection file.

    ``pretrained=None`` gives random weights (tests and benchmarks): the projection, and
    the backbone and text tower unless their files are given.
    """
    import open_clip

    options = options or Talk2DinoOptions()
    try:
        architecture = get_architecture(name)
    except KeyError as error:
        raise ModelLoadError(str(error.args[0])) from None
    path = os.fspath(pretrained) if pretrained is not None else None
    projection = ProjectionLayer(architecture.text_dim, architecture.embed_dim)
    if path is not None:
        load_projection(projection, read_projection(path), path)  # before any download
    random = path is None
    if not random:
        check_parts(architecture, options.backbone_weights, options.text_weights, cache_dir)
    backbone = build_backbone(architecture, options.backbone_weights, random=random)
    text = build_text_tower(architecture, options.text_weights, cache_dir, random=random)
    _check_widths(architecture, backbone.module.embed_dim, text.text_projection.shape[-1], name)
    network = Talk2DinoNetwork(architecture, backbone, text, projection).eval().requires_grad_(False)
    return Talk2DinoModel(network, open_clip.get_tokenizer(architecture.text_model), options,
                          name=name, pretrained=path)


def _check_widths(architecture, backbone_width: int, text_width: int, name: str) -> None:
    if (backbone_width, text_width) != (architecture.embed_dim, architecture.text_dim):
        raise ModelLoadError(
            f"{name}: the backbone is {backbone_width} wide and the text tower {text_width}, but "
            f"the projection maps {architecture.text_dim} to {architecture.embed_dim}")
