"""Training runs end to end on region-caption pairs, and a few steps lower the loss (CI never retrains)."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark_scripts import benchmark_module
from napari_gem.demo import VOCABULARY
from napari_gem.demo.model import WEIGHTS_PATH

training = benchmark_module("demo_training")


@pytest.fixture(scope="module")
def sampler():
    return training.CropSampler(scenes=6, native=64, seed=0, min_crop=1 / 6)


def test_crop_batches_have_distinct_concept_sets_and_matching_captions(sampler):
    pixels, captions, labels = sampler.batch(12)
    assert pixels.shape == (len(captions), 3, 64, 64) and 2 <= len(captions) <= 12
    named = [frozenset(c for c in VOCABULARY if c in text) for text in captions]
    assert len(set(named)) == len(named)  # ClipLoss never sees a duplicate as a negative
    assert labels.shape == (len(captions), 8, 8)
    for concepts, label in zip(named, labels, strict=True):
        # A patch labelled with a concept lies in a crop whose caption names it.
        assert {VOCABULARY[i - 1] for i in label.unique().tolist() if i} <= concepts


def test_a_few_steps_lower_the_contrastive_loss(sampler):
    from open_clip.loss import ClipLoss

    model, tokenizer = training.build_model(seed=0)
    optimizer = training.make_optimizer(model, training.TrainingConfig())
    pixels, captions, labels = sampler.batch(16)
    losses = [training.training_step(model, tokenizer, optimizer, ClipLoss(), pixels, captions, labels)
              for _ in range(6)]
    assert losses[-1] < losses[0] - 0.2, losses


def test_saved_weights_are_half_precision_and_load_through_open_clip(tmp_path):
    import open_clip

    model, _ = training.build_model(seed=1)
    path = tmp_path / "demo.pt"
    training.save_weights(model, path)
    state = torch.load(path, map_location="cpu")["state_dict"]
    assert all(t.dtype == torch.float16 for t in state.values() if t.is_floating_point())
    loaded = open_clip.create_model(training.MODEL_NAME, pretrained=str(path))
    reference = model.visual.conv1.weight.half().float()
    torch.testing.assert_close(loaded.visual.conv1.weight, reference)


def test_training_log_of_the_shipped_weights_records_the_recipe():
    log = json.loads(WEIGHTS_PATH.with_suffix(".json").read_text())
    assert log["config"]["steps"] == len(log["losses"]) == training.TrainingConfig().steps
    assert sum(log["losses"][-20:]) < sum(log["losses"][:20])  # it learned
