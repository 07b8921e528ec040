"""minemap: landmine-contamination evidence onto a grid, fused into the source paper's products.

Data flows one way: config -> grid -> sources (evidence onto the grid) -> formulas -> writers.
"""

__version__ = "0.1.0"
