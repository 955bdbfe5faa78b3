"""The Talk2DINO family: DINOv2 + a CLIP text tower + the released projection file."""

from __future__ import annotations

import os
from typing import Any

from ...errors import ModelLoadError
from ..base import WEIGHTS_FILE, CatalogueEntry, LoadRequest, ModelFamily
from ..registry import register_family
from .architecture import architecture_names, get_architecture, is_talk2dino_name
from .loader import build_talk2dino
from .model import METHOD, Talk2DinoModel
from .options import Talk2DinoOptions, options_from
from .parts import missing_parts

TITLE = "Talk2DINO"


@register_family
class Talk2DinoFamily(ModelFamily):
    """Talk2DINO models (names starting with "talk2dino"); weights are the projection file."""

    name = "talk2dino"
    title = TITLE
    summary = ("Talk2DINO (frozen DINOv2 ViT-B/14-reg + CLIP ViT-B/16 text, linked by a released "
               "projection file); DINOv2 and CLIP come from their caches")
    uses_clip_methods = False
    default_method = METHOD
    weights = WEIGHTS_FILE
    own_options = Talk2DinoOptions

    def claims(self, name: str) -> bool:
        return is_talk2dino_name(name)

    def model_names(self) -> list[str]:
        return architecture_names()

    def catalogue(self) -> list[CatalogueEntry]:
        tooltip = ("Talk2DINO (ICCV 2025): DINOv2 patches against projected CLIP text; choose the "
                   "projection file (vitb_mlp_infonce.pth); DINOv2 ViT-B/14-reg (~350 MB) and CLIP "
                   "ViT-B/16 (~600 MB) download into their caches")
        return [CatalogueEntry(name, "Talk2DINO ViT-B/14 (DINOv2 + CLIP text)", "general", tooltip,
                               self.name) for name in ["talk2dino-vitb14"] if name in self.model_names()]

    def segment_defaults(self, name: str) -> dict[str, Any]:
        return {"input_size": 448, "window": 448, "overlap": 224}

    def weights_hint(self, name: str) -> str:
        return "its projection file in the released layout (the released vitb_mlp_infonce.pth)"

    def is_cached(self, name: str, pretrained: str | None, cache_dir=None) -> bool:
        """Whether DINOv2 and the CLIP text tower are in their caches (the projection is a file)."""
        try:
            architecture = get_architecture(name)
        except KeyError:
            return True
        cache = os.fspath(cache_dir) if cache_dir is not None else None
        return missing_parts(architecture, None, None, cache) == []

    def check(self, name: str, pretrained: str | None) -> None:
        if pretrained is not None and not os.path.isfile(os.path.expanduser(pretrained)):
            raise ModelLoadError(
                f"{TITLE}'s weights are its projection file (the released vitb_mlp_infonce.pth); "
                f"{pretrained!r} is not a file. DINOv2 and the CLIP text tower come from their "
                "caches, or from backbone_weights= and text_weights= files")

    def check_method(self, name: str, method: str | None, options: dict[str, Any]) -> None:
        if method not in (None, METHOD):
            raise ModelLoadError(
                f"{name} is a {TITLE} model: method {method!r} does not apply ({TITLE} makes its own "
                "dense features; its options are backbone_weights, text_weights, background_cleaning)")
        try:
            options_from(options)
        except (TypeError, ValueError) as error:
            raise ModelLoadError(str(error)) from error

    def build(self, request: LoadRequest) -> Talk2DinoModel:
        return build_talk2dino(request.name, request.pretrained, options_from(request.options),
                               request.cache_dir)
