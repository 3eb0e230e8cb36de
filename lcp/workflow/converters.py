"""Which options the workflow's data commands take, read from their own argument parsers
(`lcp data convert FORMAT --help`), so that a converter's options are declared once.

The workflow passes a scene's classes (`--classes`) and the config's seed (`--seed`) to the
formats that take them, and checks before the run that the options naming a file or folder
(those a converter parses as a path) exist.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# `lcp data synth`'s options that name folders on disk (it parses them as text).
SYNTHESIS_PATH_OPTIONS = frozenset({"disparity-dir", "camera-dir", "depth-dir"})


@dataclass(frozen=True)
class ConverterOptions:
    takes_classes: bool
    takes_seed: bool
    path_options: frozenset[str]


@cache
def converter_options(fmt: str) -> ConverterOptions:
    """The options of `lcp data convert FMT` that the workflow fills in or checks."""
    from lcp.commands.convert import FORMATS

    parser = argparse.ArgumentParser()
    importlib.import_module(FORMATS[fmt]).add_arguments(parser)
    flags = {
        option[2:]: action for action in parser._actions for option in action.option_strings if option.startswith("--")
    }
    return ConverterOptions(
        takes_classes="classes" in flags,
        takes_seed="seed" in flags,
        path_options=frozenset(flag for flag, action in flags.items() if action.type is Path),
    )


def option_paths(options: Mapping, key: str, path_options: frozenset[str]) -> dict[str, str]:
    """Config key -> path, for the options that name something on disk."""
    return {f"{key}.options.{flag}": value for flag, value in options.items() if flag in path_options}
