"""Kept only for lcp/data/check.py, which imports positive_int from here; it moved to lcp.commands.arguments."""
from lcp.commands.arguments import positive_int  # noqa: F401
