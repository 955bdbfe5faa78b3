"""``python benchmarks/train_demo.py``: train the demo CLIP again (writes the packaged weights and a log)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from demo_training import TrainingConfig, save_weights, train
from script import run_script

from napari_gem.engine.families.demo import CONFIG_PATH, WEIGHTS_PATH


def build_parser() -> argparse.ArgumentParser:
    """The script's command line."""
    defaults = TrainingConfig()
    parser = argparse.ArgumentParser(
        prog="benchmarks/train_demo.py",
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


def main(argv: Sequence[str] | None = None) -> int:
    return run_script(build_parser(), run_train_demo, argv)


if __name__ == "__main__":
    sys.exit(main())
