"""``napari-gem models``: the model families and the curated models, and what each needs to download."""

from __future__ import annotations

import argparse


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models", help="list the model families and curated models, and what each needs to download",
        description="Every model family napari-gem loads, then the curated models by group "
        "(general, science) with a one-line description and whether their weights are already "
        "in the local cache. See docs/models.md for pre-fetching on an offline machine.",
    )
    parser.set_defaults(handler=run_models)
    return parser


def run_models(args: argparse.Namespace) -> int:
    from ..engine.families import catalogue, family_named, list_families

    print("Families:")
    for family in list_families():
        print(f"  {family.name:<15} {family.summary}")
    groups: dict[str, list] = {}
    for entry in catalogue():
        groups.setdefault(entry.group, []).append(entry)
    for group, entries in groups.items():
        print(f"\n{group.capitalize()} models:")
        for entry in entries:
            family = family_named(entry.family)
            pretrained = entry.pretrained or family.default_pretrained(entry.name)
            cached = family.is_cached(entry.name, pretrained)
            weights = f" --pretrained {pretrained}" if pretrained else ""
            status = "cached" if cached else "download needed"
            note = family.weights_note(entry.name, pretrained)
            runs = f"; {note}" if note else ""
            print(f"  {entry.label:<22} {entry.name}{weights}  [{entry.family}; {status}{runs}]")
            print(f"  {'':<22} {entry.tooltip}")
    return 0
