"""engine/plan: the files a run writes, and whether an update patches the previous ones."""

from __future__ import annotations

from conftest import engine_only
from pipeline.engine.plan import load_inputs, plan_targets
from pipeline.outdir import read_state
from pipeline.products import build_products
from pipeline.runner import run


def test_targets_and_the_patch_or_rewrite_decision(world):
    out = world.parent / "out"
    run(engine_only(world), out, workers=1)
    state = read_state(out)
    inputs = load_inputs(world)
    arrays = build_products(inputs.cfg, inputs.grid, inputs.layers)

    targets, patch = plan_targets(inputs, arrays, "2026-01-01T00:00:00+00:00", out, state, {(0, 0)})
    assert [t.name for t in targets] == ["contamination_probability", "evidence_count", "risk_class",
                                         "environmental_impact", "recovery_rate", "clearance_sustainability"]
    assert patch  # files as big as the last full write: patched in place
    assert all(t.parts == state["parts"][t.name] and t.parts for t in targets)  # the other chunks' statistics
    by_name = {t.name: t for t in targets}
    assert by_name["risk_class"].nodata == 255 and by_name["risk_class"].overview_resampling == "NEAREST"
    assert by_name["recovery_rate"].nodata == -9999.0 and by_name["recovery_rate"].overview_resampling == "AVERAGE"
    assert by_name["environmental_impact"].tags["MINEMAP_EQUATION"] == "Eq. (1) E = L·D − C·R"

    grown = {**state, "sizes": {name: size // 2 for name, size in state["sizes"].items()}}  # files 2× their size
    targets, patch = plan_targets(inputs, arrays, "2026-01-01T00:00:00+00:00", out, grown, {(0, 0)})
    assert not patch and all(t.parts == {} for t in targets)  # rewritten in full

    _, patch = plan_targets(inputs, arrays, "2026-01-01T00:00:00+00:00", out, state, None)
    assert not patch  # a run (no changed set) always writes in full
