"""Evidence lands on the right cells: polygons, drone pixels, cleared fractions, densities."""

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer
from shapely.geometry import Point, Polygon, box

from pipeline.runner import load_inputs
from world import CELL, CRS, X0, Y1, cell_box, make_world, write_gpkg, write_raster


def values(config: Path, var: str) -> np.ndarray:
    return load_inputs(config).layers[var].array.compute(scheduler="synchronous")


def test_soil_polygons_land_on_their_half(world):
    s_t = values(world, "S_t")
    assert s_t.shape == (100, 100)
    assert (s_t[:, :50] == np.float32(0.8)).all() and (s_t[:, 50:] == np.float32(0.2)).all()


def test_polygon_burns_exactly_the_cells_whose_centre_it_holds(world):
    # An L-shape over cells rows 2–5 × col 3, plus row 5 × cols 3–6; its edges run 10 m
    # beyond those cells' centres, so exactly these 4 + 3 = 7 cells take its value.
    x, y = X0, Y1
    shape = Polygon([(x + 340, y - 240), (x + 360, y - 240), (x + 360, y - 540), (x + 660, y - 540),
                     (x + 660, y - 560), (x + 340, y - 560)])
    write_gpkg(world.parent / "lshape.gpkg", [{"v": 0.5, "geometry": shape}])
    world.write_text(world.read_text().replace('''[inputs.T_s]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil.csv"''', '''[inputs.T_s]
kind = "polygons"
path = "lshape.gpkg"
field = "v"'''))
    t_s = values(world, "T_s")
    hit = sorted(zip(*np.nonzero(np.isfinite(t_s))))
    assert hit == [(2, 3), (3, 3), (4, 3), (5, 3), (5, 4), (5, 5), (5, 6)]
    assert np.nanmax(t_s) == np.float32(0.5)


def test_half_covered_cell_reads_half_cleared(world):
    c = values(world, "C")
    assert c[10, 10] == pytest.approx(100.0)
    assert c[10, 20] == pytest.approx(50.0, abs=1e-4)  # west half of cell (10, 20)
    assert c[10, 21] == 0 and c[11, 20] == 0
    assert np.count_nonzero(c) == 2
    world.write_text(world.read_text().replace('units = "site_km2"', 'units = "km2"'))
    a_c = values(world, "A_c")
    assert a_c[10, 20] == pytest.approx(0.005, rel=1e-5)  # km² cleared inside the cell


def test_diagonal_cut_cell_is_exact(tmp_path):
    config = make_world(tmp_path / "w")
    # triangle over cell (30, 30) cut along its diagonal, plus a 30 × 70 m sliver in (30, 32)
    c = cell_box(30, 30).bounds
    s = cell_box(30, 32).bounds
    write_gpkg(tmp_path / "w" / "cleared.gpkg", [
        {"method": "manual", "geometry": Polygon([(c[0], c[1]), (c[2], c[1]), (c[2], c[3])])},
        {"method": "manual", "geometry": box(s[0] + 10, s[1] + 20, s[0] + 40, s[1] + 90)},
    ])
    frac = values(config, "C")
    assert frac[30, 30] == pytest.approx(50.0, abs=1e-3)
    assert frac[30, 32] == pytest.approx(21.0, abs=1e-3)


def test_drone_pixel_at_lonlat_lands_in_its_cell(tmp_path):
    config = make_world(tmp_path / "w", drone=False)
    (tmp_path / "w" / "drone").mkdir()
    row, col = 42, 17
    cx, cy = X0 + CELL * (col + 0.5), Y1 - CELL * (row + 0.5)
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(cx, cy)
    # a 0.0001° raster in EPSG:4326 (~8.5 × 11 m pixels), all nodata but one pixel centred on (lon, lat)
    data = np.full((21, 21), np.nan, dtype=np.float32)
    data[10, 10] = 0.9
    res = 0.0001
    write_raster(tmp_path / "w" / "drone" / "one.tif", data, lon - 10.5 * res, lat + 10.5 * res, res,
                 "EPSG:4326", nodata=float("nan"))
    v_i = values(config, "V_i")
    assert sorted(zip(*np.nonzero(np.isfinite(v_i)))) == [(row, col)]
    assert v_i[row, col] == pytest.approx(0.9)


def test_drone_average_over_a_partly_flown_cell(tmp_path):
    config = make_world(tmp_path / "w", drone=False)
    (tmp_path / "w" / "drone").mkdir()
    # 25 m pixels over cell (0, 0): four columns 0.2, 0.4, 0.6, nodata → mean of the flown 0.4
    data = np.tile(np.array([0.2, 0.4, 0.6, -1], dtype=np.float32), (4, 1))
    write_raster(tmp_path / "w" / "drone" / "part.tif", data, X0, Y1, 25.0, CRS, nodata=-1.0)
    v_i = values(config, "V_i")
    assert v_i[0, 0] == pytest.approx(0.4, abs=1e-6)
    assert np.isnan(v_i[0, 1]) and np.isnan(v_i[1, 0])


def test_eight_bit_drone_is_scaled_and_newest_wins(tmp_path):
    config = make_world(tmp_path / "w", drone=False)
    d = tmp_path / "w" / "drone"
    d.mkdir()
    write_raster(d / "old.tif", np.full((10, 10), 51, np.uint8), X0, Y1, 20.0, CRS, nodata=255,
                 tags={"TIFFTAG_DATETIME": "2023:01:01 00:00:00"})
    # the newer flight covers only the first 100 m (5 pixels) of the older one
    write_raster(d / "new.tif", np.full((5, 5), 204, np.uint8), X0, Y1, 20.0, CRS, nodata=255,
                 tags={"TIFFTAG_DATETIME": "2024:01:01 00:00:00"})
    v_i = values(config, "V_i")
    assert v_i[0, 0] == pytest.approx(0.8)  # 204 / 255, newer on top
    assert v_i[0, 1] == pytest.approx(0.2) and v_i[1, 1] == pytest.approx(0.2)  # 51 / 255


def test_density_keeps_the_mine_count(tmp_path):
    config = make_world(tmp_path / "w")
    rng = np.random.default_rng(1)
    pts = rng.normal(0, 800, size=(200, 2)) + (X0 + 5000, Y1 - 5000)
    write_gpkg(tmp_path / "w" / "mines.gpkg", [{"count": 3, "geometry": Point(x, y)} for x, y in pts]
               + [{"count": 40, "geometry": box(X0 + 1000, Y1 - 1300, X0 + 1500, Y1 - 1100)}])
    config.write_text(config.read_text().replace("bandwidth_m = 50 ", "bandwidth_m = 1000"))
    L = values(config, "L")
    total = L.sum() * CELL * CELL / 1e6  # mines/km² × km² per cell
    assert total == pytest.approx(200 * 3 + 40, rel=0.02)
    # the minefield's 40 mines over 0.1 km² → 400 mines/km² in its interior cells
    assert L[12, 12] == pytest.approx(400, rel=0.05)  # plus a little kernel spill from the points


def test_chunks_agree_with_one_big_chunk(tmp_path):
    # 10 m cells: 1000 × 1000, in 2 × 2 chunks of 512 vs one chunk of 1024
    results = {}
    for chunk in (512, 1024):
        config = make_world(tmp_path / f"c{chunk}", chunk=chunk)
        grid_toml = config.parent / "grid.toml"
        grid_toml.write_text(grid_toml.read_text().replace("resolution = 100.0", "resolution = 10"))
        config.write_text(config.read_text().replace("bandwidth_m = 50 ", "bandwidth_m = 700"))
        inputs = load_inputs(config)
        assert inputs.grid.shape == (1000, 1000)
        results[chunk] = {v: inputs.layers[v].array.compute() for v in ("L", "S_t", "C", "V_i")}
    for v in results[512]:
        np.testing.assert_allclose(results[512][v], results[1024][v], rtol=1e-5, atol=1e-3, err_msg=v)


def test_overlapping_minefields_each_count():
    """Two overlapping minefields: each spreads its own mines; the overlap holds both densities."""
    from odc.geo.geobox import GeoBox
    from affine import Affine

    from pipeline.sources.coverage import weighted_coverage

    gbox = GeoBox((10, 10), Affine(100, 0, X0, 0, -100, Y1), CRS)
    a = box(X0 + 100, Y1 - 300, X0 + 300, Y1 - 100)   # cells (1..2, 1..2), 4 cells
    b = box(X0 + 250, Y1 - 300, X0 + 450, Y1 - 100)   # half of column 2, all of column 3, half of column 4
    out = weighted_coverage(np.array([a, b]), np.array([10.0, 20.0]), gbox)
    assert out[1, 1] == pytest.approx(10.0)
    assert out[1, 2] == pytest.approx(10.0 + 0.5 * 20.0)
    assert out[1, 3] == pytest.approx(20.0) and out[2, 4] == pytest.approx(10.0)
    assert out.sum() == pytest.approx(10 * 4 + 20 * 4)  # each field's weight × its 4 cells' worth of area


def _quartic_share(dx: float, dy: float, offsets: list[tuple[float, float]]) -> float:
    """By hand: K(d) ∝ (1 − d²/h²)² for d < h = 25 m, over its sum across `offsets` (m)."""
    def k(x, y):
        d2 = x * x + y * y
        return (1 - d2 / 625) ** 2 if d2 < 625 else 0.0
    return k(dx, dy) / sum(k(x, y) for x, y in offsets)


def test_kernel_is_centred_on_the_record_not_its_cell(tmp_path):
    """A record 3 m east and 4 m south of the corner where four 512-cell chunks meet (10 m cells,
    h = 25 m = 2.5 cells): its cell (512, 512) holds the peak, three cells hold the weights worked
    out by hand, the mass is its count, and the grid in four chunks equals the grid in one."""
    x, y = X0 + 5123.0, Y1 - 5124.0
    # cell centres around it are (2 + 10 j, 1 + 10 i) m from the record, i, j = −3…2 (rows down)
    offsets = [(2 + 10 * j, 1 + 10 * i) for i in range(-3, 3) for j in range(-3, 3)]
    results = {}
    for chunk in (512, 1024):
        config = make_world(tmp_path / f"c{chunk}", chunk=chunk)
        grid_toml = config.parent / "grid.toml"
        grid_toml.write_text(grid_toml.read_text().replace("resolution = 100.0", "resolution = 10"))
        write_gpkg(config.parent / "mines.gpkg", [{"count": 7, "geometry": Point(x, y)}])
        config.write_text(config.read_text().replace("bandwidth_m = 50 ", "bandwidth_m = 25 "))
        results[chunk] = values(config, "L")
    L = results[512]
    np.testing.assert_array_equal(L, results[1024])
    assert np.unravel_index(np.argmax(L), L.shape) == (512, 512)
    per_km2 = 7 / 1e-4  # 7 mines, 0.0001 km² cells
    assert L[512, 512] == pytest.approx(per_km2 * _quartic_share(2, 1, offsets), rel=1e-6)    # d² = 5 m²
    assert L[512, 511] == pytest.approx(per_km2 * _quartic_share(-8, 1, offsets), rel=1e-6)   # d² = 65 m²
    assert L[511, 512] == pytest.approx(per_km2 * _quartic_share(2, -9, offsets), rel=1e-6)   # d² = 85 m²
    assert L[512, 514] > 0 and L[512, 515] == 0 and L[512, 509] == 0  # 22 m east reached; 32 m, 28 m west not
    assert L.sum() * 1e-4 == pytest.approx(7, rel=1e-6)
    assert np.count_nonzero(L) == sum(x * x + y * y < 625 for x, y in offsets)


def test_a_kernel_smaller_than_half_a_cell_leaves_the_count_in_its_cell():
    """No cell centre within h: the whole count goes to the cell holding the record (the tiny
    world relies on it), wherever in its cell the record lies."""
    from affine import Affine
    from odc.geo.geobox import GeoBox

    from pipeline.sources.density import point_density

    gbox = GeoBox((10, 10), Affine(100, 0, X0, 0, -100, Y1), CRS)
    xy = np.array([[X0 + 305, Y1 - 295],    # a corner of cell (2, 3): 63.6 m from its centre
                   [X0 + 555, Y1 - 555]])   # 7 m from the centre of cell (5, 5)
    L = point_density(xy, np.array([4.0, 2.0]), gbox, bandwidth=50.0)
    assert L[2, 3] == pytest.approx(400.0) and L[5, 5] == pytest.approx(200.0)  # per 0.01 km²
    assert np.count_nonzero(L) == 2


def test_a_polygon_holding_the_whole_chunk_still_lets_later_ones_burn_on_top():
    from affine import Affine
    from odc.geo.geobox import GeoBox

    from pipeline.sources.polygons import BurnJob

    gbox = GeoBox((10, 10), Affine(100, 0, X0, 0, -100, Y1), CRS)
    under = box(X0 - 500, Y1 - 1500, X0 + 1500, Y1 + 500)  # hidden by `big`
    big = box(X0 - 100, Y1 - 1100, X0 + 1100, Y1 + 100)    # holds every cell of the chunk
    small = cell_box(2, 3).buffer(-10)                     # cell (2, 3) only
    out = BurnJob(np.array([under, big, small]), np.array([1.0, 2.0, 3.0]), gbox, False, -1, "int16")()
    assert out.dtype == np.int16 and out[2, 3] == 3
    assert (np.delete(out.ravel(), 2 * 10 + 3) == 2).all()
    alone = BurnJob(np.array([under, big]), np.array([1.0, 2.0]), gbox, True, -1, "int16")()
    assert (alone == 2).all()


# 1 km² of UTM map is 1 / 0.9996² km² on the ellipsoid near the central meridian (scale factor k0)
ELLIPSOIDAL = 1 / 0.9996**2


def _site_world(root: Path, resolution: float) -> Path:
    """The tiny world with three cleared sites: A, 1 km² of map in the sand (x 2–3 km, y 2–3 km
    from the north-west corner); C, 0.25 km², overlapping A's north-east corner; B, 600 × 300 m
    turned 30°, in the rock."""
    import shapely.affinity

    config = make_world(root)
    b = shapely.affinity.rotate(box(X0 + 6700, Y1 - 6150, X0 + 7300, Y1 - 5850), 30)
    write_gpkg(root / "cleared.gpkg", [
        {"method": "manual", "geometry": box(X0 + 2000, Y1 - 3000, X0 + 3000, Y1 - 2000)},
        {"method": "mechanical", "geometry": box(X0 + 2800, Y1 - 2200, X0 + 3300, Y1 - 1700)},
        {"method": "manual", "geometry": b},
    ])
    grid_toml = root / "grid.toml"
    grid_toml.write_text(grid_toml.read_text().replace("resolution = 100.0", f"resolution = {resolution}"))
    return config


def _at(path: Path, points: list[tuple[float, float]]) -> list[float]:
    import rasterio

    with rasterio.open(path) as ds:
        return [float(v[0]) for v in ds.sample(points)]


def test_recovery_rate_is_a_property_of_the_land_not_of_the_grid(tmp_path):
    """A_c is the cleared site's area (site_km2): the same sites give the same R_e at 100 m and
    50 m; A's interior holds the hand-checked value; where sites overlap the largest counts."""
    from pipeline.runner import run

    a_inside, overlap, c_only, b_inside = (X0 + 2525, Y1 - 2475), (X0 + 2925, Y1 - 2075), \
        (X0 + 3225, Y1 - 1775), (X0 + 7025, Y1 - 6025)
    outside = (X0 + 4525, Y1 - 4475)
    r_e = {}
    for res in (100, 50):
        config = _site_world(tmp_path / f"w{res}", res)
        run(config, tmp_path / f"out{res}", workers=1)
        r_e[res] = _at(tmp_path / f"out{res}" / "recovery_rate.tif", [a_inside, overlap, c_only, b_inside, outside])
    # sand: B_r 0.6, T_s 1; no mines near, no drone: P_c = (H_m 0 + S_t 0.8) / 2 = 0.4
    assert r_e[100][0] == pytest.approx(ELLIPSOIDAL * 0.6 / (1 * 0.4), rel=1e-5)  # 1.5012
    assert r_e[100][1] == pytest.approx(r_e[100][0], rel=1e-6)  # in A and C: the larger, A
    assert r_e[100][2] == pytest.approx(0.25 * ELLIPSOIDAL * 0.6 / 0.4, rel=1e-5)
    # rock: B_r 0.9, T_s 2, P_c = (0 + 0.2) / 2 = 0.1; B is 0.18 km² of map
    assert r_e[100][3] == pytest.approx(0.18 * ELLIPSOIDAL * 0.9 / (2 * 0.1), rel=1e-5)
    assert r_e[100][4] == 0.0  # no site: nothing cleared
    np.testing.assert_allclose(r_e[50], r_e[100], rtol=1e-6)
