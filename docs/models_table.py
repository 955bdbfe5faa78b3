"""Write the README's supported-models table from the model catalogue: ``python docs/models_table.py``.

The table lies between the two marker lines below in README.md; ``tests/test_readme.py``
fails when it differs from :func:`models_table` (run this script after changing a family's
catalogue). Entries that share a family and a description (open_clip's plain ViT names)
share a row.
"""

from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- models table: written by `python docs/models_table.py` from napari_gem's catalogue -->"
END = "<!-- end of the models table -->"


def models_table() -> str:
    """The Markdown table of every catalogue entry: what pickers and ``napari-gem models`` offer."""
    from napari_gem.engine.families import catalogue

    rows: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for entry in catalogue():
        name = f"`{entry.name}`" + (f" (`{entry.pretrained}`)" if entry.pretrained else "")
        rows.setdefault((entry.family, entry.tooltip), []).append((entry.label, name))
    lines = ["| model | `load_model` name (weights tag) | family | what it is |", "|---|---|---|---|"]
    for (family, tooltip), entries in rows.items():
        label = entries[0][0] if len(entries) == 1 else f"{family} ViTs by name"
        cells = (label, ", ".join(name for _, name in entries), family, tooltip.replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The table now between the markers of ``text``."""
    if START not in text or END not in text:
        raise ValueError(f"README.md has no models-table markers ({START!r} ... {END!r})")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write_readme_table(path: Path = README) -> None:
    """Replace the table between the markers of ``path`` with :func:`models_table`."""
    text = path.read_text(encoding="utf-8")
    readme_table(text)  # refuses a README without the markers
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{START}\n{models_table()}\n{END}{after}", encoding="utf-8")


if __name__ == "__main__":
    write_readme_table()
    sys.exit(0)
