"""Output that is complete or absent, never destroys an input, and leaves nothing behind.

Every file or folder lcp publishes is written under a temporary name beside its target and
renamed onto it at the end (a file's data put on disk first, `sync`):
  * an output may not be, contain or lie inside one of the command's sources (symlinks
    resolved), so no overwrite can reach the data it reads;
  * a folder gets a `.lcp-output` marker, and `--overwrite` replaces only folders holding
    one, so an unrelated folder given as the output is refused, not deleted;
  * temporary names carry the host and process id, `.NAME.HOST-PID.RANDOM.tmp` (`.old`
    while a replaced folder is being removed), and the process writing one holds an flock on
    it; the next write of NAME removes those nobody holds (a killed run's leftovers, from any
    host of a shared file system: the kernel drops a dead process's locks), sparing any
    modified in the last seconds (one just being made). Where the file system has no flock,
    only leftovers of this host's processes that no longer run are removed;
  * files and folders are created with the mode the kernel derives from the user's umask.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lcp.errors import LCPError

MARKER = ".lcp-output"
MARKER_TEXT = "This folder was written by lcp; `--overwrite` may replace it as a whole.\n"

Sources = Iterable["str | os.PathLike | None"]


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0]) or "host"


def _temp_path(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.{_host()}-{os.getpid()}.{secrets.token_hex(4)}.{kind}"


_TEMP_NAME = re.compile(r"\.(.+)\.[A-Za-z0-9_-]+-\d+\.[0-9a-f]{8}\.(?:tmp|old)")


def published_path(path: str | os.PathLike) -> str:
    """`path` with every temporary name in it (see the module doc) replaced by the name it is
    published under: what an error about a file being written should name."""
    parts = [match[1] if (match := _TEMP_NAME.fullmatch(part)) else part for part in Path(path).parts]
    return str(Path(*parts)) if parts else str(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


_held: dict[Path, int] = {}  # temporary -> the descriptor holding its flock
MIN_STALE_AGE_S = 2.0  # a temporary younger than this may be one being made, not yet locked
# Another host's temporary is removed only when untouched this long as well: some cluster file
# systems keep flocks local to each node (BeeGFS by default, NFS with local_lock=flock).
MIN_FOREIGN_STALE_AGE_S = 3600.0
NO_LINKS_ERRNOS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


HEARTBEAT_S = 600.0  # how often a held temporary's mtime is renewed (well within MIN_FOREIGN_STALE_AGE_S)
_heartbeat: threading.Thread | None = None


def _renew_held() -> None:
    """Keep the mtime of every held temporary recent, so that another host, which cannot see
    this host's flocks on some file systems, sees it live (a staging folder's own mtime stops
    once its subfolders take the writes)."""
    while True:
        time.sleep(HEARTBEAT_S)
        for fd in list(_held.values()):
            with contextlib.suppress(OSError):
                os.utime(fd)


def _hold(tmp: Path) -> None:
    """Take the flock that marks `tmp` as being written (see the module doc); release() ends it."""
    global _heartbeat
    fd = os.open(tmp, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # no flock on this file system: the host-and-pid rule decides instead
        os.close(fd)
        return
    _held[tmp] = fd
    if _heartbeat is None:
        _heartbeat = threading.Thread(target=_renew_held, name="lcp-temporaries-heartbeat", daemon=True)
        _heartbeat.start()


def release(tmp: Path) -> None:
    """End the flock of a temporary (published, or removed)."""
    fd = _held.pop(Path(tmp), None)
    if fd is not None:
        os.close(fd)


_said_no_flock = False


def lock(file: Any, path: str | os.PathLike, operation: int = fcntl.LOCK_EX) -> bool:
    """fcntl.flock(file, operation) on the open `path`; False where its file system has no flock
    (some Lustre and NFS mounts: ENOLCK, ENOSYS), said once per process, and the caller goes on
    unguarded. A held lock under LOCK_NB raises BlockingIOError as flock does."""
    global _said_no_flock
    try:
        fcntl.flock(file, operation)
    except BlockingIOError:
        raise
    except OSError as exc:
        if not _said_no_flock:
            _said_no_flock = True
            print(
                f"{path}: warning: cannot lock it ({exc.strerror}): this file system has no flock, so lcp "
                "goes on without locks; run one lcp command at a time on its files",
                file=sys.stderr,
            )
        return False
    return True


def _nobody_holds(entry: Path, host: str, pid: int) -> bool:
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # gone meanwhile, or a link: not ours to remove
    try:
        untouched = time.time() - os.fstat(fd).st_mtime
        if untouched < (MIN_STALE_AGE_S if host == _host() else MIN_FOREIGN_STALE_AGE_S):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:  # no flock here
        return host == _host() and not _alive(pid)
    finally:
        os.close(fd)  # releases the lock taken above, if any


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporaries of `path` that no process writes any more (see the module doc)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.([A-Za-z0-9_-]+)-(\d+)\.[0-9a-f]{{8}}\.(tmp|old)")
    try:
        entries = list(path.parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and _nobody_holds(entry, match[1], int(match[2])):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


def temp_folder(path: str | os.PathLike) -> Path:
    """A new empty folder beside `path` (same file system) with a temporary name of `path`.

    The caller removes it; one left by a killed process goes with the next call for `path`.
    """
    path = Path(path)
    make_parent(path)
    remove_stale_temporaries(path)
    while True:
        tmp = _temp_path(path, "tmp")
        try:
            tmp.mkdir(0o777)  # the umask applies
        except FileExistsError:
            continue
        _hold(tmp)
        return tmp


def make_parent(path: Path) -> None:
    """The folder `path` goes into, made if missing; an LCPError naming it when it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LCPError(f"{path}: cannot make the folder it goes into ({exc.strerror}: {exc.filename})") from None


def check_parent_can_be_made(path: Path) -> None:
    """An LCPError when the folder `path` goes into cannot be made (a file in the way, no
    permission), like make_parent's, but without making it: a command refused later leaves none."""
    parent = path.absolute().parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LCPError(f"{path}: cannot make the folder it goes into (Not a directory: {existing})")
    if existing != parent and not os.access(existing, os.W_OK | os.X_OK):
        raise LCPError(f"{path}: cannot make the folder it goes into (Permission denied: {existing})")


def _temp_file(path: Path) -> Path:
    make_parent(path)
    remove_stale_temporaries(path)
    while True:
        tmp = _temp_path(path, "tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
        except FileExistsError:
            continue
        _hold(tmp)
        return tmp


def _resolve(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def check_outside_sources(out: str | os.PathLike, sources: Sources) -> None:
    """Refuse an output that is, contains or lies inside one of `sources` (None entries skipped)."""
    target = _resolve(out)
    for source in sources:
        if source is None:
            continue
        resolved = _resolve(source)
        if target == resolved or (target.exists() and resolved.exists() and os.path.samefile(target, resolved)):
            raise LCPError(f"{out}: is the source {source}; write the output elsewhere")
        if resolved in target.parents:
            raise LCPError(f"{out}: lies inside the source {source}; write the output elsewhere")
        if target in resolved.parents:
            raise LCPError(f"{out}: contains the source {source}; write the output elsewhere")


def is_lcp_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / MARKER).is_file()


def check_folder_output(path: str | os.PathLike, overwrite: bool, sources: Sources = ()) -> None:
    """Refuse, before any work, a folder output that atomic_folder would not publish."""
    path = Path(path)
    check_outside_sources(path, sources)
    if not os.path.lexists(path):
        return
    if not is_lcp_folder(path):
        raise LCPError(
            f"{path}: already exists and holds no {MARKER} (lcp did not write it, or an lcp "
            "from before that marker did), so even --overwrite does not replace it; remove it by "
            "hand or choose another output"
        )
    if not overwrite:
        raise LCPError(f"{path}: already exists; remove it or pass --overwrite")


def replace_folder(tmp: Path, path: Path, overwrite: bool = True, then: Callable[[], None] | None = None) -> None:
    """Rename the finished folder `tmp` onto `path`, then call `then` (what goes with the folder:
    its annotation files), and only then remove the folder it replaced (said on stderr), so a
    kill while that large folder is removed leaves the new set whole. Without `overwrite` a
    folder another run published meanwhile is refused, not replaced."""
    if os.path.lexists(path) and not overwrite:
        raise LCPError(f"{path}: already exists (another run published it meanwhile?); remove it or pass --overwrite")
    if not os.path.lexists(path):
        try:
            os.rename(tmp, path)
        except OSError as exc:  # a folder with files appeared there since the check above
            raise LCPError(f"{path}: another run published it meanwhile; nothing of this run was kept") from exc
        try:
            if then is not None:
                then()
        except BaseException:  # its companions could not follow: the folder goes back
            os.rename(path, tmp)
            raise
        return
    old = _temp_path(path, "old")
    old.mkdir()
    _hold(old)
    try:
        os.replace(path, old / path.name)
        os.replace(tmp, path)
        try:
            if then is not None:
                then()
        except BaseException:  # its companions could not follow: the replaced folder comes back
            os.replace(path, tmp)
            os.replace(old / path.name, path)
            old.rmdir()
            raise
        try:
            shutil.rmtree(old)
        except OSError as exc:  # e.g. NFS's .nfs files of a reader: the next write of `path` removes it
            print(f"{path}: warning: could not remove the folder it replaced yet ({exc.strerror})", file=sys.stderr)
    finally:
        release(old)
    print(f"{path}: replaced the folder lcp wrote there before", file=sys.stderr)


@contextlib.contextmanager
def publishing(folder: Path) -> Iterator[None]:
    """Within: no other lcp process publishes into `folder` (an flock on it), so two runs writing
    one output publish one after the other, each checking what the other left, and never mix
    one's folder with the other's companion files. Not inside a temporary folder: that is its
    writer's own (an output made inside another, perhaps by a child process while the parent
    holds the folder's flock), and locking it would wait for that writer forever."""
    if _TEMP_NAME.fullmatch(Path(folder).name):
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # no flock on this file system: publish unguarded
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """An OSError without a file name (a failed write: a full disk, a quota) gets `path`'s."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def sync(path: str | os.PathLike) -> None:
    """Put the data of the file `path` on disk (fsync). A file renamed into place without it may,
    after a crash of its node (power, a kernel panic) soon after, be published empty or partly
    written (XFS, Lustre, ext4 for a new name), while the next job, on another node, trusts it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system that cannot (some FUSE mounts)
            raise
    finally:
        os.close(fd)


def _publish_new(tmp: Path, path: Path) -> None:
    """Put `tmp` at `path`, which must not exist: a link, unlike a rename, fails when another run
    made `path` since the caller checked. File systems without links (FAT, some FUSE and object
    stores) get a rename after a last look."""
    exists = LCPError(f"{path}: already exists (another run wrote it meanwhile?); remove it or pass --overwrite")
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise exists from None
    except OSError as exc:
        if exc.errno not in NO_LINKS_ERRNOS:
            raise
        if os.path.lexists(path):
            raise exists from None
        os.rename(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True, sources: Sources = ()) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`. Write into it
    (do not rename another file onto it): the flock that marks it live is on that file.

    With overwrite=False an existing `path` is an error instead of being replaced; `path`
    may never be or lie inside one of `sources`.
    """
    path = Path(path)
    check_outside_sources(path, sources)
    if path.is_dir():
        raise LCPError(f"{path}: is a folder, not a file")
    if not overwrite and os.path.lexists(path):
        raise LCPError(f"{path}: already exists; remove it or pass --overwrite")
    tmp = _temp_file(path)
    try:
        with naming(path):
            yield tmp
            sync(tmp)
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    finally:
        release(tmp)
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike, overwrite: bool = False, sources: Sources = (), then: Callable[[], None] | None = None
) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it replaces `path` at once,
    and `then` runs before the replaced folder is removed (replace_folder).

    The rules of check_folder_output hold when entering and again when publishing. The
    published folder holds the MARKER file. On failure the temporary folder is removed and
    `path` is left as it was.
    """
    path = Path(path)
    check_folder_output(path, overwrite, sources)
    tmp = temp_folder(path)
    try:
        with naming(path):
            yield tmp
            (tmp / MARKER).write_text(MARKER_TEXT)
        with publishing(path.parent):
            check_folder_output(path, overwrite)  # nothing unmarked may have appeared meanwhile
            replace_folder(tmp, path, overwrite, then)
    finally:
        release(tmp)
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path: str | os.PathLike, text: str, overwrite: bool = True, sources: Sources = ()) -> None:
    with atomic_path(path, overwrite, sources) as tmp:
        tmp.write_text(text, encoding="utf-8")  # the pages declare utf-8, whatever the locale


def write_files(files: Mapping[str | os.PathLike, str | bytes], overwrite: bool = True, sources: Sources = ()) -> None:
    """Publish several files as one output: each is staged beside its target (text as utf-8) and
    all are renamed at the end, so a target that is refused (a folder, an existing file without
    `overwrite`) or a failure on the way publishes none of them."""
    with contextlib.ExitStack() as staged:
        temporaries = {path: staged.enter_context(atomic_path(path, overwrite, sources)) for path in files}
        for path, content in files.items():
            if isinstance(content, str):
                temporaries[path].write_text(content, encoding="utf-8")
            else:
                temporaries[path].write_bytes(content)


def json_text(obj: Any) -> str:
    """How lcp writes json: indented, keys in their order, a final newline."""
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any, overwrite: bool = True, sources: Sources = ()) -> None:
    write_text(path, json_text(obj), overwrite, sources)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LCPError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise LCPError(f"{path}: is a folder, not a json file") from None
    except OSError as exc:
        raise LCPError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LCPError(f"{path}: not valid JSON ({exc})") from None


def yaml_error_text(path: str | Path, exc: Exception) -> str:
    """PyYAML's error as one line, `PATH:LINE:COLUMN: not valid YAML: WHAT` (its own text spans
    several lines and names the place as line and column of "<unicode string>")."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    what = ": ".join(part for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
    tabs = "; indent with spaces, not tabs" if "'\\t'" in what else ""
    return f"{where}: not valid YAML: {what or type(exc).__name__}{tabs}"
