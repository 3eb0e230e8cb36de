"""One run of the workflow as its rules see it: lcp.workflow's functions bound to the config and
to what only Snakemake knows, handed to the rules as input functions, params and job settings.

workflow/rules/common.smk makes one WorkflowSession after the schema check, passing the config,
Snakemake's `workflow` object, its logger and a `stop` that ends the run with one line; tests
pass stand-ins. While Snakemake builds the DAG, the input functions check what a job would read
(a data set path on disk, a converted set that lost images, a model config with the job's
--cfg-options, the training sets' boxes), each check once and only in the workflow's main
process, and a failed check stops the run before any job starts (in a dry run too).

Input functions and params take Snakemake's wildcards: each by name as an attribute, with
`get(name)` and `keys()`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol

from lcp.errors import LCPError
from lcp.workflow import commands, inputs, paths, resources
from lcp.workflow.checks import (
    converted_set_outdated,
    converted_set_problem,
    report_test_set_problem,
    scene_reference_problems,
    training_set_problems,
)
from lcp.workflow.converters import SYNTHESIS_PATH_OPTIONS, option_paths, recipe_sources
from lcp.workflow.preflight import TEST_SET, check_model_step, clear_unfixable, evaluation_differences
from lcp.workflow.scenes import (
    METHODS,
    TRAINING_RULES,
    converted_sets,
    data_dir,
    dataset_of,
    demo_datasets,
    image_sets,
    scene_of_dataset,
    scene_of_job,
    scene_seeds,
    severities,
    synthesized_sets,
)


class Snakemake(Protocol):
    """What the session reads of Snakemake's `workflow`, each time it needs it (whether the run is
    a dry run is known only once the Snakefile has been read)."""

    is_main_process: bool  # False in a job's own snakemake (on a cluster node), which skips the checks
    dryrun: bool
    touch: bool  # --touch: jobs' outputs are touched, nothing runs
    configfiles: Sequence[str | Path]  # config/config.yaml and each --configfile
    dag: Any  # its needrun_jobs() (onstart only) and jobs (every job of the run's DAG)


class Log(Protocol):
    def error(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...


class Wildcards(Protocol):
    """A job's wildcards, as Snakemake passes them to input functions and params."""

    def __getattr__(self, name: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None: ...

    def keys(self) -> Iterable[str]: ...


class WorkflowSession:
    """The rules' input functions, params and job settings for one config (see the module's doc).

    `stop(message)` ends the run with the message alone and does not return. `job_error`: the
    exception a job's wildcards that name nothing of the config raise (Snakemake's
    WorkflowError, which it shows with the rule and wildcards).

    Constructing it checks what the schema cannot (lcp.workflow.checks.scene_reference_problems,
    image sets that scenes share) and stops on a problem.
    """

    def __init__(
        self,
        config: Mapping,
        workflow: Snakemake,
        log: Log,
        stop: Callable[[str], NoReturn],
        job_error: type[Exception] = LCPError,
    ):
        self.config = config
        self.workflow = workflow
        self.log = log
        self.stop = stop
        self.job_error = job_error
        self._checked: set[Hashable] = set()
        self._reported_missing: set[tuple[str, str]] = set()
        if problems := scene_reference_problems(config):
            stop("invalid config:\n  " + "\n  ".join(problems))
        try:
            self.image_sets = image_sets(config)
        except LCPError as exc:
            stop(str(exc))
        self.scenes = config["scenes"]
        self.data = data_dir(config)
        self.demo_datasets = demo_datasets(config)
        self.converted = converted_sets(config)
        self.synthesized = synthesized_sets(config)

    # ---- checks while the DAG is built (main process only; each once) ----------------------

    def config_source(self) -> str:
        """The workflow config file(s) this run read, for messages: config/config.yaml and any --configfile."""
        files = [
            os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
            for path in self.workflow.configfiles
        ]
        return ", ".join(dict.fromkeys(files)) or "config/config.yaml"

    def once(self, what: Hashable) -> bool:
        """True the first time `what` is asked for in the main process (jobs on a cluster node skip the checks)."""
        if what in self._checked or not self.workflow.is_main_process:
            return False
        self._checked.add(what)
        return True

    def check_converted_sets(self, scene_name: str, *set_names: str) -> None:
        """Stop on a converted image set a job reads that lost images since its conversion; warn
        when its source changed after it (lcp.workflow.checks.converted_set_outdated)."""
        dataset = dataset_of(self.config, scene_name)
        for set_name in set_names:
            if not self.once(("set", dataset, set_name)):
                continue
            if problem := converted_set_problem(self.config, dataset, set_name):
                self.stop(problem)
            if warning := converted_set_outdated(self.config, dataset, set_name):
                self.log.warning(warning)

    def check_training_sets(self, scene_name: str) -> None:
        """Stop when a scene's training sets cannot train it (see lcp.workflow.checks.training_set_problems)."""
        if dataset_of(self.config, scene_name) in self.demo_datasets or not self.once(("scene", scene_name)):
            return
        problem, warnings = training_set_problems(self.config, scene_name, self.config_source())
        for warning in warnings:
            self.log.warning(warning)
        if problem:
            self.stop(problem)

    def check_same_evaluation(self, scene_name: str) -> None:
        """Stop when the scene's baseline and LCP would be tested on other images, annotations or
        classes; warn of other test settings that differ (a robustness test set replaces the same
        keys in both)."""
        if not self.once(("evaluation", scene_name)):
            return
        methods = [
            (self.scenes[scene_name][method]["config"], commands.cfg_options(self.config, scene_name, method))
            for method in METHODS
        ]
        for method, (_, options) in zip(METHODS, methods, strict=True):
            self.preflight(scene_name, method, options)  # each config takes its options: named there if not
        try:
            differences = evaluation_differences(*methods)
        except LCPError as exc:
            self.stop(f"invalid config: {self.config_source()}: scenes.{scene_name}: {exc}")
        where = f"{self.config_source()}: scenes.{scene_name}"
        for name, line in differences:
            if name in TEST_SET:
                self.stop(
                    f"invalid config: {where}: {line}; LCP - baseline compares their APs, so test both on one set"
                )
        for _, line in differences:
            self.log.warning(f"warning: {where}: {line}; LCP - baseline also holds that difference")

    def preflight(self, scene_name: str, step: str, options: Sequence[str]) -> None:
        """Stop when the step's mmdet config does not take the --cfg-options its jobs would pass
        (a misspelt key, a value of the wrong kind); each distinct config and options is read once."""
        if not self.workflow.is_main_process:
            return
        step_config = self.scenes[scene_name][step]
        try:
            check_model_step(
                step_config["config"], options, step_config.get("cfg_options", {}), where=f"scenes.{scene_name}.{step}"
            )
        except LCPError as exc:
            self.stop(f"invalid config: {self.config_source()}: {exc}")

    def existing_paths(self, named_paths: Mapping[str, str]) -> list[str]:
        """`named_paths`: config key -> path that must exist before the run (a data set on disk).

        A missing one is named with its config key, once. A dry run still builds the DAG (the
        path is left out of the job's inputs); a real run stops with snakemake's missing-input error.
        """
        found = []
        for key, path in named_paths.items():
            if not Path(path).exists():
                if (key, path) not in self._reported_missing:
                    self._reported_missing.add((key, path))
                    action = "a real run will stop here" if self.workflow.dryrun else "the run stops here"
                    self.log.error(
                        f"config {key}: {path} does not exist ({action}); "
                        "set the path in config/config.yaml or with --config"
                    )
                if self.workflow.dryrun:
                    continue
            found.append(path)
        return found

    # ---- wildcards -------------------------------------------------------------------------

    def seed_of(self, wildcards: Wildcards, method: str | None = None) -> int:
        """The training seed of a job of the scene's methods, from its {seed_dir} wildcard
        (`method`: the training rule's, else the {method} wildcard)."""
        try:
            return paths.seed_of_dir(
                self.config, wildcards.scene, method or wildcards.get("method"), wildcards.seed_dir
            )
        except LCPError as exc:
            raise self.job_error(str(exc)) from None

    def job_seed(self, wildcards: Wildcards, method: str | None = None) -> int:
        """The seed a training or evaluation job's model is trained with (pretraining: the first)."""
        if "seed_dir" in wildcards.keys():
            return self.seed_of(wildcards, method)
        return scene_seeds(self.config, wildcards.scene)[0]

    def job_scene(self, wildcards: Wildcards) -> str:
        """The job's scene; a data set's job: the first scene of that folder (its settings apply)."""
        return scene_of_job(self.config, wildcards)

    # ---- job settings ----------------------------------------------------------------------

    def job_resources(self, rule_name: str) -> dict[str, Callable[[Wildcards], object]]:
        """`resources:` of a rule, per job from the config (slurm executor names)."""

        def configured(wildcards, name):
            return resources.job_resources(self.config, self.job_scene(wildcards), rule_name)[name]

        def setting(name):
            if name == "cpus_per_task":
                # at least the job's threads, which --set-threads may raise above the config's cpus (a
                # dry run caps threads at its one core, so the config's value is what it shows)
                return lambda wildcards, threads: max(threads, configured(wildcards, name) or 1)
            return lambda wildcards: configured(wildcards, name)

        return {name: setting(name) for name in resources.resource_names(self.config, rule_name)}

    def job_threads(self, rule_name: str) -> Callable[[Wildcards], int | None]:
        return lambda wildcards: resources.resource_setting(self.config, self.job_scene(wildcards), rule_name, "cpus")

    def job_retries(self, rule_name: str) -> int | None:
        """The rule's retries from the config; None leaves them to --retries. A retry runs the job
        again only when it did not fail for a reason a retry cannot fix (see commands.job_command).
        Only the process that runs the workflow retries: a SLURM job's own snakemake read the same
        rule and retried inside each of the controller's attempts ("retries: 3" ran up to 16 times)."""
        if not self.workflow.is_main_process:
            return 0
        return self.config.get("retries", {}).get(rule_name)

    def results_pointers(self, tracking_uri: str | None, caller_path: str) -> list[str]:
        """The last lines of a successful run: the report page of each scene whose report this run
        built or found up to date (the scenes of `run`, or those of the targets named), and how to
        browse the runs (`tracking_uri`: the store, None without tracking), with the `mlflow`
        command as the caller's shell finds it (`caller_path`: its $PATH). A run that built
        other targets (one evaluation) names no report: the scene's report may predate them."""
        from lcp.tracking.settings import mlflow_ui_command

        reported = {job.wildcards["scene"] for job in self.workflow.dag.jobs if job.rule.name == "report"}
        lines = [
            f"scene {scene}: {page}"
            for scene in [s for s in self.config["run"] if s in reported] + sorted(reported - set(self.config["run"]))
            if os.path.exists(page := paths.report_file(scene, "summary.html"))
        ]
        if lines and tracking_uri:
            web = tracking_uri.startswith(("http://", "https://"))
            lines.append(f"runs in MLflow: {tracking_uri if web else mlflow_ui_command(tracking_uri, caller_path)}")
        return lines

    def forget_unfixable_failures(self) -> None:
        """A new run of the workflow tries again the jobs refused in an earlier one (onstart)."""
        clear_unfixable([log for job in self.workflow.dag.needrun_jobs() for log in job.log])

    def refuse_placeholder_models(self) -> None:
        """(onstart) Stop before a job runs on, or `--touch` marks as trained, the placeholder that
        `lcp workdir begin` leaves at a training's checkpoint until it has finished (see
        lcp.workflow.workdir). `--touch` of an unfinished training (the profiles set
        rerun-incomplete) and `--cleanup-metadata` of one (what snakemake's "incomplete" message
        proposes) make Snakemake take that text file for the model: the evaluations then fail on
        "not a PyTorch checkpoint" in every run, and the training is never run again."""
        from lcp.workflow.workdir import is_placeholder

        if not self.workflow.is_main_process:
            return
        dag = self.workflow.dag
        jobs = list(dag.needrun_jobs())

        def checkpoints(of_jobs) -> set[str]:
            return {str(path) for job in of_jobs if job.rule.name in TRAINING_RULES for path in job.output}

        # only the trainings' checkpoints can be placeholders: an image set's thousands of files stay unread
        placeholders = {path for path in checkpoints(dag.jobs) if is_placeholder(path)}
        training = checkpoints(jobs)
        touched = sorted(placeholders & training) if self.workflow.touch else []
        read = sorted({str(path) for job in jobs for path in job.input if str(path) in placeholders - training})
        if touched:
            self.stop(
                f"{touched[0]}: the placeholder of a training that has not finished: --touch would mark it "
                "a trained model; run without --touch to finish the training"
            )
        if read:
            self.stop(
                f"{read[0]}: the placeholder of a training that has not finished, marked complete without "
                f"training (snakemake --touch or --cleanup-metadata); train it: snakemake --forcerun {' '.join(read)}"
            )

    def note_interrupted_trainings(self) -> None:
        """(onstart) The training jobs that run again only because an interrupted run of the
        workflow left their outputs incomplete (a SIGINT to snakemake alone lets running jobs
        finish, then marks their outputs so; a lost controller's cluster jobs run on): `lcp
        workdir begin` keeps their finished runs instead of training again
        (workdir.INTERRUPTED_TRAININGS). Snakemake counts those outputs among the forced ones;
        what the user forced (--forcerun, --forceall, -f/-F) is left out, and trains again."""
        from lcp.workflow.workdir import record_interrupted_trainings  # imports lcp.tracking, not needed before

        if not self.workflow.is_main_process:
            return
        dag, settings = self.workflow.dag, self.workflow.dag_settings
        rule_names = {rule.name for rule in self.workflow.rules}
        forced_files = {os.path.abspath(str(item)) for item in settings.forcerun or () if str(item) not in rule_names}
        kept = []
        for job in dag.needrun_jobs():
            if job.rule.name not in TRAINING_RULES or job.rule in dag.forcerules or settings.forcetargets:
                continue
            outputs = [os.path.abspath(str(path)) for path in job.output]
            if not forced_files.intersection(outputs) and not dag.forcefiles.isdisjoint(job.output):
                kept += outputs
        record_interrupted_trainings(kept)

    # ---- inputs ----------------------------------------------------------------------------

    def image_set(self, wildcards: Wildcards) -> tuple[dict, str]:
        """The recipe of the {dataset}/{imageset} a job makes, and the config key defining it."""
        found = self.image_sets.get((wildcards.dataset, wildcards.imageset))
        if found is None:
            defined = sorted("/".join(where) for where in self.image_sets)
            raise self.job_error(
                f"{self.data}/{wildcards.dataset}/{wildcards.imageset}: no scene of the config makes this image set "
                f"(it makes {', '.join(defined)})"
            )
        return found

    def check_severity(self, wildcards: Wildcards) -> None:
        """A robustness job's {severity} must be one of its scene's sweep."""
        sweep = severities(self.config, wildcards.scene)
        if wildcards.severity not in sweep:
            has = f"its sweep has {', '.join(sweep)}" if sweep else "it has no robustness sweep"
            raise self.job_error(f"{wildcards.severity}: not a severity of scene {wildcards.scene} ({has})")

    def convert_sources(self, wildcards: Wildcards) -> list[str]:
        """The data set a converted image set is made from, and any other folders its options name."""
        return self.existing_paths(recipe_sources(*self.image_set(wildcards)))

    def synthesis_sources(self, wildcards: Wildcards) -> list[str]:
        """The clean image set a synthesised set is made from, and any depth folders it reads."""
        recipe, key = self.image_set(wildcards)
        scene_name = scene_of_dataset(self.config, wildcards.dataset)
        self.check_converted_sets(scene_name, recipe["from"])
        clean = paths.image_set_files(self.config, scene_name, recipe["from"])
        return clean + self.existing_paths(option_paths(recipe.get("options", {}), key, SYNTHESIS_PATH_OPTIONS))

    def robustness_sources(self, wildcards: Wildcards) -> list[str]:
        """The clean test set the sweep degrades, and any depth folders it reads."""
        self.check_severity(wildcards)
        scene = self.scenes[wildcards.scene]
        self.check_converted_sets(wildcards.scene, scene["clean_set"])
        clean = paths.image_set_files(self.config, wildcards.scene, scene["clean_set"], ["test"])
        key = f"scenes.{wildcards.scene}.robustness"
        options = scene["robustness"].get("options", {})
        return clean + self.existing_paths(option_paths(options, key, SYNTHESIS_PATH_OPTIONS))

    def check_inputs(self, wildcards: Wildcards) -> dict[str, list[str]]:
        """The clean and the low-quality set the data check compares."""
        scene = self.scenes[wildcards.scene]
        self.check_converted_sets(wildcards.scene, scene["clean_set"], scene["lowq_set"])
        return {
            role: paths.image_set_files(self.config, wildcards.scene, scene[f"{role}_set"])
            for role in ("clean", "lowq")
        }

    def scenes_pretraining(self, imported: bool) -> list[str]:
        """The scenes whose pretrained detector is imported (`pretrain.checkpoint`) or, if not, trained here."""
        return [name for name, scene in self.scenes.items() if ("checkpoint" in scene["pretrain"]) == imported]

    def pretrained_checkpoint(self, wildcards: Wildcards) -> list[str]:
        key = f"scenes.{wildcards.scene}.pretrain.checkpoint"
        return self.existing_paths({key: self.scenes[wildcards.scene]["pretrain"]["checkpoint"]})

    def training_inputs(self, step: str) -> Callable[[Wildcards], dict]:
        """The input function of a training step's rule (lcp.workflow.inputs.training_inputs), after its checks."""

        def named(wildcards):
            self.preflight(wildcards.scene, step, commands.cfg_options(self.config, wildcards.scene, step))
            self.check_training_sets(wildcards.scene)
            self.check_converted_sets(wildcards.scene, *inputs.training_sets(self.config, wildcards.scene, step))
            return inputs.training_inputs(self.config, wildcards.scene, step)

        return named

    def evaluation_inputs(self, wildcards: Wildcards) -> dict:
        """A method's config, checkpoint and test set ({severity}: a robustness test set), after their checks."""
        severity = wildcards.get("severity")
        test_set = commands.test_set(wildcards.scene, severity)
        options = commands.cfg_options(self.config, wildcards.scene, wildcards.method, test_set)
        self.preflight(wildcards.scene, wildcards.method, options)
        self.check_same_evaluation(wildcards.scene)
        if not severity:
            self.check_converted_sets(wildcards.scene, self.scenes[wildcards.scene]["lowq_set"])
        return inputs.evaluation_inputs(
            self.config, wildcards.scene, wildcards.method, self.seed_of(wildcards), severity
        )

    def first_model_inputs(self, method: str | None = None) -> Callable[[Wildcards], dict]:
        """The method (None: the {method} wildcard)'s model of the first seed on the low-quality
        test set (heat maps, sample detections)."""

        def named(wildcards):
            model = method or wildcards.method
            self.preflight(wildcards.scene, model, commands.cfg_options(self.config, wildcards.scene, model))
            self.check_converted_sets(wildcards.scene, self.scenes[wildcards.scene]["lowq_set"])
            # a warning, not a stop: Snakemake asks these inputs also of runs that draw nothing
            # (`--forcerun train_lcp results/demo/lcp/eval.json`), and the drawing jobs refuse anyway
            if self.once(("report", wildcards.scene)):
                if problem := report_test_set_problem(self.config, wildcards.scene, self.config_source()):
                    self.log.warning(f"warning: {problem}")
            return inputs.first_model_inputs(self.config, wildcards.scene, model)

        return named

    # ---- params (from wildcards only: snakemake ignores params computed from `input` when
    # deciding whether a changed setting calls for a rerun) -----------------------------------

    def demo_setting(self, key: str, default: object) -> Callable[[Wildcards], object]:
        """A setting of the `demo` of the scene whose data set a demo data job generates."""
        return lambda wildcards: self.scenes[self.demo_datasets[wildcards.dataset]]["demo"].get(key, default)

    def test_args(self, wildcards: Wildcards) -> str:
        """Arguments of `lcp test`: the method's config and checkpoint on the wanted test set."""
        return commands.test_args(
            self.config, wildcards.scene, wildcards.method, self.seed_of(wildcards), wildcards.get("severity")
        )

    def train_args(self, step: str) -> Callable[[Wildcards], str]:
        """A training rule's `lcp train` arguments (they also identify the run for resuming)."""
        return lambda wildcards: commands.train_args(self.config, wildcards.scene, step, self.job_seed(wildcards, step))

    def train_gpus(self, rule_name: str) -> Callable[..., str]:
        """`--gpus N` of a training rule on several GPUs. It takes `input` so that, like the job's
        other resources, it is no rerun trigger: moving a finished training to more GPUs does not
        retrain it."""
        return lambda wildcards, input: resources.train_gpus_option(self.config, wildcards.scene, rule_name)
