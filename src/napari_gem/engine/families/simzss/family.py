"""The SimZSS family: DINOv2 with a denoiser and its own text tower, from a checkpoint file."""

from __future__ import annotations

from ..base import WEIGHTS_FILE, LoadRequest, ModelFamily
from ..registry import register_family
from .architecture import architecture_names, is_simzss_name
from .loader import METHOD, TITLE, build_simzss
from .model import SimZSSModel


@register_family
class SimZSSFamily(ModelFamily):
    """SimZSS models (names starting with "SimZSS"); weights are a checkpoint file."""

    name = "simzss"
    title = TITLE
    summary = "SimZSS (frozen DINOv2 + a text tower trained to match it), from a released checkpoint file"
    uses_clip_methods = False
    default_method = METHOD
    weights = WEIGHTS_FILE

    def claims(self, name: str) -> bool:
        return is_simzss_name(name)

    def model_names(self) -> list[str]:
        return architecture_names()

    def weights_hint(self, name: str) -> str:
        return ("its checkpoint file in the released layout (e.g. the released "
                "ours_dinov2_ViT-B-14_reg checkpoint, or one napari-gem train-simzss wrote)")

    def build(self, request: LoadRequest) -> SimZSSModel:
        return build_simzss(request.name, request.pretrained)
