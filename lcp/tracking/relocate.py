"""Point a moved or copied local MLflow store's artifact locations, and its runs' path tags, at where it is now.

MLflow records absolute artifact locations (file:///.../results/mlflow/artifacts/...) in its
sqlite database when an experiment, run, model version or logged model is created. A
`results/` folder moved, or copied off a cluster, keeps those locations: its runs and
metrics show, its artifacts do not. relocate() rewrites every location that lies in the
store's old folder so it lies in the folder the database is in now.

The old folder is read from the locations themselves: the folder named like the store's
folder that holds the `artifacts` folder (the local store's layout). A store renamed when it
was moved needs the old folder given (`from_folder`). The runs' path tags (PATH_TAGS: the work
dir, checkpoint and config of a run) move with the folders above the store (moved_path).
Everything is written in one sqlite transaction, with a copy of the database beside it until
that transaction has committed.

Only the standard library's sqlite3, so that `lcp tracking uri` can check for a move at no cost.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from lcp.errors import LCPError
from lcp.tracking import settings

# Every place MLflow 3.17's sqlite schema keeps an artifact location: (table, column, which rows).
LOCATION_COLUMNS = (
    ("experiments", "artifact_location", ""),
    ("runs", "artifact_uri", ""),
    ("logged_models", "artifact_location", ""),
    ("model_versions", "source", ""),
    ("model_versions", "storage_location", ""),
    ("trace_tags", "value", "key = 'mlflow.artifactLocation'"),
    ("workspaces", "default_artifact_root", ""),
    ("workspaces", "trace_archival_location", ""),
)
# The runs' tags in which lcp records paths of the run's files (lcp/tracking/hook.py, api.py).
PATH_TAGS = ("lcp.work_dir", "lcp.checkpoint", "lcp.config_file")
ARTIFACTS_FOLDER = "artifacts"  # the local store keeps its artifacts in this folder beside the database
BACKUP_SUFFIX = ".before-relocate"
BUSY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class LocalLocation:
    """An absolute local location, `file:` URI or plain path, split into its path segments."""

    head: str  # what precedes the path: "file://", "file:", "file://localhost" or "" for a plain path
    raw: tuple[str, ...]  # path segments as written (percent-encoded in a URI), without the leading ""
    quoted: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(unquote(part) for part in self.raw) if self.quoted else self.raw

    def folder(self, depth: int) -> Path:
        """The folder made of the first `depth` segments."""
        return Path("/", *self.names[:depth])

    def moved(self, depth: int, new_folder: Path) -> str:
        """This location with its first `depth` segments replaced by `new_folder`, in the same form."""
        prefix = quote(str(new_folder)) if self.quoted else str(new_folder)
        return "/".join([self.head + prefix, *self.raw[depth:]])


def parse_location(value: str | None) -> LocalLocation | None:
    """The segments of an absolute local location; None for anything else (mlflow-artifacts:/, s3://, runs:/)."""
    if not value:
        return None
    if value.startswith("/"):
        return LocalLocation("", tuple(value.split("/")[1:]), quoted=False)
    if not value.startswith("file:"):
        return None
    parts = urlsplit(value)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment or not parts.path.startswith("/"):
        return None
    if not value.endswith(parts.path):
        return None
    return LocalLocation(value[: len(value) - len(parts.path)], tuple(parts.path.split("/")[1:]), quoted=True)


def store_depth(location: LocalLocation, store_name: str) -> int | None:
    """How many segments make the old store folder: the first folder named `store_name` holding `artifacts`."""
    names = location.names
    for index in range(len(names) - 1):
        if names[index] == store_name and names[index + 1] == ARTIFACTS_FOLDER:
            return index + 1
    return None


def depth_under(location: LocalLocation, folder: Path) -> int | None:
    """How many segments make `folder` when the location lies in it (or is it), else None."""
    parts = folder.parts[1:]
    return len(parts) if location.names[: len(parts)] == parts else None


def store_database(store: str | None) -> Path:
    """The sqlite database of STORE (a sqlite URI, the database file or its folder); default: the store in use."""
    uri = store or settings.resolve_target(None).uri
    if "://" not in uri:
        path = Path(uri).expanduser().resolve()
        return path / "mlflow.db" if path.is_dir() else path
    database = settings.sqlite_database(uri)
    if database is None:
        raise LCPError(
            f"{uri}: relocate rewrites a local sqlite store (sqlite:///PATH/mlflow.db); for a tracking "
            "server, stop it and relocate its own sqlite database"
        )
    return database


def same_folder(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@dataclass(frozen=True)
class Change:
    table: str
    column: str
    condition: str
    old: str
    new: str
    rows: int
    what: str = ""  # how the change is counted; default `table.column`


@dataclass
class Plan:
    store: Path  # the folder the database is in now
    changes: list[Change] = field(default_factory=list)
    old_folders: set[Path] = field(default_factory=set)  # of the artifact locations
    moved_from: Path | None = None  # the store's folder the path tags were moved from
    left: list[tuple[str, str, Path]] = field(default_factory=list)  # path tags kept (path_tag_changes)

    @property
    def rows(self) -> int:
        return sum(change.rows for change in self.changes)

    def counts(self) -> dict[str, int]:
        """Rows to rewrite per `table.column`."""
        counts: dict[str, int] = {}
        for change in self.changes:
            key = change.what or f"{change.table}.{change.column}"
            counts[key] = counts.get(key, 0) + change.rows
        return counts


def location_columns(connection: sqlite3.Connection):
    """The entries of LOCATION_COLUMNS this database has (an older schema lacks some tables)."""
    for table, column, condition in LOCATION_COLUMNS:
        columns = {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}
        if column in columns:
            yield table, column, condition


def plan(connection: sqlite3.Connection, store: Path, from_folder: Path | None = None) -> Plan:
    """The rewrites that move every location of the old store folder(s) into `store`.

    Without `from_folder` the old folder of a location is found by the store's folder name; more
    than one old folder is refused (which one holds the artifacts is the user's to say).
    """
    result = Plan(store)
    for table, column, condition in location_columns(connection):
        where = f"WHERE {condition}" if condition else ""
        query = f'SELECT "{column}", COUNT(*) FROM "{table}" {where} GROUP BY "{column}"'
        for value, rows in connection.execute(query):
            location = parse_location(value)
            if location is None:
                continue
            depth = depth_under(location, from_folder) if from_folder else store_depth(location, store.name)
            if depth is None or same_folder(location.folder(depth), store):
                continue
            result.old_folders.add(location.folder(depth))
            result.changes.append(Change(table, column, condition, value, location.moved(depth, store), rows))
    if len(result.old_folders) > 1:
        folders = ", ".join(str(folder) for folder in sorted(result.old_folders))
        raise LCPError(
            f"{store}: artifact locations recorded in several old folders ({folders}); pass "
            "--from OLD_FOLDER to choose the one whose artifacts this store holds"
        )
    return result


def moved_path(location: LocalLocation, old_store: Path, store: Path) -> tuple[str, Path] | None:
    """(`location` moved as the store moved, the path it names) when the location lies in a folder
    that holds the old store (the checkout, results/); None for a location outside them.

    The folders above the store are taken to have moved with it: results/demo/lcp/work beside
    the old results/mlflow is results/demo/lcp/work beside the new one."""
    old_parts, names = old_store.parts[1:], location.names
    shared = 0
    while shared < min(len(old_parts), len(names)) and names[shared] == old_parts[shared]:
        shared += 1
    up = len(old_parts) - shared  # from the old store up to the folder it shares with the location
    if shared == 0 or up >= len(store.parts) - 1:
        return None
    new_folder = Path(*store.parts[: len(store.parts) - up])
    return location.moved(shared, new_folder), new_folder.joinpath(*names[shared:])


def path_tag_changes(
    connection: sqlite3.Connection, old_store: Path, store: Path
) -> tuple[list[Change], list[tuple[str, str, Path]]]:
    """The rewrites of PATH_TAGS that lie in the folders the store moved with, and the tags
    left as they are because their file or folder is not found in the new place (a results/ folder
    copied without its work dirs, a checkpoint removed since, a work dir of another user's):
    (key, value, missing path) each."""
    changes, left = [], []
    for key in PATH_TAGS:
        condition = f"key = '{key}'"
        query = f'SELECT "value", COUNT(*) FROM "tags" WHERE {condition} GROUP BY "value"'
        for value, rows in connection.execute(query):
            location = parse_location(value)
            moved = location and moved_path(location, old_store, store)
            if not moved or moved[0] == value:
                continue
            if not os.path.exists(moved[1]):  # also for a folder on the way this user may not enter
                left.append((key, value, moved[1]))
                continue
            changes.append(Change("tags", "value", condition, value, moved[0], rows, what=f"tags {key}"))
    return changes, left


def moved_from(database: Path) -> Path | None:
    """The folder this store was moved or copied from, when its artifact locations still point there.

    Read-only and quiet: a database that cannot be read gives None (the caller only warns).
    """
    try:
        connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return None
    try:
        return next(iter(plan(connection, database.parent).old_folders), None)
    except (sqlite3.Error, LCPError):
        return None
    finally:
        connection.close()


def backup(database: Path, path: Path) -> None:
    """A consistent copy of the database, published atomically at `path`.

    Read through a connection of its own: sqlite's backup from the connection that holds the write
    lock waits forever, while a reader may share the database with it.
    """
    from lcp.io import atomic_path

    with atomic_path(path) as tmp:
        source, copy = sqlite3.connect(database, timeout=BUSY_TIMEOUT_S), sqlite3.connect(tmp)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()


def relocate(database: Path, from_folder: Path | None = None) -> Plan:
    """Rewrite the store's artifact locations into the database's folder, and the runs' path tags
    with them; all or nothing.

    The plan is made and applied under one write lock; the copy `<database>.before-relocate`
    exists until the rewrite has committed. Returns the plan (no changes: nothing was written).
    """
    if not database.is_file():
        raise LCPError(f"{database}: no MLflow store here")
    store = database.parent
    try:
        connection = sqlite3.connect(database, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise LCPError(f"{database}: cannot open the MLflow store ({exc})") from None
    backup_path = database.with_name(database.name + BACKUP_SUFFIX)
    try:
        connection.execute("BEGIN IMMEDIATE")  # no other writer between reading and rewriting
        changes = plan(connection, store, from_folder)
        changes.moved_from = from_folder or next(iter(changes.old_folders), None)
        if changes.moved_from is not None:
            tag_changes, changes.left = path_tag_changes(connection, changes.moved_from, store)
            changes.changes += tag_changes
        if not changes.changes:
            connection.execute("ROLLBACK")
            return changes
        backup(database, backup_path)
        for change in changes.changes:
            extra = f" AND {change.condition}" if change.condition else ""
            cursor = connection.execute(
                f'UPDATE "{change.table}" SET "{change.column}" = ? WHERE "{change.column}" = ?{extra}',
                (change.new, change.old),
            )
            if cursor.rowcount != change.rows:
                raise LCPError(
                    f"{database}: {change.table}.{change.column} {change.old!r}: expected to rewrite "
                    f"{change.rows} row(s), rewrote {cursor.rowcount}; nothing was changed"
                )
        connection.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise LCPError(_failed(database, exc, busy="locked" in str(exc))) from None
    except sqlite3.Error as exc:
        raise LCPError(_failed(database, exc)) from None
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()
        backup_path.unlink(missing_ok=True)  # committed or rolled back: the database is whole either way
    return changes


def _failed(database: Path, exc: sqlite3.Error, busy: bool = False) -> str:
    if busy:
        return (
            f"{database}: in use by another writer (an mlflow server, or a running job); stop it and run "
            "lcp tracking relocate again; nothing was changed"
        )
    return f"{database}: could not rewrite the artifact locations ({exc}); nothing was changed"


def warn_if_moved(uri: str) -> None:
    """A warning on stderr when a local store's artifact locations still point to where it was before."""
    database = settings.sqlite_database(uri)
    old = database and moved_from(database)
    if old:
        print(
            f"warning: {database}: this store was moved or copied from {old}; its artifacts do not show until "
            "`lcp tracking relocate` (nothing is rewritten without it)",
            file=sys.stderr,
        )
