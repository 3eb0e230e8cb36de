"""Class-wise AP of mmdet's evaluation during training, as numbers.

mmdet 2.28.2's CocoDataset.evaluate(classwise=True) computes the AP of every class but only
logs it as a text table (its returned dict holds the overall values); the training-time
EvalHook hands nothing else to the runner. `ClasswiseCapture` is a logging handler on the
runner's logger that reads those tables back (values as printed: 3 decimals).
"""

from __future__ import annotations

import logging
import math
import re

_EVALUATING = re.compile(r"Evaluating (\w+)\.\.\.")


def parse_classwise_table(text: str) -> dict[str, float] | None:
    """{class: AP} from mmdet's `| category | AP | category | AP | ...` table; None if absent."""
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if not rows:
        return None
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    if len(header) < 2 or header[0] != "category" or header[1] != "AP":
        return None
    values: dict[str, float] = {}
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for name, value in zip(cells[0::2], cells[1::2], strict=False):
            if not name or value in ("", "None"):
                continue
            try:
                ap = float(value)
            except ValueError:
                continue
            if not math.isnan(ap):  # nan: a class without ground truth in the evaluated set
                values[name] = ap
    return values


class ClasswiseCapture(logging.Handler):
    """Collects {metric: {class: AP}} from the tables mmdet logs while evaluating."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.metric = "bbox"
        self.tables: dict[str, dict[str, float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  a malformed record is not ours to report
            return
        evaluating = _EVALUATING.search(message)
        if evaluating:
            self.metric = evaluating.group(1)
        if "| category" in message:
            table = parse_classwise_table(message)
            if table:
                self.tables[self.metric] = table

    def pop(self) -> dict[str, dict[str, float]]:
        tables, self.tables = self.tables, {}
        return tables
