"""The run config: one TOML file binding every formula variable to a source, validated by pydantic.

Relative paths are resolved against the config file's folder; a URL (s3://, https://) is kept as it is
(a `store.Url`, issue #23).
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from . import store
from .errors import ConfigError, Problem
from .model import ModelSettings, apply_model
from .variables import VARIABLES

M = TypeVar("M", bound=BaseModel)
Resampling = Literal["auto", "nearest", "bilinear", "cubic", "average", "min", "max", "med", "mode"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConstantSource(_Spec):
    """A number everywhere."""

    kind: Literal["constant"]
    value: float
    evidence: bool = Field(False, description="count it toward evidence_count (a measured value, not a filler)")


class RasterSource(_Spec):
    """One file or a glob; reprojected onto the grid and mosaicked newest-on-top."""

    kind: Literal["raster"]
    path: str
    band: int = 1
    resampling: Resampling = Field("auto", description="auto: average when the source is finer than the grid, else bilinear")
    scale: Literal["auto", "none"] | tuple[float, float] = Field(
        "auto", description="auto: integer files divided by their type's maximum (0–255 → 0–1); [lo, hi]: linear to [0, 1]")
    time_tag: str = Field("TIFFTAG_DATETIME", description="tag with the acquisition time; the file's mtime if absent")
    nodata: float | None = Field(None, allow_inf_nan=False, description="the value marking pixels without data, "
                                 "used instead of the files' own (e.g. 0 for zero padding around a survey)")

    @field_validator("scale")
    @classmethod
    def check_scale(cls, v):
        if isinstance(v, tuple) and not v[1] > v[0]:
            raise ValueError("scale must be [lo, hi] with hi > lo")
        return v


class StacSource(_Spec):
    """Drone layers published as STAC items: each item's asset `asset` is a V_i raster, dated by the
    item's datetime, mosaicked newest on top (as a `raster` glob's files are)."""

    kind: Literal["stac"]
    catalog: str | None = Field(None, description="a static catalogue: catalog.json, collection.json or an "
                                "ItemCollection (a path relative to the config, or an s3:// or https:// URL)")
    api: str | None = Field(None, description="a STAC API's root URL: the items come from its /search")
    collection: str | list[str] | None = Field(None, description="the API collection(s) searched")
    datetime: str | None = Field(None, description="RFC 3339 instant or interval 'start/end' (`..` open): only "
                                 "items flown then (a date alone is the whole day)")
    asset: str = Field(description="the key of the anomaly raster among each item's assets")
    query: dict | None = Field(None, description="API only: the STAC query extension's limits, e.g. "
                               "{\"eo:cloud_cover\" = {lt = 10}}")
    filter: dict | str | None = Field(None, description="API only: a CQL2 filter (a table: CQL2-JSON; text: CQL2-text)")
    limit: int = Field(100, ge=1, le=10_000, description="API only: items per page")
    band: int = 1
    resampling: Resampling = Field("auto", description="as for `raster`")
    scale: Literal["auto", "none"] | tuple[float, float] = Field("auto", description="as for `raster`")
    nodata: float | None = Field(None, allow_inf_nan=False, description="as for `raster`")

    _scale_order = field_validator("scale")(classmethod(lambda cls, v: RasterSource.check_scale(v)))

    @field_validator("datetime")
    @classmethod
    def _interval(cls, v: str | None) -> str | None:
        if v is not None:
            from .stacread import interval
            interval(v)
        return v

    @model_validator(mode="after")
    def _catalog_or_api(self):
        if (self.catalog is None) == (self.api is None):
            raise ValueError("give exactly one of `catalog` (a static catalogue) or `api` (a STAC API's URL)")
        if self.api is not None and self.collection is None:
            raise ValueError("a STAC API search needs a `collection`")
        if self.catalog is not None:
            given = [k for k in ("collection", "query", "filter", "limit") if k in self.model_fields_set]
            if given:
                raise ValueError(f"{', '.join(given)}: for an `api` search only (a static catalogue is read whole, "
                                 f"then kept to the region's bbox and `datetime`)")
        return self


class PolygonSource(_Spec):
    """Polygons burnt onto cells by cell centre: a numeric field, or a class field plus a CSV table."""

    kind: Literal["polygons"]
    path: str
    layer: str | None = None
    where: str | None = None
    field: str | None = Field(None, description="numeric field holding the value")
    class_field: str | None = Field(None, description="class field looked up in `table`")
    table: str | None = Field(None, description="CSV with a column named like class_field")
    column: str | None = Field(None, description="table column holding the value (default: the variable name)")
    all_touched: bool = Field(False, description="burn every cell a polygon touches, not only those whose centre it holds")
    fill: float | None = Field(None, description="value where no polygon lies (default: nodata)")
    allow_empty: bool = Field(False, description="accept a layer with no features (after `where`) instead of refusing it")
    extent: str | None = Field(None, description="polygons where this source has information (surveyed area, "
                                "records known complete); outside them the variable is nodata")
    extent_layer: str | None = None

    @model_validator(mode="after")
    def _field_or_class(self):
        if (self.field is None) == (self.class_field is None):
            raise ValueError("give exactly one of `field` or `class_field`")
        if self.class_field is not None and self.table is None:
            raise ValueError("`class_field` needs a `table`")
        return self


class DensitySource(_Spec):
    """Mine records → items per km²: points by kernel density, polygons spread over their area."""

    kind: Literal["density"]
    path: str | list[str]
    layer: str | None = None
    where: str | None = None
    count_field: str = "count"
    count: float | None = Field(None, gt=0, description="items per record, for records with no count field "
                                "(one row per item found: count = 1); instead of count_field")
    x_field: str | None = Field(None, description="CSV column of the x or longitude (default: found by name)")
    y_field: str | None = Field(None, description="CSV column of the y or latitude (default: found by name)")
    crs: str | None = Field(None, description="CRS of a CSV's coordinates (default: EPSG:4326 for lon/lat columns)")
    bandwidth_m: float = Field(1000.0, gt=0, description="radius of the quartic kernel for point records")
    allow_empty: bool = Field(False, description="accept a layer with no features (after `where`) instead of refusing it")
    extent: str | None = Field(None, description="polygons where this source has information (surveyed area, "
                                "records known complete); outside them the variable is nodata")
    extent_layer: str | None = None

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)

    @model_validator(mode="after")
    def _one_count(self):
        if self.count is not None and "count_field" in self.model_fields_set:
            raise ValueError("give `count_field` (a field of counts) or `count` (the same for every record), not both")
        if (self.x_field is None) != (self.y_field is None):
            raise ValueError("give both `x_field` and `y_field`, or neither (lon/lat, x/y… columns are found by name)")
        return self

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, v: str | None) -> str | None:
        if v is not None:
            from pyproj import CRS
            from pyproj.exceptions import CRSError
            try:
                CRS.from_user_input(v)
            except CRSError as e:
                raise ValueError(f"{v!r} is not a CRS PROJ knows ({str(e).splitlines()[0]}); "
                                 f"give an EPSG code such as 'EPSG:4326'") from None
        return v


class CoverageSource(_Spec):
    """Exact share of each cell covered by polygons (cleared areas)."""

    kind: Literal["coverage"]
    path: str
    layer: str | None = None
    where: str | None = None
    # site_km2: the whole area of the polygon (site) holding the cell's centre, not the cell's share
    units: Literal["fraction", "percent", "km2", "site_km2"] = "fraction"
    allow_empty: bool = Field(False, description="accept a layer with no features (after `where`) instead of refusing it")
    extent: str | None = Field(None, description="polygons where this source has information (surveyed area, "
                                "records known complete); outside them the variable is nodata")
    extent_layer: str | None = None


class ProductSource(_Spec):
    """Another product of the same run."""

    kind: Literal["product"]
    product: Literal["contamination_probability"]


RASTER_KINDS = ("raster", "stac")  # the sources whose files are rasters (a stac source's: its items' assets)

Source = Annotated[
    Union[ConstantSource, RasterSource, StacSource, PolygonSource, DensitySource, CoverageSource, ProductSource],
    Field(discriminator="kind"),
]


class Styled(_Spec):
    """How a product is coloured: a fixed value range, the same in every run (so maps compare)."""

    range: tuple[float, float] | None = Field(
        None, description="[lo, hi]: the colour ramp's ends; values beyond take the end colours "
                          "(default per product, see README 'Colours and ranges')")

    @field_validator("range")
    @classmethod
    def _increasing(cls, v):
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"range must be [lo, hi] with finite lo < hi, got {list(v)}")
        return v


class ContaminationSettings(Styled):
    enabled: bool = True
    L_sat: float | Literal["auto"] = Field(
        "auto", description="mines/km² at which H_m = min(L / L_sat, 1) reaches 1; \"auto\": the 90th percentile "
                            "of L at the records' own positions (see README, How minemap reads the paper)")
    require_all: bool = Field(False, description="nodata where any of H_m, S_t, V_i is missing")
    weights: tuple[float, float, float] = Field(
        (1 / 3, 1 / 3, 1 / 3), description="w_H, w_S, w_V: non-negative, summing to 1; 1/3 each is the paper's eq.")

    @field_validator("L_sat")
    @classmethod
    def _positive(cls, v):
        if v != "auto" and not v > 0:
            raise ValueError("Input should be greater than 0")
        return v

    @field_validator("weights")
    @classmethod
    def _weights_on_simplex(cls, v):
        if any(w < 0 for w in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"weights must be 3 non-negative numbers summing to 1 (w_H, w_S, w_V), got {list(v)}")
        return v

    @property
    def paper_weights(self) -> bool:
        """Whether P_c is the paper's equal-weight mean (not the weighted variant)."""
        return max(self.weights) - min(self.weights) < 1e-9


class ProductSettings(Styled):
    enabled: bool = True


class RiskClassSettings(_Spec):
    """P_c into classes for briefing: class k holds thresholds[k-1] ≤ P_c < thresholds[k]."""

    enabled: bool = True
    thresholds: list[float] = Field([0.3, 0.45, 0.6], min_length=1)
    names: list[str] = ["low", "medium", "high", "very high"]
    min_evidence: int = Field(2, ge=0, le=3, description="cells with fewer evidence layers (of H_m, S_t, V_i bound "
                              "with a weight > 0) are class 'insufficient evidence' (code 0)")
    direct_evidence_class: str = Field("high", description="the least class of a cell holding a mine record or "
                                       "inside a minefield or hazard polygon (minemap's rule, not the paper's)")
    by: Literal["p_c", "calibrated", "capture"] = Field(
        "p_c", description="what the thresholds cut: P_c (or P_res); calibrated_probability; or \"capture\": the "
                           "riskiest 20 / 10 / 5 % of the assessed area, thresholds from [model] (issue #21)")

    @model_validator(mode="after")
    def _consistent(self):
        if sorted(self.thresholds) != self.thresholds or len(set(self.thresholds)) != len(self.thresholds):
            raise ValueError("thresholds must increase")
        if not all(0 <= t <= 1 for t in self.thresholds):
            raise ValueError("thresholds are P_c values, in [0, 1]")
        if len(self.names) != len(self.thresholds) + 1 and self.by != "capture":
            raise ValueError(f"give {len(self.thresholds) + 1} names for {len(self.thresholds)} thresholds")
        if self.direct_evidence_class not in self.names:
            raise ValueError(f"direct_evidence_class {self.direct_evidence_class!r} is not one of names {self.names}")
        return self


class PriorityZoneSettings(_Spec):
    """priority_zones.gpkg: connected cells of risk class `from_class` or above, as polygons."""

    enabled: bool = True
    from_class: str = Field("high", description="a name from products.risk_class.names")
    min_area_km2: float = Field(0.0, ge=0, description="smaller zones are left out")


class Products(_Spec):
    contamination_probability: ContaminationSettings = ContaminationSettings()
    environmental_impact: ProductSettings = ProductSettings()
    recovery_rate: ProductSettings = ProductSettings()
    clearance_sustainability: ProductSettings = ProductSettings()
    risk_class: RiskClassSettings = RiskClassSettings()
    priority_zones: PriorityZoneSettings = PriorityZoneSettings()
    residual_probability: Styled = Styled()  # made with [release]: only its colours are set here
    released_share: Styled = Styled()
    change_since_previous: Styled = Styled()  # ΔP since the previous run: its colours' symmetric range

    def colour_range(self, name: str) -> tuple[float, float] | None:
        """The configured `range` of product `name` (None: its default)."""
        return getattr(getattr(self, name, None), "range", None)

    @model_validator(mode="after")
    def _zone_class_known(self):
        if self.priority_zones.from_class not in self.risk_class.names:
            raise ValueError(f"priority_zones.from_class {self.priority_zones.from_class!r} is not one of "
                             f"risk_class.names {self.risk_class.names}")
        return self


class DistrictSettings(_Spec):
    """Polygons the products are summarised by (districts.gpkg / .csv) and zones are named after."""

    path: str = Field(description="vector file, relative to the config")
    name_field: str = "name"
    layer: str | None = None


class HazardSettings(_Spec):
    """Confirmed hazard areas (IMSMA hazards, CHA polygons): direct evidence, whatever P_c says."""

    path: str = Field(description="vector file of hazard polygons, relative to the config")
    layer: str | None = None
    where: str | None = None
    id_field: str | None = Field(None, description="the hazards' own IDs (e.g. IMSMA hazard IDs), carried on")


class TaskSettings(_Spec):
    """tasks.gpkg (and .csv, .geojson, .kml, .gpx): priority zones cut along a fixed tasking grid."""

    enabled: bool = True
    max_km2: float = Field(1.0, gt=0, description="the largest task: squares of √max_km2 km (rounded down to whole "
                           "cells), aligned to the grid CRS origin (1 km² on a UTM grid: the MGRS 1 km squares)")


RELEASE_OUTCOMES = ("cancelled", "reduced", "cleared")  # IMAS land release


class ReleaseSettings(_Spec):
    """Released land (IMAS land release): polygons whose status says cancelled, reduced or cleared."""

    path: str = Field(description="vector file of release polygons, relative to the config")
    layer: str | None = None
    status_field: str = "status"
    values: dict[Literal[RELEASE_OUTCOMES], str | list[str]] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="status values meaning each outcome (default: its own name)")
    ignore: list[str] = Field([], description="status values left out (e.g. 'planned')")
    date_field: str | None = None

    def outcome_of(self) -> dict[str, str]:
        """Each status value → its outcome."""
        out = {}
        for outcome in RELEASE_OUTCOMES:
            given = self.values.get(outcome, outcome)
            for value in [given] if isinstance(given, str) else given:
                out[value] = outcome
        return out


class Output(_Spec):
    compress: Literal["zstd", "deflate", "lzw"] = "zstd"
    level: int = Field(1, ge=1, le=22)
    dpi: int = Field(200, ge=50, le=600, description="resolution of the PNG maps (200: print)")
    deliverables: bool = Field(True, description="maps, report, briefing PDF, QGIS project, print layouts and "
                               "evidence.gpkg (false: products, styles, summaries, STAC item and run.json only)")
    bundle_rasters: bool = Field(False, description="copy the drone rasters into OUT/evidence/ so OUT alone "
                                 "holds every layer of the QGIS project (the vectors are always in evidence.gpkg)")
    keep_history: int = Field(10, ge=1, description="STAC items of the last N runs kept in OUT/history/")
    format: Literal["cog", "zarr"] = Field("cog", description="products as one Cloud-Optimised GeoTIFF each "
                                           "(cog) or as variables of one OUT/products.zarr store (zarr, issue #12)")

    @model_validator(mode="after")
    def _zarr_codec(self) -> Output:
        if self.format == "zarr" and (self.compress == "lzw" or self.compress == "deflate" and self.level > 9):
            raise ValueError(f"format \"zarr\" takes compress \"zstd\" (level 1–22) or \"deflate\" (level 1–9), "
                             f"not {self.compress} level {self.level}")
        return self


VariableName = Literal[tuple(VARIABLES)]  # type: ignore[valid-type]


class RunConfig(_Spec):
    grid: str = Field(description="grid definition file")
    label: str | None = Field(None, description="shown on every map and the report, e.g. a caveat on the data")
    inputs: dict[VariableName, Source]
    products: Products = Products()
    districts: DistrictSettings | None = None
    release: ReleaseSettings | None = None
    hazards: HazardSettings | None = None
    tasks: TaskSettings = TaskSettings()
    output: Output = Output()
    model: ModelSettings | None = Field(None, description="fitted by `minemap calibrate` (issue #21): applied by run")


class LoadedConfig(BaseModel):
    """A validated config with the file it came from (for paths, messages and hashes)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    path: Path
    spec: RunConfig
    text: str

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, p: str) -> Path | store.Url:
        """A config path as a local absolute path, or a URL (kept as text)."""
        return store.resolve(self.base, p)

    def digest(self) -> str:
        """The config file's SHA-256, as `sha256sum` prints it (`text` holds its bytes decoded)."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def read_toml(path: Path | str, what: str) -> tuple[dict, str]:
    """A TOML file's tables and text (a local file or a URL); a missing or unparsable file is a ConfigError
    naming it."""
    try:
        data = store.read_bytes(path) if store.is_url(path) else path.read_bytes()
        text = data.decode("utf-8")  # not read_text: its newline translation would change the hash
        return tomllib.loads(text), text
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path) from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a folder, not a file", path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"not a valid TOML file: {e}", path) from None


def read_toml_model(path: Path, model: type[M], what: str) -> tuple[M, str]:
    """Parse a TOML file into a pydantic model; every problem becomes a ConfigError naming the file."""
    raw, text = read_toml(path, what)
    try:
        return model.model_validate(raw), text
    except ValidationError as e:
        raise ConfigError(pydantic_problems(e, path)) from None


def load_config(path: str | Path) -> LoadedConfig:
    """The config, or a ConfigError listing every problem in it."""
    cfg, problems, _ = check_config(path)
    if problems:
        raise ConfigError(problems)
    return cfg


_SOURCE = TypeAdapter(Source)
_VARIABLE = TypeAdapter(VariableName)


def check_config(path: str | Path) -> tuple[LoadedConfig | None, list[Problem], set[str]]:
    """The config with its valid parts, the problems of the others, and what was refused (the
    variables whose `[inputs.X]` table was, and other top-level tables, such as "products", then
    left at their defaults): each input table is validated on its own, so one bad source does
    not hide the problems of the others' files. None when too little is valid to go on."""
    path = Path(path).resolve()
    raw, text = read_toml(path, "config file")
    problems: list[Problem] = []
    inputs, refused = {}, set()
    raw_inputs = raw.get("inputs", {})
    for var, table in (raw_inputs.items() if isinstance(raw_inputs, dict) else ()):
        try:
            inputs[_VARIABLE.validate_python(var)] = _SOURCE.validate_python(table)
        except ValidationError as e:
            problems.extend(pydantic_problems(e, path, f"inputs.{var}"))
            refused.add(var)
    rest = {**raw, "inputs": inputs} if isinstance(raw_inputs, dict) else raw
    for _ in range(2):  # once more without the top-level tables at fault, when they have defaults
        try:
            spec = RunConfig.model_validate(rest)
        except ValidationError as e:
            problems.extend(pydantic_problems(e, path))
            faulty = {str(err["loc"][0]) for err in e.errors() if err["loc"]}
            if faulty & {"grid", "inputs"} or not faulty:
                return None, list(dict.fromkeys(problems)), refused
            rest = {k: v for k, v in rest.items() if k not in faulty}
            refused |= faulty
            continue
        if spec.model is not None:  # the fitted values replace the config's (issue #21)
            try:
                spec = apply_model(spec)
            except ValueError as e:
                problems.append(Problem(f"{path}: products.risk_class.by", str(e)))
                return None, list(dict.fromkeys(problems)), refused
        elif spec.products.risk_class.by != "p_c":
            problems.append(Problem(f"{path}: products.risk_class.by", f"{spec.products.risk_class.by!r} needs a "
                                    "[model] section: run `minemap calibrate` and use the config it writes"))
            return None, list(dict.fromkeys(problems)), refused
        return LoadedConfig(path=path, spec=spec, text=text), list(dict.fromkeys(problems)), refused
    return None, list(dict.fromkeys(problems)), refused


def pydantic_problems(err: ValidationError, path: Path | str, prefix: str = "") -> list[Problem]:
    """One Problem per pydantic error, naming the file and the dotted key (under `prefix`)."""
    out = []
    for e in err.errors():
        loc = [str(p) for p in ([prefix] if prefix else []) + list(e["loc"]) if str(p) not in ("", "[key]")]
        key = ".".join(loc) or "(top level)"
        out.append(Problem(f"{path}: {key}", e["msg"].removeprefix("Value error, ")))
    return out
