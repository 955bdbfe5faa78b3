"""Window geometry and blending of the out-of-core path, without a model."""

from __future__ import annotations

import numpy as np
import zarr

from napari_gem.batch.out_of_core import GridStore, Scoring, blend_block
from napari_gem.batch.windows import WindowShape, boxes, cells_around
from napari_gem.engine.tiling import plan_windows


def test_windows_cover_the_plane_on_the_patch_grid():
    plan = plan_windows((100, 150), window=64, overlap=16, patch_size=16)
    shape = WindowShape.of(plan)
    assert plan.grid_shape == (7, 10) and shape.window_shape == (64, 64)
    covered = np.zeros(plan.grid_shape, int)
    for start in plan.starts:
        assert start[0] % 16 == 0 and start[1] % 16 == 0
        row0, row1, col0, col1 = shape.cell_box(start)
        covered[row0:row1, col0:col1] += 1
    assert covered.min() >= 1
    # Neighbours overlap by at least the asked-for 16 pixels (one cell).
    ys = sorted({y for y, _ in plan.starts})
    assert all(b - a <= 48 for a, b in zip(ys, ys[1:], strict=False))


def test_small_plane_gets_one_window_of_its_own_size():
    plan = plan_windows((40, 30), window=64, overlap=16, patch_size=16)
    assert plan.starts == ((0, 0),) and WindowShape.of(plan).window_shape == (48, 32)


def test_taper_ramps_over_the_overlap_and_is_never_zero():
    taper = WindowShape.of(plan_windows((200, 200), 64, 32, 16)).taper()
    assert taper.shape == (4, 4) and taper.min() > 0
    assert np.allclose(taper[0], [0.0625, 0.1875, 0.1875, 0.0625])  # 0.25 * 0.75 ramps


def test_boxes_and_upsampling_margins():
    assert boxes((5, 7), 4) == [(0, 4, 0, 4), (0, 4, 4, 7), (4, 5, 0, 4), (4, 5, 4, 7)]
    assert cells_around((32, 64, 0, 16), 16, (10, 10)) == (1, 5, 0, 2)


def blend_everything(tmp_path, plan, field: np.ndarray) -> np.ndarray:
    """Cut a known per-cell field into windows, blend it back on blocks of 3x3 cells."""
    shape = WindowShape.of(plan)
    windows = {}
    for start in plan.starts:
        row0, row1, col0, col1 = shape.cell_box(start)
        windows[start] = field[:, row0:row1, col0:col1]
    store = GridStore(str(tmp_path / "grid.zarr"), 16, plan.grid_shape)
    zarr.open_array(store.path, mode="w", shape=(1, 1, *plan.grid_shape), chunks=(1, 1, 3, 3),
                    dtype="float32")
    scoring = Scoring(("a",), ("a",), ("{}",), calibrated=False)
    for cells in boxes(plan.grid_shape, 3):
        blend_block(store, 0, cells, shape, [windows], {}, scoring, 100.0)
    return zarr.open_array(store.path, mode="r")[0]


def test_blending_windows_that_agree_gives_back_the_field_seamlessly(tmp_path):
    plan = plan_windows((150, 200), window=64, overlap=32, patch_size=16)
    rows, cols = np.mgrid[0 : plan.grid_shape[0], 0 : plan.grid_shape[1]]
    field = (0.01 * rows + 0.003 * cols).astype(np.float32)[None]
    assert np.allclose(blend_everything(tmp_path, plan, field), field, atol=1e-6)


def test_upsampled_blocks_equal_one_global_upsampling(tmp_path):
    import torch
    import torch.nn.functional as F

    grid = np.random.default_rng(0).random((2, 6, 9)).astype(np.float32)
    store = GridStore(str(tmp_path / "grid.zarr"), 16, (6, 9))
    zarr.open_array(store.path, mode="w", shape=(1, 2, 6, 9), chunks=(1, 2, 4, 4),
                    dtype="float32")[0] = grid
    whole = F.interpolate(torch.from_numpy(grid)[None], size=(96, 144), mode="bilinear",
                          align_corners=False)[0].numpy()[:, :90, :140]
    pieced = np.zeros_like(whole)
    for y0, y1, x0, x1 in boxes((90, 140), 40):
        pieced[:, y0:y1, x0:x1] = store.upsampled(0, (y0, y1, x0, x1)).numpy()
    assert np.allclose(pieced, whole, atol=1e-6)
