"""The CLI's options, each declared once (as rasterio's `rio/options.py`): commands stack them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from ..guard import MAX_CELLS

config_arg = click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
grid_opt = click.option("--grid", "grid_path", type=click.Path(dir_okay=False, path_type=Path),
                        help="Grid definition file (default: the config's `grid`).")
json_opt = click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
scheduler_opt = click.option("--scheduler", "address", envvar="DASK_SCHEDULER_ADDRESS",
                             help="Dask distributed scheduler address (or DASK_SCHEDULER_ADDRESS).")
bundle_rasters_opt = click.option("--bundle-rasters", is_flag=True,
                                  help="Copy the drone rasters into OUT/evidence/ too, so OUT alone opens whole in "
                                       "QGIS (as [output] bundle_rasters).")


class OutPath(click.Path):
    """A folder, or (`run`, `update`: `url`) an object-storage prefix s3://bucket/prefix, kept as the str
    it is; elsewhere a URL is refused (it would become a local folder named "s3:")."""

    name = "out"

    def __init__(self, url: bool) -> None:
        super().__init__(file_okay=False, path_type=Path)
        self.url = url

    def convert(self, value, param, ctx):
        if isinstance(value, str) and "://" in value:
            if self.url and value.startswith("s3://") and len(value) > len("s3://"):
                return value.rstrip("/")
            why = "object storage takes s3://bucket/prefix" if self.url else "this command writes a local folder"
            self.fail(f"{value!r}: {why}", param, ctx)
        return super().convert(value, param, ctx)


def out_opt(help: str = "Output folder.", url: bool = False) -> Callable:
    return click.option("--out", "out_dir", type=OutPath(url), default=Path("out"), show_default=True, help=help)


def workers_opt(help: str) -> Callable:
    return click.option("--workers", type=click.IntRange(min=1), help=help)


def wait_opt(default: float = 0, help: str = "Seconds to wait for another run or update writing OUT to finish.") \
        -> Callable:
    return click.option("--wait", type=click.FloatRange(min=0), default=default, show_default=True, help=help)


def max_cells_opt(help: str = "Refuse grids of more cells than this (before reading any input).") -> Callable:
    return click.option("--max-cells", type=click.FloatRange(min=1), default=MAX_CELLS, show_default=True, help=help)


def quiet_opt(help: str) -> Callable:
    return click.option("--quiet", is_flag=True, help=help)


def stack(*decorators: Callable) -> Callable:
    """Apply `decorators` in reading order (the first is the outermost, as when written above a function)."""
    def apply(f: Callable) -> Callable:
        for decorate in reversed(decorators):
            f = decorate(f)
        return f
    return apply


compute_options = stack(  # the arguments `run` and `update` share
    config_arg, grid_opt, out_opt("Output folder, or an object-storage prefix s3://bucket/prefix (see the README's "
                                  "\"Outputs in object storage\").", url=True),
    workers_opt("Chunks computed at once: threads, or worker processes for large grids "
                "(default: all cores; 1: single-threaded)."),
    scheduler_opt, wait_opt(), max_cells_opt(), bundle_rasters_opt)
