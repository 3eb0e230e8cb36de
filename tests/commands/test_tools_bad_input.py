"""Bad input to `lcp train/test/infer` gives one clear line naming the file and the problem
(exit status 2, no traceback), before any training starts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from mmdet.models import build_detector

from lcp.apis.config import load_config
from lcp.cli import main as lcp

REPO = Path(__file__).resolve().parents[2]
LCP_TINY = str(REPO / "config" / "mmdet" / "lcp_tiny_demo.py")
PLAIN_TINY = str(REPO / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad") / "demo"
    assert lcp(["data", "demo", "--out", str(root), "--num-images", "3", "--no-progress"]) == 0
    return root


def error_line(capsys, argv: list[str], after_logging: bool = False) -> str:
    """The error message; the only stderr line unless the run had started logging already."""
    assert lcp(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    if after_logging:
        return err.splitlines()[-1]
    assert "\n" not in err
    return err


def train_error(capsys, demo: Path, tmp_path: Path, *options: str, after_logging: bool = False) -> str:
    return error_line(
        capsys,
        [
            "train",
            LCP_TINY,
            "--work-dir",
            str(tmp_path / "work"),
            "--cfg-options",
            f"data_root={demo}/",
            "load_from=None",
            *options,
        ],
        after_logging,
    )


def test_missing_image_folder_is_named(capsys, demo, tmp_path):
    err = train_error(capsys, demo, tmp_path, "train_img_dir=foggy/")
    assert err == f"lcp train: error: {demo}/foggy/: image folder (img_prefix) does not exist"
    assert not (tmp_path / "work").exists()


def test_missing_annotation_file_is_named(capsys, demo, tmp_path):
    err = train_error(capsys, demo, tmp_path, "train_ann=annotations/fog_train.json")
    assert err == f"lcp train: error: {demo}/annotations/fog_train.json: annotation file does not exist"


def test_categories_that_do_not_match_the_classes_name_the_file_and_both_lists(capsys, demo, tmp_path):
    err = train_error(capsys, demo, tmp_path, "classes=(circle,square,star)")
    assert err == (
        f"lcp train: error: {demo}/annotations/lowq_train.json: categories do not match the "
        "config's classes: missing ['star']; the file has ['circle', 'square', 'triangle'], "
        "the config has ['circle', 'square', 'star']"
    )


def test_classes_in_another_order_than_the_categories_are_refused(capsys, demo, tmp_path):
    err = train_error(capsys, demo, tmp_path, "classes=(square,circle,triangle)")
    assert err.startswith(
        f"lcp train: error: {demo}/annotations/lowq_train.json: categories are in another "
        "order than the config's classes: the file has ['circle', 'square', 'triangle'], "
        "the config has ['square', 'circle', 'triangle']"
    )


def test_class_count_must_follow_the_classes(capsys, demo, tmp_path):
    err = train_error(capsys, demo, tmp_path, "classes=(circle,square)")
    assert err == (
        f"lcp train: error: {LCP_TINY}: num_classes=3 but classes has 2 names ['circle', 'square']; "
        "set both (e.g. --cfg-options num_classes=2)"
    )


def test_empty_detection_favoured_folder_is_named(capsys, demo, tmp_path):
    empty = tmp_path / "clear"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    err = train_error(capsys, demo, tmp_path, f"df_img_dir={empty}")
    assert err.startswith(f"lcp train: error: {empty}: detection-favoured image folder (df_img_prefix) holds no images")


def test_a_checkpoint_option_that_is_no_path_is_named(capsys, demo, tmp_path):
    err = train_error(capsys, demo, tmp_path, "resume_from=5")  # None in the config: a traceback before
    assert err == f"lcp train: error: {LCP_TINY}: resume_from = 5 is not the path of a checkpoint"


@pytest.mark.parametrize("key", ["load_from", "resume_from"])
def test_a_checkpoint_that_is_no_checkpoint_is_refused_before_the_work_dir_is_made(capsys, demo, tmp_path, key):
    """It was refused only after the work dir had its lock, request, log and config copy."""
    picture = next((demo / "clean").iterdir())
    err = train_error(capsys, demo, tmp_path, f"{key}={picture}")
    assert err.startswith(f"lcp train: error: {picture}: not a PyTorch checkpoint (")
    assert err.endswith("not in one of torch.save's formats)")
    assert not (tmp_path / "work").exists()


def test_a_packed_checkpoint_is_refused_before_the_work_dir_is_made(capsys, demo, tmp_path):
    """A tar of a checkpoint passed the check (zipfile finds the zip inside it) and was refused only
    once the work dir had its lock, request, log and config copy."""
    import tarfile

    checkpoint = tmp_path / "latest.pth"
    torch.save({"state_dict": {}}, checkpoint)
    packed = tmp_path / "packed.pth"
    with tarfile.open(packed, "w") as archive:
        archive.add(checkpoint, checkpoint.name)
    err = train_error(capsys, demo, tmp_path, f"load_from={packed}")
    assert err == (
        f"lcp train: error: {packed}: not a PyTorch checkpoint (load_from: a tar archive of latest.pth; "
        "unpack latest.pth from it and give that file)"
    )
    assert not (tmp_path / "work").exists()


def test_the_config_copy_may_not_land_on_the_config_or_a_base_of_it(capsys, demo, tmp_path):
    """`lcp train exp/cfg.py --work-dir exp` replaced the config by its resolved copy."""
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "config" / "mmdet", configs)
    before = {path: path.read_bytes() for path in configs.rglob("*.py")}
    for config, work_dir in (
        (configs / "lcp_tiny_demo.py", configs),
        (configs / "_base_" / "default_runtime.py", configs / "_base_"),
    ):
        argv = [
            "train",
            str(configs / "lcp_tiny_demo.py"),
            "--work-dir",
            str(work_dir),
            "--cfg-options",
            f"data_root={demo}/",
        ]
        if config.name == "default_runtime.py":  # a config named like its base: the copy would replace the base
            shutil.copy(configs / "lcp_tiny_demo.py", configs / "default_runtime.py")
            argv[1] = str(configs / "default_runtime.py")
            before[configs / "default_runtime.py"] = (configs / "default_runtime.py").read_bytes()
        err = error_line(capsys, [*argv, "load_from=None"])
        assert f"{config}: is the source {config}; write the output elsewhere" in err, err
    assert {path: path.read_bytes() for path in configs.rglob("*.py")} == before
    assert not list(configs.rglob("*.log"))


def test_missing_config_is_named(capsys, tmp_path):
    err = error_line(capsys, ["test", str(tmp_path / "nope.py"), str(tmp_path / "x.pth"), "--eval", "bbox"])
    assert err == f"lcp test: error: {tmp_path / 'nope.py'}: config file does not exist"


def five_classes(demo, tmp_path_factory, **backbone) -> Path:
    """A real checkpoint of the tiny plain detector for 5 classes (the demo's has 3)."""
    options = {"data_root": f"{demo}/", "classes": ("a", "b", "c", "d", "e"), "num_classes": 5}
    options.update({f"model.backbone.{key}": value for key, value in backbone.items()})
    model = build_detector(load_config(PLAIN_TINY, options).model)
    path = tmp_path_factory.mktemp("ckpt") / "five_classes.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"CLASSES": ("a", "b", "c", "d", "e")}}, path)
    return path


@pytest.fixture(scope="module")
def other_classes(demo, tmp_path_factory) -> Path:
    return five_classes(demo, tmp_path_factory)


@pytest.fixture(scope="module")
def other_architecture(demo, tmp_path_factory) -> Path:
    """A real checkpoint of another model: the tiny plain detector twice as wide, for 5 classes."""
    return five_classes(demo, tmp_path_factory, base_channels=16)


def test_test_names_a_checkpoint_of_another_architecture(capsys, demo, other_architecture):
    err = error_line(
        capsys, ["test", PLAIN_TINY, str(other_architecture), "--eval", "bbox", "--cfg-options", f"data_root={demo}/"]
    )
    assert err.startswith(f"lcp test: error: {other_architecture}: ")
    assert "another architecture" in err and "backbone.conv1.weight" in err


def test_test_names_a_checkpoint_of_other_classes(capsys, demo, other_classes):
    err = error_line(
        capsys, ["test", PLAIN_TINY, str(other_classes), "--eval", "bbox", "--cfg-options", f"data_root={demo}/"]
    )
    assert err.startswith(f"lcp test: error: {other_classes}: trained for 5 classes, the model has 3 (")


def test_train_fine_tunes_from_a_checkpoint_of_other_classes(capsys, demo, tmp_path, other_classes):
    """As mmdet's load_from does: the class layers start anew (it was refused as 'another architecture',
    against what lcp train's class-order check promised)."""
    work = tmp_path / "work"
    argv = ["train", PLAIN_TINY, "--work-dir", str(work), "--load-from", str(other_classes), "--no-validate"]
    assert lcp([*argv, "--cfg-options", f"data_root={demo}/", "runner.max_epochs=1"]) == 0
    log = next(work.glob("*.log")).read_text()
    assert "was trained for another number of classes: the box heads' classification layers start" in log
    assert "roi_head.bbox_head.2.fc_cls.weight" in log  # among the keys that keep their initialisation


def test_train_refuses_an_init_checkpoint_of_another_architecture(capsys, demo, tmp_path, other_architecture):
    err = error_line(
        capsys,
        [
            "train",
            LCP_TINY,
            "--work-dir",
            str(tmp_path / "work"),
            "--load-from",
            str(other_architecture),
            "--cfg-options",
            f"data_root={demo}/",
        ],
        after_logging=True,
    )
    assert err.startswith(f"lcp train: error: {other_architecture}: ") and "another architecture" in err
    assert not list((tmp_path / "work").glob("*.pth"))


def test_infer_names_a_checkpoint_that_is_no_detector(capsys, demo, tmp_path):
    not_a_detector = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7)}, not_a_detector)
    image = sorted((demo / "lowq").glob("*.jpg"))[0]
    err = error_line(
        capsys,
        [
            "infer",
            LCP_TINY,
            str(not_a_detector),
            str(image),
            "--out-dir",
            str(tmp_path / "out"),
            "--cfg-options",
            f"data_root={demo}/",
        ],
    )
    assert err.startswith(f"lcp infer: error: {not_a_detector}: ") and "another architecture" in err


@pytest.fixture(scope="module")
def tiny_lcp_checkpoint(demo, tmp_path_factory) -> Path:
    cfg = load_config(LCP_TINY, {"data_root": f"{demo}/"})
    path = tmp_path_factory.mktemp("ckpt") / "lcp.pth"
    torch.save({"state_dict": build_detector(cfg.model).state_dict()}, path)
    return path


@pytest.mark.parametrize(
    "options, message",
    [
        # a constructor refusing its settings, and a keyword no module takes, were tracebacks
        (["model.crux_learner.num_blocks=0"], "the model cannot be built from its settings: "),
        (["+model.foo=1"], "the model cannot be built from its settings: "),
    ],
)
def test_test_names_a_model_its_settings_cannot_build(capsys, demo, tiny_lcp_checkpoint, options, message):
    err = error_line(
        capsys,
        ["test", LCP_TINY, str(tiny_lcp_checkpoint), "--eval", "bbox", "--cfg-options", f"data_root={demo}/", *options],
    )
    assert err.startswith(f"lcp test: error: {LCP_TINY}: {message}")


@pytest.mark.parametrize(
    "options, message",
    [
        # mmdet's bare assert: the message ended after the class names ("LCPResNet: ")
        (
            ["model.backbone.out_indices=[0,1,9]"],
            "the model cannot be built from its settings: LCPDetector: LCPResNet: "
            "failed the check max(out_indices) < num_stages (resnet.py:",
        ),
        # a KeyError quoted again at each level: LCPDetector: "LCPResNet: 'invalid depth 7 for resnet'"
        (
            ["model.backbone.depth=7"],
            "the model cannot be built from its settings: LCPDetector: LCPResNet: invalid depth 7 for resnet",
        ),
        # the test data set was built outside built_from_settings: tracebacks, exit 1 (retried)
        (["data.test.pipeline.1.type=NoSuch"], "CocoDataset: NoSuch is not in the pipeline registry"),
        (["data.test.type=NoSuchDataset"], "NoSuchDataset is not in the dataset registry"),
        # (data.test.pipeline.1.img_scale=abc fails a bare assert too, but in mmdet's
        # test_time_aug.py, whose asserts pytest rewrites: its message differs under pytest)
    ],
)
def test_test_names_a_setting_mmdet_asserts_or_a_data_set_it_cannot_build(
    capsys, demo, tiny_lcp_checkpoint, options, message
):
    err = error_line(
        capsys,
        ["test", LCP_TINY, str(tiny_lcp_checkpoint), "--eval", "bbox", "--cfg-options", f"data_root={demo}/", *options],
    )
    assert err.startswith(f"lcp test: error: {LCP_TINY}: {message}"), err


@pytest.mark.parametrize(
    "option, message",
    [
        # torch's ValueError and mmcv's KeyError, after the model was built: an exit 1 that
        # the workflow retried three times, each dumping the whole log
        ("optimizer.lr=-0.02", "the optimizer cannot be built from its settings: SGD: Invalid learning rate: -0.02"),
        ("lr_config.policy=stepp", "SteppLrUpdaterHook is not in the hook registry"),
        # the training data set was built outside built_from_settings: a traceback, exit 1
        ("data.train.type=NoSuchDataset", "NoSuchDataset is not in the dataset registry"),
    ],
)
def test_train_names_an_optimizer_or_hook_its_settings_cannot_build(capsys, demo, tmp_path, option, message):
    err = train_error(capsys, demo, tmp_path, option, after_logging=True)
    assert err.startswith(f"lcp train: error: {LCP_TINY}: ") and message in err, err


def test_fp16_testing_without_a_gpu_is_refused(capsys, demo, tiny_lcp_checkpoint):
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: fp16 testing runs")
    argv = ["test", LCP_TINY, str(tiny_lcp_checkpoint), "--eval", "bbox", "--cfg-options", f"data_root={demo}/"]
    for extra in (["--fp16"], ["+fp16.loss_scale=512"]):  # the flag, and the config's fp16
        err = error_line(capsys, argv + extra)
        assert err == (
            f"lcp test: error: {LCP_TINY}: fp16 testing runs half-precision kernels and no GPU is visible; "
            "drop --fp16 (or the config's fp16) to test on the CPU"
        )


def test_lcp_in_fp16_with_a_small_fixed_loss_scale_is_refused(capsys, demo, tmp_path):
    """The catch-up KL's gradient entries (~1e-7 over a whole-map softmax) fell below half
    precision's range under loss_scale 512: 35% zeroed, the weight gradient 109% off, silently."""
    err = train_error(capsys, demo, tmp_path, "+fp16.loss_scale=512")
    assert err == (
        f"lcp train: error: {LCP_TINY}: fp16.loss_scale=512 is a fixed scale under which the catch-up "
        "learner's KL gradient underflows in half precision (its entries are ~1e-7); use "
        "loss_scale='dynamic' (what --fp16 sets) or a fixed scale of at least 16384"
    )
    if not torch.cuda.is_available():  # a dynamic or large scale passes this check, then needs a GPU
        for scale in ("dynamic", "65536"):
            assert "no GPU is visible" in train_error(capsys, demo, tmp_path, f"+fp16.loss_scale={scale}")


def test_an_error_is_the_only_line_a_fresh_process_prints(tmp_path):
    # mmcv's notice of its 2.0 release (and, on a machine with a CUDA toolkit but no GPU, torch's)
    # came above the one-line error of every lcp command
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "lcp.cli", "train", LCP_TINY, "--work-dir", str(tmp_path / "w")]
        + ["--cfg-options", "runner.max_epoch=1"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"lcp train: error: {LCP_TINY}: --cfg-options runner.max_epoch: the config has no key runner.max_epoch "
        "(did you mean runner.max_epochs?); to add a new key, write +runner.max_epoch=VALUE"
    ]


def _renumber_square(coco):
    for entry in coco["categories"] + coco["annotations"]:
        key = "id" if "name" in entry else "category_id"
        entry[key] = 7 if entry[key] == 2 else entry[key]
    coco["categories"].sort(key=lambda category: {1: 0, 7: 1, 3: 2}[category["id"]])


@pytest.mark.parametrize(
    "edit, problem",
    [
        # pycocotools kept the later image of an id and scored both images' boxes against it
        (lambda coco: coco["images"][1].update(id=coco["images"][0]["id"]), "image id {} appears twice"),
        (lambda coco: coco["annotations"][1].update(id=coco["annotations"][0]["id"]), "annotation id {} appears"),
        # a traceback from pycocotools, the second after the whole test pass
        (lambda coco: coco["annotations"][0].update(bbox=None), "annotations[0] has bbox None, not [x, y, width"),
        (lambda coco: coco["annotations"][0].pop("area"), "annotations[0] has no numeric 'area'"),
        # COCOeval sorts ids: mmdet's class-wise AP would name square's AP triangle's
        (_renumber_square, "the ids of ['circle', 'square', 'triangle'] are [1, 7, 3], which do not ascend"),
    ],
    ids=["image-id-twice", "annotation-id-twice", "bbox-null", "no-area", "ids-not-ascending"],
)
def test_test_refuses_annotations_pycocotools_would_score_wrongly(
    capsys, demo, tiny_lcp_checkpoint, tmp_path, edit, problem
):
    import json

    coco = json.loads((demo / "annotations" / "lowq_test.json").read_text())
    train = json.loads((demo / "annotations" / "lowq_train.json").read_text())
    coco["images"].append(dict(train["images"][0], id=99))  # a second image (the 3-image scene tests on one)
    coco["annotations"] = [dict(ann, id=index + 1) for index, ann in enumerate(coco["annotations"])]
    problem = problem.format(coco["images"][0]["id"] if "image id" in problem else coco["annotations"][0]["id"])
    edit(coco)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(coco))
    options = [f"data_root={demo}/", f"test_ann={edited}"]
    err = error_line(capsys, ["test", LCP_TINY, str(tiny_lcp_checkpoint), "--eval", "bbox", "--cfg-options", *options])
    assert err.startswith(f"lcp test: error: {edited}: {problem}")


def _without_file_names(coco):
    for image in coco["images"]:
        del image["file_name"]


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda coco: b"{", "annotation file is not valid JSON (Expecting property name"),
        (lambda coco: b"\xff\xfe{}", "annotation file is not valid JSON ('utf-8' codec can't decode byte 0xff"),
        (lambda coco: coco.pop("categories"), "not a COCO annotation file (no 'categories' list)"),
        (lambda coco: coco["categories"][0].pop("name"), "a category has no 'name'"),
        (
            lambda coco: [category.update(id=str(category["id"])) for category in coco["categories"]],
            "category ids ['1', '2', '3'] must be integers",
        ),
        (lambda coco: coco.update(annotations={"0": {}}), "not a COCO annotation file ('annotations' is not a list"),
        (lambda coco: coco["images"][0].update(id=1.5), "images[0] has id 1.5, neither an integer nor a string"),
        (lambda coco: coco.update(images=None), "not a COCO annotation file (no 'images' list)"),
        (_without_file_names, "an image has no 'file_name'"),
    ],
    ids=[
        "truncated",
        "not-utf8",
        "no-categories",
        "category-without-name",
        "category-ids-text",
        "annotations-map",
        "image-id-fraction",
        "images-null",
        "no-file-name",
    ],
)
def test_test_names_an_annotation_file_of_another_shape(capsys, demo, tiny_lcp_checkpoint, tmp_path, edit, problem):
    coco = json.loads((demo / "annotations" / "lowq_test.json").read_text())
    content = edit(coco)
    edited = tmp_path / "edited.json"
    edited.write_bytes(content if isinstance(content, bytes) else json.dumps(coco).encode())
    options = [f"data_root={demo}/", f"test_ann={edited}"]
    err = error_line(capsys, ["test", LCP_TINY, str(tiny_lcp_checkpoint), "--eval", "bbox", "--cfg-options", *options])
    assert err.startswith(f"lcp test: error: {edited}: {problem}"), err


def test_a_classes_file_that_is_not_utf8_is_one_line(capsys, demo, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_bytes("circle\nsquare\ntri\xe1ngulo\n".encode("latin-1"))
    err = train_error(capsys, demo, tmp_path, f"classes={classes}")
    assert err.startswith(f"lcp train: error: {classes}: classes file is not UTF-8")


@pytest.mark.parametrize(
    "text, line",
    [
        # mmdet read 'circle ' as a class no category has: squares trained as circles, triangles as squares
        ("circle \nsquare\ntriangle\n", "line 1 is 'circle '"),
        ("circle\nsquare\n\ntriangle\n", "line 3 is ''"),  # a fourth class, named ''
        ("circle\nsquare\ntriangle\n\n", "line 4 is ''"),
    ],
)
def test_a_classes_file_line_mmdet_reads_otherwise_than_the_check_is_refused(capsys, demo, tmp_path, text, line):
    classes = tmp_path / "classes.txt"
    classes.write_text(text)
    err = train_error(capsys, demo, tmp_path, f"classes={classes}")
    assert err.startswith(f"lcp train: error: {classes}: {line}; give one class name a line")
    assert not (tmp_path / "work").exists()


def test_a_classes_file_names_the_classes_of_the_test(capsys, demo, tiny_lcp_checkpoint, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("circle\r\nsquare\r\ntriangle")  # Windows line ends, no newline at the end
    eval_out = tmp_path / "metrics.json"
    argv = ["test", LCP_TINY, str(tiny_lcp_checkpoint), "--eval-out", str(eval_out)]
    assert lcp([*argv, "--cfg-options", f"data_root={demo}/", f"classes={classes}"]) == 0, capsys.readouterr().err
    assert list(json.loads(eval_out.read_text())["classwise"]) == ["circle", "square", "triangle"]


@pytest.mark.parametrize(
    "outputs, clash",
    [
        # the metrics were written last, over the pickle or the detections, with exit status 0
        (["--out", "{d}/d.pkl", "--eval-out", "{d}/d.pkl"], "both --out and --eval-out"),
        (["--eval-out", "{d}/m.bbox.json", "--eval-options", "jsonfile_prefix={d}/m"], "both --eval-out and jsonf"),
    ],
)
def test_test_refuses_two_outputs_in_one_file(capsys, demo, tiny_lcp_checkpoint, tmp_path, outputs, clash):
    outputs = [word.format(d=tmp_path) for word in outputs]
    argv = ["test", LCP_TINY, str(tiny_lcp_checkpoint), *outputs, "--cfg-options", f"data_root={demo}/"]
    err = error_line(capsys, argv)
    assert err.startswith("lcp test: error: ") and clash in err and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--format-only", "--eval", "bbox"],
            "--format-only writes the detections without evaluating; leave out --eval/--eval-out",
        ),
        (
            ["--format-only"],
            "--format-only: give where the results go, --eval-options jsonfile_prefix=PREFIX (writes PREFIX.bbox.json)",
        ),
        ([], "nothing to do: give --eval bbox, --eval-out JSON, --out PKL, --format-only and/or --show-dir"),
        (["--show-dir", "{d}/show", "--show-score-thr", "2"], "--show-score-thr 2.0: must be between 0 and 1"),
        (["--out", "{d}/detections.txt"], "{d}/detections.txt: --out must be a .pkl file"),
    ],
)
def test_test_refuses_outputs_it_cannot_write_before_any_work(
    capsys, demo, tiny_lcp_checkpoint, tmp_path, options, message
):
    options = [word.format(d=tmp_path) for word in options]
    argv = ["test", LCP_TINY, str(tiny_lcp_checkpoint), *options, "--cfg-options", f"data_root={demo}/"]
    assert error_line(capsys, argv) == f"lcp test: error: {message.format(d=tmp_path)}"
    assert not list(tmp_path.iterdir())


def test_a_config_reference_to_an_undefined_key_is_named(capsys, demo, tiny_lcp_checkpoint, tmp_path):
    config = tmp_path / "referring.py"
    config.write_text(f"_base_ = {LCP_TINY!r}\nwork_dir = '${{nowhere}}/out'\n")
    argv = ["test", str(config), str(tiny_lcp_checkpoint), "--eval", "bbox", "--cfg-options", f"data_root={demo}/"]
    assert (
        error_line(capsys, argv)
        == f"lcp test: error: {config}: the config refers to ${{nowhere}}, which it does not define"
    )


def test_test_accepts_entries_cocoeval_never_reads(capsys, demo, tiny_lcp_checkpoint, tmp_path):
    """A crowd box without `area` and a box of a category outside the classes without `bbox`
    are valid test annotations: COCOeval reads neither field of them."""
    import json

    coco = json.loads((demo / "annotations" / "lowq_test.json").read_text())
    image = coco["images"][0]["id"]
    coco["categories"].append({"id": 9, "name": "lamp post", "supercategory": "object"})
    coco["annotations"] += [
        {"id": 1001, "image_id": image, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 1},
        {"id": 1002, "image_id": image, "category_id": 9, "bbox": None, "area": 0, "iscrowd": 0},
    ]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(coco))
    argv = ["test", LCP_TINY, str(tiny_lcp_checkpoint), "--eval", "bbox", "--workers", "0"]
    assert lcp(argv + ["--cfg-options", f"data_root={demo}/", f"test_ann={edited}"]) == 0, capsys.readouterr().err


def test_a_missing_df_ann_is_named_before_training(capsys, demo, tmp_path):
    err = train_error(capsys, demo, tmp_path, "df_ann=annotations/clear_train.json")
    assert err == (
        f"lcp train: error: {demo}/annotations/clear_train.json: the detection-favoured images' annotation file "
        "(df_ann) does not exist; give the clean set's train split, or --cfg-options df_ann=None to draw from the "
        "whole folder"
    )
    assert not (tmp_path / "work").exists()


def test_an_eval_out_whose_folder_cannot_be_made_is_refused_before_the_evaluation(tmp_path, capsys, monkeypatch):
    """`lcp test ... --eval-out results/x.json` where `results` is a file: refused at once, not
    after an evaluation that may take an hour."""
    import lcp.apis.config

    def evaluated(*args, **kwargs):
        raise AssertionError("the evaluation started before its output path was checked")

    monkeypatch.setattr(lcp.apis.config, "load_config", evaluated)
    (tmp_path / "results").write_text("a file, not a folder")
    err = error_line(capsys, ["test", LCP_TINY, "x.pth", "--eval-out", str(tmp_path / "results" / "x.json")])
    assert "cannot make the folder it goes into" in err


def test_a_refused_test_leaves_no_eval_out_folder_behind(tmp_path, capsys):
    """The early check of --eval-out's folder made it, and a refusal after it (here the config)
    left the empty folder behind."""
    out = tmp_path / "out" / "deep" / "e.json"
    err = error_line(capsys, ["test", str(tmp_path / "nope.py"), "x.pth", "--eval-out", str(out)])
    assert err.endswith("config file does not exist")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["load_from", "resume_from"])
def test_a_text_file_given_to_train_as_a_checkpoint_is_quoted(capsys, demo, tmp_path, key):
    """As lcp test quotes it: the workflow's placeholder of an unfinished training says what it is."""
    text = tmp_path / "latest.pth"
    text.write_text("lcp workdir: placeholder while w trains; not a checkpoint\n")
    err = train_error(capsys, demo, tmp_path, f"{key}={text}")
    assert err.endswith("a text file: 'lcp workdir: placeholder while w trains; not a checkpoint')"), err


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"not a jpeg", "cannot decode the detection-favoured image"),
        # OpenCV's message for it spans lines
        (b"", "cannot read the detection-favoured image (OpenCV"),
    ],
)
def test_a_detection_favoured_image_that_fails_in_a_data_loader_worker_is_one_line(
    capsys, demo, tmp_path, content, problem
):
    """The DF images are decoded only when drawn, in a data-loader worker: torch re-raises the
    worker's LCPError with the worker's traceback as its message, which lcp train printed whole."""
    df_dir = tmp_path / "df"
    df_dir.mkdir()
    (df_dir / "broken.jpg").write_bytes(content)
    err = train_error(
        capsys, demo, tmp_path, f"df_img_dir={df_dir}/", "df_ann=None", "data.workers_per_gpu=1", after_logging=True
    )
    assert err.startswith(f"lcp train: error: {df_dir}/broken.jpg: {problem}"), err
