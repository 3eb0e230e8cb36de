"""The pending journal: what a run could not send to MLflow, kept until it is acknowledged.

One append-only json-lines file per run, `<work dir>/mlflow-pending/<run key>.jsonl`:

    {"op": "run", "run_key": K, "run_id": ID or null, "tracking_uri": U, "experiment": E, ...}
    {"id": "...", "op": "create_run", "run_name": ..., "tags": {...}, "start_time": ms, ...}
    {"id": "...", "op": "metrics", "metrics": [[key, value, step, timestamp_ms], ...]}
    {"id": "...", "op": "params", "params": {...}}
    {"id": "...", "op": "tags", "tags": {...}}
    {"id": "...", "op": "artifact", "local_path": ..., "artifact_path": ...}
    {"id": "...", "op": "terminate", "status": ..., "end_time": ms}
    {"ack": "<id>", "run_id": ...}                   once that record reached MLflow

Once every record of a finished run (one with its terminate record) has reached MLflow, the
journal and its artifacts' copies are removed.

The first line says which run the records belong to; a run whose creation failed has no
id yet, and its `create_run` record carries the intent (acknowledged with the new id).
Every line is written with one append + fsync under an exclusive lock, so concurrent
writers (the training process and `lcp tracking sync`) never interleave (where the file
system has no flock, lcp.io.lock says so once and they go on unguarded). A writer killed
mid-line leaves a torn last line: readers skip it, and the next append starts a new line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lcp.errors import LCPError
from lcp.io import lock

PENDING_DIR = "mlflow-pending"


def journal_path(work_dir: str | os.PathLike, run_key: str) -> Path:
    return Path(work_dir) / PENDING_DIR / f"{run_key}.jsonl"


def find_journals(paths: list[str | os.PathLike]) -> list[Path]:
    """Journal files named directly, or found under the given folders (recursively)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            if path.suffix != ".jsonl":
                raise LCPError(f"{path}: not a pending journal (expected a .jsonl file or a work dir)")
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.glob(f"**/{PENDING_DIR}/*.jsonl")))
        else:
            raise LCPError(f"{path}: no such file or folder")
    return list(dict.fromkeys(p.resolve() for p in found))


@dataclass
class JournalState:
    header: dict[str, Any] | None
    pending: list[dict[str, Any]] = field(default_factory=list)  # records not yet acknowledged
    run_id: str | None = None
    torn_lines: int = 0
    finished: bool = False  # its last record is the run's final status (terminate)


class Journal:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file()

    def write_header(self, header: dict[str, Any]) -> None:
        """The first line; written once (a second call is ignored)."""
        if not self.exists() or self.path.stat().st_size == 0:
            self._append({"op": "run", **header})

    def add(self, op: str, header: dict[str, Any] | None = None, **fields: Any) -> str:
        """Append a record that still has to reach MLflow; returns its id. `header`: written first
        if the journal is empty (one a sync removed while this run went on)."""
        record_id = uuid.uuid4().hex
        self._append({"id": record_id, "op": op, **fields}, header)
        return record_id

    def ack(self, record_id: str, run_id: str | None = None) -> None:
        self._append({"ack": record_id, **({"run_id": run_id} if run_id else {})})

    def read(self) -> JournalState:
        if not self.exists():
            return JournalState(header=None)
        with open(self.path, "rb") as file:
            return self._parse(file.read())

    def _parse(self, data: bytes) -> JournalState:
        state = JournalState(header=None)
        records: dict[str, dict[str, Any]] = {}
        acked: set[str] = set()
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                state.torn_lines += 1
                continue
            if "ack" in entry:
                acked.add(entry["ack"])
                state.run_id = entry.get("run_id") or state.run_id
            elif entry.get("op") == "run":
                state.header = entry
                state.run_id = state.run_id or entry.get("run_id")
            elif "id" in entry:
                records[entry["id"]] = entry
                state.finished = entry.get("op") == "terminate"  # a resumed run adds records after one
        if state.header is None and records:
            raise LCPError(f"{self.path}: pending journal without its header line (which run?)")
        state.pending = [record for record_id, record in records.items() if record_id not in acked]
        return state

    @property
    def files_dir(self) -> Path:
        """Where the copies of its pending artifacts are kept (lcp.tracking.run)."""
        return self.path.parent / f"{self.path.stem}-files"

    def remove_if_done(self, run_over: bool = False) -> bool:
        """Remove the journal, its artifacts' copies (a checkpoint's among them) and its lock when
        every record reached MLflow and the run is over: its last record is its final status, or
        `run_over` (a run that sent its final status itself). Decided under the lock writers
        append under, so a record added meanwhile (a resumed attempt of the run) keeps it.
        Called with `exclusive` held. Whether it was removed."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:  # removed by another sync; `exclusive` made its lock anew
            self.path.with_suffix(".lock").unlink(missing_ok=True)
            return False
        try:
            lock(fd, self.path)
            if os.fstat(fd).st_nlink == 0:
                return False
            with open(fd, "rb", closefd=False) as file:
                state = self._parse(file.read())
            if state.pending or not (run_over or state.finished):
                return False
            shutil.rmtree(self.files_dir, ignore_errors=True)
            self.path.unlink()
            self.path.with_suffix(".lock").unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while replaying, so two replays of one journal never send the same record."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            with open(self.path.with_suffix(".lock"), "a") as file:
                locked = lock(file, file.name)
                try:
                    if os.fstat(file.fileno()).st_nlink == 0:  # removed with its journal meanwhile
                        continue
                    yield
                    return
                finally:
                    if locked:
                        fcntl.flock(file, fcntl.LOCK_UN)

    def _append(self, entry: dict[str, Any], header: dict[str, Any] | None = None) -> None:
        data = (json.dumps(entry, allow_nan=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        while True:  # a journal removed (remove_if_done) between the open and the lock: open it anew
            lock(fd, self.path)
            if os.fstat(fd).st_nlink:
                break
            os.close(fd)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size == 0 and header is not None:
                data = (json.dumps({"op": "run", **header}, allow_nan=True) + "\n").encode() + data
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn line from a killed writer stays a line of its own
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock
