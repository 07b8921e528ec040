"""The quartic kernel at chosen cells (`evaluate.kernel`, issue #21 §6) equals the density
source's own stamp (`sources.density.point_density`) and a hand-computed value."""

import numpy as np
import pytest
from odc.geo.geobox import GeoBox
from affine import Affine

from pipeline.evaluate.kernel import density_at, normalisation
from pipeline.sources.density import point_density


def test_one_record_at_a_cell_centre_matches_the_hand_sum():
    # h = 150 m, 100 m cells, the record at its cell's centre: its own cell weighs 1, the 4 edge
    # neighbours (1 − 100²/150²)² = (5/9)², the 4 corner ones (1 − 2·100²/150²)² = (1/9)²
    total = 1 + 4 * (5 / 9) ** 2 + 4 * (1 / 9) ** 2
    assert normalisation(np.array([50.0]), np.array([50.0]), 100.0, 150.0) == pytest.approx([total])
    got = density_at(np.array([[50.0, -50.0]]), np.array([1.0]), np.array([[50.0, -50.0], [150.0, -50.0],
                     [150.0, -150.0], [250.0, -50.0]]), (0.0, 0.0), 100.0, 150.0)
    assert got == pytest.approx(np.array([1, (5 / 9) ** 2, (1 / 9) ** 2, 0]) / (total * 0.01))


@pytest.mark.parametrize("bandwidth", [40.0, 150.0, 730.0, 2500.0])
def test_every_cell_equals_the_runs_stamp(bandwidth):
    rng = np.random.default_rng(3)
    gbox = GeoBox((60, 80), Affine(100.0, 0, 300_000.0, 0, -100.0, 4_000_000.0), "EPSG:32638")
    xy = np.c_[rng.uniform(299_000, 309_000, 40), rng.uniform(3_993_000, 4_001_000, 40)]
    xy[0] = (300_050.0, 3_999_950.0)  # exactly at a cell centre (a 40 m kernel reaches no other centre)
    counts = rng.integers(1, 5, 40).astype(float)
    stamp = point_density(xy, counts, gbox, bandwidth)
    rows, cols = np.mgrid[0:60, 0:80]
    centres = np.c_[300_000.0 + 100 * cols.ravel() + 50, 4_000_000.0 - 100 * rows.ravel() - 50]
    got = density_at(xy, counts, centres, (300_000.0, 4_000_000.0), 100.0, bandwidth).reshape(60, 80)
    np.testing.assert_allclose(got, stamp, rtol=2e-5, atol=1e-4)
    assert (got > 0).sum() == (stamp > 0).sum() and stamp.sum() > 0


def test_isotonic_pools_violators_and_ece_weighs_bins_by_events():
    from pipeline.calibrate import isotonic

    # outcomes 0, 1, 0, 1 on scores 1–4: (1, 0) at scores 2, 3 violate order and pool to ½
    x, p = isotonic.fit(np.array([1.0, 2, 3, 4]), np.array([0, 1, 0, 1]))
    assert x.tolist() == [1, 2, 3, 4] and p.tolist() == [0, 0.5, 0.5, 1]
    assert isotonic.apply(x, p, np.array([0.0, 1.5, 2.5, 9.0, np.nan]))[:4].tolist() == [0, 0.25, 0.5, 1]
    # bin 0–0.1: one event at 0.05, none positive → 0.05; bin 0.1–0.2: two at 0.15, one positive → 0.35 each
    assert isotonic.ece(np.array([0.05, 0.15, 0.15]), np.array([0, 1, 0])) == pytest.approx((0.05 + 2 * 0.35) / 3)
