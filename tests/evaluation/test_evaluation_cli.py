"""The ``evaluate`` subcommand: options, output, and one-line errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from napari_gem.cli.evaluate import add_evaluate_parser, run_evaluate
from napari_gem.cli.main import main
from napari_gem.engine.loading import ModelLoadError
from napari_gem.evaluation.class_names import dataset_class_names
from napari_gem.evaluation.datasets import DATASETS

SMALL_RUN = ["--short-side", "32", "--crop", "32", "--stride", "16"]


def parse(argv):
    parser = argparse.ArgumentParser(prog="napari-gem")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["evaluate", *argv])


def test_options_and_defaults():
    args = parse(["--dataset", "ade20k", "--root", "/data/ade"])
    assert (args.dataset, args.root, args.setting) == ("ade20k", "/data/ade", "common")
    assert (args.model, args.pretrained, args.device, args.precision) == (
        "ViT-B-16",
        "openai",
        "auto",
        None,
    )
    assert args.limit is None and args.out is None and args.handler is run_evaluate
    args = parse(
        ["--dataset", "voc21", "--root", "r", "--setting", "paper", "--limit", "5"]
        + ["--out", "o.json", "--precision", "fp16", "--prob-threshold", "0.3"]
    )
    assert (args.setting, args.limit, args.out, args.precision) == ("paper", 5, "o.json", "fp16")
    assert args.prob_threshold == 0.3


def test_every_dataset_is_offered(capsys):
    with pytest.raises(SystemExit):
        parse(["--dataset", "nope", "--root", "r"])
    message = capsys.readouterr().err
    assert all(name in message for name in DATASETS)


def block_labels():
    label = np.zeros((20, 30), dtype=np.int64)
    label[5:15, 10:25] = 12  # dog
    return [label, label[::-1].copy()]


def test_run_prints_the_table_and_writes_the_files(make_dataset, scorers, tmp_path, capsys):
    root, _ = make_dataset("voc21", block_labels())
    names = dataset_class_names("voc21")
    logits = np.zeros(len(names.prompts))
    logits[names.prompts.index("dog")] = 1.0
    asked = {}

    def load(name, pretrained, *, device, precision, method, method_options):
        asked.update(name=name, pretrained=pretrained, device=device, precision=precision)
        assert (method, method_options) == (None, {})  # the model's own method: GEM
        return scorers.Constant(logits)

    out = tmp_path / "scores.json"
    argv = ["--dataset", "voc21", "--root", str(root), "--out", str(out), "--model", "ViT-L-14"]
    code = run_evaluate(parse(argv + ["--device", "cpu", *SMALL_RUN]), load_model=load)

    assert code == 0
    assert asked == {"name": "ViT-L-14", "pretrained": "openai", "device": "cpu", "precision": None}
    printed = capsys.readouterr().out
    dog_iou = 100 * 150 / 600  # the dog covers 150 of 600 pixels and is predicted everywhere
    assert "dog" in printed and f"{dog_iou:.2f}" in printed and "mean" in printed
    stored = json.loads(out.read_text())
    assert stored["per_class"][12] == {"class": "dog", "iou": dog_iou, "accuracy": 100.0}
    assert (tmp_path / "scores.csv").is_file()
    assert stored["protocol"]["short_side"] == 32 and stored["protocol"]["prob_threshold"] == 0.5


def failing_run(argv, capsys, load=None):
    code = run_evaluate(parse(argv), load_model=load or (lambda *a, **k: pytest.fail("loaded")))
    captured = capsys.readouterr()
    return code, captured.err


def test_bad_root_is_one_error_line(tmp_path, capsys, scorers):
    code, err = failing_run(
        ["--dataset", "voc20", "--root", str(tmp_path)], capsys, load=lambda *a, **k: scorers.Constant([0.0])
    )
    assert code == 2
    assert err.startswith("error: voc20:") and err.count("\n") == 1
    assert "JPEGImages" in err and "Traceback" not in err


def test_model_load_error_is_one_error_line(make_dataset, capsys):
    root, _ = make_dataset("voc21", block_labels())

    def load(*args, **kwargs):
        raise ModelLoadError("unknown open_clip model 'ViT-X'.\nDid you mean ViT-L-14?")

    code, err = failing_run(["--dataset", "voc21", "--root", str(root)], capsys, load=load)
    assert code == 2
    assert err == "error: unknown open_clip model 'ViT-X'. Did you mean ViT-L-14?\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--limit", "0"], "--limit must be a positive"),
        (["--prob-threshold", "0.5"], "no background class"),
        (["--crop", "0", "--stride", "0"], "crop and stride must be positive"),
        (["--setting", "paper", "--short-side", "336"], "common setting only"),
    ],
)
def test_bad_options_are_one_error_line(extra, message, capsys, tmp_path):
    code, err = failing_run(["--dataset", "voc20", "--root", str(tmp_path), *extra], capsys)
    assert code == 2 and message in err and err.count("\n") == 1


def test_main_dispatches(make_dataset, capsys):
    code = main(["evaluate", "--dataset", "voc20", "--root", "/nonexistent/folder"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_wrong_class_name_file_is_refused_before_loading(make_dataset, tmp_path, capsys):
    root, _ = make_dataset("voc21", block_labels())
    names = tmp_path / "names.txt"
    names.write_text("background\ncat\n")
    argv = ["--dataset", "voc21", "--root", str(root), "--class-names", str(names)]
    code, err = failing_run(argv, capsys)
    assert code == 2 and "21 classes but the class-name list has 2 lines" in err
