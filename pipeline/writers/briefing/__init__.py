"""OUT/briefing.pdf: the pack a team lead hands on without opening QGIS: a summary, what changed,
one A4 landscape page per district and, once `minemap evaluate` has run, its results.

Drawn with matplotlib's object API (Figure + PdfPages; no pyplot, which keeps global state) in
the same colours as the .qml styles (`Legend`). Rasters are read decimated, so GDAL serves them
from the products' overviews at the resolution the page needs (≤ 200 dpi), and embedded
unresampled; vectors stay vectors.

One module per page kind (`cover`, `district`, `changes`, `evaluation`) over the shared
`drawing` helpers and the `brief` they draw; `pack` puts the pages in order, keeps the district
drawings for reuse and writes the file.
"""
