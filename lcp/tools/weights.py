"""Compatibility until tests/test_pretrained_weights.py names lcp.commands.weights."""

from lcp.commands.weights import HELP, add_arguments, main  # noqa: F401
