"""GeoTIFF products: tiled, compressed, with overviews, statistics and provenance tags.

Output formats are `Sink`s (open for the targets on a grid, write each chunk's blocks, finish):
`CogSink` for a full write, `PatchSink` for an update's patch of the previous files.

Chunks are computed side by side (see `chunks`); whoever computed a chunk also compresses its
tiles, at full resolution and every overview level, and stages them compressed; each COG is
then assembled from those bytes (see `cog`), compressing once and beside the compute.
Nothing in OUT is touched until the runner publishes.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol

import dask.array as da
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.windows import Window

from ..grid import FILE_TILE, Grid
from ..runtime import gdal_env
from ..store import get_range
from ..tiles import Index, chunk_key, run_job
from .chunks import ChunkJob, WorkerProcesses, run_jobs
from .cog import (ChunkStage, TileCoder, TileFile, TileIndex, assemble, assemble_stream, gdal_tags, level_shapes,
                  tiled_levels)
from .overviews import downsample, level_chunks, overview_factors
from .pieces import chunk_spots
from ..readback import ReadBack
from ..targets import BandStats, ChunkParts, RasterTarget  # noqa: F401  (their home before #22)

TEST_DELAY = os.environ.get("MINEMAP_TEST_BATCH_DELAY")


class RemoteProducts(Protocol):
    """Where a full write's chunks are staged and its COGs uploaded when OUT is in object storage
    (`outstore.S3Out`): /vsis3/ paths, so the workers that compute the chunks upload them."""

    scratch: Path

    def product(self, name: str) -> Path: ...

    def assemble(self, path: Path, stream: Callable[[Callable[[bytes], None]], int]) -> None: ...

    def drop_scratch(self) -> None: ...


class Sink(Protocol):
    """An output format: opened for a run's targets on a grid, given each computed chunk's blocks,
    finished into files in staging. A sink whose blocks are staged by the worker that computed
    them (`open` returns each chunk's stage) gets back what the stage returned (e.g. a tile index)."""

    def open(self) -> dict[Index, object] | None: ...

    def write(self, blocks: list) -> None: ...

    def finish(self, beside: Callable[[dict[str, Path]], None]) -> dict: ...


class CogSink:
    """Cloud-Optimised GeoTIFFs: the workers compress each chunk's tiles as they compute it and
    stage them compressed (see `cog`); each file is then assembled from those bytes, nothing
    decompressed or compressed again. Overview levels finer than a chunk's edge / 512 are tiled
    per chunk in the workers; the coarser ones (1/48 of the cells), whose tiles several chunks
    share, are staged by chunk (see `pieces`) and encoded here."""

    def __init__(self, targets: list[RasterTarget], grid: Grid, staging: Path, compress: str, level: int,
                 inside: list[Index], remote: RemoteProducts | None = None):
        self.targets, self.grid, self.staging, self.inside = targets, grid, staging, inside
        self.remote = remote  # OUT in object storage: chunks staged and COGs uploaded there (see `outstore`)
        self.factors = overview_factors(grid.shape, grid.chunk)
        self.levels = [1, *self.factors]
        self.tiled = tiled_levels(grid.chunk, self.factors)
        self.coders = {t.name: TileCoder(str(t.array.dtype), float(t.nodata), compress, level) for t in targets}
        self.stages: dict[Index, ChunkStage] = {}
        self._pieces: dict[Path, bytes] = {}  # remote pieces files, fetched once (see `_piece`)
        self._fetching = threading.Lock()
        self.index: dict[str, dict[Index, np.ndarray]] = {t.name: {} for t in targets}

    def open(self) -> dict[Index, ChunkStage]:
        grid, chunks = self.grid, self.staging / "chunks" if self.remote is None else self.remote.scratch
        if self.remote is None:
            chunks.mkdir()
        products = [(t.name, str(t.array.dtype)) for t in self.targets]
        coarse = [f for f in self.factors if f not in self.tiled]
        for idx in self.inside:
            first = {f: (int(win.row_off) // FILE_TILE, int(win.col_off) // FILE_TILE)
                     for f in self.tiled for win in [_window(grid, idx, f)]}
            tiles = {t.name: TileFile(chunks / f"{idx[0]}_{idx[1]}.{t.name}.tiles", self.coders[t.name], first)
                     for t in self.targets}
            cells = _window(grid, idx, 1)
            spots = {role: spot for role, spot in chunk_spots(chunks, idx, products, (int(cells.height), int(cells.width)),
                                                               coarse).items() if role[1] != 1}
            rows, cols = grid.tile_window(idx)
            self.stages[idx] = ChunkStage(tiles, tuple(self.tiled), spots,
                                          grid.geobox.affine @ Affine.translation(cols.start, rows.start))
        return self.stages

    def write(self, blocks: list) -> None:
        """Each chunk's tile index, as the workers return it (their blocks stayed with them)."""
        for (idx, target, key), value in blocks:
            if key == "tiles":
                self.index[target.name][idx] = value

    def finish(self, beside: Callable[[dict[str, Path]], None]) -> dict:
        """Assemble each product's COG from the staged tiles, then let `beside` draw from them."""
        t1 = time.perf_counter()
        files = {t.name: self.staging / f"{t.name}.tif" if self.remote is None else self.remote.product(t.name)
                 for t in self.targets}
        for t in self.targets:
            t.total(self.grid)
        # two at a time: copying between files and encoding coarse levels release the interpreter
        with ThreadPoolExecutor(2, thread_name_prefix="minemap-assemble") as pool:
            list(pool.map(lambda t: self._assemble(t, files[t.name]), self.targets))
        t2 = time.perf_counter()
        self._pieces.clear()
        if self.remote is None:
            shutil.rmtree(self.staging / "chunks")
        else:
            self.remote.drop_scratch()
        beside(files)
        return {"cog_s": round(t2 - t1, 3)}

    def _assemble(self, t: RasterTarget, path: Path) -> None:
        grid, coder = self.grid, self.coders[t.name]
        shapes = level_shapes(grid.shape, self.levels)
        found = TileIndex(self.levels)
        for idx, index in self.index[t.name].items():
            found.add(self.stages[idx].tiles[t.name].path, index)
        levels = {f: self._coarse_level(t, f, shapes[k]) for k, f in enumerate(self.levels) if f not in self.tiled}
        if levels:
            folder = self.staging / "chunks" if self.remote is None else self.remote.scratch
            whole = TileFile(folder / f"coarse.{t.name}.tiles", coder, {f: (0, 0) for f in levels})
            found.add(whole.path, whole.write(levels))
        extratags = gdal_tags(grid.crs.wkt, grid.geobox.affine, coder.dtype, coder.nodata, t.tags,
                              t.stats.gdal_tags(), t.description, t.unit)
        if self.remote is not None:  # streamed to its object in parts, the tiles fetched a run at a time
            self.remote.assemble(path, lambda write: assemble_stream(write, shapes, coder, extratags, found.tiles,
                                                                     found.files))
            return
        assemble(path, shapes, coder, extratags, found.tiles, found.files, consume=True)  # staged bytes go as copied

    def _coarse_level(self, t: RasterTarget, f: int, shape: tuple[int, int]) -> np.ndarray:
        """Overview level `f` of a product, from the chunks' staged pieces (nodata elsewhere)."""
        out = np.full(shape, t.nodata, dtype=str(t.array.dtype))
        for idx, stage in self.stages.items():
            spot, dst = stage.spots[t.name, f], _window(self.grid, idx, f)
            with self._piece(spot.path) as ds:
                block = ds.read(spot.band, window=spot.window)
            out[int(dst.row_off):int(dst.row_off) + block.shape[0], int(dst.col_off):int(dst.col_off) + block.shape[1]] = block
        return out


    @contextmanager
    def _piece(self, path: Path) -> Iterator:
        """A chunk's staged pieces file, open. In object storage, fetched once (one GET: every product
        and level of the chunk's dtype is in it; all of them are ~1/48 of the cells, compressed) and
        read from memory: opening it through /vsis3/ for each product and level cost several requests each."""
        if self.remote is None:
            with rasterio.open(path) as ds:
                yield ds
            return
        with self._fetching:
            if path not in self._pieces:
                self._pieces[path] = get_range(path, 0, None)
        with MemoryFile(self._pieces[path]) as mem, mem.open() as ds:
            yield ds


class PatchSink:
    """An update's patch: copies of the previous product files, the changed chunks rewritten in
    place at full resolution and every overview level; statistics from the chunks' stored parts."""

    def __init__(self, targets: list[RasterTarget], grid: Grid, staging: Path, previous: Path):
        self.targets, self.grid, self.staging, self.previous = targets, grid, staging, previous
        self.factors = overview_factors(grid.shape, grid.chunk)

    def open(self) -> None:
        for t in self.targets:
            shutil.copyfile(self.previous / f"{t.name}.tif", self.staging / f"{t.name}.tif")

    def write(self, blocks: list) -> None:
        # one open handle at a time: each appends tiles at the end of the same file
        for t in self.targets:
            for k, f in enumerate([1, *self.factors]):
                level = {} if f == 1 else {"overview_level": k - 1}
                with rasterio.open(self.staging / f"{t.name}.tif", "r+", IGNORE_COG_LAYOUT_BREAK="YES", **level) as ds:
                    for (idx, target, g), block in blocks:
                        if target is t and g == f:
                            ds.write(block, 1, window=_window(self.grid, idx, f))

    def finish(self, beside: Callable[[dict[str, Path]], None]) -> dict:
        for t in self.targets:
            t.total(self.grid)
            with rasterio.open(self.staging / f"{t.name}.tif", "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
                ds.update_tags(**t.tags)
                ds.update_tags(1, **t.stats.gdal_tags())
        beside({t.name: self.staging / f"{t.name}.tif" for t in self.targets})
        return {"cog_s": 0.0}


def write_rasters(targets: list[RasterTarget], grid: Grid, staging: Path, compress: str = "zstd",
                  level: int = 1, window: int = 4, on_tiles: Callable[[int], None] = lambda n: None,
                  previous: Path | None = None, changed: set[Index] | None = None,
                  extra: ChunkParts | None = None, processes: WorkerProcesses | None = None,
                  beside: Callable[[dict[str, Path]], None] = lambda sources: None, fmt: str = "cog",
                  remote: RemoteProducts | None = None) -> dict:
    """Compute every target chunk by chunk and leave `<name>.tif` COGs in `staging` (`remote`: in
    object storage, see `CogSink`); return timings.
    (`fmt` "zarr": one products.zarr store instead, see `zarr`.)

    With `previous` (a folder of this grid's products), only the `changed` chunks are computed;
    the others are read back from the previous files, so the result equals a full run.
    `beside` is given each finished product file (maps, summaries and reports draw from them).
    """
    t0 = time.perf_counter()
    factors = overview_factors(grid.shape, grid.chunk) if fmt == "cog" else []  # issue #12: a Zarr store has none
    keep = set(grid.tile_ids()) - (changed or set()) if previous is not None else set()
    # what each chunk produces, per target: the full-resolution block, its overview blocks, its statistics
    outputs = {t.name: _chunk_outputs(t, factors, _reusing(t, grid, previous, keep)) for t in targets}
    tiles = list(grid.tile_ids())
    inside = [idx for idx in tiles if grid.tile_in_region(idx)]  # the rest is nodata in the files
    if fmt == "zarr":  # issue #12: the output format chooses the sink
        from .zarr import ZarrSink
        sink = ZarrSink(targets, grid, staging, compress, level)
    else:
        sink = CogSink(targets, grid, staging, compress, level, inside, remote)
    stages = sink.open()
    on_tiles(len(tiles) - len(inside))
    with gdal_env():
        for blocks in _computed(targets, outputs, inside, grid, window, on_tiles, extra, stages, processes):
            sink.write(blocks)
        t1 = time.perf_counter()
        done = sink.finish(beside)
    return {"compute_s": round(t1 - t0, 3), **done}


def patch_rasters(targets: list[RasterTarget], grid: Grid, staging: Path, previous: Path, changed: set[Index],
                  window: int = 4, on_tiles: Callable[[int], None] = lambda n: None,
                  extra: ChunkParts | None = None,
                  beside: Callable[[dict[str, Path]], None] = lambda sources: None, fmt: str = "cog") -> dict:
    """Copy the previous products into `staging` and rewrite only the `changed` chunks, at full
    resolution and in every overview level; statistics come from the chunks' stored parts.

    Much cheaper than rewriting whole files, and cell for cell the same; the rewritten tiles go
    at the end of the file, so it is a valid tiled GeoTIFF but no longer in strict COG order
    (the runner rewrites in full once files have grown by half).
    """
    t0 = time.perf_counter()
    factors = overview_factors(grid.shape, grid.chunk) if fmt == "cog" else []  # issue #12: a Zarr store has none
    outputs = {t.name: _chunk_outputs(t, factors, t.array) for t in targets}
    if fmt == "zarr":  # issue #12: the output format chooses the sink
        from .zarr import ZarrPatchSink
        sink = ZarrPatchSink(targets, grid, staging, previous)
    else:
        sink = PatchSink(targets, grid, staging, previous)
    sink.open()
    ids = [idx for idx in grid.tile_ids() if idx in changed and grid.tile_in_region(idx)]
    on_tiles(sum(1 for _ in grid.tile_ids()) - len(ids))
    with gdal_env():
        for blocks in _computed(targets, outputs, ids, grid, window, on_tiles, extra):
            sink.write(blocks)
        t1 = time.perf_counter()
        done = sink.finish(beside)
    return {"compute_s": round(t1 - t0, 3), **done}


def _computed(targets: list[RasterTarget], outputs: dict, ids: list[Index], grid: Grid, window: int,
              on_tiles: Callable[[int], None], extra: ChunkParts | None = None,
              stages: dict[Index, ChunkStage] | None = None, processes: WorkerProcesses | None = None) -> Iterator[list]:
    """Compute chunks side by side (see `chunks`) and yield each as it completes: its
    ((idx, target, level), block) pairs, or, where `stages` staged the blocks, what the stage
    returned (a tile index, level "tiles");
    statistics and `extra` parts are recorded on the way.

    Each chunk is one job computing everything it feeds, so layers shared by several products
    run once per chunk.
    """
    by_name = {t.name: t for t in targets}

    roles = [(t.name, key) for t in targets for key in outputs[t.name]]
    arrays = [outputs[name][key] for name, key in roles]
    with_parts = ([*roles, ("", None)], [*arrays, extra.array]) if extra is not None else (roles, arrays)
    graph = ChunkJob.whole_graph(with_parts[1])

    def jobs() -> Iterator[ChunkJob]:
        for idx in ids:
            wants_parts = extra is not None and (extra.only is None or idx in extra.only)
            chunk_roles, chunk_arrays = with_parts if wants_parts else (roles, arrays)
            yield ChunkJob.of(idx, graph, chunk_arrays, chunk_roles, None if stages is None else stages[idx])

    cells = len(ids) * grid.chunk**2
    staged = stages is not None and ("remote" if any(getattr(s, "remote", False) for s in stages.values()) else True)
    for idx, results in run_jobs(jobs(), len(ids), cells, window, staged, processes):
        out = []
        for (name, key), value in results:
            if extra is not None and name == "":
                extra.parts[chunk_key(idx)] = value[0, 0]
            elif key == "stats":
                by_name[name].parts[chunk_key(idx)] = [float(x) for x in value[0, :]]
            else:
                out.append(((idx, by_name[name], key), value))
        yield out
        on_tiles(1)
        if TEST_DELAY:  # lets tests kill a run while it writes
            time.sleep(float(TEST_DELAY))


def _reusing(t: RasterTarget, grid: Grid, previous: Path | None, keep: set[Index]) -> da.Array:
    """The target's array, with the `keep` chunks read back from the previous product file."""
    if previous is None or not keep:
        return t.array
    a, old = t.array, str(previous / f"{t.name}.tif")
    name = f"reuse-{tokenize(a.name, old, sorted(keep))}"
    layer = {(name, *idx): (run_job, ReadBack(old, grid.tile_window(idx), t.nodata)) if idx in keep else (a.name, *idx)
             for idx in grid.tile_ids()}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[a])
    return da.Array(graph, name, chunks=a.chunks, dtype=a.dtype, meta=a._meta)


def _chunk_outputs(t: RasterTarget, factors: list[int], a: da.Array) -> dict:
    """Lazy arrays on the grid's chunks: 1 → the block as written, f → overview level f, stats."""
    average = t.overview_resampling == "AVERAGE"
    out = {1: a.map_blocks(_fill, t.nodata, dtype=a.dtype)}
    previous = out[1]  # nodata filled in: what downsample expects
    for f in factors:
        previous = out[f] = previous.map_blocks(downsample, 2, t.nodata, average, dtype=a.dtype,
                                                chunks=level_chunks(previous.chunks, 2))
    out["stats"] = out[1].map_blocks(_block_stats, t.nodata, dtype=np.float64, chunks=_stats_chunks(a))
    return out


def _window(grid: Grid, idx: tuple[int, int], f: int) -> Window:
    rows, cols = grid.tile_window(idx)
    return Window(cols.start // f, rows.start // f, math.ceil((cols.stop - cols.start) / f),
                  math.ceil((rows.stop - rows.start) / f))


def _fill(block: np.ndarray, nodata: float) -> np.ndarray:
    """Computation marks nodata with NaN; the file uses an explicit value."""
    if block.dtype.kind == "f":
        missing = np.isnan(block)
        if missing.any():
            return np.where(missing, block.dtype.type(nodata), block)
    return block


def _block_stats(block: np.ndarray, nodata: float) -> np.ndarray:
    """Count, sum, sum of squares, min and max of a block's valid cells, as a (1, 5) array."""
    valid = block != block.dtype.type(nodata)
    v = block.ravel() if valid.all() else block[valid]
    if not v.size:
        return np.zeros((1, 5))
    # sums in float64 without a float64 copy; einsum (not BLAS dot, whose sums depend on the
    # machine's threads): the same floats anywhere
    return np.array([[v.size, np.sum(v, dtype=np.float64), np.einsum("i,i->", v, v, dtype=np.float64),
                      v.min(), v.max()]])


def _stats_chunks(array) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return (1,) * len(array.chunks[0]), (5,) * len(array.chunks[1])
