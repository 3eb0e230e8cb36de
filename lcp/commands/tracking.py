"""`lcp tracking ...`: replay of pending records, the store's URI, repair of a moved store; plumbing for
the workflow (invocations, artifacts), left out of the action list."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

HELP = (
    "MLflow tracking: send what runs could not send (sync), print the store's URI (uri), repair a moved "
    "store (relocate)"
)
EPILOG = """plumbing, run by the workflow's rules (each has --help):
  open-invocation, close-invocation   the parent runs of a workflow invocation
  log-artifacts                       check reports, report tables and plots as a run"""

URI_HELP = "MLflow tracking URI when MLFLOW_TRACKING_URI is not set (default: results/mlflow/mlflow.db)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    sub = parser.add_subparsers(dest="tracking_command", required=True, metavar="ACTION")

    # plumbing: add_parser without help= keeps an action out of the list
    opened = sub.add_parser(
        "open-invocation",
        description="create the parent runs of a workflow invocation and "
        "print the environment its jobs need (as shell exports)",
    )
    opened.add_argument("--scene", action="append", required=True, help="scene of the invocation (repeatable)")
    opened.add_argument("--invocation-id", help="default: $LCP_INVOCATION_ID, else a new id")
    opened.add_argument("--tracking-uri", help=URI_HELP)
    opened.set_defaults(_main=main_open)

    closed = sub.add_parser(
        "close-invocation",
        description="group the invocation's runs under its parents and end them; run it once the "
        "invocation's jobs have ended: a job run still RUNNING is ended as KILLED",
    )
    closed.add_argument(
        "--status",
        choices=["FINISHED", "FAILED", "KILLED"],
        default="FINISHED",
        help="how the invocation ended (default FINISHED)",
    )
    closed.add_argument("--invocation-id", help="default: $LCP_INVOCATION_ID")
    closed.add_argument("--tracking-uri", help=URI_HELP)
    closed.set_defaults(_main=main_close)

    sync = sub.add_parser("sync", help="send what runs could not send (their mlflow-pending/ journals), once")
    sync.add_argument(
        "paths",
        nargs="+",
        metavar="WORK_DIR",
        help="work dirs (searched recursively for mlflow-pending/*.jsonl) or journal files",
    )
    sync.add_argument(
        "--tracking-uri", help="send there (default: $MLFLOW_TRACKING_URI, else the URI each journal recorded)"
    )
    sync.set_defaults(_main=main_sync)

    files = sub.add_parser(
        "log-artifacts", description="log files (check reports, report tables, plots) as a run SCENE/STEP/METHOD"
    )
    files.add_argument("files", nargs="+", metavar="FILE", help="files to log")
    files.add_argument("--scene", required=True, help="scene the files belong to")
    files.add_argument("--step", required=True, help="e.g. check, report")
    files.add_argument("--method", default="all", help="e.g. baseline, lcp, an image set (default: all)")
    files.add_argument("--variant", help="which of the step's runs, e.g. a severity of the robustness sweep")
    files.add_argument("--artifact-path", help="folder inside the run's artifacts")
    files.add_argument("--tracking-uri", help=URI_HELP)
    files.set_defaults(_main=main_log_artifacts)

    where = sub.add_parser("uri", help="print the tracking URI in use and how to browse it")
    where.add_argument("--tracking-uri", help=URI_HELP)
    where.set_defaults(_main=main_uri)

    moved = sub.add_parser(
        "relocate",
        help="after moving or copying results/: point the local store's artifact "
        "locations, and the runs' path tags, at where it is now, so mlflow ui shows the artifacts again",
    )
    moved.add_argument(
        "store",
        nargs="?",
        metavar="STORE",
        help="sqlite:///PATH/mlflow.db, the database file or its folder (default: the store `lcp tracking uri` prints)",
    )
    moved.add_argument(
        "--from",
        dest="from_folder",
        metavar="OLD_FOLDER",
        help="the store's folder before the move; needed only when the folder was renamed, or "
        "locations point into several old folders",
    )
    moved.set_defaults(_main=main_relocate)


def main(args: argparse.Namespace) -> int:  # replaced by the chosen action's main
    raise AssertionError("unreachable: an action is required")


def main_open(args: argparse.Namespace) -> int:
    from lcp.tracking.invocation import open_invocation

    invocation = open_invocation(
        args.scene, tracking_uri=args.tracking_uri, invocation_id=args.invocation_id, set_env=False
    )
    for name, value in invocation.environment().items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def main_close(args: argparse.Namespace) -> int:
    from lcp.tracking.invocation import close_invocation

    parents = close_invocation(args.status, invocation_id=args.invocation_id, tracking_uri=args.tracking_uri)
    for scene, run_id in sorted(parents.items()):
        print(f"{scene}: parent run {run_id} {args.status}")
    return 0


def main_sync(args: argparse.Namespace) -> int:
    from lcp.tracking import settings
    from lcp.tracking.journal import find_journals
    from lcp.tracking.replay import replay_all

    journals = find_journals(args.paths)
    if not journals:
        print("lcp tracking sync: nothing pending")
        return 0
    incomplete = 0
    for result in replay_all(journals, settings.sync_uri(args.tracking_uri)):
        state = "complete" if result.remaining == 0 else f"{result.remaining} kept: {result.error}"
        print(f"{result.journal}: run {result.run_id or '(not created)'}: sent {result.sent}, {state}")
        incomplete += result.remaining > 0
    if incomplete:
        print(
            f"lcp tracking sync: {incomplete} journal(s) not complete, nothing was dropped; fix the reason "
            "above (a server down, the wrong --tracking-uri, a deleted run) and sync again",
            file=sys.stderr,
        )
    return 1 if incomplete else 0


def main_log_artifacts(args: argparse.Namespace) -> int:
    from lcp.tracking.settings import ENV_TRACKING

    if os.environ.get(ENV_TRACKING) == "off":  # a workflow run without tracking
        print(f"{ENV_TRACKING}=off: nothing logged")
        return 0
    from lcp.tracking.api import log_files

    run = log_files(
        args.files,
        scene=args.scene,
        step=args.step,
        method=args.method,
        variant=args.variant,
        artifact_path=args.artifact_path,
        tracking_uri=args.tracking_uri,
    )
    if run.disabled:  # MLflow refused the run (its warning says why), as a training goes on untracked
        print(f"not logged: MLflow refused run {run.run_name} at {run.tracking_uri}", file=sys.stderr)
    elif run.run_id is None:
        print(f"{len(args.files)} file(s) queued for run {run.run_name} in {run.journal.path} (see lcp tracking sync)")
    else:
        print(f"logged {len(args.files)} file(s) to run {run.run_id}")
    return 0


def main_uri(args: argparse.Namespace) -> int:
    from lcp.tracking import settings

    target = settings.check_target(settings.resolve_target(args.tracking_uri))
    print(target.uri)
    if settings.missing_store(target.uri):
        print(
            f"not created yet: {settings.missing_store(target.uri)} (the first tracked run creates it)", file=sys.stderr
        )
        return 0
    if target.uri.startswith(("http://", "https://")):
        print(f"browse: open {target.uri} in a browser", file=sys.stderr)
        problem = server_unreachable(target.uri)
        if problem:
            print(
                f"not reachable now ({problem}): tracked runs keep what they log in their work dir's "
                "mlflow-pending/ until it is (lcp tracking sync sends it)",
                file=sys.stderr,
            )
    else:
        print(f"browse: {settings.mlflow_ui_command(target.uri)}", file=sys.stderr)
        from lcp.tracking.relocate import warn_if_moved

        warn_if_moved(target.uri)
    return 0


def server_unreachable(uri: str) -> str | None:
    """Why nothing answers at the server `uri`, or None when something does (any HTTP status:
    a server behind a proxy may not serve /health)."""
    import urllib.error
    import urllib.request

    from lcp.tracking import settings

    settings.apply_network_defaults()
    timeout = float(os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"])
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        return str(exc.reason)
    except (OSError, ValueError) as exc:  # a timeout, a malformed host or port
        return f"{type(exc).__name__}: {exc}"


def main_relocate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lcp.tracking import settings
    from lcp.tracking.relocate import relocate, store_database

    database = store_database(args.store)
    settings.check_store_exists(f"sqlite:///{database}", elsewhere="name the store's folder or its mlflow.db")
    from_folder = Path(args.from_folder).expanduser().absolute() if args.from_folder else None
    plan = relocate(database, from_folder)
    if not plan.changes:
        print(
            f"{database}: nothing to change, no artifact location points into an earlier place of this store "
            "(if its folder was renamed when it moved, or an earlier lcp relocated its artifact locations but "
            "not its runs' path tags, pass --from OLD_FOLDER)"
        )
    else:
        what = "artifact locations" if plan.old_folders else "the runs' path tags"
        print(f"{database}: {what} moved from {plan.moved_from} to {plan.store}")
        for column, rows in plan.counts().items():
            print(f"  {column}: {rows} row(s)")
        print(f"rewrote {plan.rows} row(s); browse: {settings.mlflow_ui_command(f'sqlite:///{database}')}")
    if plan.left:
        key, old, new = plan.left[0]
        print(
            f"{database}: {len(plan.left)} path tag(s) kept as they are, not found in the new place, "
            f"e.g. {key} {old} (not at {new})"
        )
    return 0
