"""pipeline/grid.py: a region snapped to the grid (origin, shape), chunk ids and windows, chunks
outside the region, and a grid read from its definition file — all hand-computed places."""

from __future__ import annotations

import pytest
from odc.geo.geom import Geometry
from shapely.geometry import box

from pipeline.errors import ConfigError
from pipeline.grid import load_grid, make_grid
from pipeline.tiles import chunk_key

from world import CRS, X0, X1, Y0, Y1, make_world

# a region inside one 1 km square: x 500 050–500 930, y 4 400 020–4 400 980
REGION = Geometry(box(500_050, 4_400_020, 500_930, 4_400_980), crs=CRS)


@pytest.mark.parametrize("origin, left, top, shape", [
    # cell edges at k·100 m: x 500 000–501 000, y 4 400 000–4 401 000
    ((0, 0), 500_000, 4_401_000, (10, 10)),
    # edges at 50 + k·100 in x: 500 050 is one, 500 930 rounds out to 500 950: 9 columns
    ((50, 0), 500_050, 4_401_000, (10, 9)),
    # x edges at 30 + k·100: 500 030–500 930 (9); y edges at 70 + k·100: 4 399 970–4 401 070 (11)
    ((30, 70), 500_030, 4_401_070, (11, 9)),
    # a negative origin is the same lattice as its positive remainder: −50 ≡ 50, 20
    ((-50, 20), 500_050, 4_401_020, (10, 9)),
])
def test_region_snapped_outwards_to_the_origin_lattice(origin, left, top, shape):
    grid = make_grid("t", CRS, 100.0, REGION, origin=origin)
    a = grid.geobox.affine
    assert (a.a, a.b, a.c, a.d, a.e, a.f) == (100.0, 0.0, left, 0.0, -100.0, top)
    assert grid.shape == shape and grid.resolution == 100.0 and grid.cell_area_km2 == pytest.approx(0.01)
    bottom, right = top - 100 * shape[0], left + 100 * shape[1]
    assert left <= 500_050 and right >= 500_930 and bottom <= 4_400_020 and top >= 4_400_980  # covers the region
    assert right - 500_930 < 100 and 500_050 - left < 100  # by less than a cell


def test_chunk_ids_windows_and_chunks_outside_the_region():
    """10 m cells over the 10 km world: 1000 × 1000 cells in 2 × 2 chunks of 512 (the last 488)."""
    corners = box(X0, Y1 - 1000, X0 + 1000, Y1).union(box(X1 - 1000, Y0, X1, Y0 + 1000))  # NW and SE 1 km
    grid = make_grid("t", CRS, 10.0, Geometry(corners, crs=CRS), chunk=512)
    assert grid.shape == (1000, 1000)
    assert list(grid.tile_ids()) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert grid.chunks == ((512, 488), (512, 488))
    assert grid.tile_window((1, 1)) == (slice(512, 1000), slice(512, 1000))
    a = grid.tile_geobox((0, 1)).affine  # chunk (row 0, column 1) starts 512 cells = 5 120 m east
    assert (a.c, a.f, tuple(grid.tile_geobox((0, 1)).shape)) == (X0 + 5120, Y1, (512, 488))
    # NE and SW chunks hold no part of the region: every product is nodata there, nothing is computed
    assert [grid.tile_in_region(idx) for idx in grid.tile_ids()] == [True, False, False, True]
    assert chunk_key((1, 0)) == "1,0"


def test_a_region_in_another_crs_is_reprojected_first():
    """The 1 km square given in lon/lat (EPSG:4326) is snapped in the grid's UTM CRS."""
    square = box(500_000, 4_400_000, 501_000, 4_401_000)
    lonlat = Geometry(square, crs=CRS).to_crs("EPSG:4326")
    grid = make_grid("t", CRS, 100.0, lonlat)
    assert grid.crs == CRS and grid.region.crs == CRS
    # reprojection moves the corners by millimetres: the grid may gain a row or column, never lose one
    b = grid.geobox.extent.boundingbox
    assert b.left <= 500_000 and b.right >= 501_000 and b.bottom <= 4_400_000 and b.top >= 4_401_000
    assert 10 <= grid.shape[0] <= 12 and 10 <= grid.shape[1] <= 12


def test_a_crs_not_in_metres_is_refused():
    with pytest.raises(ConfigError) as e:
        make_grid("t", "EPSG:4326", 0.001, REGION, source="g.toml")
    assert [str(p) for p in e.value.problems] == [
        "g.toml: CRS EPSG:4326 is not in metres: choose a projected CRS (e.g. the UTM zone)"]


def test_grid_read_from_its_definition_file(tmp_path):
    make_world(tmp_path / "w", drone=False)
    path = tmp_path / "w" / "grid.toml"
    grid = load_grid(path)
    assert (grid.name, grid.shape, grid.chunk, grid.source) == ("square", (100, 100), 512, str(path))
    assert tuple(grid.geobox.affine)[:6] == (100.0, 0.0, X0, 0.0, -100.0, Y1)
    assert grid.region.geom.equals(box(X0, Y0, X1, Y1))
    d = grid.describe()
    assert (d["cells"], d["bounds"], d["crs"]) == (10_000, [X0, Y0, X1, Y1], CRS)
    path.write_text(path.read_text().replace("chunk = 512", "chunk = 500"))
    with pytest.raises(ConfigError) as e:
        load_grid(path)
    assert [str(p) for p in e.value.problems] == [
        f"{path}: chunk: must be a multiple of 512 so chunks align with the GeoTIFF tiles"]
