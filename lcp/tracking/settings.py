"""Where runs go and what they are called: tracking URI, experiment and run names, env vars.

Kept free of mlflow imports so that the `lcp` command line starts fast.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from lcp.errors import LCPError

# The environment contract between the workflow, the jobs and this package.
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_INVOCATION_ID = "LCP_INVOCATION_ID"
ENV_PARENT_RUN_IDS = "LCP_MLFLOW_PARENT_RUN_IDS"  # json object {scene: parent run id}
ENV_SNAKEMAKE_RULE = "LCP_SNAKEMAKE_RULE"
ENV_SNAKEMAKE_WILDCARDS = "LCP_SNAKEMAKE_WILDCARDS"  # json object {wildcard: value}
# The training seed of the job's model: set by the workflow for training and evaluation jobs
# and by `lcp train` for its own run; it becomes the tag lcp.seed.
ENV_SEED = "LCP_SEED"
# "off" when the workflow runs without tracking (its config's tracking.enabled): the check
# and report jobs' `lcp tracking log-artifacts` then does nothing. Their command is the same
# either way, so that switching tracking changes no job's code, a rerun trigger.
ENV_TRACKING = "LCP_TRACKING"

# The $PATH of the shell that started the workflow (its jobs' PATH has lcp's venv in front): the
# `mlflow` a job's log tells the user to run is the one that shell finds.
ENV_CALLER_PATH = "LCP_CALLER_PATH"

# Set (to 1/true/yes) to register each training's final checkpoint in the model registry as a
# version of `lcp-<scene>-<method>` (lcp train --register-model does the same for one run).
ENV_REGISTER_MODEL = "LCP_REGISTER_MODEL"

# MLflow's UI shows an experiment without this tag in its GenAI view (traces, judges); with it,
# as a model-training experiment (runs, metrics, models). The description is MLflow's note.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"

# A dead tracking server must cost seconds, not MLflow's default of minutes of retries; a
# failed request is not retried on the spot but journalled and replayed later (TrackedRun).
NETWORK_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}

EXPERIMENT_PREFIX = "lcp/"
LOCAL_STORE_DIR = Path("results") / "mlflow"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

# Tags every lcp run carries (besides MLflow's own mlflow.runName / mlflow.parentRunId).
TAG_SCENE = "lcp.scene"
TAG_STEP = "lcp.step"
TAG_METHOD = "lcp.method"
TAG_VARIANT = "lcp.variant"
TAG_SEED = "lcp.seed"
TAG_IOU_THRS = "lcp.iou_thrs"  # an evaluation at other IoU thresholds than COCO's 0.50:0.95
TAG_RUN_KEY = "lcp.run_key"
TAG_REPLACES_RUN = "lcp.replaces_run"
TAG_INVOCATION = "lcp.invocation_id"
TAG_ROLE = "lcp.role"  # "invocation" on the parent runs
TAG_WORKFLOW_DIR = "lcp.workflow_dir"  # on the parent runs: the folder the workflow ran in
TAG_CONTROLLER = "lcp.controller"  # on the parent runs: "<host> <pid> <start>" of the snakemake process
TAG_ENDED_BY = "lcp.ended_by"  # on a run ended as KILLED by another than its own process: by what
# on a parent run: the scene's seeds and sweep severities in the workflow config it ran with
TAG_SEEDS = "lcp.seeds"
TAG_VARIANTS = "lcp.variants"


def apply_network_defaults() -> None:
    """Short MLflow HTTP timeouts and retries, unless the user chose their own."""
    for name, value in NETWORK_DEFAULTS.items():
        os.environ.setdefault(name, value)
    check_network_settings()


def check_network_settings() -> None:
    """LCPError for a timeout or retry count the user set that is not a whole number: MLflow
    reads both with int(), and its traceback named neither."""
    for name, default in NETWORK_DEFAULTS.items():
        value = os.environ.get(name, default)
        try:
            int(value)
        except ValueError:
            raise LCPError(
                f"environment variable {name}={value!r}: not a whole number (lcp's default: {default})"
            ) from None


def project_root(start: Path | None = None) -> Path:
    """The enclosing git checkout of `start` (default: the current folder), else `start` itself."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


@dataclass(frozen=True)
class TrackingTarget:
    uri: str
    # Where new experiments keep artifacts; None lets the store or server decide.
    artifact_location: str | None


def local_store(root: Path | None = None) -> TrackingTarget:
    """The default store: results/mlflow/mlflow.db (sqlite) with artifacts beside it."""
    folder = project_root(root) / LOCAL_STORE_DIR
    return TrackingTarget(uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_location=(folder / "artifacts").as_uri())


def resolve_target(configured: str | None = None) -> TrackingTarget:
    """MLFLOW_TRACKING_URI, else the configured URI, else the local store under results/."""
    uri = os.environ.get(ENV_TRACKING_URI) or configured
    if not uri:
        return local_store()
    return target_of(uri)


def target_of(uri: str) -> TrackingTarget:
    """The store at `uri`, with where its new experiments keep artifacts (None: the store decides)."""
    return TrackingTarget(uri=uri, artifact_location=sqlite_artifact_location(uri))


def tracking_on(track: bool | None, tracking_uri: str | None) -> bool:
    """Whether `lcp train` / `lcp test` track: --track or --no-track when given, else whether a store is
    named (--tracking-uri or MLFLOW_TRACKING_URI)."""
    if track is not None:
        return track
    return bool(tracking_uri or os.environ.get(ENV_TRACKING_URI))


def sync_uri(flag: str | None) -> str | None:
    """Where `lcp tracking sync` sends: the flag, then MLFLOW_TRACKING_URI; None: each journal's own URI."""
    return flag or os.environ.get(ENV_TRACKING_URI) or None


# Where MLflow 3 keeps runs besides the file store; a database is a SQLAlchemy URL (scheme+driver).
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})
STORE_SCHEMES = DATABASE_SCHEMES | {"http", "https", "databricks", "databricks-uc"}


def check_target(target: TrackingTarget) -> TrackingTarget:
    """LCPError for a store MLflow 3 refuses: the file store (./mlruns, file://) without its opt-in,
    a scheme MLflow has no store for (a typo: htp://), a database whose driver is not installed, or
    MLflow network settings it cannot read."""
    check_network_settings()
    file_store = target.uri.startswith("file:") or "://" not in target.uri and not target.uri.startswith("databricks")
    if file_store and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
        raise LCPError(
            f"tracking URI {target.uri}: MLflow 3 no longer writes the file store; use "
            "sqlite:///PATH/mlflow.db or http://HOST:PORT (or set MLFLOW_ALLOW_FILE_STORE=true)"
        )
    scheme = target.uri.split(":", 1)[0].split("+", 1)[0].lower()
    if not file_store and scheme not in STORE_SCHEMES:
        raise LCPError(
            f"tracking URI {target.uri}: MLflow has no store for '{scheme}:'; "
            f"use sqlite:///PATH/mlflow.db or http://HOST:PORT (or {', '.join(sorted(DATABASE_SCHEMES))})"
        )
    if scheme in DATABASE_SCHEMES:
        try:
            import sqlalchemy

            sqlalchemy.create_engine(target.uri)  # imports the driver, connects to nothing
        except Exception as exc:  # noqa: BLE001  ImportError, or an ArgumentError of a malformed URL
            raise LCPError(f"tracking URI {target.uri}: {type(exc).__name__}: {exc}") from None
    return target


def sqlite_database(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (sqlite:////abs/path or sqlite:///relative/path)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :].split("?", 1)[0]).resolve()


def sqlite_artifact_location(uri: str) -> str | None:
    """A server-less sqlite store keeps artifacts in an `artifacts` folder beside the database."""
    database = sqlite_database(uri)
    return (database.parent / "artifacts").as_uri() if database else None


def missing_store(uri: str) -> Path | None:
    """The database file of a sqlite URI when it does not exist (opening it would create it)."""
    database = sqlite_database(uri)
    return database if database and not database.is_file() else None


def check_store_exists(
    uri: str, elsewhere: str = "set MLFLOW_TRACKING_URI or --tracking-uri to read another store"
) -> None:
    """LCPError for a sqlite store not created yet: commands that only read must not create one.
    `elsewhere`: how the command is pointed at another store."""
    database = missing_store(uri)
    if database:
        raise LCPError(f"{database}: no MLflow store here, nothing was logged to it ({elsewhere})")


def prepare_local_store(uri: str) -> None:
    """Create the folder of a sqlite database; MLflow creates the file but not its folder."""
    database = sqlite_database(uri)
    if database:
        database.parent.mkdir(parents=True, exist_ok=True)


def check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise LCPError(f"{what} {value!r}: use ASCII letters, digits, '_', '.', '-' (starting with a letter or digit)")
    return value


def experiment_name(scene: str) -> str:
    return EXPERIMENT_PREFIX + check_name("scene", scene)


def run_name(scene: str, step: str, method: str, variant: str | None = None, seed: str | None = None) -> str:
    """`{scene}/{step}/{method}[/{variant}][/{seed}]`: runs of the same step line up across methods,
    and the runs of a scene's several seeds (`seed`: `seed<N>`, job_seed_name) are told apart."""
    parts = [check_name("scene", scene), check_name("step", step), check_name("method", method)]
    if variant:
        parts.append(check_name("variant", variant))
    if seed:
        parts.append(check_name("seed", seed))
    return "/".join(parts)


def job_seed_name() -> str | None:
    """`seed<N>` for a workflow job of one of a scene's several seeds (its {seed_dir} wildcard,
    as its results folder says), else None: a scene of one seed keeps its run names."""
    return snakemake_wildcards().get("seed_dir", "").strip("/") or None


def registered_model_name(scene: str, method: str) -> str:
    """The model-registry name of a scene's trained detectors of one method (no '/' allowed there)."""
    return f"lcp-{check_name('scene', scene)}-{check_name('method', method)}"


def register_model_wanted(flag: bool | None = None) -> bool:
    """The flag when given, else LCP_REGISTER_MODEL; LCPError for a value that is not a yes or no."""
    if flag is not None:
        return flag
    raw = os.environ.get(ENV_REGISTER_MODEL, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise LCPError(f"${ENV_REGISTER_MODEL}: expected 1/true/yes or 0/false/no, got {raw!r}")


def _env_json_object(name: str, expected: str, valid=lambda value: True) -> dict:
    """The JSON object held by environment variable `name` (empty when unset); LCPError otherwise."""
    raw = os.environ.get(name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LCPError(f"${name}: not valid JSON ({exc}): {raw!r}") from None
    if not isinstance(value, dict) or not valid(value):
        raise LCPError(f"${name}: expected {expected}, got {raw!r}")
    return value


def snakemake_wildcards() -> dict[str, str]:
    """LCP_SNAKEMAKE_WILDCARDS as a dict (empty when unset); LCPError when it is not a json object."""
    wildcards = _env_json_object(ENV_SNAKEMAKE_WILDCARDS, "a JSON object of wildcards")
    return {str(k): str(v) for k, v in wildcards.items()}


def parent_run_ids() -> dict[str, str]:
    """LCP_MLFLOW_PARENT_RUN_IDS as a dict {scene: run id}; LCPError when malformed."""
    return _env_json_object(
        ENV_PARENT_RUN_IDS,
        "a JSON object {scene: run id}",
        lambda value: all(isinstance(v, str) for v in value.values()),
    )


def snakemake_env_prefix(rule: str, wildcards, seed: int | None = None) -> str:
    """`LCP_SNAKEMAKE_RULE=... LCP_SNAKEMAKE_WILDCARDS='{...}' [LCP_SEED=N]`, to put before a
    job's command (wildcards that matched nothing are left out)."""
    import shlex

    pairs = wildcards.items() if hasattr(wildcards, "items") else wildcards  # snakemake's Wildcards too
    values = {str(k): str(v) for k, v in pairs if not str(k).startswith("_") and str(v) != ""}
    prefix = (
        f"{ENV_SNAKEMAKE_RULE}={shlex.quote(rule)} "
        f"{ENV_SNAKEMAKE_WILDCARDS}={shlex.quote(json.dumps(values, sort_keys=True))}"
    )
    return prefix if seed is None else f"{prefix} {ENV_SEED}={int(seed)}"


def job_seed() -> int | None:
    """LCP_SEED as a number (None when unset); LCPError when it is not a non-negative integer."""
    raw = os.environ.get(ENV_SEED, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise LCPError(f"${ENV_SEED}: expected a non-negative integer seed, got {raw!r}")
    return int(raw)


def mlflow_ui_command(uri: str, search_path: str | None = None) -> str:
    """The shell command that browses a local store: the `mlflow` of lcp's own environment,
    named by its path where `mlflow` on `search_path` (default: the workflow's caller's $PATH in
    its jobs, else $PATH) is another one or none (a venv not activated)."""
    if search_path is None:
        search_path = os.environ.get(ENV_CALLER_PATH)
    own = Path(sys.executable).parent / "mlflow"
    found = shutil.which("mlflow", path=search_path)
    command = "mlflow" if not own.exists() or (found and Path(found).resolve() == own.resolve()) else str(own)
    if command != "mlflow" and own.is_relative_to(Path.cwd()):
        command = str(own.relative_to(Path.cwd()))
    return f"{shlex.quote(command)} ui --backend-store-uri {shlex.quote(uri)}"
