"""HTML pages of the report, for viewing in a browser and in Snakemake's report.

Snakemake's report shows HTML, PNG, JPEG, SVG and PDF files in the page; a csv, markdown or
json file behind the eye icon is downloaded instead. So every table of the report also gets
an HTML page: the summary (the markdown page this package writes, converted), the
robustness table and the data check. Pictures are embedded as data URIs, so a page stands
alone wherever it is copied.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lcp.errors import LCPError

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1e293b; background: #fff; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #cbd5e1; padding: 0.25em 0.6em; }
th { background: #f1f5f9; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f1f5f9; padding: 0 0.2em; }
img.sample { width: 360px; max-width: 100%; }
.failed { color: #b91c1c; font-weight: bold; }
"""
# Pictures embedded in a page are shrunk to this width (the report keeps the full-size ones).
EMBEDDED_WIDTH = 640


def page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def _split_unescaped(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` not escaped by a backslash (escapes kept)."""
    parts, current, index = [], [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index : index + 2])
            index += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    return [*parts, "".join(current)]


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\|`])", r"\1", text)


def _inline(text: str) -> str:
    """Escaped text with `code` spans; \\`, \\| and \\\\ stand for the character itself."""
    parts = _split_unescaped(text, "`")
    return "".join(
        f"<code>{html.escape(_unescape(part))}</code>" if index % 2 else html.escape(_unescape(part))
        for index, part in enumerate(parts)
    )


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [cell.strip() for cell in _split_unescaped(line, "|")]


def _markdown_table(lines: list[str]) -> str:
    header, rule, *rows = lines
    numeric = [cell.endswith(":") for cell in _cells(rule)]
    head = "".join(f"<th>{_inline(cell)}</th>" for cell in _cells(header))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=\"number\">{_inline(cell)}</td>" if right else f"<td>{_inline(cell)}</td>"
            for cell, right in zip(_cells(row), numeric, strict=True)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def markdown_to_html(markdown: str) -> str:
    """The markdown of the summary page as HTML: headings, paragraphs, `- ` lists, tables
    (a `---:` column is right-aligned) and `code`; the subset summary_markdown writes."""
    blocks: list[str] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
        elif heading := re.match(r"(#{1,6}) (.*)", line):
            level = len(heading.group(1))
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>\n")
            index += 1
        else:
            start = index
            kind = "|" if line.startswith("|") else "-" if line.startswith("- ") else ""
            index += 1
            while (
                index < len(lines)
                and lines[index].strip()
                and not lines[index].startswith("#")
                and (lines[index].startswith("|") if kind == "|" else not lines[index].startswith("|"))
            ):
                index += 1
            block = lines[start:index]
            if kind == "|":
                blocks.append(_markdown_table(block))
            elif kind == "-":
                blocks.append("<ul>\n" + "".join(f"<li>{_inline(item[2:])}</li>\n" for item in block) + "</ul>\n")
            else:  # one sentence per line in the summary: keep them apart
                blocks.append("<p>" + "<br>\n".join(_inline(sentence) for sentence in block) + "</p>\n")
    return "".join(blocks)


def frame_to_html(frame: pd.DataFrame, number_columns: Sequence[str] = ()) -> str:
    """A table with numbers right-aligned (floats to 4 significant digits, integers whole),
    missing values as '-'; the cells of `number_columns` are numbers written as text already."""

    def cell(value: Any, column: str) -> str:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return f"<td class=\"number\">{value}</td>"
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return f"<td class=\"number\">{'-' if math.isnan(value) else f'{value:.4g}'}</td>"
        if column in number_columns:
            return f"<td class=\"number\">{html.escape(str(value))}</td>"
        return f"<td>{html.escape('-' if value is None else str(value))}</td>"

    columns = [str(column) for column in frame.columns]
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(cell(value, column) for value, column in zip(row, columns, strict=True)) + "</tr>\n"
        for row in frame.itertuples(index=False)
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def picture_data_uri(path: str | os.PathLike, width: int = EMBEDDED_WIDTH) -> str:
    """A JPEG data URI of the picture at `path`, shrunk to at most `width` pixels wide."""
    import cv2

    from lcp.data.images import encode_jpeg

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise LCPError(f"{path}: cannot read the picture")
    if image.shape[1] > width:
        height = round(image.shape[0] * width / image.shape[1])
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return "data:image/jpeg;base64," + base64.b64encode(encode_jpeg(image, 85, subsample_chroma=True)).decode("ascii")


def samples_html(samples: Mapping[str, list[str]]) -> str:
    """'Sample detections': the same test images side by side, one column per method."""
    methods = list(samples)
    count = max(len(pictures) for pictures in samples.values())
    rows = []
    for index in range(count):
        cells = []
        for method in methods:
            pictures = samples[method]
            if index < len(pictures):
                cells.append(
                    f"<td><img src=\"{picture_data_uri(pictures[index])}\" "
                    f"alt=\"{html.escape(method)}, test image {index + 1}\" class=\"sample\"></td>"
                )
            else:
                cells.append("<td></td>")
        rows.append(f"<tr><td>test image {index + 1}</td>{''.join(cells)}</tr>\n")
    head = "<th>image</th>" + "".join(f"<th>{html.escape(method)}</th>" for method in methods)
    return (
        "<h2>Sample detections</h2>\n<p>The first low-quality test images, with the boxes each method "
        "detects (score at least 0.3; the workflow draws its scene's first seed's models); LCP's pictures "
        "carry its crux mask as a heat map (red: kept, blue: suppressed).</p>\n"
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{''.join(rows)}</tbody>\n</table>\n"
    )


def check_html(check: Mapping[str, Any], source: str) -> str:
    """The data check (`lcp data check --report`) as a page body: the verdict, the counts,
    the degradation measured per variant, and the problems and warnings it found."""
    ok = check.get("ok")
    verdict = "<p>Passed.</p>\n" if ok else "<p class=\"failed\">Failed.</p>\n"
    parts = [f"<h1>Data check: {html.escape(str(check.get('lowq_dir', '')))}</h1>\n", verdict]
    facts = {key: check[key] for key in ("lowq_dir", "clean_dir", "degradation", "statistic") if check.get(key)}
    if check.get("classes"):
        facts["classes"] = ", ".join(map(str, check["classes"]))
    if facts:
        parts.append(frame_to_html(pd.DataFrame({"": list(facts), "value": list(facts.values())})))
    for key in ("errors", "warnings"):  # {reason: {"count": N, "items": [{...}, ...]}}
        if check.get(key):
            items = []
            for reason, found in check[key].items():
                first = (found.get("items") or [{}])[0]
                example = ", ".join(f"{name}: {value}" for name, value in first.items())
                items.append(
                    f"<li>{html.escape(reason)}: {found.get('count', '?')}"
                    + (f" (first: {html.escape(example)})" if example else "")
                    + "</li>\n"
                )
            parts.append(f"<h2>{key.capitalize()}</h2>\n<ul>\n{''.join(items)}</ul>\n")
    if counts := check.get("counts"):
        parts += [
            "<h2>Counts</h2>\n",
            frame_to_html(
                pd.DataFrame({"what": [key.replace("_", " ") for key in counts], "count": list(counts.values())})
            ),
        ]
    variants = (check.get("degradation_summary") or {}).get("by_variant") or {}
    if variants:
        statistic = check["degradation_summary"].get("statistic", "")
        frame = pd.DataFrame.from_dict(variants, orient="index")
        frame.insert(0, "variant", frame.index)
        parts += [f"<h2>Degradation measured ({html.escape(str(statistic))})</h2>\n", frame_to_html(frame)]
    parts.append(f"<p>Source: <code>{html.escape(source)}</code></p>\n")
    return "".join(parts)
