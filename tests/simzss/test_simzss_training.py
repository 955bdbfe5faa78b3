"""Fine-tuning the SimZSS text tower on a miniature generated dataset of coloured shapes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_gem import load_model
from napari_gem.engine.families.simzss.architecture import get_tokenizer
from napari_gem.simzss_training import TrainingConfig, train
from napari_gem.simzss_training import trainer as trainer_module
from napari_gem.simzss_training.concepts import ConceptMatcher, plural_forms
from simzss_helpers import TINY, TINY_TEXT, TINY_VIT, released_layout

COLOURS = {"red": (230, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 230)}
SHAPES = ("circle", "square", "triangle")


def draw(shape: str, colour: tuple, rng) -> np.ndarray:
    size = 56
    image = np.zeros((size, size, 3), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    cy, cx, r = rng.integers(20, 36), rng.integers(20, 36), rng.integers(10, 16)
    if shape == "circle":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    elif shape == "square":
        inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
    else:
        inside = (yy >= cy - r) & (yy <= cy + r) & (abs(xx - cx) <= (yy - (cy - r)) / 2)
    image[inside] = colour
    return image


@pytest.fixture(scope="module")
def shapes_dataset(tmp_path_factory) -> dict:
    from PIL import Image

    folder = tmp_path_factory.mktemp("shapes")
    (folder / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for colour, rgb in COLOURS.items():
        for shape in SHAPES:
            for copy in range(4):
                name = f"{colour}_{shape}_{copy}.png"
                Image.fromarray(draw(shape, rgb, rng)).save(folder / "images" / name)
                plural = copy % 2 == 1
                caption = (f"two {colour} {shape}s on black" if plural
                           else f"a {colour} {shape} on a black background")
                rows.append({"image": name, "caption": caption})
    with (folder / "captions.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "caption"])
        writer.writeheader()
        writer.writerows(rows)
    (folder / "concepts.txt").write_text("# shapes and colours\ncircle\nsquare\ntriangle\nred\ngreen\nblue\n")
    return {"images": str(folder / "images"), "captions": str(folder / "captions.csv"),
            "concepts": (str(folder / "concepts.txt"),)}


def test_concepts_are_found_singular_or_plural_at_their_token_positions():
    tokenizer = get_tokenizer()
    matcher = ConceptMatcher(["traffic light", "light", "mitochondrion", "bus"], tokenizer)
    caption = "Two traffic lights, one light and many mitochondria near buses"
    tokens, matches = matcher.tokens_and_concepts(caption)
    assert tokens == tokenizer([caption])[0].tolist()  # the same ids open_clip gives
    names = [matcher.vocabulary[m.label] for m in matches]
    assert names == ["traffic light", "light", "mitochondrion", "bus"]
    found = [tokenizer.decode([tokens[p] for p in m.positions]).strip() for m in matches]
    assert found == ["traffic lights", "light", "mitochondria", "buses"]
    assert {"cell", "cells"} <= plural_forms("cell") and "nuclei" in plural_forms("nucleus")


@pytest.fixture(scope="module")
def start_checkpoint(tiny_simzss_name, tmp_path_factory) -> Path:
    """A tiny random SimZSS whose CLS depends on the image: its learned CLS token is zero.

    (With a random CLS token, two random blocks leave every image's CLS at cosine > 0.99,
    and image-text contrast has nothing to learn from.)
    """
    state = released_layout(64, TINY_VIT, TINY_TEXT, 4)
    state["module.visual.vit.model.cls_token"].zero_()
    path = tmp_path_factory.mktemp("start") / "start.pth"
    torch.save(state, path)
    return path


def _config(dataset, tmp_path, checkpoint, **changes) -> TrainingConfig:
    values = dict(output=str(tmp_path / "out" / "tuned.pth"), checkpoint=str(checkpoint), model=TINY,
                  epochs=8, batch_size=6, lr=3e-3, input_size=56, device="cpu",
                  cache_dir=str(tmp_path / "cache"), **dataset)
    values.update(changes)
    return TrainingConfig(**values)


def test_training_lowers_the_loss_and_improves_caption_retrieval(shapes_dataset, start_checkpoint,
                                                                 tmp_path):
    config = _config(shapes_dataset, tmp_path, start_checkpoint)
    record = train(config, progress=False)
    epochs = record["epochs"]
    assert record["images"] == 36 and record["captions_with_concepts"] == 36
    assert epochs[-1]["total"] < epochs[0]["total"] and epochs[-1]["dense"] < epochs[0]["dense"]
    assert epochs[-1]["retrieval_r1"] >= record["retrieval_r1_start"] + 0.1
    assert record["features_computed"] == 36

    tuned = load_model(TINY, config.output, device="cpu")  # released layout, read back
    start = load_model(TINY, start_checkpoint, device="cpu")
    torch.testing.assert_close(tuned.network.vit.cls_token, start.network.vit.cls_token)
    assert not torch.allclose(tuned.encode_text(["circle"]), start.encode_text(["circle"]))
    written = json.loads(Path(config.output).with_suffix(".json").read_text())
    assert written["config"]["dense_target"] == "label" and len(written["epochs"]) == 8

    again = train(_config(shapes_dataset, tmp_path, start_checkpoint,
                          output=str(tmp_path / "second.pth"), epochs=1), progress=False)
    assert again["features_computed"] == 0  # the cache is reused


def test_an_interrupted_run_resumes_from_its_last_epoch(shapes_dataset, start_checkpoint, tmp_path,
                                                        monkeypatch):
    whole = _config(shapes_dataset, tmp_path, start_checkpoint, epochs=3,
                    output=str(tmp_path / "whole.pth"), dense_target="argmax")
    train(whole, progress=False)
    resumed = _config(shapes_dataset, tmp_path, start_checkpoint, epochs=3,
                      output=str(tmp_path / "resumed.pth"), dense_target="argmax")
    real_epoch = trainer_module.run_epoch

    def interrupted(*args, **kwargs):
        if args[5] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(resumed, progress=False)
    monkeypatch.setattr(trainer_module, "run_epoch", real_epoch)
    record = train(resumed, resume=True, progress=False)
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3]
    first, second = torch.load(whole.output), torch.load(resumed.output)
    for key in first:
        torch.testing.assert_close(first[key], second[key])
    with pytest.raises(ValueError, match="other settings"):
        train(_config(shapes_dataset, tmp_path, start_checkpoint, epochs=3, lr=1e-3,
                      output=str(tmp_path / "resumed.pth"), dense_target="argmax"),
              resume=True, progress=False)


def test_the_command_line_trains_and_reports(shapes_dataset, start_checkpoint, tmp_path, capsys):
    from napari_gem.cli.main import main

    out = tmp_path / "cli.pth"
    code = main(["train-simzss", "--images", shapes_dataset["images"], "--captions",
                 shapes_dataset["captions"], "--concepts", shapes_dataset["concepts"][0], "--out", str(out),
                 "--checkpoint", str(start_checkpoint), "--model", TINY, "--epochs", "1", "--batch-size",
                 "6", "--input-size", "56", "--device", "cpu", "--quiet"])
    assert code == 0 and out.is_file() and "caption retrieval R@1" in capsys.readouterr().out
    missing = main(["train-simzss", "--images", shapes_dataset["images"], "--captions",
                    str(tmp_path / "none.csv"), "--concepts", "x.txt", "--out", str(out)])
    assert missing == 2 and "caption file not found" in capsys.readouterr().err
