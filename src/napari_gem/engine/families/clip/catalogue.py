"""The curated models pickers and ``napari-gem models`` offer beyond open_clip's evaluated ViTs.

One row per model: the name ``load_model`` takes, its default weights, a label, the picker
group ("general" or "science"), native input size and patch, and a one-line tooltip
(domain, licence, size). Licences were checked against the Hugging Face model cards on
2026-11-29 (the card's ``license`` field); where only a sibling card was seen, or a card
states none, the row says so. Cards change: check the card before commercial use.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base import CatalogueEntry


@dataclass(frozen=True)
class CuratedModel:
    name: str
    pretrained: str | None  # None: the weights come with the name (hf-hub:, transformers:)
    label: str
    group: str
    family: str
    size: int
    patch: int
    domain: str
    licence: str
    params: str

    @property
    def tooltip(self) -> str:
        return f"{self.domain}; licence {self.licence}; {self.params}, {self.size} px, patch {self.patch}"


CURATED: tuple[CuratedModel, ...] = (
    # -- general: open_clip names on timm trunks and other pretraining sets ----------------
    CuratedModel("ViT-B-16-SigLIP2", "webli", "SigLIP 2 B/16", "general", "open_clip", 224, 16,
                 "general images (WebLI)", "Apache-2.0 (Google's SigLIP 2 cards)", "ViT-B/16, 375M params"),
    CuratedModel("ViT-B-16-SigLIP2-512", "webli", "SigLIP 2 B/16 512", "general", "open_clip", 512, 16,
                 "general images (WebLI)", "Apache-2.0 (Google's SigLIP 2 cards)", "ViT-B/16, 376M params"),
    CuratedModel("EVA02-B-16", "merged2b_s8b_b131k", "EVA-02 B/16", "general", "open_clip", 224, 16,
                 "general images (Merged-2B)", "MIT", "ViT-B/16 with RoPE, 150M params"),
    CuratedModel("PE-Core-B-16", "meta", "PE-Core B/16", "general", "open_clip", 224, 16,
                 "general images (MetaCLIP data)", "Apache-2.0", "ViT-B/16 with RoPE, attention pooling"),
    CuratedModel("ViT-B-16-quickgelu", "metaclip_fullcc", "MetaCLIP B/16", "general", "open_clip", 224, 16,
                 "general images (MetaCLIP 2.5B)", "CC-BY-NC-4.0", "ViT-B/16, 150M params"),
    CuratedModel("ViT-B-16", "dfn2b", "DFN-2B B/16", "general", "open_clip", 224, 16,
                 "general images (DFN-2B)",
                 "Apple ML Research Model licence (apple-amlr; earlier: Apple sample code)",
                 "ViT-B/16, 150M params"),
    # -- science ------------------------------------------------------------------------
    CuratedModel("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", None, "BiomedCLIP",
                 "science", "open_clip_hub", 224, 16, "biomedical figures (PMC-15M)", "MIT",
                 "timm ViT-B/16 + PubMedBERT text, 196M params"),
    CuratedModel("hf-hub:imageomics/bioclip", None, "BioCLIP", "science", "open_clip_hub", 224, 16,
                 "organisms across the tree of life (TreeOfLife-10M)", "MIT", "ViT-B/16, 150M params"),
    CuratedModel("hf-hub:imageomics/bioclip-2", None, "BioCLIP 2", "science", "open_clip_hub", 224, 14,
                 "organisms across the tree of life (TreeOfLife-200M)", "MIT", "ViT-L/14, 430M params"),
    CuratedModel("hf-hub:wisdomik/QuiltNet-B-16", None, "QuiltNet B/16", "science", "open_clip_hub", 224, 16,
                 "histopathology (Quilt-1M)", "MIT", "ViT-B/16, 150M params"),
    CuratedModel("hf-hub:wisdomik/QuiltNet-B-32", None, "QuiltNet B/32", "science", "open_clip_hub", 224, 32,
                 "histopathology (Quilt-1M)", "MIT (QuiltNet-B-16's card; not seen on B-32's)",
                 "ViT-B/32, 150M params"),
    CuratedModel("transformers:vinid/plip", None, "PLIP", "science", "transformers", 224, 32,
                 "pathology (OpenPath, Twitter)", "none stated on the model card", "ViT-B/32, 150M params"),
    CuratedModel("transformers:flaviagiammarino/pubmed-clip-vit-base-patch32", None, "PubMedCLIP",
                 "science", "transformers", 224, 32, "radiology (ROCO)", "MIT", "ViT-B/32, 150M params"),
)


def curated(family: str) -> list[CuratedModel]:
    """The curated rows of one family."""
    return [row for row in CURATED if row.family == family]


def curated_entries(family: str) -> list[CatalogueEntry]:
    """The curated models of ``family`` as pickers list them."""
    return [CatalogueEntry(row.name, row.label, row.group, row.tooltip, family, row.pretrained)
            for row in curated(family)]
