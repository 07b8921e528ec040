"""README "Your own region", step by step (#22): the commands of its code block, run as written on a
copy of examples/new_region (real Azerbaijan district boundaries, synthetic lon/lat records), from
`minemap init` to a finished `minemap run`, and what they make checked by hand-known figures."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner
from pyproj import Transformer

from conftest import REPO
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.grid import load_grid

EXAMPLE = REPO / "examples" / "new_region"


def readme_commands() -> list[list[str]]:
    """The `minemap …` lines of the section's code block, as argument lists."""
    section = (REPO / "README.md").read_text().split("\n## Your own region\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("minemap ")]


@pytest.fixture(scope="module")
def followed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The README's steps, run from a folder holding a copy of examples/; returns the folder and
    each command's output."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(EXAMPLE, root / "examples" / "new_region")
    outputs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for args in readme_commands():
            result = CliRunner().invoke(main, args)
            assert result.exit_code == 0, (args, result.output)
            outputs[args[0]] = result.output
    return root, outputs


def test_the_section_is_init_validate_run():
    assert [c[0] for c in readme_commands()] == ["init", "validate", "run"]


def test_init_chose_utm_38n_and_a_records_only_config(followed):
    root, outputs = followed
    grid = load_grid(root / "my_region" / "grid.toml")
    assert str(grid.crs) == "EPSG:32638"  # the centroid, 46.63° E 39.23° N, lies in zone 38 (42–48° E)
    assert grid.resolution == 100 and grid.chunk == 512
    assert grid.shape == (732, 463)  # the districts span 46.3 × 73.2 km
    cfg = load_config(root / "my_region" / "minemap.toml")
    assert list(cfg.spec.inputs) == ["L"]
    pc = cfg.spec.products.contamination_probability
    assert tuple(pc.weights) == (1, 0, 0) and pc.L_sat == "auto"
    assert cfg.spec.inputs["L"].count_field == "count" and cfg.spec.inputs["L"].path == \
        "../examples/new_region/records_SYNTHETIC.csv"
    assert "UTM zone 38N (EPSG:32638), 463 × 732 cells of 100 m" in outputs["init"]


def test_validate_warns_only_of_the_missing_extent(followed):
    _, outputs = followed
    warnings = [line for line in outputs["validate"].splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "inputs.L: no `extent`" in warnings[0]
    assert "ok: " in outputs["validate"]


def test_run_assessed_both_districts_and_every_record_is_high_or_above(followed):
    root, _ = followed
    out = root / "my_region" / "out"
    record = json.loads((out / "run.json").read_text())
    assert list(record["products"]) == ["contamination_probability", "evidence_count", "risk_class"]
    assert record["assessment"]["evidence_layers"] == ["H_m"]
    assert record["assessment"]["min_evidence_effective"] == 1
    assert record["assessment"]["L_sat"] == pytest.approx(26.0, abs=0.05)  # README: "26 mines/km² here"
    records = pd.read_csv(EXAMPLE / "records_SYNTHETIC.csv")
    assert len(records) == 61 and set(records["source"]) == {"SYNTHETIC"}
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32638", always_xy=True).transform(
        records["Longitude"].to_numpy(), records["Latitude"].to_numpy())
    with rasterio.open(out / "risk_class.tif") as ds:
        classes = [int(v[0]) for v in ds.sample(zip(x, y))]
    assert min(classes) >= 3  # 1 low, 2 medium, 3 high: a record's cell is direct evidence (#20)
    districts = pd.read_csv(out / "districts.csv").set_index("district")
    assert sorted(districts.index) == ["Qubadli", "Zangilan"]
    assert (districts["assessment"] == "assessed").all() and (districts["assessed_share"] == 1).all()
    source = gpd.read_file(EXAMPLE / "districts.gpkg").set_index("name")["area_km2"]  # EPSG:6933 areas
    for name in districts.index:
        assert districts.loc[name, "area_km2"] == pytest.approx(source[name], rel=0.01)
    # the records' 411 items, less what kernels near the border spread beyond the region
    assert 0.99 * 411 <= districts["remaining_mines"].sum() <= 411
    kept = pyogrio.read_dataframe(out / "evidence.gpkg", layer="records_SYNTHETIC")
    assert len(kept) == 61 and kept.crs.to_epsg() == 32638
    assert (out / "briefing.pdf").stat().st_size > 0 and (out / "minemap.qgz").exists()


def test_products_carry_the_configs_sha256_and_their_predictor(followed):
    """README *Products*: ZSTD with the floating-point predictor (3) for float32 products, the
    horizontal one (2) for uint8; MINEMAP_CONFIG_SHA256 is the config file's SHA-256 (sha256sum)."""
    import hashlib

    import tifffile

    root, _ = followed
    out = root / "my_region" / "out"
    sha = hashlib.sha256((root / "my_region" / "minemap.toml").read_bytes()).hexdigest()
    assert json.loads((out / "run.json").read_text())["config"]["sha256"] == sha
    for name, dtype, predictor in [("contamination_probability", "float32", 3), ("evidence_count", "uint8", 2),
                                   ("risk_class", "uint8", 2)]:
        with tifffile.TiffFile(out / f"{name}.tif") as tif:
            page = tif.pages[0]
            assert (str(page.dtype), page.predictor, page.compression) == (dtype, predictor, 50000)  # 50000: ZSTD
        with rasterio.open(out / f"{name}.tif") as ds:
            assert ds.tags()["MINEMAP_CONFIG_SHA256"] == sha
