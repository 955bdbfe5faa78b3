"""The widget's first name still works, warning once and naming what replaces it."""

from __future__ import annotations

import warnings

import pytest

pytestmark = pytest.mark.gui


def test_gem_widget_is_a_deprecated_alias_that_warns_once(fresh_deprecations):
    from napari_gem.plugin import widget

    with pytest.warns(DeprecationWarning, match=r"GemWidget is deprecated .* 0\.3\.0: use SegmentWidget"):
        assert widget.GemWidget is widget.SegmentWidget
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert widget.GemWidget is widget.SegmentWidget
