# Glue between the rules and lcp.workflow, which holds the workflow's logic as plain Python
# unit-tested without Snakemake: functions of the config (scenes, paths, command lines,
# resources) and lcp.workflow.session.WorkflowSession, which binds them to this run for the
# rules (input functions with their checks, params, job settings). Here: only what needs
# Snakemake itself (the schema check, stopping with one line, `report()`, wildcard constraints).
# tracking.smk adds MLflow's invocation and job flags; the other .smk files hold rules only.
# Every rule file reaches the session as `session`.

import os
import sys
from pathlib import Path

from jsonschema.exceptions import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from lcp.data import SPLITS
from lcp.tracking.settings import ENV_CALLER_PATH
from lcp.workflow import commands, inputs, paths
from lcp.workflow.config_errors import describe as describe_schema_error
from lcp.workflow.preflight import UNFIXABLE_FUNCTIONS
from lcp.workflow.overrides import retype_config_overrides
from lcp.workflow.scenes import METHODS, NAME_PATTERN, alternatives
from lcp.workflow.session import WorkflowSession

# Jobs call the `lcp` of the Python environment snakemake runs from, activated or not.
# (a SLURM job's own snakemake inherits the jobs' PATH: the caller's is the one exported here)
if workflow.is_main_process:
    os.environ[ENV_CALLER_PATH] = os.environ.get("PATH", "")
CALLER_PATH = os.environ.get(ENV_CALLER_PATH, os.environ.get("PATH", ""))
os.environ.update(PATH=os.pathsep.join([str(Path(sys.executable).parent), CALLER_PATH]))
# Every job's shell: bash's strict mode (Snakemake's own prefix) and the functions of the guard
# against retrying a refused job (commands.job_command); braces doubled for Snakemake's format.
shell.prefix("set -euo pipefail; " + UNFIXABLE_FUNCTIONS.replace("{", "{{").replace("}", "}}"))


def stop(message):
    """End the run before any job starts, with the message alone (no traceback)."""
    logger.error(message)
    sys.exit(1)


def validate_config(config):
    """Schema check (it also fills in the schema's defaults), with one readable line naming the offending key."""
    try:
        validate(config, "../schemas/config.schema.yaml")
    except WorkflowError as exc:
        error = exc.__context__
        if not isinstance(error, ValidationError):
            raise
        stop(f"invalid config: {describe_schema_error(error)}")


retype_config_overrides(config, workflow.config_settings.config)
validate_config(config)
# the config's other checks stop here; the DAG's checks run as its jobs' inputs are asked for
session = WorkflowSession(config, workflow, logger, stop, job_error=WorkflowError)


def labelled_pictures(pictures, name, subcategory, caption, **labels):
    """Named outputs `name_<i>` for `pictures`, each marked for the report as 'test image <i+1>'."""
    return {
        f"{name}_{index}": report(
            path,
            caption=caption,
            category="{scene}",
            subcategory=subcategory,
            labels={"image": f"test image {index + 1}", **labels},
        )
        for index, path in enumerate(pictures)
    }


wildcard_constraints:
    scene=alternatives(session.scenes),
    method="|".join(METHODS),
    # empty where a scene trains one seed (results/<scene>/<method>/...), else seed<N>/
    seed_dir="(seed[0-9]+/)?",
    dataset=NAME_PATTERN,
    imageset=NAME_PATTERN,
    severity=NAME_PATTERN,
