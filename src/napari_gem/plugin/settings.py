"""The widget's settings (model, prompts, thresholds, options) remembered across sessions.

Stored as JSON in the user config folder (``platformdirs``), under ``napari-gem``;
the environment variable ``NAPARI_GEM_CONFIG_DIR`` moves it (tests use that).
Unreadable or foreign values are ignored: settings never stop the widget from opening.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_NAME = "widget-settings.json"
VERSION = 1
ENV_DIR = "NAPARI_GEM_CONFIG_DIR"


def settings_path() -> Path:
    """Where the settings live."""
    folder = os.environ.get(ENV_DIR)
    if not folder:
        from platformdirs import user_config_dir

        folder = user_config_dir("napari-gem", appauthor=False)
    return Path(folder) / FILE_NAME


def load_settings() -> dict[str, Any]:
    """The saved settings, or ``{}`` when there are none or they cannot be read."""
    path = settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("ignoring unreadable napari-gem settings %s: %s", path, error)
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    values = data.get("values")
    return values if isinstance(values, dict) else {}


def save_settings(values: dict[str, Any]) -> Path | None:
    """Write the settings atomically; returns the path, or None when it could not be written."""
    path = settings_path()
    text = json.dumps({"version": VERSION, "values": values}, indent=2, default=str)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=".settings-", suffix=".tmp",
            delete=False,
        ) as handle:
            handle.write(text)
            temporary = Path(handle.name)
        os.replace(temporary, path)
    except OSError as error:  # a read-only home must not break a run
        log.warning("could not save napari-gem settings to %s: %s", path, error)
        return None
    return path
