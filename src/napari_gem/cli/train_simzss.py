"""The ``napari-gem train-simzss`` subcommand."""

from __future__ import annotations

import argparse

from ..engine.families.simzss import DEFAULT_ARCHITECTURE
from ..simzss_training.objective import DENSE_TARGETS
from ..simzss_training.trainer import TrainingConfig, train


def add_train_simzss_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train-simzss",
        help="fine-tune SimZSS's text tower on your captioned images",
        description="Teach SimZSS your vocabulary: a folder of images, a CSV of image,caption "
        "and a concept list. The DINOv2 side stays frozen (features cached on disk); the text "
        "tower is fine-tuned (or trained from scratch) and written, after every epoch, as a "
        "checkpoint that load_model and the napari widget read. See docs/simzss.md.",
    )
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of the images")
    parser.add_argument("--captions", required=True, metavar="CSV",
                        help="CSV with columns image,caption (image paths relative to --images)")
    parser.add_argument("--concepts", required=True, action="append", metavar="FILE",
                        help="text file, one concept per line; repeat to merge several lists "
                        "(e.g. yours and SimZSS's COCO bank)")
    parser.add_argument("--out", required=True, metavar="FILE", help="checkpoint to write (.pth)")
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="SimZSS checkpoint to start from (default: timm's DINOv2, new text tower)")
    parser.add_argument("--model", default=DEFAULT_ARCHITECTURE, help="SimZSS architecture")
    parser.add_argument("--from-scratch", action="store_true",
                        help="a new text tower even when --checkpoint is given")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate (default 5e-5)")
    parser.add_argument("--dense-weight", type=float, default=0.05, help="lambda of the dense loss")
    parser.add_argument("--dense-target", choices=DENSE_TARGETS, default="label",
                        help="label: the concept's class (default); argmax: the released code's "
                        "self-labelling")
    parser.add_argument("--input-size", type=int, default=224, help="image side (multiple of 14)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="feature cache (default: simzss-feature-cache beside --out)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--without-vision-weights", action="store_true",
                        help="leave DINOv2 out of the checkpoint (smaller; loading then needs "
                        "timm's cached weights)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last finished epoch")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run_train_simzss)
    return parser


def run_train_simzss(args) -> int:
    config = TrainingConfig(
        images=args.images, captions=args.captions, concepts=tuple(args.concepts), output=args.out,
        checkpoint=args.checkpoint, model=args.model, from_scratch=args.from_scratch,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, dense_weight=args.dense_weight,
        dense_target=args.dense_target, input_size=args.input_size, seed=args.seed,
        include_vision_weights=not args.without_vision_weights, cache_dir=args.cache_dir,
        device=args.device,
    )
    record = train(config, resume=args.resume, progress=not args.quiet)
    last = record["epochs"][-1] if record["epochs"] else {}
    print(f"wrote {args.out} ({record['captions']} captions, {record['captions_with_concepts']} with "
          f"concepts); caption retrieval R@1 {record['retrieval_r1_start']:.3f} -> "
          f"{last.get('retrieval_r1', float('nan')):.3f}")
    return 0
