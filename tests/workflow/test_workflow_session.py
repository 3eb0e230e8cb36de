"""lcp.workflow.session without Snakemake: the checks the rules' input functions run while the
DAG is built, and what they and the params hand Snakemake, with stand-ins for Snakemake's
workflow object, logger and `stop` (which ends the run; here it raises Stopped)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Wildcards  # what Snakemake passes input functions and params

from helpers.workflow import converted_clear, prepare_workdir, repo_config
from lcp.workflow.preflight import UNFIXABLE_SUFFIX
from lcp.workflow.session import WorkflowSession

SOURCE = "test-config.yaml"  # prepare_workdir's config file, relative to the working directory


class Stopped(Exception):
    pass


def stop(message):
    raise Stopped(message)


class Log:
    def __init__(self):
        self.errors, self.warnings = [], []

    def error(self, message):
        self.errors.append(message)

    def warning(self, message):
        self.warnings.append(message)


class JobError(Exception):
    pass


def wildcards(**values):
    return Wildcards(fromdict=values)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory like a workflow run's: the model configs linked, no data yet."""
    prepare_workdir(tmp_path, repo_config())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def start(config=None, *, dryrun=True, main=True):
    """A session as common.smk makes it, over `config` (default: the repository's)."""
    workflow = SimpleNamespace(is_main_process=main, dryrun=dryrun, configfiles=[Path(SOURCE).resolve()])
    return WorkflowSession(repo_config() if config is None else config, workflow, Log(), stop, job_error=JobError)


# ---- on construction ----------------------------------------------------------------------


def test_config_problems_beyond_the_schema_stop_the_run_on_construction(workdir):
    config = repo_config()
    config["run"] = ["demo", "fog"]
    config["scenes"]["urpc"]["lowq_set"] = "murky"
    with pytest.raises(Stopped) as stopped:
        start(config)
    assert str(stopped.value) == (
        "invalid config:\n"
        "  run: scene 'fog' is not defined under scenes (demo, urpc, foggy_city, rainy_city, custom)\n"
        "  scenes.urpc.lowq_set: 'murky' is not an image set of the scene (dfui, urpc)"
    )
    config = repo_config()
    config["scenes"]["rainy_city"]["image_sets"]["city_images"]["path"] = "/elsewhere"
    with pytest.raises(Stopped, match="^invalid config: scenes.rainy_city.image_sets.city_images differs from"):
        start(config)


def test_the_shipped_config_gives_the_rules_its_data_sets(workdir):
    session = start()
    assert session.data == "data"
    assert session.demo_datasets == {"demo": "demo"}
    assert ("city", "city_images") in session.converted and ("custom", "foggy") in session.synthesized
    assert session.log.errors == [] and session.log.warnings == []


# ---- data sets on disk --------------------------------------------------------------------


def test_a_missing_data_set_is_named_once_with_its_key_and_left_out_of_a_dry_runs_inputs(workdir):
    session = start(dryrun=True)
    job = wildcards(dataset="urpc", imageset="urpc")
    assert session.convert_sources(job) == []
    assert session.convert_sources(job) == []  # asked again while the DAG is built: no second line
    assert session.log.errors == [
        "config scenes.urpc.image_sets.urpc.path: /datasets/URPC2020 does not exist "
        "(a real run will stop here); set the path in config/config.yaml or with --config"
    ]


def test_a_real_run_keeps_a_missing_data_set_as_an_input_so_that_snakemake_stops(workdir):
    session = start(dryrun=False)
    assert session.convert_sources(wildcards(dataset="urpc", imageset="urpc")) == ["/datasets/URPC2020"]
    assert session.log.errors == [
        "config scenes.urpc.image_sets.urpc.path: /datasets/URPC2020 does not exist "
        "(the run stops here); set the path in config/config.yaml or with --config"
    ]
    # whether the run is a dry run is read when asked: Snakemake knows it only after the Snakefile
    session.workflow.dryrun = True
    assert session.convert_sources(wildcards(dataset="urpc", imageset="dfui")) == []
    assert session.log.errors[-1].endswith(
        "/datasets/DFUI does not exist (a real run will stop here); set the path in config/config.yaml or with --config"
    )


def test_a_data_set_that_exists_is_an_input_without_a_message(workdir):
    config = repo_config()
    config["scenes"]["urpc"]["image_sets"]["urpc"]["path"] = str(workdir)
    session = start(config)
    assert session.convert_sources(wildcards(dataset="urpc", imageset="urpc")) == [str(workdir)]
    assert session.log.errors == []


def test_an_imported_checkpoint_that_is_missing_is_named_with_its_key(workdir):
    config = repo_config()
    config["scenes"]["urpc"]["pretrain"]["checkpoint"] = "checkpoints/dfui.pth"
    session = start(config, dryrun=False)
    assert session.pretrained_checkpoint(wildcards(scene="urpc")) == ["checkpoints/dfui.pth"]
    assert session.log.errors == [
        "config scenes.urpc.pretrain.checkpoint: checkpoints/dfui.pth does not exist "
        "(the run stops here); set the path in config/config.yaml or with --config"
    ]


def test_each_scene_is_pretrained_here_or_imported_never_both(workdir):
    config = repo_config()
    config["scenes"]["urpc"]["pretrain"]["checkpoint"] = "checkpoints/dfui.pth"
    session = start(config)
    imported, trained = session.scenes_pretraining(imported=True), session.scenes_pretraining(imported=False)
    assert imported == ["urpc"] and "demo" in trained
    assert sorted(imported + trained) == sorted(config["scenes"])


# ---- checks while the DAG is built --------------------------------------------------------


def test_a_converted_set_that_lost_images_stops_the_run_when_a_job_reads_it(workdir):
    converted_clear(workdir / "data", ["a.jpg", "b.jpg"])
    with pytest.raises(Stopped) as stopped:
        start().check_inputs(wildcards(scene="custom"))
    assert str(stopped.value) == (
        "data/custom/clear: 1 of the 2 images of data/custom/annotations/clear_train.json are missing, the "
        "first b.jpg (changed since scenes.custom.image_sets.clear was converted); convert it again: "
        "remove data/custom/clear and the workflow remakes it"
    )
    # a job's own snakemake (on a cluster node) checks nothing: the main process did
    assert start(main=False).check_inputs(wildcards(scene="custom")) == {
        "clean": [
            "data/custom/clear",
            "data/custom/annotations/clear_train.json",
            "data/custom/annotations/clear_test.json",
        ],
        "lowq": [
            "data/synthesized/custom/foggy",
            "data/synthesized/custom/foggy_train.json",
            "data/synthesized/custom/foggy_test.json",
        ],
    }


def test_each_set_is_checked_once_per_run(workdir):
    folder = converted_clear(workdir / "data", ["a.jpg"])
    session = start()
    job = wildcards(scene="custom")
    session.check_inputs(job)
    (folder / "a.jpg").unlink()  # lost after the check: the same run does not read the set again
    session.check_inputs(job)
    session.synthesis_sources(wildcards(dataset="custom", imageset="foggy"))
    with pytest.raises(Stopped, match="1 of the 1 images"):
        start().check_inputs(job)  # a new run does


def test_training_sets_that_cannot_train_the_scene_stop_the_run_naming_the_config_file(workdir):
    config = repo_config()
    config["scenes"]["custom"]["lowq_set"] = "clear"
    with pytest.raises(Stopped) as stopped:
        start(config).check_training_sets("custom")
    assert str(stopped.value).startswith(
        f"invalid config: {SOURCE}: scenes.custom: clean_set and lowq_set are the same image set 'clear'; "
    )
    # in a job's own snakemake, and for a generated scene, nothing is read
    start(config, main=False).check_training_sets("custom")
    config["scenes"]["demo"]["lowq_set"] = "clean"
    start(config).check_training_sets("demo")


def test_a_class_without_boxes_is_warned_about_once(workdir):
    converted_clear(workdir / "data", ["a.jpg"])
    session = start()
    session.check_training_sets("custom")
    session.check_training_sets("custom")
    assert session.log.warnings == [
        "warning: data/custom/annotations/clear_train.json: no box of car (classes of scenes.custom) in the "
        "train split of scenes.custom.clean_set 'clear'; the detector never learns it"
    ]


@pytest.mark.slow
def test_cfg_options_a_model_config_does_not_take_stop_the_run_before_the_job(workdir):
    config = repo_config()
    config["scenes"]["demo"]["lcp"]["cfg_options"]["runner.max_epoch"] = 6
    job = wildcards(scene="demo", method="lcp", seed_dir="seed0/")
    with pytest.raises(Stopped) as stopped:
        start(config).evaluation_inputs(job)
    assert str(stopped.value) == (
        f"invalid config: {SOURCE}: scenes.demo.lcp.cfg_options: runner.max_epoch: the config has no key "
        "runner.max_epoch (did you mean runner.max_epochs?); to add a new key, write "
        "+runner.max_epoch=VALUE (in config/mmdet/lcp_tiny_demo.py)"
    )
    inputs = start(config, main=False).evaluation_inputs(job)
    assert inputs.pop("bases")[-1] == "config/mmdet/_base_/default_runtime.py"
    assert inputs == {
        "config": "config/mmdet/lcp_tiny_demo.py",
        "checkpoint": "results/demo/lcp/seed0/latest.pth",
        "data": ["data/demo"],
    }


def test_a_target_outside_the_config_is_refused_in_one_line(workdir):
    """A severity no sweep has, or an image set no scene makes, was planned and failed in its job
    (`--beta: invalid float value: 'abc'`) or stopped the DAG with a KeyError."""
    session = start()
    with pytest.raises(
        JobError, match=r"^beta_abc: not a severity of scene demo \(its sweep has beta_0.02, beta_0.08\)$"
    ):
        session.robustness_sources(wildcards(scene="demo", severity="beta_abc"))
    with pytest.raises(JobError, match=r"^beta_0.02: not a severity of scene urpc \(it has no robustness sweep\)$"):
        session.robustness_sources(wildcards(scene="urpc", severity="beta_0.02"))
    for making in (session.convert_sources, session.synthesis_sources):
        with pytest.raises(JobError, match=r"^data/urpc/city_images: no scene of the config makes this image set"):
            making(wildcards(dataset="urpc", imageset="city_images"))
    assert session.robustness_sources(wildcards(scene="demo", severity="beta_0.02"))


# ---- wildcards, params and job settings ---------------------------------------------------


def test_a_jobs_seed_comes_from_its_seed_folder(workdir):
    session = start()
    assert session.job_seed(wildcards(scene="demo", method="lcp", seed_dir="seed2/")) == 2
    assert session.job_seed(wildcards(scene="demo")) == 0  # pretraining: the scene's first seed
    assert " --seed 1 " in session.train_args("lcp")(wildcards(scene="demo", seed_dir="seed1/"))
    evaluation = session.test_args(wildcards(scene="demo", method="baseline", seed_dir="seed1/", severity="beta_0.02"))
    assert " results/demo/baseline/seed1/latest.pth " in evaluation
    assert "test_img_dir=robustness/demo/beta_0.02/" in evaluation
    with pytest.raises(JobError, match=r"^results/demo/lcp/seed7/: scene demo trains seeds \[0, 1, 2\]"):
        session.seed_of(wildcards(scene="demo", method="lcp", seed_dir="seed7/"))
    with pytest.raises(JobError, match="in the method's folder itself"):
        session.job_seed(wildcards(scene="urpc", seed_dir="seed0/"), "baseline")


def test_a_data_set_jobs_settings_are_those_of_the_first_scene_reading_it(workdir):
    config = repo_config()
    config["scenes"]["rainy_city"]["resources"] = {"convert_image_set": {"cpus": 2}}
    session = start(config)
    city = wildcards(dataset="city", imageset="city_images")
    assert session.job_threads("convert_image_set")(city) == 8  # foggy_city's, defined first
    assert session.job_threads("convert_image_set")(wildcards(dataset="demo")) == 1
    train = session.job_resources("train_lcp")
    urpc = wildcards(scene="urpc", seed_dir="")
    assert session.job_threads("train_lcp")(urpc) == 8
    cpus = train.pop("cpus_per_task")
    assert (cpus(urpc, threads=12), cpus(urpc, threads=1)) == (12, 8)  # --set-threads 12; a dry run's capped 1
    assert {name: setting(urpc) for name, setting in train.items()} == {
        "gpu": 1,
        "mem_mb": 48000,
        "runtime": 2880,
        "nodes": 1,
        "tasks": None,
        "tasks_per_gpu": None,
        "mpi": None,
    }
    assert "nodes" not in session.job_resources("evaluate")
    assert session.train_gpus("train_lcp")(wildcards(scene="urpc"), input=[]) == ""
    assert (session.job_retries("train_lcp"), session.job_retries("evaluate")) == (3, None)
    # a SLURM job's own snakemake runs its command once: the controller's attempts are the retries
    assert start(main=False).job_retries("train_lcp") == 0
    assert session.demo_setting("num_images", 300)(wildcards(dataset="demo")) == 160


def test_a_new_run_forgets_the_unfixable_failures_of_the_jobs_it_runs(workdir):
    logs = [workdir / f"{name}.log" for name in ("train_lcp", "evaluate", "report")]
    for log in logs:
        Path(f"{log}{UNFIXABLE_SUFFIX}").write_text("refused\n")
    session = start()
    jobs = [SimpleNamespace(log=[str(logs[0])]), SimpleNamespace(log=[str(logs[1])]), SimpleNamespace(log=[])]
    session.workflow.dag = SimpleNamespace(needrun_jobs=lambda: jobs)
    session.forget_unfixable_failures()
    assert [Path(f"{log}{UNFIXABLE_SUFFIX}").exists() for log in logs] == [False, False, True]


def test_a_finished_run_points_to_the_reports_of_the_scenes_it_built_not_those_of_run(workdir):
    for scene in ("demo", "urpc", "custom"):
        page = workdir / "results" / scene / "report" / "summary.html"
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    session = start()  # run: [demo]

    def ran(*jobs):
        session.workflow.dag = SimpleNamespace(
            jobs=[SimpleNamespace(rule=SimpleNamespace(name=rule), wildcards=wildcards(**w)) for rule, w in jobs]
        )
        return session.results_pointers("sqlite:///m.db", "/usr/bin")

    # the default target: run's scene; --config run=[...] or a scene's report named as a target
    assert ran(("report", {"scene": "demo"}), ("evaluate", {"scene": "demo", "method": "lcp"}))[0] == (
        "scene demo: results/demo/report/summary.html"
    )
    assert [line.split(":")[0] for line in ran(("report", {"scene": "custom"}), ("report", {"scene": "urpc"}))] == [
        "scene custom",
        "scene urpc",
        "runs in MLflow",
    ]
    # one evaluation built: no report page (the demo's would be another scene's, or older than it)
    assert ran(("evaluate", {"scene": "urpc", "method": "lcp"})) == []


def placeholder(path: Path) -> str:
    from lcp.workflow.workdir import PLACEHOLDER

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PLACEHOLDER.format(work_dir=path.parent / "work"))
    return str(path)


def job(rule, inputs=(), outputs=()):
    return SimpleNamespace(rule=SimpleNamespace(name=rule), input=list(inputs), output=list(outputs), log=[])


def test_touch_of_an_unfinished_training_is_refused(workdir):
    """`--touch` (the profiles set rerun-incomplete) turned a killed training's placeholder into a
    "finished" model: every later run evaluated a text file, and never trained it again."""
    model = placeholder(Path("results/demo/lcp/seed1/latest.pth"))
    session = start(dryrun=False)
    session.workflow.touch = True
    jobs = [job("train_lcp", outputs=[model]), job("evaluate", inputs=[model], outputs=["eval.json"])]
    session.workflow.dag = SimpleNamespace(needrun_jobs=lambda: jobs, jobs=jobs)
    with pytest.raises(Stopped, match=r"seed1/latest.pth: the placeholder .* run without --touch"):
        session.refuse_placeholder_models()
    # a plain run trains it first: nothing to refuse
    session.workflow.touch = False
    session.refuse_placeholder_models()


def test_a_placeholder_marked_complete_is_refused_before_a_job_reads_it(workdir):
    """`--cleanup-metadata` (what snakemake's "incomplete" message proposes) or an earlier --touch
    left the placeholder as an up-to-date model: its evaluation would fail on every run."""
    model = placeholder(Path("results/demo/lcp/seed1/latest.pth"))
    session = start(dryrun=False)
    session.workflow.touch = False
    # its training is in the run's DAG, but marked complete: it does not run
    evaluation = job("evaluate", inputs=[model], outputs=["e.json"])
    session.workflow.dag = SimpleNamespace(
        needrun_jobs=lambda: [evaluation], jobs=[job("train_lcp", outputs=[model]), evaluation]
    )
    with pytest.raises(Stopped, match=r"train it: snakemake --forcerun results/demo/lcp/seed1/latest.pth"):
        session.refuse_placeholder_models()
