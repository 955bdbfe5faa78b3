"""Every command's error path: one line without ``--debug``, the traceback before it with ``--debug``."""

from __future__ import annotations

import pytest

from napari_gem.cli.main import main


@pytest.mark.parametrize("argv", [
    ["evaluate", "--dataset", "voc20", "--root", "/no/such/dataset", "--device", "cpu"],  # its own catch
    ["bench", "--model", "ViT-B-17", "--device", "cpu"],  # main's catch: a ModelLoadError
], ids=["evaluate", "bench"])
def test_each_command_fails_in_one_line_and_shows_the_traceback_under_debug(argv, capsys):
    assert main(argv) == 2
    quiet = capsys.readouterr().err
    assert "Traceback" not in quiet and len(quiet.strip().splitlines()) == 1, quiet
    assert main(["--debug", *argv]) == 2
    loud = capsys.readouterr().err
    assert "Traceback (most recent call last)" in loud
    assert loud.strip().splitlines()[-1] == quiet.strip()
