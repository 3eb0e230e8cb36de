"""Compatibility until lcp/report/detections.py imports lcp.apis.inference (`lcp test` is lcp.commands.test)."""

from lcp.apis.inference import build_test_model, checkpoint_classes  # noqa: F401
