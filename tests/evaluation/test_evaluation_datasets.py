"""The dataset readers against miniature datasets written in each exact layout."""

from __future__ import annotations

import numpy as np
import pytest
from conftest_paths import NO_IMPORT  # noqa: F401  (placeholder removed below)
