"""Polygons as matplotlib paths (holes kept), for the maps and pages that fill or hatch them:
one conversion, so a hole is a hole on every page."""

from __future__ import annotations

import numpy as np
import shapely
from matplotlib.path import Path as MplPath


def polygon_paths(geoms) -> list[MplPath]:
    """One path per polygon of `geoms` (multi-parts split, anything else skipped), its holes
    as further closed rings of the same path."""
    paths = []
    for g in geoms:
        for poly in shapely.get_parts(g):
            if poly.geom_type != "Polygon":
                continue
            rings = [poly.exterior, *poly.interiors]
            verts = np.concatenate([np.asarray(r.coords)[:, :2] for r in rings])
            codes = np.concatenate([[MplPath.MOVETO] + [MplPath.LINETO] * (len(r.coords) - 2) + [MplPath.CLOSEPOLY]
                                    for r in rings])
            paths.append(MplPath(verts, codes))
    return paths
