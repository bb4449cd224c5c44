"""migrate-ml: migrate single-label image-classification code to multi-label."""

__version__ = "0.1.0"
