"""Property-based tests (hypothesis, #11): the formulas over random arrays with holes, and
placement of random polygons and points against independent computations with shapely."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from odc.geo.geobox import GeoBox
from shapely import affinity

from pipeline import formulas
from pipeline.sources.coverage import coverage_fraction
from pipeline.sources.density import point_density
from pipeline.sources.polygons import BurnJob

FAST = settings(max_examples=80, deadline=None)
SHAPE = (4, 5)


def grids(lo: float = 0.0, hi: float = 1.0, nan: bool = True):
    """float32 arrays of SHAPE with values in [lo, hi] (subnormals and exact ends included), NaN holes."""
    values = st.floats(lo, hi, width=32)
    return arrays(np.float32, SHAPE, elements=st.one_of(values, st.just(np.nan)) if nan else values)


# ---- formulas ----------------------------------------------------------------------------------

@FAST
@given(grids(), grids(), grids())
def test_pc_is_the_mean_of_the_layers_with_data(h_m, s_t, v_i):
    p_c = formulas.contamination_probability(h_m, s_t, v_i)
    stack = np.stack([h_m, s_t, v_i]).astype(np.float64)
    have = np.isfinite(stack)
    n = have.sum(axis=0)
    assert p_c.dtype == np.float32
    assert (np.isnan(p_c) == (n == 0)).all()  # NaN exactly where no layer has data
    expected = np.where(have, stack, 0).sum(axis=0) / np.maximum(n, 1)
    assert np.allclose(p_c[n > 0], expected[n > 0], rtol=1e-6, atol=1e-7)
    assert ((p_c[n > 0] >= 0) & (p_c[n > 0] <= 1)).all()
    assert np.array_equal(formulas.evidence_count(h_m, s_t, v_i), n.astype(np.uint8))


@FAST
@given(grids(), grids(), grids())
def test_pc_require_all_is_nan_where_any_layer_is(h_m, s_t, v_i):
    p_c = formulas.contamination_probability(h_m, s_t, v_i, require_all=True)
    missing = np.isnan(h_m) | np.isnan(s_t) | np.isnan(v_i)
    assert (np.isnan(p_c) == missing).all()
    assert ((p_c[~missing] >= 0) & (p_c[~missing] <= 1)).all()


@FAST
@given(grids(0, 1000), grids(), grids(0, 100), grids())
def test_environmental_impact_is_nan_where_any_input_is(L, D, C, R):
    e = formulas.environmental_impact(L, D, C, R)
    missing = np.isnan(L) | np.isnan(D) | np.isnan(C) | np.isnan(R)
    assert (np.isnan(e) == missing).all()
    assert np.isfinite(e[~missing]).all()
    assert ((e[~missing] >= -100) & (e[~missing] <= 1000)).all()  # L·D ≤ 1000, C·R ≤ 100


@FAST
@given(grids(0, 1), grids(), grids(0, 10), grids())
def test_recovery_rate_is_never_infinite(A_c, B_r, T_s, P_c):
    """Zero denominators, and ones so small the quotient overflows float32, give NaN."""
    r_e = formulas.recovery_rate(A_c, B_r, T_s, P_c)
    assert r_e.dtype == np.float32
    assert not np.isinf(r_e).any()
    missing = np.isnan(A_c) | np.isnan(B_r) | np.isnan(T_s) | np.isnan(P_c)
    assert np.isnan(r_e[missing]).all()
    assert np.isnan(r_e[~missing & (T_s * P_c == 0)]).all()
    assert (r_e[np.isfinite(r_e)] >= 0).all()


@FAST
@given(grids(), grids(), grids())
def test_csc_stays_in_0_1(E_f, B_r, D_i):
    csc = formulas.clearance_sustainability(E_f, B_r, D_i)
    missing = np.isnan(E_f) | np.isnan(B_r) | np.isnan(D_i)
    assert (np.isnan(csc) == missing).all()
    assert ((csc[~missing] >= 0) & (csc[~missing] <= 1)).all()


# ---- placement ---------------------------------------------------------------------------------
# A 12 × 10 grid of 10 m cells in UTM 38N; cell (r, c) spans x 500 000 + 10 c …, y 4 400 120 − 10 r ….

RES, NY, NX = 10.0, 12, 10
GBOX = GeoBox.from_bbox((500_000, 4_400_000, 500_000 + NX * RES, 4_400_000 + NY * RES), "EPSG:32638",
                        resolution=RES)
COLS, ROWS = np.meshgrid(np.arange(NX), np.arange(NY))
CENTRES_X, CENTRES_Y = 500_000 + (COLS + 0.5) * RES, 4_400_000 + NY * RES - (ROWS + 0.5) * RES
CELLS = shapely.box(CENTRES_X - RES / 2, CENTRES_Y - RES / 2, CENTRES_X + RES / 2, CENTRES_Y + RES / 2)

# corners anywhere in and around the grid, on a 0.25 m lattice offset from the centres (x.25 / x.75)
coords_x = st.integers(-20, 4 * (NX * 10 + 20)).map(lambda k: 500_000 - 20 + k * 0.25 + 0.125)
coords_y = st.integers(-20, 4 * (NY * 10 + 20)).map(lambda k: 4_400_000 - 20 + k * 0.25 + 0.125)


@st.composite
def polygons(draw):
    """An axis-aligned box, maybe rotated about its centre by any angle (or a triangle)."""
    x0, x1 = sorted((draw(coords_x), draw(coords_x)))
    y0, y1 = sorted((draw(coords_y), draw(coords_y)))
    if draw(st.booleans()):
        geom = shapely.Polygon([(x0, y0), (x1, y0), (x0 + (x1 - x0) * draw(st.floats(0, 1)), y1)])
    else:
        geom = shapely.box(x0, y0, x1 + 0.5, y1 + 0.5)
    angle = draw(st.sampled_from([0.0, 90.0]) | st.floats(-180, 180))
    return affinity.rotate(geom, angle, origin="centroid")


@FAST
@given(polygons())
def test_burnt_cells_are_those_whose_centre_the_polygon_holds(poly):
    burnt = BurnJob(np.array([poly]), np.array([1.0]), GBOX, fill=0.0)()
    inside = shapely.contains_xy(poly, CENTRES_X, CENTRES_Y)
    # a centre on the boundary itself is GDAL's rule to decide: left out of the comparison
    clear = shapely.distance(poly.boundary, shapely.points(CENTRES_X, CENTRES_Y)) > 1e-6
    assert np.array_equal((burnt == 1)[clear], inside[clear])


@FAST
@given(st.lists(polygons(), min_size=1, max_size=3))
def test_coverage_is_the_exact_intersection_area(polys):
    geoms = np.array([p for p in polys if p.area > 0] or [shapely.box(500_000, 4_400_000, 500_005, 4_400_005)])
    fraction = coverage_fraction(geoms, GBOX)
    union = shapely.union_all(geoms)
    expected = shapely.area(shapely.intersection(union, CELLS)) / RES**2
    assert np.allclose(fraction, expected, rtol=0, atol=1e-6)


@FAST
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(1, 1000)), min_size=1, max_size=12),
       st.floats(5, 35))
def test_point_records_keep_their_count(points, bandwidth):
    """A point's kernel lies wholly in the grid (points ≥ the bandwidth from its edges): the
    density times the cell area sums to the records' counts (each record's kernel is normalised
    over the cells it reaches, at the record's true position)."""
    margin = 35.0
    xy = np.array([(500_000 + margin + fx * (NX * RES - 2 * margin), 4_400_000 + margin + fy * (NY * RES - 2 * margin))
                   for fx, fy, _ in points])
    counts = np.array([c for _, _, c in points], dtype=np.float32)
    density = point_density(xy, counts, GBOX, bandwidth)
    cell_km2 = RES * RES / 1e6
    assert (density >= 0).all()
    assert float(density.astype(np.float64).sum() * cell_km2) == pytest.approx(float(counts.sum()), rel=1e-5)
