"""Zone merging (pipeline/summaries.py): zone pieces computed chunk by chunk are joined across
chunk borders into one polygon each, with hand-computed cells, area, P_c and outline."""

from __future__ import annotations

import numpy as np
import pytest
from odc.geo.geom import Geometry
from shapely.geometry import box

from pipeline.grid import make_grid
from pipeline.summaries import chunk_part, merge_zones
from pipeline.tiles import chunk_key

from world import CRS, X0, X1, Y0, Y1

NAMES = ["low", "medium", "high", "very high"]  # zones: class 3 ("high") and above


def _parts(grid, classes: np.ndarray, p_c: np.ndarray) -> dict:
    """Each chunk's part, as the workers compute them (pure NumPy per chunk)."""
    parts = {}
    for idx in grid.tile_ids():
        win = grid.tile_window(idx)
        codes = np.zeros(classes[win].shape, np.uint8)  # no districts
        part = chunk_part(codes, classes[win], p_c[win], names=["class", "P_c"], n_districts=0, n_classes=4,
                          zone_class=3, cell_km2=grid.cell_area_km2, chunk=grid.chunk, block_id=idx)
        parts[chunk_key(idx)] = part[0, 0]
    return parts


def test_two_adjacent_chunks_zones_merge_into_one_polygon():
    """10 m cells over the 10 km world: 2 × 2 chunks of 512 cells, the border at column 512 (x = X0 + 5 120 m)."""
    grid = make_grid("t", CRS, 10.0, Geometry(box(X0, Y0, X1, Y1), crs=CRS), chunk=512)
    classes = np.ones(grid.shape, np.uint8)
    p_c = np.full(grid.shape, 0.1, np.float32)
    # A: rows 10–19, columns 502–516, across the border: 100 cells of P_c 0.5 west of it, 50 of 0.8 east
    classes[10:20, 502:517] = 3
    p_c[10:20, 502:512], p_c[10:20, 512:517] = 0.5, 0.8
    classes[15, 514] = 4  # one very-high cell inside it: the zone's class is that of most of its area, high
    # B: touches the border only at a corner (row 30, column 511 and row 31, column 512): two zones (4-connected)
    classes[30, 511] = classes[31, 512] = 3
    # C: 2 × 2 cells inside chunk (1, 1), far from any border
    classes[700:702, 700:702] = 3
    p_c[700:702, 700:702] = 0.9
    zones = merge_zones(_parts(grid, classes, p_c), grid, None, NAMES, min_area_km2=0.0)

    assert len(zones) == 4  # A, C, and B's two single cells
    a = zones[zones["cells"] == 150].iloc[0]
    assert a["risk_class"] == "high" and a["area_km2"] == pytest.approx(150 * 100 / 1e6)  # 0.015 km²
    assert a["km2_high"] == pytest.approx(149e-4) and a["km2_very_high"] == pytest.approx(1e-4)
    assert a["mean_pc"] == pytest.approx((100 * 0.5 + 50 * 0.8) / 150) and a["max_pc"] == pytest.approx(0.8)
    # one polygon: x X0 + 5 020 … X0 + 5 170, y Y1 − 200 … Y1 − 100 (no seam left at the border)
    assert a.geometry.area == pytest.approx(15_000.0)
    assert a.geometry.equals(box(X0 + 5020, Y1 - 200, X0 + 5170, Y1 - 100))
    assert len(getattr(a.geometry, "geoms", [a.geometry])) == 1
    corner = zones[zones["cells"] == 1]
    assert sorted(g.bounds for g in corner.geometry) == [
        (X0 + 5110, Y1 - 310, X0 + 5120, Y1 - 300), (X0 + 5120, Y1 - 320, X0 + 5130, Y1 - 310)]
    c = zones[zones["cells"] == 4].iloc[0]
    assert c.geometry.equals(box(X0 + 7000, Y1 - 7020, X0 + 7020, Y1 - 7000)) and c["area_km2"] == pytest.approx(4e-4)
    # ranks: highest class first (A), then by area: C (4 cells), then the two single cells
    assert list(zones["rank"]) == [1, 2, 3, 4] and list(zones["cells"]) == [150, 4, 1, 1]


def test_a_zone_over_four_chunks_is_one_and_small_zones_are_left_out():
    """A 20 × 20-cell square centred on the corner where the four chunks meet (row and column 512)."""
    grid = make_grid("t", CRS, 10.0, Geometry(box(X0, Y0, X1, Y1), crs=CRS), chunk=512)
    classes = np.ones(grid.shape, np.uint8)
    p_c = np.full(grid.shape, 0.7, np.float32)
    classes[502:522, 502:522] = 3
    classes[100, 100] = 3  # one cell: 0.0001 km², below the minimum area
    zones = merge_zones(_parts(grid, classes, p_c), grid, None, NAMES, min_area_km2=0.001)
    assert list(zones["cells"]) == [400] and zones.iloc[0]["area_km2"] == pytest.approx(0.04)
    assert zones.iloc[0].geometry.equals(box(X0 + 5020, Y1 - 5220, X0 + 5220, Y1 - 5020))


def test_zone_parts_read_back_from_disk_merge_the_same():
    """An update merges the parts of unchanged chunks as read back from OUT/.minemap (partsfile)."""
    from pipeline.partsfile import decode_parts, encode_parts

    grid = make_grid("t", CRS, 10.0, Geometry(box(X0, Y0, X1, Y1), crs=CRS), chunk=512)
    classes = np.ones(grid.shape, np.uint8)
    classes[10:20, 502:517] = 3
    p_c = np.full(grid.shape, 0.5, np.float32)
    parts = _parts(grid, classes, p_c)
    again = merge_zones(decode_parts(encode_parts(parts)), grid, None, NAMES, min_area_km2=0.0)
    assert list(again["cells"]) == [150]
    assert again.iloc[0].geometry.equals(box(X0 + 5020, Y1 - 200, X0 + 5170, Y1 - 100))
