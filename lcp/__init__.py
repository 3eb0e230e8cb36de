"""LCP: Learning Cruxes to Push for object detection in low-quality images."""

__version__ = "0.1.0"
