"""`make plugin`: qgis_plugin/minemap as the zip QGIS's Plugin Manager installs (Plugins → Manage and
Install Plugins → Install from ZIP): one top folder, `minemap/`, holding metadata.txt and the code.

Standard library only (any Python 3 runs it). The zip is the same bytes for the same files: entries
sorted, dated by the plugin's version, not by the clock, no caches.
"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "minemap"
SKIP = {"__pycache__", ".DS_Store"}
STAMP = (2024, 1, 1, 0, 0, 0)  # every entry's date: reproducible bytes


def version(plugin: Path = PLUGIN) -> str:
    meta = configparser.ConfigParser()
    meta.read(plugin / "metadata.txt", encoding="utf-8")
    return meta["general"]["version"]


def build(out_dir: Path, plugin: Path = PLUGIN) -> Path:
    """Write OUT_DIR/minemap-qgis-plugin-VERSION.zip; return its path."""
    files = sorted(p for p in plugin.rglob("*") if p.is_file() and not SKIP & set(p.parts)
                   and p.suffix not in (".pyc", ".pyo"))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{plugin.name}-qgis-plugin-{version(plugin)}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            info = zipfile.ZipInfo(f"{plugin.name}/{f.relative_to(plugin).as_posix()}", STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, f.read_bytes())
    tmp.replace(target)
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "dist"))
