#!/usr/bin/env bash
# The GDAL command-line baseline: P_c, E and R_e as a GIS user would script them with GDAL's tools,
# from the same inputs as minemap (bench/make_large_inputs.py). Usage: gdal_baseline.sh INPUTS OUT
#
# Honest simplifications, as such scripts usually make them (minemap does each exactly):
#  - cleared share C and area A_c: a cell-centre burn (0 or 100 %), not exact coverage fractions;
#  - mine density L: mines summed per cell (points, and minefield polygons burnt at count/area),
#    smoothed by averaging to 500 m and resampling back bilinearly, instead of a kernel density;
#  - drone mosaic: gdalwarp -r average onto the grid, later files on top; uint8 scaled by 1/255.
set -euo pipefail
IN=$(cd "$1" && pwd); OUT=$2
mkdir -p "$OUT"; TMP="$OUT/tmp"; rm -rf "$TMP"; mkdir -p "$TMP"
export GDAL_NUM_THREADS=ALL_CPUS GDAL_CACHEMAX=1024
RES=$(sed -n 's/^resolution *= *\([0-9.]*\).*/\1/p' "$IN/grid.toml")
read -r XMIN YMIN XMAX YMAX < <(ogrinfo -so -al "$IN/districts.gpkg" | sed -n 's/^Extent: (\(.*\), \(.*\)) - (\(.*\), \(.*\))/\1 \2 \3 \4/p')
GRID=(-te "$XMIN" "$YMIN" "$XMAX" "$YMAX" -tr "$RES" "$RES" -tap)
CO=(-co TILED=YES -co BLOCKXSIZE=512 -co BLOCKYSIZE=512 -co COMPRESS=ZSTD -co ZSTD_LEVEL=1 -co PREDICTOR=3
    -co BIGTIFF=IF_SAFER -co NUM_THREADS=ALL_CPUS)
TIMES=()
step() { local name=$1; shift; local t0; t0=$(date +%s.%N); "$@" > /dev/null; TIMES+=("$name $(echo "$(date +%s.%N) - $t0" | bc)"); }

# lookup tables next to the polygons, so one SQL join gives each coefficient
step "tables" bash -c "ogr2ogr -f GPKG '$TMP/v.gpkg' '$IN/soil.gpkg' -nln soil &&
  ogr2ogr -update -f GPKG '$TMP/v.gpkg' '$IN/cleared_areas.gpkg' -nln cleared &&
  ogr2ogr -update -f GPKG '$TMP/v.gpkg' '$IN/soil_classes.csv' -nln soil_t -oo AUTODETECT_TYPE=YES &&
  ogr2ogr -update -f GPKG '$TMP/v.gpkg' '$IN/clearance_methods.csv' -nln method_t -oo AUTODETECT_TYPE=YES"
burn() {  # burn(name, sql, init)
  gdal_rasterize -q -dialect SQLite -sql "$2" -a v -init "$3" -ot Float32 "${GRID[@]}" "${CO[@]}" "$TMP/v.gpkg" "$TMP/$1.tif"
}
for c in S_t D T_s B_r; do
  step "rasterize $c" burn "$c" "SELECT s.geom, t.$c AS v FROM soil s JOIN soil_t t ON s.soil_class = t.soil_class" -9999
done
step "rasterize R" burn R "SELECT c.geom, t.R AS v FROM cleared c JOIN method_t t ON c.method = t.method" 0
step "rasterize C" burn C "SELECT geom, 100.0 AS v FROM cleared" 0
step "rasterize mines" bash -c "gdal_rasterize -q -a count -add -init 0 -ot Float32 ${GRID[*]} ${CO[*]} '$IN/mine_records.gpkg' '$TMP/n.tif' &&
  gdal_rasterize -q -dialect SQLite -sql 'SELECT geom, count / (ST_Area(geom) / 1e6) * $RES * $RES / 1e6 AS v FROM minefields' -a v -add '$IN/minefields.gpkg' '$TMP/n.tif'"
step "smooth density" bash -c "gdalwarp -q -overwrite -r average -tr 500 500 '$TMP/n.tif' '$TMP/n500.tif' &&
  gdalwarp -q -overwrite -r bilinear ${GRID[*]} ${CO[*]} '$TMP/n500.tif' '$TMP/nsmooth.tif'"
step "warp drones" gdalwarp -q -overwrite -t_srs EPSG:32638 "${GRID[@]}" -r average -ot Float32 -dstnodata -9999 \
  "${CO[@]}" $(ls "$IN"/drone/*.tif) "$TMP/V.tif"

calc() { gdal_calc.py --quiet --overwrite --type=Float32 --NoDataValue=-9999 "${CO[@]/-co/--co}" "$@"; }
step "L, H_m" calc -A "$TMP/nsmooth.tif" --outfile="$TMP/L.tif" --calc="A / ($RES * $RES / 1e6)"
step "P_c" calc -A "$TMP/L.tif" -B "$TMP/S_t.tif" -C "$TMP/V.tif" --outfile="$OUT/contamination_probability.tif" \
  --calc="(numpy.minimum(A / 50.0, 1) + B + numpy.where(C >= 0, C / 255.0, 0)) / numpy.where(C >= 0, 3.0, 2.0)"
step "E" calc -A "$TMP/L.tif" -B "$TMP/D.tif" -C "$TMP/C.tif" -D "$TMP/R.tif" \
  --outfile="$OUT/environmental_impact.tif" --calc="A * B - C * D"
step "R_e" calc -A "$TMP/C.tif" -B "$TMP/B_r.tif" -C "$TMP/T_s.tif" -D "$OUT/contamination_probability.tif" \
  --outfile="$OUT/recovery_rate.tif" --calc="numpy.where(C * D != 0, (A / 100.0 * $RES * $RES / 1e6) * B / (C * D), -9999)"
for p in contamination_probability environmental_impact recovery_rate; do
  step "overviews $p" gdaladdo -q -r average "$OUT/$p.tif" 2 4 8 16 32
done
rm -rf "$TMP"
total=0
for t in "${TIMES[@]}"; do printf '%-28s %8.1f s\n' "${t% *}" "${t##* }"; total=$(echo "$total + ${t##* }" | bc); done
printf '%-28s %8.1f s\n' "total" "$total"
