"""The Snakefile without running jobs: lint, the DAG of every scene, config errors, resources."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.dry_run import RECORDINGS, dry_run_listing
from helpers.workflow import (
    SNAKEFILE,
    planned_jobs,
    prepare_workdir,
    repo_config,
    snakemake,
    with_config,
    workflow_env,
    write_config,
)

SCENES = ("demo", "urpc", "foggy_city", "rainy_city", "custom")
# Rules every scene runs once (`check_data` too: a real low-quality set gets the annotation and image check).
PER_SCENE = {
    "pretrain": 1,
    "train_baseline": 1,
    "train_lcp": 1,
    "evaluate": 2,
    "report": 1,
    "crux_heatmaps": 1,
    "all": 1,
}


@pytest.fixture
def workdir(tmp_path):
    prepare_workdir(tmp_path, repo_config())
    return tmp_path


def test_lint_is_clean(workdir):
    result = snakemake(workdir, "--lint")
    assert result.returncode == 0, result.stdout
    assert "Congratulations, your workflow is in a good condition!" in result.stdout
    assert "Lints for" not in result.stdout


@pytest.mark.parametrize("scene", SCENES)
def test_dry_run_builds_the_whole_dag_without_data(workdir, scene):
    result = snakemake(workdir, "-n", "--config", f"run=[{scene}]")
    assert result.returncode == 0, result.stdout
    jobs = planned_jobs(result.stdout)
    config = repo_config()["scenes"][scene]
    seeds = len(config.get("seeds", [0]))
    per_seed = {"train_baseline", "train_lcp", "evaluate"}
    assert {rule: jobs.get(rule) for rule in PER_SCENE} == {
        rule: count * (seeds if rule in per_seed else 1) for rule, count in PER_SCENE.items()
    }
    sweep = sum(len(values) for values in config.get("robustness", {}).get("sweep", {}).values())
    assert jobs.get("evaluate_robustness", 0) == 2 * sweep * seeds
    assert jobs.get("synthesize_robustness_set", 0) == sweep
    assert jobs.get("report_robustness", 0) == (1 if sweep else 0)
    converted = [name for name, recipe in config.get("image_sets", {}).items() if "convert" in recipe]
    assert jobs.get("convert_image_set", 0) == len(converted)
    if scene == "demo":
        assert jobs["make_demo_data"] == 1 and "does not exist" not in result.stdout
    else:
        # each data set folder that is not there yet is named with the key that sets it
        for name in converted:
            key = f"scenes.{scene}.image_sets.{name}.path"
            if scene == "rainy_city" and name == "city_images":  # shared with foggy_city, defined there first
                key = f"scenes.foggy_city.image_sets.{name}.path"
            assert f"config {key}: {config['image_sets'][name]['path']} does not exist" in result.stdout
    assert "Traceback" not in result.stdout
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


@pytest.mark.parametrize("scene", SCENES)
def test_dry_run_lists_the_recorded_jobs_and_commands(tmp_path, scene):
    """A deliberate change of a job's command re-records (tests/helpers/dry_run.py) in its own commit."""
    assert dry_run_listing(tmp_path, scene) == (RECORDINGS / f"{scene}.txt").read_text()


def test_real_run_with_missing_data_stops_before_any_job(workdir):
    result = snakemake(workdir, "-c1", "--config", "run=[urpc]")
    assert result.returncode != 0
    assert (
        "config scenes.urpc.image_sets.urpc.path: /datasets/URPC2020 does not exist (the run stops here)"
        in result.stdout
    )
    assert "MissingInputException" in result.stdout and "Traceback" not in result.stdout
    assert not (workdir / "results").exists()


def unknown_scene_key(config):
    config["scenes"]["demo"]["epochs"] = 3


def wrong_type(config):
    config["scenes"]["demo"]["demo"]["num_images"] = "many"


def unknown_top_level_key(config):
    config["gpus"] = 1


def run_names_undefined_scene(config):
    config["run"] = ["demo", "fogy_city"]


def lowq_set_not_in_scene(config):
    config["scenes"]["custom"]["lowq_set"] = "hazy"


def synthesised_from_unknown_set(config):
    config["scenes"]["custom"]["image_sets"]["foggy"]["from"] = "clean"


def missing_model_config(config):
    config["scenes"]["urpc"]["lcp"]["config"] = "config/mmdet/lcp_r50_urpc_v2.py"


def bad_resources(config):
    config["scenes"]["urpc"]["resources"] = {"train_lcp": {"gpus": -1}}


def unknown_rule_in_resources(config):
    config["resources"]["train"] = {"cpus": 2}


def two_gpus_for_evaluation(config):
    config["scenes"]["urpc"]["resources"] = {"evaluate": {"gpus": 2}}


def more_nodes_than_gpus(config):
    config["resources"]["train_lcp"]["nodes"] = 2


def retries_of_unknown_rule(config):
    config["retries"]["train"] = 2


def no_seeds(config):
    config["scenes"]["demo"]["seeds"] = []


def repeated_seed(config):
    config["scenes"]["demo"]["seeds"] = [0, 1, 0]


def negative_seed(config):
    config["scenes"]["demo"]["seeds"] = [0, -1]


def synthesised_fog_checked_as_real_images(config):
    del config["scenes"]["custom"]["degradation"]  # the schema's default: none
    del config["scenes"]["custom"]["robustness"]


def shared_folder_other_classes(config):
    config["scenes"]["rainy_city"]["classes"] = ["car", "person", "traffic_light"]


def recipe_key_misspelt(config):  # "... is not valid under any of the given schemas", naming no key
    clear = config["scenes"]["custom"]["image_sets"]["clear"]
    clear["pth"] = clear.pop("path")


def synthesis_misspelt(config):
    foggy = config["scenes"]["custom"]["image_sets"]["foggy"]
    foggy["synthesise"] = foggy.pop("synthesize")


def coco_set_with_a_train_file_alone(config):  # it converted, then its missing test file failed three times
    config["scenes"]["custom"]["image_sets"]["clear"] = {
        "convert": "coco",
        "path": "/datasets/my_coco/images",
        "options": {"train": "/datasets/my_coco/train.json"},
    }


def misspelt_check_option(config):
    config["scenes"]["demo"]["check_options"] = {"max-erase-share": 0.2}


def misspelt_sweep_parameter(config):
    config["scenes"]["custom"]["robustness"] = {"sweep": {"betta": [0.01, 0.02]}}


def infinite_sweep_value(config):  # passed the schema's `number`; its synth job failed after the trainings
    config["scenes"]["custom"]["robustness"] = {"sweep": {"beta": [0.01, float("inf")]}}


def sweep_without_degradation(config):  # real underwater images: nothing says what to synthesise
    config["scenes"]["urpc"]["robustness"] = {"sweep": {"beta": [0.01, 0.02]}}


def seed_numpy_cannot_take(config):
    config["scenes"]["demo"]["seeds"] = [4294967296, 1]


def class_with_a_space(config):  # mmcv's --cfg-options dropped the space: every pretraining stopped
    config["scenes"]["demo"]["classes"][1] = "traffic light"


def data_dir_with_a_space(config):
    config["data_dir"] = "my data"


def data_dir_with_a_quote(config):  # the demo job's shell line broke on it; `;` or `$` would have run
    config["data_dir"] = "Bob's_data"


def data_dir_with_braces(config):  # a raw snakemake RuleException about wildcards
    config["data_dir"] = "data{v}"


def data_dir_with_a_comma(config):  # mmcv read data_root=data,x/ as a list: pretraining crashed, retried
    config["data_dir"] = "data,x"


def data_dir_like_an_option(config):  # `lcp data demo --out -d` failed in the job
    config["data_dir"] = "-d"


def model_config_with_shell(config):  # `--input` of the training jobs' command carried it unquoted: it ran
    config["scenes"]["demo"]["pretrain"]["config"] = "config/mmdet/tiny $(touch PWNED).py"


def class_read_as_a_number(config):  # mmcv made it 2: the dry run blamed the model config
    config["scenes"]["demo"]["classes"][1] = "2"


def cfg_option_with_a_space(config):  # mmcv dropped the space without a word
    config["scenes"]["demo"]["baseline"]["cfg_options"]["+checkpoint_config.out_dir"] = "/tmp/my ckpts"


def sweep_value_in_the_sweeps_options(config):  # every severity was synthesised at 0.5, silently
    config["scenes"]["custom"]["robustness"]["options"] = {"beta": 0.5}


def check_option_the_workflow_sets(config):  # --degradation fog --degradation none: the pairing went unchecked
    config["scenes"]["demo"]["check_options"] = {"degradation": "none"}


def image_set_path_like_an_option(config):
    config["scenes"]["custom"]["image_sets"]["clear"]["path"] = "-my_voc"


def scene_path_with_braces(config):  # a raw snakemake WildcardError naming no config key
    config["scenes"]["custom"]["image_sets"]["clear"]["path"] = "/data/streets {v1}"


def shared_set_made_two_ways(config):
    config["scenes"]["rainy_city"]["image_sets"]["city_images"] = {"convert": "cityscapes", "path": "/elsewhere"}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            unknown_scene_key,
            "invalid config: scenes.demo: Additional properties are not allowed ('epochs' was unexpected)",
        ),
        (wrong_type, "invalid config: scenes.demo.demo.num_images: 'many' is not of type 'integer'"),
        (
            unknown_top_level_key,
            "invalid config: (top level): Additional properties are not allowed ('gpus' was unexpected)",
        ),
        (run_names_undefined_scene, "run: scene 'fogy_city' is not defined under scenes"),
        (lowq_set_not_in_scene, "scenes.custom.lowq_set: 'hazy' is not an image set of the scene (clear, foggy)"),
        (synthesised_from_unknown_set, "scenes.custom.image_sets.foggy.from: 'clean' is not an image set of the scene"),
        (missing_model_config, "scenes.urpc.lcp.config: config/mmdet/lcp_r50_urpc_v2.py does not exist"),
        (bad_resources, "invalid config: scenes.urpc.resources.train_lcp.gpus: -1 is less than the minimum of 0"),
        (
            unknown_rule_in_resources,
            "invalid config: resources: Additional properties are not allowed ('train' was unexpected)",
        ),
        (
            two_gpus_for_evaluation,
            "scenes.urpc: evaluate asks for gpus: 2, nodes: 1; only training jobs "
            "(pretrain, train_baseline, train_lcp) run on several GPUs or nodes",
        ),
        (
            more_nodes_than_gpus,
            "scenes.demo: train_lcp asks for gpus: 0, nodes: 2; a distributed training job runs "
            "one process per GPU, so it needs a GPU on each node",
        ),
        (retries_of_unknown_rule, "invalid config: retries: 'train' is not one of ['make_demo_data', "),
        (no_seeds, "invalid config: scenes.demo.seeds: [] should be non-empty"),
        (repeated_seed, "invalid config: scenes.demo.seeds: [0, 1, 0] has non-unique elements"),
        (negative_seed, "invalid config: scenes.demo.seeds.1: -1 is less than the minimum of 0"),
        (  # it passed, and every training attempt died in numpy with a traceback
            seed_numpy_cannot_take,
            "invalid config: scenes.demo.seeds.0: 4294967296 is greater than the maximum of 4294967295",
        ),
        (
            class_with_a_space,
            "invalid config: scenes.demo.classes.1: 'traffic light' holds a space, comma, bracket, quote or =, which "
            "the jobs' --cfg-options cannot carry (mmcv drops spaces: it would be sought as one word); rename the "
            'category while converting, e.g. the coco converter\'s options {rename: "traffic light=traffic_light"}',
        ),
        (data_dir_with_a_space, "invalid config: data_dir: 'my data' does not match"),
        (data_dir_with_a_quote, "invalid config: data_dir: \"Bob's_data\" does not match"),
        (data_dir_with_braces, "invalid config: data_dir: 'data{v}' does not match"),
        (data_dir_with_a_comma, "invalid config: data_dir: 'data,x' does not match"),
        (data_dir_like_an_option, "invalid config: data_dir: '-d' does not match"),
        (
            model_config_with_shell,
            "scenes.demo.pretrain.config: 'config/mmdet/tiny $(touch PWNED).py': the training jobs' command lines "
            "carry this path as it is; keep to letters, digits and . _ / + @ : = - (not first)",
        ),
        (
            class_read_as_a_number,
            "scenes.demo.classes.1: '2' would reach the jobs as a number, True, False or None, not a class name",
        ),
        (
            cfg_option_with_a_space,
            "scenes.demo.baseline.cfg_options.+checkpoint_config.out_dir: '/tmp/my ckpts' would be read as "
            "'/tmp/myckpts': mmcv's --cfg-options removes spaces",
        ),
        (
            sweep_value_in_the_sweeps_options,
            "scenes.custom.robustness.options.beta: the workflow gives the command its own --beta (one value per "
            "severity of the sweep) and one of the two would be dropped without a word; remove it",
        ),
        (
            check_option_the_workflow_sets,
            "scenes.demo.check_options.degradation: the workflow gives the command its own --degradation",
        ),
        (
            image_set_path_like_an_option,
            "scenes.custom.image_sets.clear.path: '-my_voc' would be read as an option; write it as ./-my_voc",
        ),
        (
            scene_path_with_braces,
            "scenes.custom.image_sets.clear.path: '/data/streets {v1}' holds a brace, which Snakemake reads as a "
            "wildcard",
        ),
        (  # it failed in the check job, not naming the key (abbreviated, it was taken silently)
            misspelt_check_option,
            "scenes.demo.check_options.max-erase-share: `lcp data check` has no option --max-erase-share; "
            "did you mean max-erased-share?",
        ),
        (
            recipe_key_misspelt,
            "invalid config: scenes.custom.image_sets.clear: Additional properties are not allowed ('pth' was "
            "unexpected); did you mean 'path' for 'pth'?",
        ),
        (
            synthesis_misspelt,
            "invalid config: scenes.custom.image_sets.foggy: Additional properties are not allowed ('synthesise' "
            "was unexpected); did you mean 'synthesize' for 'synthesise'?",
        ),
        (
            coco_set_with_a_train_file_alone,
            "scenes.custom.image_sets.clear.options: a coco set needs both `train: JSON` and `test: JSON`, or one "
            "of them split with `test-fraction: 0.2`",
        ),
        (misspelt_sweep_parameter, "scenes.custom.robustness.sweep.betta: `lcp data synth fog` has no option --betta"),
        (infinite_sweep_value, "scenes.custom.robustness.sweep.beta.1: inf is no severity; give a finite number"),
        (sweep_without_degradation, "scenes.urpc.robustness: needs a `degradation` to synthesise the sweep with"),
        (  # the conversion took the first scene's --classes: traffic light was dropped without a word
            shared_folder_other_classes,
            "scenes.rainy_city.classes differs from scenes.foggy_city.classes, whose settings make the image sets "
            "of their shared folder 'city'",
        ),
        (  # the data check then skipped the pairing with the clean set and the erased-box check
            synthesised_fog_checked_as_real_images,
            "scenes.custom.degradation: 'none', but lowq_set 'foggy' is synthesised with fog; set degradation: fog",
        ),
        (
            shared_set_made_two_ways,
            "scenes.rainy_city.image_sets.city_images differs from "
            "scenes.foggy_city.image_sets.city_images, which makes the same image set "
            "city/city_images",
        ),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(workdir, change, message):
    with_config(workdir, change)
    result = snakemake(workdir, "-c1")
    assert result.returncode != 0
    assert message in result.stdout
    assert "Building DAG" not in result.stdout  # stopped while reading the workflow
    assert "Traceback" not in result.stdout and 'File "' not in result.stdout
    assert not (workdir / "results").exists()


def test_a_project_folder_without_the_model_configs_names_snakemakes_working_directory(tmp_path):
    # `--directory PROJECT` outside the repository: the config's relative paths are read from there
    write_config(tmp_path, repo_config())
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert (
        "scenes.demo.pretrain.config: config/mmdet/cascade_rcnn_tiny_demo.py does not exist "
        f"in {tmp_path.resolve()}, snakemake's working directory"
    ) in result.stdout


def test_the_workflow_refuses_to_run_as_a_module(tmp_path):
    # snakemake would skip its onstart and onerror (trainings' guards, MLflow runs) and rename its rules
    prepare_workdir(tmp_path, repo_config())
    (tmp_path / "Snakefile").write_text(
        f'module lcp:\n    snakefile:\n        "{SNAKEFILE}"\n    config:\n        config\n\n\n'
        "use rule * from lcp as lcp_*\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "test-config.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        env=workflow_env(),
    )
    assert result.returncode != 0
    assert (
        f"{tmp_path / 'Snakefile'}: lcp's Snakefile runs as the main workflow only, not as a module; run "
        "`snakemake --snakefile LCP/Snakefile --directory PROJECT --configfile CONFIG`"
    ) in result.stdout


def job_resources(output: str, rule: str) -> dict[str, str]:
    """The resources of the first job of `rule` in a dry run's output."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() in (f"rule {rule}:", f"localrule {rule}:"))
    line = next(line for line in lines[start:] if line.strip().startswith("resources:"))
    return dict(item.split("=", 1) for item in line.split(":", 1)[1].replace(" ", "").split(","))


def picked(resources: dict[str, str], *keys: str) -> dict[str, str]:
    return {key: resources.get(key) for key in keys}


KEYS = ("gpu", "cpus_per_task", "runtime", "mem_mb", "slurm_partition")


def test_resources_come_from_the_scene_then_the_rule_then_the_default(workdir):
    def partition(config):
        config["resources"]["default"]["partition"] = "cpu"
        config["scenes"]["urpc"]["resources"] = {"train_lcp": {"partition": "gpu"}}

    with_config(workdir, partition)

    urpc = snakemake(workdir, "-n", "--config", "run=[urpc]").stdout
    assert picked(job_resources(urpc, "train_lcp"), *KEYS) == {
        "gpu": "1",
        "cpus_per_task": "8",
        "runtime": "2880",
        "mem_mb": "48000",
        "slurm_partition": "gpu",
    }
    assert picked(job_resources(urpc, "report"), *KEYS) == {
        "gpu": "0",
        "cpus_per_task": "1",
        "runtime": "30",
        "mem_mb": "2000",
        "slurm_partition": "cpu",
    }

    # the demo scene's own default (cpus: 1) comes before the global train_lcp setting (cpus: 2)
    demo = snakemake(workdir, "-n", "--config", "run=[demo]").stdout
    assert picked(job_resources(demo, "train_lcp"), *KEYS) == {
        "gpu": "0",
        "cpus_per_task": "1",
        "runtime": "60",
        "mem_mb": "6000",
        "slurm_partition": "cpu",
    }
    # --set-threads changes what the job runs with and its CPU request alike (the request stayed at the config's)
    threads = snakemake(workdir, "-n", "-p", "--cores", "8", "--config", "run=[demo]", "--set-threads", "train_lcp=3")
    assert job_resources(threads.stdout, "train_lcp")["cpus_per_task"] == "3"
    assert "threads: 3" in threads.stdout


def test_site_settings_reach_the_jobs_and_leave_the_profiles_defaults_where_unset(workdir):
    def site(config):
        config["resources"]["default"]["account"] = "lab"
        config["resources"]["train_lcp"].update(constraint="a100", gres="gpu:a100:1", slurm_extra="--exclusive")
        config["scenes"]["urpc"]["resources"] = {"evaluate": {"qos": "long"}}

    with_config(workdir, site)

    # the profile's default-resources stand for what the config does not set (here: the partition)
    result = snakemake(workdir, "-n", "--config", "run=[urpc]", "--default-resources", "slurm_partition=site")
    assert result.returncode == 0, result.stdout[-3000:]
    site_keys = ("slurm_account", "qos", "constraint", "gres", "slurm_extra", "slurm_partition")
    # on SLURM: sbatch -A lab -C a100 --gres=gpu:a100:1 --exclusive -p site, and no --gpus as well
    assert picked(job_resources(result.stdout, "train_lcp"), "gpu", *site_keys) == {
        "gpu": None,
        "slurm_account": "lab",
        "qos": None,
        "constraint": "a100",
        "gres": "gpu:a100:1",
        "slurm_extra": "--exclusive",
        "slurm_partition": "site",
    }
    assert picked(job_resources(result.stdout, "evaluate"), "gpu", *site_keys) == {
        "gpu": "1",
        "slurm_account": "lab",
        "qos": "long",
        "constraint": None,
        "gres": None,
        "slurm_extra": None,
        "slurm_partition": "site",
    }


def test_pretrained_checkpoint_replaces_pretraining(workdir):
    checkpoint = workdir / "cascade_rcnn_r50_dfui.pth"
    checkpoint.write_bytes(b"weights")

    def bring_checkpoint(config):
        config["scenes"]["urpc"]["pretrain"]["checkpoint"] = str(checkpoint)

    with_config(workdir, bring_checkpoint)
    jobs = planned_jobs(snakemake(workdir, "-n", "--config", "run=[urpc]").stdout)
    assert jobs.get("import_pretrained") == 1 and "pretrain" not in jobs


def test_one_target_of_another_scene(workdir):
    result = snakemake(workdir, "-n", "results/foggy_city/lcp/eval.json")
    jobs = planned_jobs(result.stdout)
    assert jobs == {"convert_image_set": 2, "check_data": 1, "pretrain": 1, "train_lcp": 1, "evaluate": 1}
    assert "rule train_baseline" not in result.stdout


def shell_command(output: str, rule: str) -> str:
    """The shell command of the first job of `rule` in a dry run's (-p) output."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"rule {rule}:")
    return next(line for line in lines[start:] if line.startswith("Shell command:"))


def test_training_on_several_gpus_asks_for_a_task_per_gpu(workdir):
    def four_gpus_on_two_nodes(config):
        config["scenes"]["urpc"]["resources"] = {"train_lcp": {"gpus": 4, "nodes": 2}}

    with_config(workdir, four_gpus_on_two_nodes)

    result = snakemake(workdir, "-n", "-p", "--config", "run=[urpc]")
    assert result.returncode == 0, result.stdout[-3000:]
    # on SLURM: sbatch --gpus=4 --nodes=2 --ntasks-per-gpu=1 --ntasks=4, the shell in the batch step
    assert picked(job_resources(result.stdout, "train_lcp"), "gpu", "nodes", "tasks", "tasks_per_gpu", "mpi") == {
        "gpu": "4",
        "nodes": "2",
        "tasks": "4",
        "tasks_per_gpu": "1",
        "mpi": "srun",
    }
    command = shell_command(result.stdout, "train_lcp")
    assert " --gpus 4 --track " in command and command.count("lcp train") == 1
    # a one-GPU job stays one plain process
    assert picked(job_resources(result.stdout, "train_baseline"), "gpu", "nodes", "tasks", "mpi") == {
        "gpu": "1",
        "nodes": "1",
        "tasks": None,
        "mpi": None,
    }
    assert "--gpus" not in shell_command(result.stdout, "train_baseline")


def with_seeds(workdir, seeds):
    def change(config):
        config["scenes"]["demo"]["seeds"] = seeds

    with_config(workdir, change)


def job_outputs(output: str, rule: str) -> list[str]:
    """The output files of every job of `rule` in a dry run's output."""
    lines, outputs = output.splitlines(), []
    for start, line in enumerate(lines):
        if line.strip() in (f"rule {rule}:", f"localrule {rule}:"):
            found = next(entry for entry in lines[start:] if entry.strip().startswith("output:"))
            outputs += [path.strip() for path in found.split(":", 1)[1].split(",")]
    return sorted(outputs)


def shell_commands(output: str, rule: str) -> list[str]:
    lines = output.splitlines()
    return [
        next(entry for entry in lines[start:] if entry.startswith("Shell command:"))
        for start, line in enumerate(lines)
        if line.strip() == f"rule {rule}:"
    ]


def test_three_seeds_train_and_evaluate_each_method_three_times_from_one_pretraining(workdir):
    with_seeds(workdir, [0, 1, 2])
    result = snakemake(workdir, "-n", "-p", "--config", "run=[demo]")
    assert result.returncode == 0, result.stdout[-3000:]
    jobs = planned_jobs(result.stdout)
    sweep = len(repo_config()["scenes"]["demo"]["robustness"]["sweep"]["beta"])
    assert {
        rule: jobs.get(rule)
        for rule in (
            "pretrain",
            "train_baseline",
            "train_lcp",
            "evaluate",
            "evaluate_robustness",
            "report",
            "report_robustness",
            "crux_heatmaps",
        )
    } == {
        "pretrain": 1,
        "train_baseline": 3,
        "train_lcp": 3,
        "evaluate": 6,
        "evaluate_robustness": 6 * sweep,
        "report": 1,
        "report_robustness": 1,
        "crux_heatmaps": 1,
    }
    assert job_outputs(result.stdout, "pretrain") == ["results/demo/pretrain/latest.pth"]
    assert job_outputs(result.stdout, "train_lcp") == [f"results/demo/lcp/seed{seed}/latest.pth" for seed in range(3)]
    assert job_outputs(result.stdout, "evaluate") == [
        f"results/demo/{method}/seed{seed}/eval.json" for method in ("baseline", "lcp") for seed in range(3)
    ]
    assert "results/demo/lcp/seed2/robustness/beta_0.08.json" in job_outputs(result.stdout, "evaluate_robustness")
    assert "results/demo/lcp/latest.pth" not in result.stdout and "results/demo/lcp/eval.json" not in result.stdout

    # every seed fine-tunes the one pretrained detector (trained with the first seed) with its own seed
    assert "--seed 0 " in shell_commands(result.stdout, "pretrain")[0]
    for command in shell_commands(result.stdout, "train_lcp"):
        seed = command.split(" --seed ")[1].split()[0]
        assert " --load-from results/demo/pretrain/latest.pth " in command
        assert f"--work-dir results/demo/lcp/seed{seed}/work " in command and f" LCP_SEED={seed} " in command
        assert f"> results/demo/logs/seed{seed}/train_lcp.log" in command
    assert sorted(c.split(" --seed ")[1].split()[0] for c in shell_commands(result.stdout, "train_baseline")) == [
        "0",
        "1",
        "2",
    ]
    evaluate = [c for c in shell_commands(result.stdout, "evaluate") if "lcp/seed1/eval.json" in c]
    assert len(evaluate) == 1 and " results/demo/lcp/seed1/latest.pth " in evaluate[0]
    assert " LCP_SEED=1 " in evaluate[0]
    report = shell_commands(result.stdout, "report")[0]
    assert all(
        f"--eval={method}/seed{seed}=results/demo/{method}/seed{seed}/eval.json" in report
        for method in ("baseline", "lcp")
        for seed in range(3)
    )
    robustness = shell_commands(result.stdout, "report_robustness")[0]
    assert "--eval=lcp/seed2@beta_0.08=results/demo/lcp/seed2/robustness/beta_0.08.json" in robustness
    # the heat maps are drawn from the first seed's LCP model, with the evaluation's data options
    heatmaps = shell_commands(result.stdout, "crux_heatmaps")[0]
    assert "lcp heatmaps config/mmdet/lcp_tiny_demo.py results/demo/lcp/seed0/latest.pth " in heatmaps
    assert "--out-dir results/demo/report/crux_heatmaps --count 4 " in heatmaps
    test_options = evaluate[0].split("--cfg-options", 1)[1].split(" --track")[0]
    assert heatmaps.split("--cfg-options", 1)[1].split(") > ")[0] == test_options


def test_one_seed_keeps_the_paths_of_a_scene_without_seeds(workdir):
    with_seeds(workdir, [5])
    result = snakemake(workdir, "-n", "-p", "--config", "run=[demo]")
    assert result.returncode == 0, result.stdout[-3000:]
    assert {rule: planned_jobs(result.stdout).get(rule) for rule in PER_SCENE} == PER_SCENE
    assert job_outputs(result.stdout, "train_lcp") == ["results/demo/lcp/latest.pth"]
    assert job_outputs(result.stdout, "evaluate") == ["results/demo/baseline/eval.json", "results/demo/lcp/eval.json"]
    assert "seed5/" not in result.stdout
    assert all(
        " --seed 5 " in command and " LCP_SEED=5 " in command
        for rule in ("pretrain", "train_baseline", "train_lcp")
        for command in shell_commands(result.stdout, rule)
    )
    command = shell_commands(result.stdout, "train_lcp")[0]
    assert "--work-dir results/demo/lcp/work " in command and "> results/demo/logs/train_lcp.log" in command
    report = shell_commands(result.stdout, "report")[0]
    assert "--eval=baseline=results/demo/baseline/eval.json --eval=lcp=results/demo/lcp/eval.json" in report
    assert (
        "lcp heatmaps config/mmdet/lcp_tiny_demo.py results/demo/lcp/latest.pth "
        in shell_commands(result.stdout, "crux_heatmaps")[0]
    )


def test_one_seed_of_several_as_a_target(workdir):
    with_seeds(workdir, [0, 1, 2])
    result = snakemake(workdir, "-n", "results/demo/lcp/seed1/eval.json")
    assert planned_jobs(result.stdout) == {
        "make_demo_data": 1,
        "check_data": 1,
        "pretrain": 1,
        "train_lcp": 1,
        "evaluate": 1,
    }
    # a seed the scene does not train, or the one-seed path of a scene with several, is named as such
    for target in ("results/demo/lcp/seed7/eval.json", "results/demo/lcp/eval.json"):
        result = snakemake(workdir, "-n", target)
        assert result.returncode != 0
        assert "scene demo trains seeds [0, 1, 2] (scenes.demo.seeds), in seed<N>/ folders" in result.stdout
