"""The product registry: one entry per product; a new product is a formula and an entry, nothing else."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

import pipeline
from pipeline import formulas
from pipeline.products import PRODUCTS, ProductDef
from pipeline.summaries import product_fields
from pipeline.products import product_legend


def half(p_c: np.ndarray) -> np.ndarray:
    """The toy product's formula: half of P_c."""
    return (p_c / 2).astype(np.float32)


HALF_PC = ProductDef("half_pc", "Half the contamination probability", "P_half", "P_half = P_c / 2 (a test product)",
                     "probability (0–1)", ("H_m", "S_t", "V_i"),
                     compute=lambda b: b.apply(half, b.product("contamination_probability")),
                     enabled=lambda cfg: cfg.spec.products.contamination_probability.enabled,
                     legend_title="Half P_c (0–0.5)", default_range=(0.0, 0.5))


def test_a_registered_product_is_computed_styled_drawn_and_recorded(world, monkeypatch):
    """Only the registry is touched (monkeypatched): the run writes the product's COG, style, map
    and run-record entry, with values P_c / 2 on the world's cells."""
    monkeypatch.setitem(PRODUCTS, "half_pc", HALF_PC)
    out = world.parent / "out"
    pipeline.run(world, out, workers=1)
    record = json.loads((out / "run.json").read_text())
    entry = record["products"]["half_pc"]
    assert entry["file"] == "half_pc.tif" and entry["style"] == "half_pc.qml"
    assert entry["equation"] == "P_half = P_c / 2 (a test product)" and entry["unit"] == "probability (0–1)"
    with rasterio.open(out / "half_pc.tif") as ds, rasterio.open(out / "contamination_probability.tif") as pc:
        assert ds.tags()["MINEMAP_PRODUCT"] == "half_pc"
        assert ds.nodata == -9999.0 and ds.dtypes[0] == "float32"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"  # GDAL read our structural metadata
        h, p = ds.read(1, masked=True), pc.read(1, masked=True)
    # cell (0, 0): H_m 0 (no mines near), S_t 0.8 (sand), V_i 0.6 (drone) → P_c 1.4 / 3, half 0.2333
    assert h[0, 0] == pytest.approx(1.4 / 6, abs=1e-6)
    assert np.array_equal(h.mask, p.mask)
    np.testing.assert_allclose(h.compressed(), p.compressed() / 2, rtol=1e-6)
    qml = (out / "half_pc.qml").read_text()
    assert 'classificationMax="0.5"' in qml  # its own default range
    assert (out / "half_pc.png").stat().st_size > 0  # its map
    assert {"half_pc.tif", "half_pc.qml", "half_pc.png"} <= set(record["files"])


def test_registry_entries_are_complete():
    for name, p in PRODUCTS.items():
        assert p.name == name and p.file == f"{name}.tif" and p.compute is not None
        assert p.nodata == (255 if p.dtype == "uint8" else -9999.0)
        assert p.overview_resampling == ("NEAREST" if p.dtype == "uint8" else "AVERAGE")
    assert product_legend("recovery_rate").stops[-1].value == 5.0  # default ranges live in the registry
    assert "half_pc" not in PRODUCTS  # the toy product stayed in its test


def test_csc_threshold_is_defined_once():
    """The paper's 0.7 cut comes from formulas.SUSTAINABLE in the equation text and the legend."""
    assert formulas.SUSTAINABLE == 0.7
    assert "> 0.7 sustainable" in PRODUCTS["clearance_sustainability"].equation
    labels = [s.label for s in product_legend("clearance_sustainability").stops]
    assert labels[2] == "0.70–0.85 sustainable (> 0.7)"


def test_summary_fields_come_from_the_registry():
    assert product_fields() == {"P_c": "contamination_probability", "n": "evidence_count", "class": "risk_class",
                                "E": "environmental_impact", "R_e": "recovery_rate",
                                "CSC": "clearance_sustainability", "P_res": "residual_probability"}
