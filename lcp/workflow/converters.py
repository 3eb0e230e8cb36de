"""Which options the workflow's data commands take, read from their own argument parsers
(`lcp data convert FORMAT --help`), so that a converter's options are declared once.

The workflow passes a scene's classes (`--classes`) and the config's seed (`--seed`) to the
formats that take them, and checks before the run that the options naming a file or folder
(those a converter parses as a path) exist, and that every option a scene gives a tool is
one of that tool's (a misspelt one failed in its job, or, abbreviated, was taken silently).
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
    repeated: frozenset[str]  # options given once per value (argparse's append)


@cache
def converter_options(fmt: str) -> ConverterOptions:
    """The options of `lcp data convert FMT` that the workflow fills in or checks."""
    flags = _tool_options("convert", fmt)
    return ConverterOptions(
        takes_classes="classes" in flags,
        takes_seed="seed" in flags,
        path_options=frozenset(flag for flag, action in flags.items() if action.type is Path),
        repeated=frozenset(flag for flag, action in flags.items() if isinstance(action, argparse._AppendAction)),
    )


def option_paths(options: Mapping, key: str, path_options: frozenset[str]) -> dict[str, str]:
    """Config key -> path, for the options that name something on disk."""
    return {f"{key}.options.{flag}": value for flag, value in options.items() if flag in path_options}


def recipe_sources(recipe: Mapping, key: str) -> dict[str, str]:
    """Config key -> path of what a `convert` recipe reads: its data set and the files or
    folders its options name."""
    takes = converter_options(recipe["convert"]).path_options
    return {f"{key}.path": recipe["path"], **option_paths(recipe.get("options", {}), key, takes)}


def _tool_options(tool: str, kind: str | None = None) -> dict[str, argparse.Action]:
    """Flag (without --) -> its action, of `lcp data convert KIND`, `lcp data synth KIND` or
    `lcp data check`, read from the command's own parser."""
    from lcp.commands import data

    parser = argparse.ArgumentParser()
    if tool == "convert":
        from lcp.commands.convert import FORMATS

        importlib.import_module(FORMATS[kind]).add_arguments(parser)
    elif tool == "synth":
        data.add_synth_arguments(parser)
        parser = parser._subparsers._group_actions[0].choices[kind]
    else:
        data.add_check_arguments(parser)
    return {option[2:]: action for action in parser._actions for option in action.option_strings if option[:2] == "--"}


@cache
def tool_flags(tool: str, kind: str | None = None) -> frozenset[str]:
    """The --flags of `lcp data convert KIND`, `lcp data synth KIND` or `lcp data check`."""
    return frozenset(_tool_options(tool, kind))


def unknown_option_problems(where: str, options: Mapping, tool: str, kind: str | None = None) -> list[str]:
    """One line per option in `options` (config key `where`) that the tool does not take."""
    import difflib

    flags = tool_flags(tool, kind)
    command = " ".join(part for part in ("lcp data", tool, kind) if part)
    problems = []
    for flag in options:
        if flag not in flags:
            near = difflib.get_close_matches(flag, sorted(flags), n=1)
            hint = f"; did you mean {near[0]}?" if near else f" (it takes {', '.join(sorted(flags))})"
            problems.append(f"{where}.{flag}: `{command}` has no option --{flag}{hint}")
    return problems
