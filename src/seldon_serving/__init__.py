"""Seldon Serving: Seldon Core compatible model serving in Python."""

__version__ = "0.1.0"
