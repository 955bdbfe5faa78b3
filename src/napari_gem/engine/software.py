"""Who wrote a file: the one software record every JSON napari-gem writes carries.

The plugin's parameters, the batch's parameters, the exported images' metadata and the
evaluation results all say ``"software": {"name": "napari-gem", "version": ...}``.
"""

from __future__ import annotations

from typing import Any

#: The package's version (pyproject.toml says the same; tests/engine/test_software.py keeps them equal).
__version__ = "0.1.0"

SOFTWARE_NAME = "napari-gem"


def software_record() -> dict[str, str]:
    """``{"name": "napari-gem", "version": ...}``: the value of every record's ``"software"`` key."""
    return {"name": SOFTWARE_NAME, "version": __version__}


def written_by_us(record: Any) -> bool:
    """Whether a stored record says napari-gem wrote it: today's software record, or the plain
    name exports wrote before 0.2 (so their files still open as ours)."""
    if not isinstance(record, dict):
        return False
    software = record.get("software")
    return software == SOFTWARE_NAME or (isinstance(software, dict) and software.get("name") == SOFTWARE_NAME)
