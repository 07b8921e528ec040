"""Writers: the only place pixels leave memory (GeoTIFFs, QGIS styles, the run record)."""
