"""One readable line for a config that workflow/schemas/config.schema.yaml refuses.

jsonschema's best_match stops at a `oneOf` whose branches all fail (an image set's recipe:
converted or synthesised) with "... is not valid under any of the given schemas", which
names no key. Here the branch the recipe is closest to speaks instead, and a key the schema
does not have is paired with the nearest one it has ("'pth' was unexpected); did you mean
'path' for 'pth'?").
"""

from __future__ import annotations

import difflib

from jsonschema.exceptions import ValidationError, best_match

CLASS_NAME_RULE = (
    "holds a space, comma, bracket, quote or =, which the jobs' --cfg-options cannot carry (mmcv drops "
    "spaces: it would be sought as one word); rename the category while converting, e.g. the coco "
    "converter's options {rename: \"traffic light=traffic_light\"}"
)


def describe(error: ValidationError) -> str:
    """`KEY.PATH: message` for the error a user should fix first."""
    error = best_match([error])
    while error.validator in ("oneOf", "anyOf") and error.context:
        error = _closest_branch_error(error)
    where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "pattern" and list(error.absolute_path)[-2:-1] == ["classes"]:
        return f"{where}: {error.instance!r} {CLASS_NAME_RULE}"
    return f"{where}: {error.message}{_nearest_key_hint(error)}"


def _closest_branch_error(error: ValidationError) -> ValidationError:
    """The first error of the branch the instance needs the fewest changes to fit; of its
    errors an unexpected key first (a typo explains the missing key beside it)."""
    branches: dict[object, list[ValidationError]] = {}
    for suberror in error.context:
        branches.setdefault(suberror.relative_schema_path[0], []).append(suberror)
    closest = min(branches.values(), key=len)
    return next((suberror for suberror in closest if suberror.validator == "additionalProperties"), closest[0])


def _nearest_key_hint(error: ValidationError) -> str:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    known = list((error.schema.get("properties") or {}).keys())
    hints = []
    for key in error.instance:
        if key in known:
            continue
        near = difflib.get_close_matches(str(key), known, n=1)
        if near:
            hints.append(f"did you mean {near[0]!r} for {key!r}?")
    return "; " + "; ".join(hints) if hints else ""
