"""``napari-gem train-demo``: train the demo CLIP again (writes the packaged weights and a log)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..demo.training import TrainingConfig, save_weights, train
from ..engine.families.demo import CONFIG_PATH, WEIGHTS_PATH


def add_train_demo_parser(subparsers) -> argparse.ArgumentParser:
    """The ``napari-gem train-demo`` subcommand."""
    defaults = TrainingConfig()
    parser = subparsers.add_parser(
        "train-demo",
        help="train the packaged demo CLIP again on generated micrographs",
        description=f"Train the demo CLIP ({CONFIG_PATH.name}) on generated micrographs.",
    )
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--scenes", type=int, default=defaults.scenes)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--dense-weight", type=float, default=defaults.dense_weight,
                        help="weight of the single-patch region loss (0: captions only)")
    parser.add_argument("--output", type=Path, default=WEIGHTS_PATH,
                        help="weights file to write (default: the packaged weights)")
    parser.set_defaults(handler=run_train_demo)
    return parser


def run_train_demo(args: argparse.Namespace) -> int:
    config = TrainingConfig(steps=args.steps, batch_size=args.batch_size, scenes=args.scenes,
                            learning_rate=args.learning_rate, seed=args.seed,
                            dense_weight=args.dense_weight)
    model, log = train(config, output=sys.stdout)
    save_weights(model, args.output)
    args.output.with_suffix(".json").write_text(json.dumps(log, indent=1))
    size = args.output.stat().st_size / 2**20
    print(f"wrote {args.output} ({size:.1f} MiB) after {log['training_seconds']:.0f} s")
    return 0
