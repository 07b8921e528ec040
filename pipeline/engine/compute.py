"""Compute: the chunk pass that writes the product files into staging (a full write, or an
update's patch of the previous files), with the deliverables drawn beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..writers.chunks import WorkerProcesses
from ..targets import ChunkParts, RasterTarget
from ..writers.geotiff import RemoteProducts, patch_rasters, write_rasters
from .plan import Inputs, chunks_in_flight


def compute(targets: list[RasterTarget], inputs: Inputs, staging: Path, out_dir: Path, workers: int | None,
            progress: Callable[[int, int], None] | None, changed: set | None, patch: bool,
            extra: ChunkParts | None, processes: WorkerProcesses | None,
            beside: Callable[[dict[str, Path]], None], remote: RemoteProducts | None = None) -> dict:
    """Write (all, or only the `changed` chunks of) `targets` into `staging`; `beside` is called
    with the finished files while the COGs are assembled. Returns the timings. `remote`: the COGs go
    to object storage (`outstore`), and `out_dir` is the previous set's folder there (an update's)."""
    grid, output = inputs.grid, inputs.cfg.spec.output
    done = [0]
    total = len(list(grid.tile_ids()))

    def on_tiles(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    window = chunks_in_flight(workers)
    if patch:
        return patch_rasters(targets, grid, staging, out_dir, changed, window, on_tiles, extra, beside,
                             fmt=output.format)
    return write_rasters(targets, grid, staging, output.compress, output.level, window=window, on_tiles=on_tiles,
                         previous=out_dir if changed is not None else None, changed=changed, extra=extra,
                         processes=processes, beside=beside, fmt=output.format, remote=remote)
