"""The plugin's session model runs without Qt and napari: a script (or a test) can drive it."""

from __future__ import annotations

from test_headless import run_headless


def test_the_session_model_runs_and_signals_without_qt_or_napari(tmp_path):
    report = run_headless("""
        import json
        import numpy as np
        from napari_gem.engine import SegmentOptions
        from napari_gem.plugin.session import LastRun, Session, summarize

        session = Session()
        heard = []
        session.busy_changed.connect(lambda busy: heard.append(["busy", busy]))
        session.run_changed.connect(lambda last: heard.append(["run", last.prompts]))
        session.summary_changed.connect(lambda summary: heard.append(
            ["summary", [row.objects for row in summary.rows]]))
        session.masks_changed.connect(lambda: heard.append(["masks"]))
        session.set_busy(True)
        labels = np.zeros((2, 20, 20), np.uint8)  # one plane: two cells, one dot
        labels[0, 2:5, 2:5] = labels[0, 10:14, 10:14] = labels[1, 5:9, 5:9] = 1
        last = LastRun("image", ["cell", "dot"], "binary", SegmentOptions(), None,
                       {"cell": 0.9, "dot": 0.4})
        summary = summarize("image", last.prompts, last.presence, "binary", [labels],
                            [[0.5, 0.62]], seconds=1.5)
        session.set_busy(False)
        session.run_applied(last, summary)
        session.masks_edited()
        report = {"heard": heard, "latest": session.last is last and session.summary is summary,
                  "thresholds": [row.threshold for row in summary.rows], "busy": session.busy,
                  "caches": [type(session.models).__name__, len(session.encoded)]}
    """, tmp_path)
    assert report["leaked"] == []
    assert report["heard"] == [["busy", True], ["busy", False], ["run", ["cell", "dot"]],
                               ["summary", [2, 1]], ["masks"], ["masks"]]
    assert report["latest"] and not report["busy"]
    assert report["thresholds"] == ["0.50", "0.62"]
    assert report["caches"] == ["ModelCache", 0]
