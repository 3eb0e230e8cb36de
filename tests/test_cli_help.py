"""Every `lcp` command and sub-command renders its --help (argparse formats help lazily, so a
stray '%' or a bad default only shows up when a user asks for help)."""

import argparse

import pytest

from lcp.cli import build_parser


def all_parsers(parser: argparse.ArgumentParser, prefix: str = "lcp"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_parsers(sub, f"{prefix} {name}")


PARSERS = list(all_parsers(build_parser()))


def test_every_group_is_reachable():
    names = {name for name, _ in PARSERS}
    assert {"lcp train", "lcp test", "lcp infer", "lcp data demo", "lcp data synth fog",
            "lcp data check", "lcp data convert urpc", "lcp compare", "lcp tracking sync"} <= names


@pytest.mark.parametrize("name,parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_help_renders(name, parser):
    text = parser.format_help()
    assert text.startswith(f"usage: {name}")
