"""The workflow's pre-flight: what would fail hours into a cluster run stops the run (and the
dry run) before any job starts, with one line naming the config file, the scene and the key;
and a job refused for a reason a retry cannot fix is not run again by snakemake's retries."""

from __future__ import annotations

import json
import subprocess

import pytest

from helpers.workflow import REPO, prepare_workdir, repo_config, snakemake, with_config
from lcp.errors import LCPError
from lcp.workflow.preflight import UNFIXABLE_FUNCTIONS, clear_unfixable, unfixable_guard, yaml_problem

SOURCE = "test-config.yaml"  # the --configfile of helpers.workflow


@pytest.fixture
def workdir(tmp_path):
    prepare_workdir(tmp_path, repo_config())
    return tmp_path


def assert_stopped_before_any_job(result, message):
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert "Traceback" not in result.stdout and 'File "' not in result.stdout
    assert "Job stats" not in result.stdout


def misspelt_key(config):
    config["scenes"]["demo"]["lcp"]["cfg_options"]["runner.max_epoch"] = 6


def text_for_a_number(config):
    config["scenes"]["demo"]["baseline"]["cfg_options"]["runner.max_epochs"] = "three"


def list_for_a_number(config):
    config["scenes"]["demo"]["pretrain"]["cfg_options"]["evaluation.interval"] = "[2,4]"


def list_item_out_of_range(config):
    config["scenes"]["demo"]["lcp"]["cfg_options"]["custom_hooks.7.num_epoch"] = "[1,1,4]"


def mode_plan_by_list_position(config):
    options = config["scenes"]["demo"]["lcp"]["cfg_options"]
    options["custom_hooks.1.num_epoch"] = options.pop("mode_plan.num_epoch")


def run_shorter_than_its_mode_plan_reaches(config):
    config["scenes"]["demo"]["lcp"]["cfg_options"]["runner.max_epochs"] = 1  # the plan is [1,1,4]


def mode_plan_of_no_epochs(config):
    config["scenes"]["demo"]["lcp"]["cfg_options"]["mode_plan.num_epoch"] = "[1,1,0]"


def image_size_of_zero(config):
    config["scenes"]["demo"]["baseline"]["cfg_options"]["img_scale"] = "(0,0)"


def plain_config_for_lcp(config):
    config["scenes"]["demo"]["lcp"]["config"] = "config/mmdet/cascade_rcnn_tiny_demo.py"
    config["scenes"]["demo"]["lcp"]["cfg_options"] = {}


def baseline_tested_on_another_file(config):  # LCP - baseline then compared APs on two test sets, without a word
    config["scenes"]["demo"]["baseline"]["cfg_options"]["data.test.ann_file"] = "demo/annotations/lowq_train.json"


@pytest.mark.parametrize(
    "change, message",
    [
        (
            misspelt_key,
            (
                f"invalid config: {SOURCE}: scenes.demo.lcp.cfg_options: runner.max_epoch: the config has no key "
                "runner.max_epoch (did you mean runner.max_epochs?); to add a new key, write "
                "+runner.max_epoch=VALUE (in config/mmdet/lcp_tiny_demo.py)"
            ),
        ),
        (
            text_for_a_number,
            (
                f"invalid config: {SOURCE}: scenes.demo.baseline.cfg_options: runner.max_epochs: takes a "
                "number (the config has 8), not a text ('three') (in config/mmdet/cascade_rcnn_tiny_demo.py)"
            ),
        ),
        (
            list_for_a_number,
            (
                f"invalid config: {SOURCE}: scenes.demo.pretrain.cfg_options: evaluation.interval: takes a "
                "number (the config has 4), not a list of numbers ([2, 4]) "
                "(in config/mmdet/cascade_rcnn_tiny_demo.py)"
            ),
        ),
        (
            list_item_out_of_range,
            (
                f"invalid config: {SOURCE}: scenes.demo.lcp.cfg_options: custom_hooks.7.num_epoch: "
                "custom_hooks is a list of 4 items; pick one by its number, custom_hooks.0 to "
                "custom_hooks.3 (in config/mmdet/lcp_tiny_demo.py)"
            ),
        ),
        (
            mode_plan_by_list_position,
            (
                f"invalid config: {SOURCE}: scenes.demo.lcp.config: config/mmdet/lcp_tiny_demo.py: "
                "custom_hooks.1 (TrainModeHook) has num_epoch=[1, 1, 4], which ignores the config's "
                "mode_plan; set the plan there (--cfg-options mode_plan.num_epoch=[1,1,4])"
            ),
        ),
        (
            # a run cut short trained the catch-up learner alone, its detector not at all, exit 0
            run_shorter_than_its_mode_plan_reaches,
            (
                f"invalid config: {SOURCE}: scenes.demo.lcp.config: config/mmdet/lcp_tiny_demo.py: "
                "mode_plan.num_epoch = [1, 1, 4] plans 6 epochs but runner.max_epochs = 1: the run would end "
                "before its first crux_learner epoch (2), so it never trains the crux_learner"
            ),
        ),
        (
            # refused only once pretraining had run, as "TrainModeHook: TrainModeHook: num_epoch[2] = 0 ..."
            mode_plan_of_no_epochs,
            (
                f"invalid config: {SOURCE}: scenes.demo.lcp.config: config/mmdet/lcp_tiny_demo.py: "
                "mode_plan: num_epoch[2] = 0 is not a positive integer"
            ),
        ),
        (
            # failed in OpenCV inside each training job, from its first image
            image_size_of_zero,
            (
                f"invalid config: {SOURCE}: scenes.demo.baseline.config: config/mmdet/cascade_rcnn_tiny_demo.py: "
                "img_scale=(0, 0) is not an image size; give two whole numbers above 0"
            ),
        ),
        (
            plain_config_for_lcp,
            (
                f"invalid config: {SOURCE}: scenes.demo.lcp.config: config/mmdet/cascade_rcnn_tiny_demo.py "
                "does not take the workflow's --cfg-options df_img_dir: the config has no key df_img_dir"
            ),
        ),
        (
            baseline_tested_on_another_file,
            (
                f"invalid config: {SOURCE}: scenes.demo: baseline and lcp are tested differently: "
                "data.test.ann_file is 'data/demo/annotations/lowq_train.json' for baseline "
                "(config/mmdet/cascade_rcnn_tiny_demo.py) but 'data/demo/annotations/lowq_test.json' for lcp "
                "(config/mmdet/lcp_tiny_demo.py); LCP - baseline compares their APs, so test both on one set"
            ),
        ),
    ],
)
def test_cfg_options_error_stops_the_dry_run_with_the_key_named(workdir, change, message):
    with_config(workdir, change)
    result = snakemake(workdir, "-n")
    assert_stopped_before_any_job(result, message)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("runner = dict(max_epochs=2\n", "config/broken.py:1: not valid Python ('(' was never closed)"),
        (
            "_base_ = ['mmdet/cascade_rcnn_tiny_demo.py']\nrunner = dict(max_epochs=epochs)\n",
            "config/broken.py: cannot read the config (NameError: name 'epochs' is not defined)",
        ),
    ],
)
def test_unreadable_model_config_stops_the_dry_run(workdir, text, problem):
    (workdir / "config" / "broken.py").write_text(text)

    def use_broken(config):
        config["scenes"]["demo"]["baseline"]["config"] = "config/broken.py"

    with_config(workdir, use_broken)
    result = snakemake(workdir, "-n")
    assert_stopped_before_any_job(result, f"invalid config: {SOURCE}: scenes.demo.baseline.config: {problem}")
    assert "Exception ignored" not in result.stdout


def test_scene_of_a_target_is_checked_and_scenes_outside_the_run_are_not(workdir):
    def typo_in_urpc(config):
        config["scenes"]["urpc"]["baseline"]["cfg_options"] = {"optimzer.lr": 0.01}

    with_config(workdir, typo_in_urpc)
    # the demo scene's DAG does not hold urpc's jobs
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stdout[-3000:]
    # a target of urpc brings its baseline into the DAG, and with it the check
    result = snakemake(workdir, "-n", "results/urpc/baseline/eval.json")
    assert_stopped_before_any_job(
        result,
        f"invalid config: {SOURCE}: scenes.urpc.baseline.cfg_options: optimzer.lr: the config has no key "
        "optimzer (did you mean optimizer.lr?)",
    )


def test_plus_key_adds_a_setting_and_the_dag_is_built(workdir):
    def add_fp16(config):
        config["scenes"]["demo"]["lcp"]["cfg_options"]["+fp16.loss_scale"] = 512

    with_config(workdir, add_fp16)
    result = snakemake(workdir, "-n", "-p")
    assert result.returncode == 0, result.stdout[-3000:]
    assert " +fp16.loss_scale=512 " in result.stdout


def test_invalid_yaml_in_the_workflow_config_names_line_and_column(workdir):
    (workdir / "config" / "config.yaml").write_text("run: [demo]\nscenes:\n  demo: {seeds: [0, 1}\n")
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert (
        "invalid config: config/config.yaml:3:22: not valid YAML: while parsing a flow sequence: "
        "expected ',' or ']', but got '}'" in result.stdout
    )
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "a: [1, 2\n",
            ("x.yaml:2:1: not valid YAML: while parsing a flow sequence: expected ',' or ']', but got '<stream end>'"),
        ),
        (
            "a: 1\n\tb: 2\n",
            (
                "x.yaml:2:1: not valid YAML: while scanning for the next token: found character '\\t' "
                "that cannot start any token; indent with spaces, not tabs"
            ),
        ),
        ("a: 1\n b: 2\n", "x.yaml:2:3: not valid YAML: mapping values are not allowed here"),
        (
            "a: {b: 1\n",
            ("x.yaml:2:1: not valid YAML: while parsing a flow mapping: expected ',' or '}', but got '<stream end>'"),
        ),
        ("a: 'open\n", "x.yaml:2:1: not valid YAML: while scanning a quoted scalar: found unexpected end of stream"),
        ("a: 1\n", None),
        (  # the README's scene pasted above the file's own `scenes:` dropped it without a word
            "run: [x]\nscenes:\n  x: 1\nrun: [demo]\n",
            "x.yaml:4:1: not valid YAML: 'run' is given twice in one mapping (first on line 1); "
            "the later one would replace the first entirely",
        ),
        ("scenes:\n  x: {a: 1, a: 2}\n", "x.yaml:2:13: not valid YAML: 'a' is given twice in one mapping"),
        ("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n", None),  # a merge key overriding is no duplicate
        # nor a merged mapping's own override once another mapping has merged it
        ("base: &b {e: 1, lr: 1}\nx: {y: &d {<<: *b, lr: 2}}\nz: {<<: *d, e: 3}\n", None),
    ],
)
def test_yaml_problem_names_line_and_column(tmp_path, monkeypatch, text, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_text(text)
    found = yaml_problem("x.yaml")
    assert found == problem or (problem is not None and found is not None and found.startswith(problem))


@pytest.mark.parametrize(
    "encoding, problem",
    [
        ("utf-16", "x.yaml: not UTF-8 text (invalid start byte at byte 0); save it as UTF-8"),  # Notepad's "Unicode"
        ("latin-1", "x.yaml: not UTF-8 text (invalid continuation byte at byte 18); save it as UTF-8"),
    ],
)
def test_yaml_problem_names_a_config_saved_in_another_encoding(tmp_path, monkeypatch, encoding, problem):
    # it was "not a text file", of a text file
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_bytes("run: [demo]  # caf\u00e9\n".encode(encoding))
    assert yaml_problem("x.yaml") == problem


# ---- training sets of a scene ---------------------------------------------------------


def write_converted_set(workdir, categories, boxes):
    """data/custom/clear as a converter leaves it: two train images, one test image; `boxes`:
    the category id of each train box."""
    images = workdir / "data" / "custom" / "clear"
    images.mkdir(parents=True)
    (workdir / "data" / "custom" / "annotations").mkdir()
    for split, names in (("train", ["a.jpg", "b.jpg"]), ("test", ["c.jpg"])):
        for name in names:
            (images / name).write_bytes(b"jpeg")
        annotations = [
            {"id": i, "image_id": 0, "category_id": c, "bbox": [1, 1, 5, 5], "iscrowd": 0}
            for i, c in enumerate(boxes if split == "train" else [])
        ]
        coco = {
            "images": [{"id": i, "file_name": name} for i, name in enumerate(names)],
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(categories)],
        }
        (workdir / "data" / "custom" / "annotations" / f"clear_{split}.json").write_text(json.dumps(coco))


def custom_run(config):
    config["run"] = ["custom"]


def test_converted_set_that_lost_images_stops_the_dry_run(workdir):
    """A set converted in an earlier run whose folder lost an image: its converter would not
    run again (the folder exists), and training would fail on the image hours later."""
    with_config(workdir, custom_run)
    write_converted_set(workdir, ["person", "car"], [1, 2])
    images = workdir / "data" / "custom" / "clear"
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stdout[-3000:]

    (images / "c.jpg").unlink()
    result = snakemake(workdir, "-n")
    assert_stopped_before_any_job(
        result,
        "data/custom/clear: 1 of the 1 images of data/custom/annotations/clear_test.json are missing, the "
        "first c.jpg (changed since scenes.custom.image_sets.clear was converted); convert it again: "
        "remove data/custom/clear and the workflow remakes it",
    )


def test_a_clean_set_without_the_scenes_classes_stops_the_dry_run(workdir):
    """Clear photos of another domain: pretraining would fail in every retry with mmdet's
    'need at least one array to concatenate'."""
    with_config(workdir, custom_run)
    write_converted_set(workdir, ["dog", "cat", "person"], [1, 2, 2])  # person: a category without boxes
    result = snakemake(workdir, "-n")
    assert_stopped_before_any_job(
        result,
        "data/custom/annotations/clear_train.json: no box of the scene's classes (person, car) in the train "
        "split of scenes.custom.clean_set 'clear'; nothing to train on",
    )
    assert sum("no box of the scene's classes" in line for line in result.stdout.splitlines()) == 1


REPORT_DRAWS = "the report draws its 4 crux heat maps and 3 sample detections of each method from distinct test images"


def assert_warned_of(result, message):
    assert result.returncode == 0, result.stdout[-3000:]
    assert [line for line in result.stdout.splitlines() if "the report draws" in line] == [f"warning: {message}"]


def test_a_demo_test_split_too_small_for_the_report_is_said_in_the_dry_run(workdir):
    """5 images leave one to the test split: pretraining, both trainings and their evaluations ran,
    and then the heat maps and sample detections were refused, with no report, and no word before.
    A warning, not a stop: Snakemake asks the drawing jobs' inputs also of runs that draw nothing."""

    def five_images(config):
        config["scenes"]["demo"]["demo"]["num_images"] = 5

    with_config(workdir, five_images)
    assert_warned_of(
        snakemake(workdir, "-n"),
        f"{SOURCE}: scenes.demo.demo.num_images: 5 images leave 1 to the test split, and "
        f"{REPORT_DRAWS}; give at least 18 (or ask for the evaluations alone, e.g. results/demo/lcp/seed0/eval.json)",
    )
    result = snakemake(workdir, "-n", "--forcerun", "train_lcp", "results/demo/lcp/seed0/eval.json")
    assert result.returncode == 0, result.stdout[-3000:]


def test_a_converted_test_split_too_small_for_the_report_is_said_in_the_dry_run(workdir):
    with_config(workdir, custom_run)
    write_converted_set(workdir, ["person", "car"], [1, 2])  # its test split: one image
    foggy_test = workdir / "data" / "synthesized" / "custom" / "foggy_test.json"
    foggy_test.parent.mkdir(parents=True)
    foggy_test.write_bytes((workdir / "data" / "custom" / "annotations" / "clear_test.json").read_bytes())
    assert_warned_of(
        snakemake(workdir, "-n"),
        f"data/synthesized/custom/foggy_test.json: 1 test image in scenes.custom.lowq_set 'foggy', and "
        f"{REPORT_DRAWS}; give the test split at least 4 (or ask for the evaluations alone, e.g. "
        "results/custom/lcp/eval.json)",
    )


def test_test_settings_that_differ_between_the_methods_are_warned_of(workdir):
    """A score threshold or test scale may differ on purpose (another detector as the baseline); it
    was not said that LCP - baseline then holds that difference too."""

    def tested_otherwise(config):
        config["scenes"]["demo"]["baseline"]["cfg_options"]["model.test_cfg.rcnn.score_thr"] = 0.3
        config["scenes"]["demo"]["lcp"]["cfg_options"]["img_scale"] = "(96,96)"

    with_config(workdir, tested_otherwise)
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stdout[-3000:]
    warnings = [line for line in result.stdout.splitlines() if "are tested differently" in line]
    assert warnings == [
        f"warning: {SOURCE}: scenes.demo: baseline and lcp are tested differently: "
        f"data.test.pipeline.1.img_scale is (128, 128) for baseline (config/mmdet/cascade_rcnn_tiny_demo.py) "
        f"but (96, 96) for lcp (config/mmdet/lcp_tiny_demo.py); LCP - baseline also holds that difference",
        f"warning: {SOURCE}: scenes.demo: baseline and lcp are tested differently: "
        "model.test_cfg.rcnn.score_thr is 0.3 for baseline (config/mmdet/cascade_rcnn_tiny_demo.py) but 0.05 "
        "for lcp (config/mmdet/lcp_tiny_demo.py); LCP - baseline also holds that difference",
    ]


def test_a_scene_class_without_a_box_is_a_warning(workdir):
    with_config(workdir, custom_run)
    write_converted_set(workdir, ["person", "car"], [1, 1])
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stdout[-3000:]
    assert (
        "warning: data/custom/annotations/clear_train.json: no box of car (classes of scenes.custom) in the "
        "train split of scenes.custom.clean_set 'clear'; the detector never learns it"
    ) in result.stdout


def test_a_folder_of_images_as_training_set_stops_the_dry_run(workdir):
    def folder_clean_set(config):
        custom_run(config)
        config["scenes"]["custom"]["image_sets"]["clear"] = {"convert": "folder", "path": str(workdir)}

    with_config(workdir, folder_clean_set)
    assert_stopped_before_any_job(
        snakemake(workdir, "-n"),
        f"invalid config: {SOURCE}: scenes.custom.clean_set: 'clear' comes from `convert: folder`, images without "
        "boxes; a training set needs boxes of the scene's classes",
    )


@pytest.mark.parametrize("same", ["same-set", "same-folder"])
def test_the_same_images_as_clean_and_low_quality_set_need_allow_same_sets(workdir, same):
    source = workdir / "my_voc"
    source.mkdir()

    def same_images(config, allow=False):
        custom_run(config)
        scene = config["scenes"]["custom"]
        scene["image_sets"]["clear"]["path"] = str(source)
        if same == "same-set":
            scene["lowq_set"] = "clear"
        else:  # another spelling of the same folder
            scene["image_sets"]["foggy"] = {"convert": "voc", "path": f"{workdir}/./my_voc/"}
        if allow:
            scene["allow_same_sets"] = True

    with_config(workdir, same_images)
    what = "the same image set 'clear'" if same == "same-set" else f"the images of {source}"
    assert_stopped_before_any_job(
        snakemake(workdir, "-n"),
        f"invalid config: {SOURCE}: scenes.custom: clean_set and lowq_set are {what}; LCP learns from the difference "
        "between the two (its KL loss would be exactly 0); set scenes.custom.allow_same_sets: true if this is intended",
    )
    with_config(workdir, lambda config: same_images(config, allow=True))
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stdout[-3000:]


# ---- retries ------------------------------------------------------------------------


def guarded(tmp_path, command: str) -> subprocess.CompletedProcess:
    """A job's shell as snakemake runs it (bash strict mode), with its log in tmp_path."""
    script = "set -euo pipefail; " + UNFIXABLE_FUNCTIONS + unfixable_guard(command, str(tmp_path / "job.log"))
    return subprocess.run(["bash", "-c", script], check=False, capture_output=True, text=True, timeout=60)


def test_a_refused_job_is_not_run_again_until_the_next_workflow_run(tmp_path):
    runs = tmp_path / "runs"
    command = f"echo run >> {runs} && echo 'lcp train: error: cfg.py: bad key' >&2 && exit 2"
    first = guarded(tmp_path, command)
    assert first.returncode == 2 and (tmp_path / "job.log").read_text() == "lcp train: error: cfg.py: bad key\n"
    (tmp_path / "job.log").write_text("")  # what snakemake does before each attempt
    retry = guarded(tmp_path, command)
    assert retry.returncode == 2 and runs.read_text() == "run\n"  # not run again
    refusal = (
        f"{tmp_path}/job.log: not run again: an earlier attempt was refused for a reason a retry cannot "
        "fix (exit status 2): lcp train: error: cfg.py: bad key"
    )
    assert retry.stderr.strip() == refusal
    # the refused attempt's log is back, with the reason
    assert (tmp_path / "job.log").read_text() == f"lcp train: error: cfg.py: bad key\n{refusal}\n"
    clear_unfixable([tmp_path / "job.log"])  # what the next workflow run does first
    assert guarded(tmp_path, command).returncode == 2 and runs.read_text() == "run\nrun\n"


@pytest.mark.parametrize(
    "failure, status",
    [
        ("exit 1", 1),  # a crash (a Python traceback)
        ("sh -c 'kill -TERM $$'", 143),  # a time limit: SLURM terminates the job
        ("sh -c 'kill -KILL $$'", 137),  # out of memory, a lost node
    ],
)
def test_other_failures_are_run_again(tmp_path, failure, status):
    runs = tmp_path / "runs"
    for attempt in (1, 2):
        result = guarded(tmp_path, f"echo run >> {runs} && {failure}")
        assert result.returncode == status
        assert runs.read_text() == "run\n" * attempt
    assert not (tmp_path / "job.log.unfixable").exists()
    assert guarded(tmp_path, "echo fine").returncode == 0 and (tmp_path / "job.log").read_text() == "fine\n"


def test_workflow_job_refused_for_bad_input_is_attempted_once_despite_retries(workdir):
    """A converter refusing its input (exit status 2) with 2 retries: the converter runs once,
    its log keeps its error, and each retry ends at once saying why; a new run tries again."""
    source = workdir / "my_voc"
    source.mkdir()  # exists (the pre-flight passes) but holds no VOC data set

    def empty_voc(config):
        config["scenes"]["custom"]["image_sets"]["clear"]["path"] = str(source)
        config["run"] = ["custom"]
        config["tracking"]["enabled"] = False

    with_config(workdir, empty_voc)
    target = "data/custom/clear"
    result = snakemake(workdir, "-c1", "--retries", "2", target, timeout=300)
    assert result.returncode != 0
    log = workdir / "results" / "datasets" / "custom" / "logs" / "convert_clear.log"
    error, refusal = log.read_text().strip().splitlines()[-2:]
    assert error.startswith("lcp data: error: ")
    assert refusal == (
        f"results/datasets/custom/logs/convert_clear.log: not run again: an earlier attempt was "
        f"refused for a reason a retry cannot fix (exit status 2): {error}"
    )
    assert result.stdout.count(refusal) == 2, result.stdout[-4000:]  # the two retries
    assert result.stdout.count("Trying to restart job") == 2

    again = snakemake(workdir, "-c1", "--retries", "0", target, timeout=300)
    assert again.returncode != 0 and refusal not in again.stdout, again.stdout[-4000:]
    assert log.read_text().strip().splitlines() == [error]


def test_a_config_check_that_passed_is_remembered_until_the_config_changes(tmp_path, monkeypatch):
    """Reading a config with its options imports mmcv and torch: 1.9 s of a 3.1 s no-op dry run."""
    import lcp.apis.config
    from lcp.workflow import preflight

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mmdet").symlink_to(REPO / "config" / "mmdet")
    mine = tmp_path / "config" / "mine.py"
    mine.write_text("_base_ = ['mmdet/lcp_tiny_demo.py']\n")
    options = ("df_img_dir=data/demo/clean", "runner.max_epochs=4")
    read = []
    read_config = lcp.apis.config.read_config
    monkeypatch.setattr(
        lcp.apis.config, "read_config", lambda *args, **kwargs: read.append(1) or read_config(*args, **kwargs)
    )

    def check(options):
        preflight._check_config.cache_clear()
        preflight._passed_checks.cache_clear()  # as a new run of the workflow
        preflight.check_model_step(str(mine.relative_to(tmp_path)), options, {}, where="scenes.mine.lcp")

    check(options)
    check(options)
    assert len(read) == 1 and (tmp_path / preflight.PASSED_CHECKS).is_file()
    check((*options, "lr_config.step=[3]"))  # other options: checked
    assert len(read) == 2
    mine.write_text("_base_ = ['mmdet/cascade_rcnn_tiny_demo.py']\n")  # an edited config: checked, and refused
    with pytest.raises(LCPError, match="does not take the workflow's --cfg-options df_img_dir"):
        check(options)
