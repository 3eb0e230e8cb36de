"""Resumable training work dirs for the workflow (`lcp workdir begin|finish`).

A training step trains in a work dir that is not one of the step's declared outputs:
Snakemake deletes the outputs of a failed or killed job, and the work dir's checkpoints
are what lets the rerun resume (`lcp train --auto-resume`). That leaves two questions
this command answers:

- `begin DIR --request ... --input PATH...`: may DIR's checkpoints be resumed? Not when
  DIR holds a finished run (the step is being rerun on purpose, e.g. `--forcerun`), nor
  when they were made for another request (another command line, or changed input
  files, a config's `_base_` files included, or image sets made again); then DIR is
  emptied and training starts over. One finished run is kept: that of a job which finished
  while the workflow run that started it was being stopped (a SIGINT to snakemake alone lets
  running jobs end, then marks their outputs incomplete; a lost controller's cluster jobs run
  on), so that Snakemake reruns it. Its request and inputs
  unchanged, and not forced by the user, it is kept (`lcp train --auto-resume` then trains
  nothing) and `finish` publishes it again: a full training was redone, and logged twice.
- `finish DIR --checkpoint OUT`: publish DIR's newest complete checkpoint (the one
  `lcp train --auto-resume` would pick) as OUT atomically (a hard link when possible, so
  no copy of a large file) and mark DIR finished.

`begin --checkpoint OUT` also puts a placeholder at OUT while DIR trains. Snakemake deletes
a job's outputs before it runs and marks them incomplete, but it only acts on the mark of
a file that exists: a job killed with snakemake (SIGKILL, a lost node) would leave OUT
missing, and a later run says "Nothing to be done" whenever the files made from OUT (an
evaluation) are still there, from the previous model. With the placeholder, the killed
job's OUT exists and is marked incomplete, so the next run reruns it (--rerun-incomplete,
which the profiles set; without it snakemake stops and names the file). `finish` replaces
the placeholder with the checkpoint. A job that fails loses its placeholder to Snakemake, so
`begin` also removes the evaluations made from the model OUT held (paths.evaluations_of):
after a failed retraining, `snakemake .../eval.json` said "Nothing to be done" and kept the
replaced model's numbers; now the evaluation is missing and remade, its training first.
A work dir a training still runs in (its `lcp train` holds lcp.apis.training_lock) is
refused: the SLURM job of a snakemake that died may train on while the rerun starts.
A folder with files but no request record is refused rather than emptied: it was not
made by this command, so it may hold something the user wants. Emptying a work dir keeps
its `mlflow-pending/` journals: what an earlier run could not send to MLflow waits there for
`lcp tracking sync` (each run has its own journal, so the new run's cannot mix with them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from lcp.apis.resume import FINISHED_RECORD, find_resume_checkpoint
from lcp.apis.training_lock import check_no_training
from lcp.errors import LCPError
from lcp.io import atomic_path, read_json, write_json, write_text
from lcp.tracking.journal import PENDING_DIR
from lcp.workflow.paths import evaluations_of, reports_of

PLACEHOLDER = "lcp workdir: placeholder while {work_dir} trains; not a checkpoint\n"
REQUEST_FILE = "lcp-request.json"
# The checkpoints of training jobs the workflow reruns only because an interrupted run of it
# left them incomplete (lcp.workflow.session writes it when a run starts), for the run whose
# jobs have ENV_WORKFLOW_RUN set to the file's "run": a run without the hook that writes it
# (--no-hooks) must not read an earlier run's list.
INTERRUPTED_TRAININGS = Path(".snakemake") / "lcp-interrupted-trainings.json"
ENV_WORKFLOW_RUN = "LCP_WORKFLOW_RUN"
# Files up to this size are identified by content; larger ones (checkpoints) by size and mtime.
HASH_LIMIT_BYTES = 16 * 2**20


def file_identity(path: str) -> dict:
    """What a resumed run must find unchanged: a file's content (size and mtime when large), a
    folder's listing with each file's size and mtime (an image set converted or synthesised
    again is another one, even with the same names)."""
    file = Path(path)
    if file.is_dir():
        listing = hashlib.sha256()
        for entry in sorted(p for p in file.rglob("*") if p.is_file()):
            stat = entry.stat()
            listing.update(f"{entry.relative_to(file).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        return {"listing_sha256": listing.hexdigest()}
    if not file.is_file():
        raise LCPError(f"{path}: input file does not exist")
    stat = file.stat()
    if stat.st_size <= HASH_LIMIT_BYTES:
        return {"sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def with_config_bases(inputs: list[str]) -> list[str]:
    """The inputs, each config (.py) followed by the files it inherits from: a checkpoint made
    before an edit of a `_base_` file was made for another config."""
    from lcp.apis.config import config_files

    configs = [path for path in inputs if path.endswith(".py") and Path(path).is_file()]
    return [file for path in inputs for file in (config_files(path) if path in configs else [path])]


def is_placeholder(path: str | os.PathLike) -> bool:
    path = Path(path)
    try:
        return path.is_file() and path.stat().st_size < 4096 and path.read_text().startswith(PLACEHOLDER[:30])
    except (OSError, UnicodeDecodeError):
        return False


def begin(
    work_dir: str | os.PathLike, request: str, inputs: list[str], checkpoint: str | os.PathLike | None = None
) -> str:
    """Prepare `work_dir`; returns what happened: 'new', 'resume from <file>', 'restart: <why>'
    or 'kept: <why>' (a finished run, see the module).

    A work dir with a request but no complete checkpoint yet is kept as it is ('new').
    `checkpoint`: the final checkpoint's path, which gets a placeholder (see the module);
    an existing file there that is not one is refused, not replaced.
    """
    work_dir = Path(work_dir)
    check_no_training(work_dir)  # an orphaned job of an earlier run may still train in it
    if checkpoint is not None and os.path.lexists(checkpoint) and not is_placeholder(checkpoint):
        raise LCPError(
            f"{checkpoint}: already exists; remove it to train {work_dir} again "
            "(the workflow removes it itself before the job)"
        )
    wanted = {"request": request, "inputs": {path: file_identity(path) for path in with_config_bases(inputs)}}
    outcome = "new"
    if (work_dir / FINISHED_RECORD).exists():
        if checkpoint is not None and finished_when_interrupted(work_dir, checkpoint, wanted):
            outcome = "kept: its run finished while the workflow was being stopped, and is published again"
        else:
            outcome = "restart: the previous run in it finished"
    elif (work_dir / REQUEST_FILE).exists():
        recorded = read_json(work_dir / REQUEST_FILE)
        if recorded != wanted:
            changed = [key for key in ("request", "inputs") if recorded.get(key) != wanted[key]]
            outcome = f"restart: its checkpoints were made for another {' and '.join(changed) or 'request'}"
        elif (resumable := find_resume_checkpoint(work_dir)) is not None:
            outcome = f"resume from {resumable.name}"
    elif work_dir.exists() and any(work_dir.iterdir()):
        raise LCPError(f"{work_dir}: holds files that no `lcp workdir begin` made; move them away or remove the folder")
    if outcome.startswith("restart"):
        for entry in work_dir.iterdir():
            if entry.name == PENDING_DIR:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    work_dir.mkdir(parents=True, exist_ok=True)
    write_json(work_dir / REQUEST_FILE, wanted)
    if checkpoint is not None:
        stale = [path for path in evaluations_of(checkpoint) if path.is_file()]
        for path in stale:
            path.unlink()
        if stale:
            outcome += f"; removed the evaluations of the model it replaces ({', '.join(map(str, stale))})"
        # the scene's report holds this model's numbers too: without it, `snakemake --report`
        # refuses (naming the missing file) instead of packaging the replaced model's numbers
        reports = [path for path in reports_of(checkpoint) if path.is_file()]
        for path in reports:
            path.unlink()
        if reports:
            outcome += f"; removed the scene's report made with it ({', '.join(map(str, reports))})"
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        write_text(checkpoint, PLACEHOLDER.format(work_dir=work_dir))
    return outcome


def record_interrupted_trainings(checkpoints: Iterable[str]) -> None:
    """Write INTERRUPTED_TRAININGS for this run of the workflow and export its ENV_WORKFLOW_RUN
    to the jobs; where it cannot be written, those trainings run again."""
    run = uuid.uuid4().hex
    os.environ[ENV_WORKFLOW_RUN] = run
    try:
        write_json(INTERRUPTED_TRAININGS, {"run": run, "checkpoints": sorted(checkpoints)})
    except (LCPError, OSError):
        with contextlib.suppress(OSError):
            INTERRUPTED_TRAININGS.unlink(missing_ok=True)


def finished_when_interrupted(work_dir: Path, checkpoint: str | os.PathLike, wanted: dict) -> bool:
    """Whether `work_dir`'s finished run is the one a rerun of an interrupted workflow run asks
    for: its job is listed in INTERRUPTED_TRAININGS, and its request and inputs are unchanged."""
    try:
        interrupted = read_json(INTERRUPTED_TRAININGS)
        recorded = read_json(work_dir / REQUEST_FILE)
    except (LCPError, OSError, ValueError):
        return False
    listed = (
        isinstance(interrupted, dict)
        and interrupted.get("run") == os.environ.get(ENV_WORKFLOW_RUN)
        and os.path.abspath(checkpoint) in interrupted.get("checkpoints", [])
    )
    return listed and recorded == wanted and find_resume_checkpoint(work_dir) is not None


def finish(work_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Publish the final checkpoint of `work_dir` as `out`; returns the checkpoint published."""
    work_dir = Path(work_dir)
    source = find_resume_checkpoint(work_dir)
    if source is None:
        raise LCPError(f"{work_dir}: no complete checkpoint (epoch_N.pth, iter_N.pth or latest.pth) to publish")
    source = source.resolve()
    with atomic_path(out) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # another file system, or links not supported
            shutil.copyfile(source, tmp)
    write_json(work_dir / FINISHED_RECORD, {"checkpoint": source.name, "published_as": str(out)})
    return source
