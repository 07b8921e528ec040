"""Evidence layers onto the grid, one loader per source kind."""

from .loaders import Layer, LoadOptions, file_sha256, load_layer

__all__ = ["Layer", "LoadOptions", "file_sha256", "load_layer"]
