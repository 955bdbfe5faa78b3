"""Each method's evaluation protocol, as its official code configures it (docs/evaluation.md).

A preset gives, per dataset: the short side, the sliding window (or the whole image),
the logit scale, the background probability threshold, SCLIP's area threshold, PAMR,
and whether the class-name files carry synonyms. Values marked inferred are not in any
official code (GCLIP has none); docs/evaluation.md lists the sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Datasets whose class 0 is a background class.
BACKGROUND_DATASETS = ("voc21", "context60", "coco-object")


@dataclass(frozen=True)
class MethodPreset:
    """One method's protocol; ``per_dataset`` maps a dataset to the fields it changes."""

    source: str
    short_side: int = 448
    crop: int | None = 448  # None: the whole image in one pass
    stride: int | None = 224
    logit_scale: float = 50.0
    prob_thresholds: dict[str, float] = field(default_factory=dict)
    area_threshold: dict[str, float] = field(default_factory=dict)
    pamr_steps: int | None = None
    synonyms: bool = True
    templates: str = "imagenet80"  # or "bare": the class names as they are; or "sub-imagenet7"
    inferred: bool = False
    per_dataset: dict[str, dict] = field(default_factory=dict)
    pamr_dilations: tuple[int, ...] = (8, 16)
    background_logits: dict[str, float] = field(default_factory=dict)  # constant class-0 logit

    def settings_for(self, dataset: str) -> dict:
        """The protocol fields of this preset on ``dataset``."""
        values = {
            "short_side": self.short_side, "crop": self.crop, "stride": self.stride,
            "logit_scale": self.logit_scale,
            "prob_threshold": self.prob_thresholds.get(dataset) if dataset in BACKGROUND_DATASETS else None,
            "area_threshold": self.area_threshold.get(dataset),
            "pamr_steps": self.pamr_steps, "synonyms": self.synonyms,
            "templates": self.templates, "pamr_dilations": self.pamr_dilations,
            "background_logit": (self.background_logits.get(dataset)
                                 if dataset in BACKGROUND_DATASETS else None),
        }
        values.update(self.per_dataset.get(dataset, {}))
        return values


_CLEARCLIP = MethodPreset(
    source="github.com/mc-lan/ClearCLIP clearclip_segmentor.py L22-23 and configs/",
    prob_thresholds={"voc21": 0.5, "context60": 0.15, "coco-object": 0.4},
    synonyms=False,
    per_dataset={"cityscapes": {"crop": 224, "stride": 224}},
)

PRESETS: dict[str, MethodPreset] = {
    # GEM and the baselines were re-run in the literature under ClearCLIP's protocol
    # (with the SCLIP-family name files); this is also the `common` setting of old.
    "gem": MethodPreset(
        source="ClearCLIP's protocol, under which GEM was re-evaluated (docs/evaluation.md)",
        prob_thresholds=_CLEARCLIP.prob_thresholds, per_dataset=_CLEARCLIP.per_dataset),
    "clip": MethodPreset(
        source="as GEM (the baseline is scored under the same protocol)",
        prob_thresholds=_CLEARCLIP.prob_thresholds, per_dataset=_CLEARCLIP.per_dataset),
    "maskclip": MethodPreset(
        source="the common protocol of the re-evaluations (docs/evaluation.md); MaskCLIP's own "
        "(whole image, short side 512, ImageNet mean/std) is not reproduced",
        prob_thresholds=_CLEARCLIP.prob_thresholds, per_dataset=_CLEARCLIP.per_dataset),
    "maskclip-nores": MethodPreset(
        source="ClearCLIP's protocol (its re-implementation of MaskCLIP)",
        prob_thresholds=_CLEARCLIP.prob_thresholds, synonyms=False,
        per_dataset=_CLEARCLIP.per_dataset),
    "sclip": MethodPreset(
        source="github.com/wangf3014/SCLIP clip_segmentor.py L19-21 and configs/",
        short_side=336, crop=224, stride=112, logit_scale=40.0,
        prob_thresholds={"voc21": 0.1, "context60": 0.1, "coco-object": 0.1},
        area_threshold={"voc21": 0.1},
        per_dataset={"voc21": {"logit_scale": 65.0}, "context60": {"logit_scale": 50.0},
                     "coco-object": {"logit_scale": 50.0}, "coco-stuff": {"short_side": 448},
                     "cityscapes": {"short_side": 560}},
    ),
    "clearclip": _CLEARCLIP,
    "naclip": MethodPreset(
        source="github.com/sinahmr/NACLIP naclip.py L20-22 and v2 configs/",
        short_side=336, crop=224, stride=112, logit_scale=40.0, pamr_steps=10,
        prob_thresholds={"voc21": 0.1, "context60": 0.1, "coco-object": 0.1},
        per_dataset={"voc21": {"crop": None, "stride": None}, "voc20": {"crop": None, "stride": None},
                     "cityscapes": {"short_side": 560}},
    ),
    # vfm-methods-spec §2.3: proxyclip_segmentor.py L30-31, configs/cfg_*.py (no config
    # overrides the logit scale, beta or gamma; name files split on "; " carry synonyms).
    "proxyclip": MethodPreset(
        source="github.com/mc-lan/ProxyCLIP e7b767f proxyclip_segmentor.py L30-31 and configs/",
        short_side=336, crop=336, stride=112, logit_scale=40.0,
        prob_thresholds={"voc21": 0.2, "context60": 0.15, "coco-object": 0.25},
        per_dataset={"cityscapes": {"short_side": 448, "crop": 224, "stride": 112},
                     "ade20k": {"short_side": 448}},
    ),
    "gclip": MethodPreset(
        source="inferred: ClearCLIP's protocol, which GCLIP compares against (docs/methods.md)",
        prob_thresholds=_CLEARCLIP.prob_thresholds, synonyms=False, inferred=True,
        per_dataset=_CLEARCLIP.per_dataset),
    # SimZSS's segmentation protocol is not published (the official tileb1/simzss code
    # has no segmentation evaluation; docs/simzss.md): the common windows, bare class
    # names as its embed_words uses, and its dense-loss scale 1/0.07.
    "simzss": MethodPreset(
        source="inferred: SimZSS's protocol is unpublished; the common protocol with bare "
        "names and the dense-loss logit scale 1/0.07 (docs/simzss.md)",
        logit_scale=1 / 0.07, prob_thresholds=_CLEARCLIP.prob_thresholds, templates="bare",
        inferred=True, per_dataset=_CLEARCLIP.per_dataset),
    # talk2dino-spec §4: configs/* (mmseg 0.30): short side 448 (img_scale (2048, 448)),
    # windows 448 / stride 224, the masks' argmax against a constant background channel
    # bg_thresh = 0.55 (ViT-B), no probability threshold (so the logit scale is immaterial),
    # the 7 sub-ImageNet templates. PAMR (--pamr on) with its dilations, at the image size.
    "talk2dino": MethodPreset(
        source="github.com/lorebianchi98/Talk2DINO 4918c2d configs/ and dinotext.py (talk2dino-spec "
        "§4); one name per class (the spec does not give Talk2DINO's name files)",
        short_side=448, crop=448, stride=224, logit_scale=1.0, synonyms=False,
        templates="sub-imagenet7", pamr_dilations=(1, 2, 4, 8, 12, 24),
        background_logits={"voc21": 0.55, "context60": 0.55, "coco-object": 0.55},
    ),
}


def method_preset(method: str) -> MethodPreset:
    """The preset of ``method``; a clear ``ValueError`` for a method without one."""
    try:
        return PRESETS[method]
    except KeyError:
        raise ValueError(f"no evaluation preset for method {method!r}; known: {', '.join(PRESETS)}") from None
