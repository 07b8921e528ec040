"""`make calibrate-antioquia`: calibrate on the project's Antioquia split, print issue #21's
targets with verdicts, and the README's real-data table (`--readme` writes it between the
README's `antioquia-table` markers, so the table is regenerated, never typed).

Run from the repository root. Deterministic but for the fitted date.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path


from pipeline.calibrate.evidence import evidence_at, lattice, records_of
from pipeline.calibrate.fit import Candidate, Rules
from pipeline.calibrate.labels import LabelFile, read_labels
from pipeline.calibrate.run import AREA_CELLS, calibrate
from pipeline.cli import calibration_lines
from pipeline.config import load_config
from pipeline.evaluate import metrics
from pipeline.evaluate.events import read_extent
from pipeline.grid import load_grid

DATA = Path("real_data/antioquia")
BANDWIDTHS = [2000.0, 5000.0, 10000.0, 20000.0]
START, END = "<!-- antioquia-table: made by `make calibrate-antioquia` -->", "<!-- /antioquia-table -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    t0 = time.perf_counter()
    r = calibrate(DATA / "minemap.toml", DATA / "minemap.fitted.toml", events=DATA / "events.gpkg",
                  extent=DATA / "heldout_blocks.gpkg", bandwidths=BANDWIDTHS)
    seconds = time.perf_counter() - t0
    for line in calibration_lines(r):
        print(line)
    print(f"calibrate: {seconds:.1f} s ({len(r['candidates'])} candidates: {len(BANDWIDTHS)} bandwidths × 3 L_sat "
          "+ 3 distance decays)")
    table = skill_table(r)
    print()
    print(table)
    if args.readme:
        readme = Path("README.md")
        text = readme.read_text()
        new = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: f"{START}\n{table}\n{END}", text, flags=re.S)
        if new == text and START not in text:
            raise SystemExit("README.md has no antioquia-table markers")
        readme.write_text(new)
        print("README.md: table written")
    print()
    print("per fold (nested): the setting picked on the other folds, its AUC on this fold, the baseline's")
    for f, (pick, auc, base) in enumerate(zip(r["nested_picks"], r["nested_fold_aucs"], r["baseline_fold_aucs"])):
        form = (f"kernel {pick['bandwidth_m'] / 1000:g} km, L_sat {pick['L_sat']:g}" if pick["h_m_form"] == "kernel"
                else f"distance decay {pick['decay_m'] / 1000:g} km")
        print(f"  fold {f + 1}: {form}: AUC {auc:.3f} vs baseline {base:.3f} ({auc - base:+.3f})")
    failed = [t for t in r["targets"] if not t["met"]]
    print("targets: " + ("all met" if not failed else f"{len(failed)} of {len(r['targets'])} NOT met (see above)"))


def skill_table(r: dict) -> str:
    """Per bandwidth at the config's L_sat: mean fold AUC, AUC over all held-out events and the
    capture at 10 % of the held-out area (lattice); the baseline; the fitted model, nested."""
    cfg = load_config(DATA / "minemap.toml")
    grid = load_grid(cfg.resolve(cfg.spec.grid))
    l_sat = cfg.spec.products.contamination_probability.L_sat
    labels, _ = read_labels([LabelFile((DATA / "events.gpkg").resolve(), "events", "outcome")], cfg, grid)
    area = read_extent(DATA / "heldout_blocks.gpkg", grid, labels)
    records = records_of(cfg, grid)
    rows, cols, stride = lattice(grid, area, AREA_CELLS)
    at_area = evidence_at(cfg, grid, rows, cols, BANDWIDTHS, records)
    at_events = evidence_at(cfg, grid, labels.rows, labels.cols, BANDWIDTHS, records)
    positive = labels.outcome == 1
    rules = Rules.of(cfg)
    share = metrics.CAPTURE_AT.index(0.10)

    def capture(area_scores, event_scores) -> float:
        above, at_least = metrics.area_ranks(area_scores, event_scores[positive])
        return float(metrics.capture_curve(above, at_least, len(rows))[share])

    m, cv = r["model"], r["model"]["cv"]
    lines = ["| ranking | held-out AUC, fold mean | held-out AUC, all events | capture at 10 % |", "|---|---|---|---|"]
    for b in BANDWIDTHS:
        cand = Candidate("kernel", b, l_sat, tuple(m["weights"]))
        row = next(c for c in r["candidates"] if c["h_m_form"] == "kernel" and c["bandwidth_m"] == b
                   and abs(c["L_sat"] - l_sat) < 1e-12)
        scores = labels.per_event(cand.p_c(at_events, rules))
        note = " (the config)" if b == cfg.spec.inputs["L"].bandwidth_m else ""
        lines.append(f"| P_c, bandwidth {b / 1000:g} km{note} | {row['cv_auc']:.3f} | {row['auc_all_events']:.3f} | "
                     f"{capture(cand.p_c(at_area, rules), scores):.1%} |")
    base = -labels.per_event(-at_events.distance)
    lines.append(f"| baseline: nearest record | {cv['baseline_auc_fold_mean']:.3f} | {cv['baseline_auc']:.3f} | "
                 f"{capture(-at_area.distance, -base):.1%} |")
    lines.append(f"| **fitted by `minemap calibrate`**, nested (picked on the other folds) | "
                 f"{cv['heldout_auc_fold_mean']:.3f} | {cv['heldout_auc']:.3f} | {cv['capture_10']:.1%} |")
    lines.append("")
    lines.append(f"L_sat {l_sat:g} in the bandwidth rows; capture over 1 in {stride} rows and columns of the held-out "
                 f"blocks' cells; calibrated_probability's held-out ECE {cv['ece']:.3f}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
