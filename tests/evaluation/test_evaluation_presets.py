"""Each method's protocol preset, SCLIP's area threshold and NACLIP's PAMR in the evaluation."""

from __future__ import annotations

import argparse

import pytest
import torch

from napari_gem.cli.evaluate import add_evaluate_parser, run_evaluate
from napari_gem.engine import method_names
from napari_gem.evaluation.class_names import dataset_class_names
from napari_gem.evaluation.presets import PRESETS
from napari_gem.evaluation.protocol import ProtocolSettings, classify, protocol_for, refine_logits
from napari_gem.evaluation.run import resolve_class_names


def test_every_method_has_a_preset():
    assert set(PRESETS) == {*method_names(), "simzss", "talk2dino"}
    assert [name for name, preset in PRESETS.items() if preset.inferred] == ["gclip", "simzss"]


@pytest.mark.parametrize(("method", "dataset", "expected"), [
    # methods-spec §3.2 - 3.4 and the §4 table
    ("gem", "voc21", dict(short_side=448, crop=448, stride=224, logit_scale=50.0, prob_threshold=0.5)),
    ("clearclip", "cityscapes", dict(short_side=448, crop=224, stride=224, logit_scale=50.0, synonyms=False)),
    ("clearclip", "context60", dict(prob_threshold=0.15, pamr_steps=None)),
    ("sclip", "voc21", dict(short_side=336, crop=224, stride=112, logit_scale=65.0, prob_threshold=0.1,
                            area_threshold=0.1, synonyms=True)),
    ("sclip", "coco-stuff", dict(short_side=448, logit_scale=40.0, area_threshold=None, prob_threshold=None)),
    ("sclip", "cityscapes", dict(short_side=560)),
    ("naclip", "voc21", dict(short_side=336, crop=None, stride=None, logit_scale=40.0, pamr_steps=10,
                             prob_threshold=0.1)),
    ("naclip", "ade20k", dict(short_side=336, crop=224, stride=112, pamr_steps=10)),
    ("naclip", "cityscapes", dict(short_side=560)),
    # vfm-methods-spec §2.3
    ("proxyclip", "voc21", dict(short_side=336, crop=336, stride=112, logit_scale=40.0, prob_threshold=0.2,
                                pamr_steps=None, synonyms=True)),
    ("proxyclip", "coco-object", dict(prob_threshold=0.25)),
    ("proxyclip", "context59", dict(short_side=336, prob_threshold=None)),
    ("proxyclip", "cityscapes", dict(short_side=448, crop=224, stride=112)),
    ("proxyclip", "ade20k", dict(short_side=448, crop=336, stride=112)),
    ("gclip", "ade20k", dict(short_side=448, crop=448, stride=224, logit_scale=50.0, synonyms=False)),
])
def test_presets_follow_the_official_code(method, dataset, expected):
    settings = protocol_for(dataset, "common", method=method)
    assert settings.method == method
    for name, value in expected.items():
        assert getattr(settings, name) == value, name
    assert len(settings.templates) == 80


def test_simzss_uses_bare_names_and_its_dense_scale():
    settings = protocol_for("ade20k", "common", method="simzss")
    assert settings.templates == ("{}",) and settings.logit_scale == pytest.approx(14.2857, abs=1e-3)
    assert (settings.short_side, settings.crop, settings.stride) == (448, 448, 224)


def test_clearclip_names_have_no_synonyms(make_dataset):
    from napari_gem.evaluation.datasets import dataset_spec

    spec = dataset_spec("voc21")
    plain = resolve_class_names(spec, synonyms=False)
    assert plain.num_classes == 21 and len(plain.prompts) == 21
    assert plain.prompts[0] == "background" and "person" in plain.prompts
    assert len(resolve_class_names(spec).prompts) > 21  # the SCLIP-family files do have them


def test_sclip_area_threshold_drops_small_classes_before_the_arg_max():
    # Three classes (0 = background). Class 2 wins 1 of 10 non-background pixels (10 %):
    # with area_threshold 0.1 it loses its probability there and class 1 takes over.
    logits = torch.zeros(3, 1, 11)
    logits[1, 0, :9] = 1.0
    logits[2, 0, 9] = 1.0
    logits[0, 0, 10] = 1.0
    classes = torch.arange(3)
    plain = classify(logits, classes, 3, logit_scale=10.0)
    assert plain[0].tolist() == [1] * 9 + [2, 0]
    filtered = classify(logits, classes, 3, logit_scale=10.0, area_threshold=0.1)
    assert filtered[0, 9] != 2 and filtered[0, :9].tolist() == [1] * 9


def test_pamr_in_the_protocol_refines_with_the_image_as_guide():
    settings = ProtocolSettings(setting="common", templates=("{}",), short_side=32, pamr_steps=2,
                                pamr_dilations=(1, 2))
    logits = torch.rand(3, 16, 16)
    pixels = torch.rand(1, 3, 32, 32)
    refined = refine_logits(logits, pixels, settings)
    assert refined.shape == logits.shape and not torch.allclose(refined, logits)
    unchanged = refine_logits(logits, pixels, ProtocolSettings(setting="common", templates=("{}",),
                                                               short_side=32))
    assert unchanged is logits


def test_evaluate_takes_the_method_and_its_options(make_dataset, scorers, capsys):
    import numpy as np

    label = np.zeros((20, 30), dtype=np.int64)
    root, _ = make_dataset("voc20", [label])
    asked = {}

    def load(name, pretrained, *, device, precision, method, method_options):
        asked.update(method=method, options=method_options)
        return scorers.Constant([0.0] * len(dataset_class_names("voc20").prompts))

    parser = argparse.ArgumentParser(prog="napari-gem")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", "--dataset", "voc20", "--root", str(root), "--method", "naclip",
                              "--option", "sigma=3", "--pamr", "off", "--short-side", "32"])
    assert run_evaluate(args, load_model=load) == 0
    assert asked == {"method": "naclip", "options": {"sigma": 3}}
    args = parser.parse_args(["evaluate", "--dataset", "voc20", "--root", str(root), "--model",
                              "SimZSS-ViT-B-14", "--pretrained", "x.pth", "--short-side", "32"])
    assert run_evaluate(args, load_model=load) == 0
    assert asked == {"method": None, "options": {}}  # SimZSS brings its own method


def test_a_simzss_model_is_evaluated_under_the_common_protocol(make_dataset, tiny_simzss):
    import numpy as np

    from napari_gem.evaluation import evaluate

    label = np.zeros((40, 50), dtype=np.int64)
    label[10:30, 10:40] = 12
    root, _ = make_dataset("voc20", [label, label[::-1].copy()])
    protocol = protocol_for("voc20", "common", short_side=56, crop=56, stride=28)
    result = evaluate("voc20", root, tiny_simzss, protocol=protocol)
    assert result.num_images == 2 and 0 <= result.miou <= 100
    assert result.model["method"] == "simzss"
