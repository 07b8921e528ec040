"""The paper's equations on hand-computed values, including missing and zero cases."""

import numpy as np
import pytest

from pipeline import formulas as f

nan = np.nan


def arr(*v):
    return np.array(v, dtype=np.float32)


def test_contamination_probability_is_the_mean_of_three():
    # (0.3 + 0.6 + 0.9) / 3 = 0.6 ; (1 + 0 + 0.5) / 3 = 0.5
    out = f.contamination_probability(arr(0.3, 1.0), arr(0.6, 0.0), arr(0.9, 0.5))
    np.testing.assert_allclose(out, [0.6, 0.5], rtol=1e-6)
    assert out.dtype == np.float32


def test_contamination_probability_missing_layers_use_the_mean_of_the_rest():
    # drone missing: (0.3 + 0.6) / 2 = 0.45 ; only S_t: 0.2 ; nothing: nodata
    out = f.contamination_probability(arr(0.3, nan, nan), arr(0.6, 0.2, nan), arr(nan, nan, nan))
    np.testing.assert_allclose(out, [0.45, 0.2, nan], rtol=1e-6)
    np.testing.assert_array_equal(f.evidence_count(arr(0.3, nan, nan), arr(0.6, 0.2, nan), arr(nan, nan, nan)),
                                  [2, 1, 0])


def test_contamination_probability_require_all_gives_nodata_where_any_is_missing():
    out = f.contamination_probability(arr(0.3, 0.3), arr(0.6, 0.6), arr(nan, 0.0), require_all=True)
    assert np.isnan(out[0])
    assert out[1] == pytest.approx(0.3)


def test_mine_density_coefficient_saturates():
    # L_sat 50: 10 → 0.2, 50 → 1, 400 → 1, 0 → 0
    np.testing.assert_allclose(f.mine_density_coefficient(arr(10, 50, 400, 0), 50.0), [0.2, 1, 1, 0])


def test_environmental_impact():
    # 40·0.5 − 25·0.8 = 20 − 20 = 0 ; 100·0.3 − 0·1 = 30 ; 0·0.5 − 100·0.6 = −60
    out = f.environmental_impact(arr(40, 100, 0), arr(0.5, 0.3, 0.5), arr(25, 0, 100), arr(0.8, 1.0, 0.6))
    np.testing.assert_allclose(out, [0, 30, -60], atol=1e-5)


def test_recovery_rate_and_its_zero_denominator():
    # (0.01·0.6)/(1.0·0.4) = 0.015 ; (2·0.5)/(0.5·0.8) = 2.5 ; T_s·P_c = 0 → nodata, not inf
    out = f.recovery_rate(arr(0.01, 2, 1, 1), arr(0.6, 0.5, 0.5, 0.5), arr(1.0, 0.5, 0.0, 1.0), arr(0.4, 0.8, 0.5, 0))
    np.testing.assert_allclose(out[:2], [0.015, 2.5], rtol=1e-6)
    assert np.isnan(out[2:]).all()
    assert not np.isinf(out).any()


def test_recovery_rate_missing_input_is_nodata():
    assert np.isnan(f.recovery_rate(arr(1), arr(nan), arr(1), arr(1))[0])


def test_clearance_sustainability_and_threshold():
    # (0.9 + 0.6)/2 · 1.0 = 0.75 > 0.7 ; (0.7 + 0.6)/2 · 0.5 = 0.325
    out = f.clearance_sustainability(arr(0.9, 0.7), arr(0.6, 0.6), arr(1.0, 0.5))
    np.testing.assert_allclose(out, [0.75, 0.325], rtol=1e-6)
    assert (out > f.SUSTAINABLE).tolist() == [True, False]
