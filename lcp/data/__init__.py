"""Offline data preparation, what `lcp data` runs: converters, degradation synthesis, set checks
and the demo scene. lcp.datasets, beside it, holds what mmdet loads at training time."""

# The splits every converter writes, as annotations/<set>_<split>.json, and the workflow reads.
SPLITS = ("train", "test")
