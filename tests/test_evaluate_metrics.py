"""Skill metrics of `minemap evaluate`, hand-checked on toy rankings and a toy region (#14)."""

import numpy as np
import pytest

from pipeline.evaluate import metrics as m


def test_auc_one_swap_of_three_positives_and_three_negatives_is_8_of_9():
    # ranking, riskiest first: P P N P N N → one (positive, negative) pair out of 9 is misordered
    scores = np.array([6, 5, 4, 3, 2, 1.0])
    outcome = np.array([1, 1, 0, 1, 0, 0])
    assert m.roc_auc(scores, outcome) == pytest.approx(8 / 9)


def test_auc_ties_count_half_and_nan_is_left_out():
    # one positive tied with one negative (½), the other pair ordered (1), NaN events left out
    assert m.roc_auc(np.array([0.5, 0.5, 0.9, 0.1, np.nan]), np.array([1, 0, 1, 0, 1])) == pytest.approx(
        (1 + 1 + 0.5 + 1) / 4)
    assert m.roc_auc(np.array([0.2, 0.2]), np.array([1, 0])) == 0.5
    assert np.isnan(m.roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_roc_curve_steps_through_each_distinct_score():
    fpr, tpr = m.roc_curve(np.array([3, 2, 2, 1.0]), np.array([1, 1, 0, 0]))
    assert fpr.tolist() == [0, 0, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 1, 1]


def test_capture_curve_of_a_known_layout():
    # a region of 10 cells, values 9…0 (one cell each); positives on the cells valued 9, 7 and 0
    cells = np.arange(10.0)
    above, at_least = m.area_ranks(cells, np.array([9.0, 7.0, 0.0]))
    assert above.tolist() == [0, 2, 9] and at_least.tolist() == [1, 3, 10]
    # riskiest 10 % = the 9-cell: 1 of 3; 30 %: 9 and 7 in; 50 %: still 2 of 3; 100 %: all
    assert m.capture_curve(above, at_least, 10, (0.1, 0.3, 0.5, 1.0)).tolist() == pytest.approx(
        [1 / 3, 2 / 3, 2 / 3, 1.0])


def test_capture_counts_tied_cells_in_part():
    # 4 cells all 0.5 (a flat map): the riskiest 25 % holds a quarter of each event
    above, at_least = m.area_ranks(np.full(4, 0.5), np.array([0.5, 0.5]))
    assert m.capture_curve(above, at_least, 4, (0.25, 0.5)).tolist() == [0.25, 0.5]
    # NaN cells rank lowest: an event on an unknown cell is only captured once the budget reaches it
    above, at_least = m.area_ranks(np.array([1.0, np.nan, np.nan, 0.2]), np.array([np.nan]))
    assert (above.tolist(), at_least.tolist()) == ([2], [4])  # the 2 known cells are riskier; ≥: all 4
    assert m.capture_curve(np.array([2]), np.array([4]), 4, (0.5, 0.75)).tolist() == [0.0, 0.5]


def test_class_rates_and_whether_they_rise():
    rows = m.class_rates(np.array([1, 1, 2, 3, 3, 3]), np.array([0, 1, 1, 1, 1, 0]), {1: 100, 2: 10, 3: 10}, 0.01)
    assert [r["positives_per_km2"] for r in rows] == pytest.approx([1.0, 10.0, 20.0])
    assert [r["share_positive"] for r in rows] == pytest.approx([0.5, 1.0, 2 / 3])
    assert m.rises([1.0, 10.0, 20.0]) and not m.rises([1.0, 20.0, 10.0]) and not m.rises([1.0, 1.0])


def test_calibration_groups_by_score_quantile():
    scores = np.repeat(np.linspace(0.05, 0.95, 10), 10)  # ten groups of ten equal scores
    outcome = np.zeros(100, int)
    outcome[scores > 0.5] = 1  # the upper five groups all positive
    rows = m.calibration(scores, outcome)
    assert len(rows) == 10 and all(r["events"] == 10 for r in rows)
    assert [r["share_positive"] for r in rows] == [0.0] * 5 + [1.0] * 5
    assert rows[0]["mean_score"] == pytest.approx(0.05)


def test_block_folds_never_split_a_block():
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, 1000, 500), rng.integers(0, 1000, 500)
    blocks = m.block_ids(rows, cols, 200)  # 5 × 5 blocks of 200 cells
    assert len(np.unique(blocks)) == 25
    folds = m.block_folds(blocks, 5)
    for b in np.unique(blocks):
        assert len(np.unique(folds[blocks == b])) == 1  # a block lies in one fold
    assert sorted(np.unique(folds).tolist()) == [0, 1, 2, 3, 4]
    # cells 0–199 are block row 0, 200 is the next block
    assert m.block_ids(np.array([0, 199, 200]), np.array([0, 0, 0]), 200).tolist() == [0, 0, 1 << 32]


def test_simplex_has_every_weight_triple_on_the_step():
    w = m.simplex(0.05)
    assert len(w) == 231 and np.allclose(w.sum(axis=1), 1) and (w >= 0).all()
    assert any(np.allclose(x, [1, 0, 0]) for x in w)


def test_calibration_keeps_ties_in_one_decile():
    # 90 events at 0 (mean rank 45.5 → decile 5) and 10 distinct higher ones (ranks 91–100 → decile 10)
    scores = np.r_[np.zeros(90), np.linspace(0.5, 0.95, 10)]
    outcome = np.r_[np.zeros(85, int), np.ones(5, int), np.ones(10, int)]
    rows = m.calibration(scores, outcome)
    assert [(r["decile"], r["events"]) for r in rows] == [(5, 90), (10, 10)]
    assert rows[0]["share_positive"] == pytest.approx(5 / 90) and rows[1]["share_positive"] == 1.0


def test_fitted_weights_find_the_layer_that_ranks_and_beat_equal_weights_held_out():
    from pipeline import formulas
    from pipeline.evaluate.cv import _fit_weights

    # 8 events in 4 blocks (2 folds each of 2 blocks): only S_t separates mines (0.9) from clear (0.1);
    # H_m and V_i point the wrong way, so equal weights rank the events badly
    outcome = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    S = np.where(outcome == 1, 0.9, 0.1)
    H = np.where(outcome == 1, 0.0, 0.6)
    V = np.where(outcome == 1, 0.2, 0.7)
    folds = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    fit = _fit_weights(lambda w: formulas.contamination_probability(H, S, V, weights=w).astype(float), outcome, folds)
    # equal weights: mines (0 + 0.9 + 0.2) / 3 = 0.367, clear (0.6 + 0.1 + 0.7) / 3 = 0.467 → AUC 0
    assert fit["heldout_auc_equal"] == 0.0
    assert fit["heldout_auc"] == 1.0
    for f in fit["per_fold"]:
        w_h, w_s, w_v = f["weights"]
        # a perfect ranking needs 0.9 w_S + 0.2 w_V > 0.6 w_H + 0.1 w_S + 0.7 w_V; of those, the nearest to equal
        assert 0.8 * w_s > 0.6 * w_h + 0.5 * w_v and sum(f["weights"]) == pytest.approx(1)
