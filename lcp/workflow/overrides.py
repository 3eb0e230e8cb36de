"""`snakemake --config` values, typed as the config schema wants them.

Snakemake reads a top-level `--config key=value` as a number, a boolean or text, but everything
nested in one (`resources={pretrain: {mem_mb: 8000}}`, `run=[demo]`) as text, its quotes
already gone, so the schema would refuse `mem_mb: '8000'`. A text value is therefore turned into
a number or a boolean where the schema allows one: always where it allows no text (`mem_mb`),
and where it allows text too (a cfg_options value, a tool's option) only when it reads as a
plain number or `true`/`false`. Text stays text where the schema wants text (class names, a
description), whatever it reads like.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lcp.workflow.scenes import config_schema

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_SCALAR_TYPES = {"integer": int, "number": (int, float), "boolean": bool}


def retype_config_overrides(config: dict, overrides: Mapping) -> None:
    """Retype, in the merged `config`, the values `overrides` (snakemake's --config) set."""
    _retype(config, overrides, config_schema())


def _retype(config: dict, overrides: Mapping, schema: dict | None) -> None:
    for key, value in overrides.items():
        node = _member(schema, key)
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            _retype(config[key], value, node)
        elif key in config:
            config[key] = _typed(config[key], node)


def _typed(value: Any, schema: dict | None) -> Any:
    schema = _resolved(schema)
    if isinstance(value, dict):
        return {key: _typed(item, _member(schema, key)) for key, item in value.items()}
    if isinstance(value, list):
        items = schema.get("items") if schema else None
        return [_typed(item, items if isinstance(items, dict) else None) for item in value]
    if isinstance(value, str):
        return _scalar(value, _types(schema))
    return value


def _scalar(text: str, types: set[str]) -> Any:
    wanted = types & set(_SCALAR_TYPES)
    if not wanted:
        return text
    if text in ("true", "false"):
        parsed: Any = text == "true"
    elif _NUMBER.fullmatch(text):
        parsed = float(text) if re.search(r"[.eE]", text) else int(text)
    elif "string" not in types:  # YAML's other spellings where text is refused anyway
        parsed = {"True": True, "False": False, "yes": True, "no": False}.get(text, text)
    else:
        return text
    fits = any(isinstance(parsed, _SCALAR_TYPES[name]) for name in wanted)
    return parsed if fits and not (isinstance(parsed, bool) and "boolean" not in wanted) else text


def _resolved(schema: dict | None) -> dict | None:
    while schema and "$ref" in schema:
        target = config_schema()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _branches(schema: dict | None) -> list[dict]:
    schema = _resolved(schema)
    if not schema:
        return []
    return [schema, *(branch for key in ("anyOf", "oneOf") for branch in schema.get(key, []))]


def _types(schema: dict | None) -> set[str]:
    found: set[str] = set()
    for branch in _branches(schema):
        kind = _resolved(branch).get("type")
        found |= {kind} if isinstance(kind, str) else set(kind or ())
    return found or {"string"}  # no type said (an enum, a pattern): leave it as given


def _member(schema: dict | None, key: str) -> dict | None:
    """The schema of `key` inside an object schema (its properties, else additionalProperties)."""
    for branch in _branches(schema):
        branch = _resolved(branch)
        if key in branch.get("properties", {}):
            return branch["properties"][key]
        if isinstance(branch.get("additionalProperties"), dict):
            return branch["additionalProperties"]
    return None
