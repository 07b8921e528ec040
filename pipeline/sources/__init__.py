"""Evidence layers onto the grid, one loader per source kind."""

from .loaders import Layer, file_sha256, load_layer

__all__ = ["Layer", "file_sha256", "load_layer"]
