"""Inputs that used to give a wrong result with exit status 0 (or a traceback once work had
started) are refused up front with one line naming the file and the problem: an empty test
set, a training set without boxes, a schedule of zero epochs, a converted set that lost an
image, a class without boxes, a negative worker count."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from mmdet.models import build_detector

from lcp.apis.config import load_config
from lcp.cli import main as lcp

REPO = Path(__file__).resolve().parents[2]
PLAIN_TINY = str(REPO / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")
LCP_TINY = str(REPO / "config" / "mmdet" / "lcp_tiny_demo.py")
CLASSES = ("circle", "square", "triangle")


def error_line(capsys, argv: list[str]) -> str:
    assert lcp(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "\n" not in err, err
    return err


def argparse_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        lcp(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def write_coco(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def read_coco(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def checkpoint(workspace) -> Path:
    """An untrained tiny plain detector for the demo's classes, saved as `lcp train` would."""
    cfg = load_config(PLAIN_TINY, {"data_root": f"{workspace / 'demo'}/"})
    path = workspace / "untrained.pth"
    torch.save({"state_dict": build_detector(cfg.model).state_dict(), "meta": {"CLASSES": CLASSES}}, path)
    return path


@pytest.fixture
def scene(workspace, tmp_path) -> Path:
    """A private copy of the demo scene to break."""
    return Path(shutil.copytree(workspace / "demo", tmp_path / "demo"))


def test_test_refuses_a_test_set_of_no_images_and_writes_no_eval_json(capsys, workspace, checkpoint, tmp_path):
    empty = write_coco(tmp_path / "empty_test.json", [], [])
    eval_json = tmp_path / "eval.json"
    err = error_line(
        capsys,
        [
            "test",
            PLAIN_TINY,
            str(checkpoint),
            "--eval-out",
            str(eval_json),
            "--no-track",
            "--cfg-options",
            f"data_root={workspace / 'demo'}/",
            f"test_ann={empty}",
        ],
    )
    assert err == (f"lcp test: error: {empty}: lists no images; an empty set has nothing to train or evaluate on")
    assert not eval_json.exists()


def test_a_test_set_without_boxes_is_refused_for_ap_but_still_drawn(capsys, workspace, checkpoint, tmp_path):
    """COCOeval finds nothing to measure: every AP was "n/a" with exit status 0, and a training
    validated on it kept its "best" checkpoint by an AP of -1; its detections are still wanted."""
    demo = workspace / "demo"
    no_boxes = write_coco(tmp_path / "no_boxes.json", read_coco(demo / "annotations/clean_test.json")["images"], [])
    test_set = ["--no-track", "--cfg-options", f"data_root={demo}/", f"test_ann={no_boxes}"]
    eval_json = tmp_path / "eval.json"
    refused = f"{no_boxes}: no boxes of the classes ['circle', 'square', 'triangle'] in its 1 images; AP is undefined"
    err = error_line(capsys, ["test", PLAIN_TINY, str(checkpoint), "--eval-out", str(eval_json), *test_set])
    assert err == f"lcp test: error: {refused} without one to find"
    assert not eval_json.exists()
    err = error_line(capsys, ["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work"), *test_set])
    assert err == f"lcp train: error: {refused} without one to find"
    assert not (tmp_path / "work").exists()
    pickle = tmp_path / "detections.pkl"
    assert lcp(["test", PLAIN_TINY, str(checkpoint), "--out", str(pickle), *test_set]) == 0
    assert pickle.is_file()


def training_set_refusal(capsys, tmp_path: Path, demo: Path, train_ann: Path, *cfg_options: str) -> str:
    """The error line of a tiny plain training on the demo scene with `train_ann` as its training set."""
    work = ["--work-dir", str(tmp_path / "work")]
    return error_line(
        capsys,
        ["train", PLAIN_TINY, *work, "--cfg-options", f"data_root={demo}/", f"train_ann={train_ann}", *cfg_options],
    )


def test_train_refuses_a_training_set_without_boxes_before_building_the_model(capsys, workspace, tmp_path):
    demo = workspace / "demo"
    no_boxes = write_coco(tmp_path / "no_boxes.json", read_coco(demo / "annotations/clean_train.json")["images"], [])
    err = training_set_refusal(capsys, tmp_path, demo, no_boxes)
    assert err == (
        f"lcp train: error: {no_boxes}: no boxes of the classes ['circle', 'square', 'triangle'] "
        "in its 2 images; training needs at least one"
    )
    assert not (tmp_path / "work").exists()


def test_train_refuses_a_training_set_whose_boxes_are_all_of_other_classes(capsys, workspace, tmp_path):
    demo = workspace / "demo"
    train = read_coco(demo / "annotations/clean_train.json")
    only_circles = write_coco(
        tmp_path / "circles.json", train["images"], [ann for ann in train["annotations"] if ann["category_id"] == 1]
    )
    err = training_set_refusal(capsys, tmp_path, demo, only_circles, "classes=(square,triangle)", "num_classes=2")
    assert err == (
        f"lcp train: error: {only_circles}: no boxes of the classes ['square', 'triangle'] "
        "in its 2 images; training needs at least one"
    )


@pytest.mark.parametrize(
    "edit, problem",
    [
        (
            lambda ann, size: ann.update(area=0),
            "no boxes of the classes ['circle', 'square', 'triangle'] in its 2 images",
        ),
        (lambda ann, size: ann["bbox"].__setitem__(2, 0.5), "no boxes of the classes"),  # mmdet: under 1 px
        (lambda ann, size: ann.update(bbox=[size + 5, 0, 10, 10]), "no boxes of the classes"),  # outside the image
        (lambda ann, size: ann.pop("area"), "annotations[0] has no numeric 'area', which mmdet and COCOeval read"),
    ],
    ids=["zero-area", "zero-width", "outside", "no-area"],
)
def test_train_refuses_boxes_mmdet_would_drop_or_crash_on(capsys, workspace, tmp_path, edit, problem):
    """The check counted every box at least 1 px wide and high; mmdet also drops boxes of no
    area or outside their image (a set of them trained on no box at all), and fails with
    KeyError('area') inside a data-loader worker on a box without `area`."""
    demo = workspace / "demo"
    train = read_coco(demo / "annotations/clean_train.json")
    size = min(min(image["width"], image["height"]) for image in train["images"])
    for ann in train["annotations"]:
        edit(ann, size)
    edited = write_coco(tmp_path / "edited.json", train["images"], train["annotations"])
    err = training_set_refusal(capsys, tmp_path, demo, edited)
    assert err.startswith(f"lcp train: error: {edited}: {problem}")
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("meta", ["mmdet2", "mmdet3"])
def test_train_refuses_an_initial_checkpoint_of_the_same_classes_in_another_order(
    capsys, workspace, checkpoint, tmp_path, meta
):
    """mmdet loads heads by index: square's classifier started from circle's, with no key missing.
    mmdet 3.x keeps the class names in meta.dataset_meta.classes (such a checkpoint was not checked)."""
    demo = workspace / "demo"
    if meta == "mmdet3":
        state = torch.load(checkpoint, weights_only=True)["state_dict"]
        checkpoint = tmp_path / "mmdet3.pth"
        torch.save({"state_dict": state, "meta": {"dataset_meta": {"classes": CLASSES}, "epoch": 12}}, checkpoint)
    swapped = {1: 2, 2: 1, 3: 3}  # square first
    for split in ("train", "test"):
        coco = read_coco(demo / f"annotations/clean_{split}.json")
        for ann in coco["annotations"]:
            ann["category_id"] = swapped[ann["category_id"]]
        coco["categories"] = [{"id": 1, "name": "square"}, {"id": 2, "name": "circle"}, {"id": 3, "name": "triangle"}]
        (tmp_path / f"square_first_{split}.json").write_text(json.dumps(coco))
    err = training_set_refusal(
        capsys,
        tmp_path,
        demo,
        tmp_path / "square_first_train.json",
        f"test_ann={tmp_path / 'square_first_test.json'}",
        "classes=(square,circle,triangle)",
        f"load_from={checkpoint}",
    )
    assert err == (
        f"lcp train: error: {checkpoint}: trained for classes ['circle', 'square', 'triangle'], which "
        f"{PLAIN_TINY} lists in another order, ['square', 'circle', 'triangle'], so each class would start "
        "from another's weights; list the classes in the checkpoint's order (the annotation files' category "
        "ids ascending in it)"
    )
    assert not (tmp_path / "work").exists()


def test_train_refuses_zero_epochs(capsys, workspace, tmp_path):
    err = error_line(
        capsys,
        [
            "train",
            PLAIN_TINY,
            "--work-dir",
            str(tmp_path / "work"),
            "--cfg-options",
            f"data_root={workspace / 'demo'}/",
            "runner.max_epochs=0",
        ],
    )
    assert (
        err == f"lcp train: error: {PLAIN_TINY}: runner.max_epochs=0 trains nothing; give a whole number of 1 or more"
    )
    assert not (tmp_path / "work").exists()


def test_train_checks_the_mode_plan_against_an_older_configs_total_epochs(capsys, workspace, tmp_path):
    """mmdet's older schedules give the run's length as total_epochs, without a runner: the plan
    was checked against runner.max_epochs alone, so such a run was refused only once it had
    started (its work dir made), and the workflow's dry run passed it."""
    base = REPO / "config" / "mmdet" / "_base_"
    schedule = tmp_path / "schedule.py"
    published = (base / "schedules" / "lcp_24e.py").read_text()
    schedule.write_text(published.replace("runner = dict(type='EpochBasedRunner', max_epochs=24)", "total_epochs = 1"))
    config = tmp_path / "total_epochs.py"
    bases = [str(base / "models" / "lcp_cascade_rcnn_tiny.py"), str(base / "datasets" / "lcp_paired_detection.py")]
    config.write_text(
        f"_base_ = {[*bases, str(schedule), str(base / 'default_runtime.py')]!r}\n"
        f"classes = {CLASSES!r}\nnum_classes = 3\ndata_root = '{workspace / 'demo'}/'\nimg_scale = (128, 128)\n"
        "train_img_dir = test_img_dir = 'lowq/'\ntrain_ann = 'annotations/lowq_train.json'\n"
        "test_ann = 'annotations/lowq_test.json'\ndf_img_dir = 'clean/'\nkl_loss_weight = 1\n"
        "mode_plan = dict(num_epoch=[1, 1, 2])\n"
    )
    err = error_line(capsys, ["train", str(config), "--work-dir", str(tmp_path / "work")])
    assert err == (
        f"lcp train: error: {config}: mode_plan.num_epoch = [1, 1, 2] plans 4 epochs but runner.max_epochs = 1: "
        "the run would end before its first crux_learner epoch (2), so it never trains the crux_learner; give a "
        "plan of 1 epochs"
    )
    assert not (tmp_path / "work").exists()


def test_train_refuses_an_iteration_based_runner_and_a_random_seed(capsys, workspace, tmp_path):
    """An iteration-based run kept one LCP mode, resumed one iteration twice without its random
    state (and crashed resuming on a CPU); seed = None drew another seed on resume, so the
    pairing changed from the resumed epoch on."""
    config = tmp_path / "iterations.py"
    config.write_text(f"_base_ = {PLAIN_TINY!r}\nrunner = dict(_delete_=True, type='IterBasedRunner', max_iters=4)\n")
    data = ["--cfg-options", f"data_root={workspace / 'demo'}/"]
    err = error_line(capsys, ["train", str(config), "--work-dir", str(tmp_path / "work"), *data])
    assert err == (
        f"lcp train: error: {config}: runner type IterBasedRunner: lcp train runs epoch-based runners (modes and "
        "exact resume are per epoch); use runner = dict(type='EpochBasedRunner', max_epochs=N)"
    )
    err = error_line(capsys, ["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work"), *data, "seed=None"])
    assert err.startswith(f"lcp train: error: {PLAIN_TINY}: seed = None draws a random seed, which a resumed run")
    assert not (tmp_path / "work").exists()


def test_train_names_an_image_deleted_from_a_converted_set(capsys, scene, tmp_path):
    gone = read_coco(scene / "annotations/lowq_train.json")["images"][1]["file_name"]
    (scene / "lowq" / gone).unlink()
    err = error_line(
        capsys,
        [
            "train",
            LCP_TINY,
            "--work-dir",
            str(tmp_path / "work"),
            "--cfg-options",
            f"data_root={scene}/",
            "load_from=None",
        ],
    )
    assert err == (
        f"lcp train: error: {scene}/annotations/lowq_train.json: 1 of its 2 images missing from "
        f"{scene}/lowq/, the first {gone}"
    )
    assert not (tmp_path / "work").exists()


def test_test_names_an_image_deleted_from_a_converted_set(capsys, scene, checkpoint, tmp_path):
    gone = read_coco(scene / "annotations/clean_test.json")["images"][0]["file_name"]
    (scene / "clean" / gone).unlink()
    eval_json = tmp_path / "eval.json"
    err = error_line(
        capsys,
        [
            "test",
            PLAIN_TINY,
            str(checkpoint),
            "--eval-out",
            str(eval_json),
            "--no-track",
            "--cfg-options",
            f"data_root={scene}/",
        ],
    )
    assert err == (
        f"lcp test: error: {scene}/annotations/clean_test.json: 1 of its 1 images missing from "
        f"{scene}/clean/, the first {gone}"
    )
    assert not eval_json.exists()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _halve(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.resize((image.width // 2, image.height // 2)).save(path, quality=95)


def _turn_a_quarter(path: Path) -> dict:
    """Stored 128x96 and recorded so, but EXIF orientation 6: mmdet reads it turned, 96x128."""
    from PIL import Image

    with Image.open(path) as image:
        exif = image.getexif()
        exif[0x0112] = 6
        image.crop((0, 0, 128, 96)).save(path, quality=95, exif=exif)
    return {"width": 128, "height": 96}


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda path: path.write_bytes(b""), "{image}: empty file (0 bytes) (listed in {ann})"),
        (_truncate, "{image}: truncated JPEG (no end-of-image marker) (listed in {ann})"),
        (
            _halve,
            "{ann}: 1 of its 1 images differ from the size it records, the first {name}: recorded 128x128, "
            "the file is 64x64 as mmdet reads it (EXIF orientation applied), so its boxes would land elsewhere",
        ),
        (
            _turn_a_quarter,
            "{ann}: 1 of its 1 images differ from the size it records, the first {name}: recorded 128x96, "
            "the file is 96x128 as mmdet reads it",
        ),
    ],
    ids=["empty", "truncated", "resized", "exif-turned"],
)
def test_test_names_a_broken_or_resized_image_before_any_work(capsys, scene, checkpoint, tmp_path, damage, problem):
    """An empty or truncated image failed inside a data-loader worker with a traceback naming no
    file; a resized one was evaluated with its boxes at the recorded size: AP near 0, exit 0."""
    ann = scene / "annotations/clean_test.json"
    coco = read_coco(ann)
    name = coco["images"][0]["file_name"]
    recorded = damage(scene / "clean" / name)
    if recorded:
        coco["images"][0].update(recorded)
        ann.write_text(json.dumps(coco))
    eval_json = tmp_path / "eval.json"
    argv = ["test", PLAIN_TINY, str(checkpoint), "--eval-out", str(eval_json), "--no-track"]
    err = error_line(capsys, [*argv, "--cfg-options", f"data_root={scene}/"])
    expected = problem.format(image=scene / "clean" / name, ann=ann, name=name)
    assert err.startswith(f"lcp test: error: {expected}"), err
    assert not eval_json.exists()


def _list_the_first_file_twice(coco: dict) -> None:
    coco["images"].append({**coco["images"][0], "id": 999})


def _mix_image_id_kinds(coco: dict) -> None:
    coco["images"].append({**coco["images"][0], "id": "extra", "file_name": coco["images"][0]["file_name"]})
    coco["images"][-1]["file_name"] = "../clean/" + coco["images"][0]["file_name"]


@pytest.mark.parametrize(
    "edit, problem",
    [
        (_list_the_first_file_twice, "{name} is listed twice, as two images; list each file once"),
        (_mix_image_id_kinds, "its image ids mix integers and strings"),
    ],
    ids=["file-twice", "mixed-ids"],
)
def test_test_refuses_entries_cocoeval_scores_wrong(capsys, scene, checkpoint, tmp_path, edit, problem):
    """A file listed twice counted its boxes twice, with exit 0; image ids of two kinds failed in
    COCOeval after the whole test pass."""
    ann = scene / "annotations/clean_test.json"
    coco = read_coco(ann)
    edit(coco)
    ann.write_text(json.dumps(coco))
    argv = ["test", PLAIN_TINY, str(checkpoint), "--eval", "bbox", "--no-track"]
    err = error_line(capsys, [*argv, "--cfg-options", f"data_root={scene}/"])
    expected = problem.format(name=coco["images"][0]["file_name"])
    assert err.startswith(f"lcp test: error: {ann}: {expected}"), err


@pytest.mark.parametrize("command", ["test", "train"])
def test_a_category_id_written_as_text_is_refused_not_left_out(capsys, scene, checkpoint, tmp_path, command):
    """A box whose category_id was "2" beside the category id 2 was left out by mmdet's training
    and by COCOeval: the AP was scored against one box fewer, exit 0."""
    split = command
    ann = scene / f"annotations/clean_{split}.json"
    coco = read_coco(ann)
    coco["annotations"][1]["category_id"] = str(coco["annotations"][1]["category_id"])
    ann.write_text(json.dumps(coco))
    eval_json = tmp_path / "eval.json"
    argv = (
        ["test", PLAIN_TINY, str(checkpoint), "--eval-out", str(eval_json), "--no-track"]
        if command == "test"
        else ["train", PLAIN_TINY, "--work-dir", str(tmp_path / "work")]
    )
    err = error_line(capsys, [*argv, "--cfg-options", f"data_root={scene}/"])
    category = coco["annotations"][1]["category_id"]
    assert err == (
        f"lcp {command}: error: {ann}: annotations[1] (id {coco['annotations'][1]['id']}) has category_id "
        f"{category!r}, the id of no category (they are 1, 2, 3); write it as {int(category)}, as the category "
        "does; mmdet and COCOeval would leave its box out silently"
    )
    assert not eval_json.exists() and not (tmp_path / "work").exists()


def test_a_jpeg_with_data_after_its_end_marker_is_read_and_a_truncated_one_still_refused(scene, tmp_path):
    """Phones append a video after the image (motion photos): OpenCV and mmdet read the image,
    and the check called it truncated; a truncated one whose EXIF thumbnail ends in an
    end-of-image marker must still be called truncated."""
    import cv2
    import numpy as np

    from lcp.data.images import read_size
    from lcp.datasets.config_checks import check_annotation_file

    ann = scene / "annotations/clean_test.json"
    image = scene / "clean" / read_coco(ann)["images"][0]["file_name"]
    image.write_bytes(image.read_bytes() + b"\x00\x00\x00\x18ftypmp42 a motion photo's video")
    check_annotation_file(str(ann), f"{scene}/clean/", list(CLASSES))  # no refusal
    assert cv2.imread(str(image)) is not None
    _, thumbnail = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    app1 = b"Exif\x00\x00" + thumbnail.tobytes()  # a segment that holds a whole JPEG, end marker included
    whole = image.read_bytes()
    with_thumbnail = whole[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + whole[2:]
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(with_thumbnail[: len(with_thumbnail) * 2 // 3])
    assert read_size(cut) == "truncated JPEG (no end-of-image marker)"


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_the_size_check_reads_an_exif_turned_image_as_opencv_does(tmp_path, suffix):
    """A PNG's EXIF orientation was ignored: its right recorded size refused, the wrong one passed."""
    import cv2
    import numpy as np
    from PIL import Image

    from lcp.data.images import read_size

    image = Image.fromarray(np.zeros((40, 80, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # turned a quarter when read
    path = tmp_path / f"turned{suffix}"
    image.save(path, exif=exif)
    height, width = cv2.imread(str(path)).shape[:2]
    assert read_size(path) == (width, height) == (40, 80)


def test_a_png_whose_exif_follows_its_pixels_is_read_turned_at_the_recorded_size(tmp_path):
    """Pillow sees such a chunk only after reading the pixels: the right recorded size was refused."""
    import struct

    import cv2
    import numpy as np
    from PIL import Image

    from lcp.data.images import read_size

    image = Image.fromarray(np.zeros((40, 80, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "first.png", exif=exif)
    data, position, chunks = (tmp_path / "first.png").read_bytes(), 8, []
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        chunks.append((data[position + 4 : position + 8], data[position : position + 12 + length]))
        position += 12 + length
    order = [kind for kind, _ in chunks if kind != b"eXIf"]
    order.insert(order.index(b"IEND"), b"eXIf")  # after the pixels
    late = tmp_path / "late.png"
    late.write_bytes(data[:8] + b"".join(dict(chunks)[kind] for kind in order))
    assert cv2.imread(str(late)).shape[:2] == (80, 40)  # OpenCV applies it wherever it is
    assert read_size(late, expected=(40, 80)) == (40, 80)


@pytest.mark.parametrize("for_training", [True, False])
def test_boxes_mmdet_drops_or_cocoeval_never_matches_are_counted_on_stderr(capsys, scene, for_training):
    """COCO's train2017 holds a box of height 0: refusing the set for it was wrong, keeping quiet
    too (mmdet drops it, COCOeval can never match it)."""
    from lcp.datasets.config_checks import check_annotation_file

    ann = scene / "annotations/clean_train.json"
    coco = read_coco(ann)
    coco["annotations"][1]["bbox"][3] = 0.0
    coco["annotations"][2]["area"] = -5.0
    ann.write_text(json.dumps(coco))
    for _ in range(2):  # said once
        check_annotation_file(str(ann), f"{scene}/clean/", list(CLASSES), need_boxes=for_training)
    what = (
        "are dropped by mmdet's training (under 1 px wide or high, or of no area)"
        if for_training
        else "can never be matched or lie in no size range of COCOeval (no width or height, or a negative area)"
    )
    bbox = coco["annotations"][1]["bbox"]
    assert capsys.readouterr().err == (
        f"warning: {ann}: 2 of its {len(coco['annotations'])} boxes {what}, the first annotations[1] "
        f"(bbox {bbox}, area {coco['annotations'][1]['area']})\n"
    )


def test_test_refuses_a_negative_worker_count(capsys, workspace, checkpoint):
    err = argparse_error(capsys, ["test", PLAIN_TINY, str(checkpoint), "--eval", "bbox", "--workers", "-1"])
    assert err == "lcp test: error: argument --workers: must be >= 0, got -1"


def test_data_check_refuses_zero_workers(capsys, workspace):
    demo = workspace / "demo"
    err = argparse_error(
        capsys, ["data", "check", "--lowq", str(demo / "lowq"), "--clean", str(demo / "clean"), "--workers", "0"]
    )
    assert err == "lcp data check: error: argument --workers: must be >= 1, got 0"


def test_data_check_fails_a_class_without_boxes(capsys, scene, tmp_path):
    annotation_files = sorted((scene / "annotations").glob("*.json"))
    for path in annotation_files:  # nobody labelled a triangle
        coco = read_coco(path)
        coco["annotations"] = [ann for ann in coco["annotations"] if ann["category_id"] != 3]
        path.write_text(json.dumps(coco))
    report = tmp_path / "check.json"
    assert (
        lcp(
            [
                "data",
                "check",
                "--lowq",
                str(scene / "lowq"),
                "--clean",
                str(scene / "clean"),
                "--ann",
                *map(str, annotation_files),
                "--classes",
                ",".join(CLASSES),
                "--report",
                str(report),
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 2
    )
    errors = json.loads(report.read_text())["errors"]
    assert list(errors) == ["class_without_boxes"]
    assert [item["detail"] for item in errors["class_without_boxes"]["items"]] == [
        "class 'triangle' has no box in any annotation file"
    ]
    assert "FAILED: 1 error(s): class_without_boxes" in capsys.readouterr().out


def test_a_training_whose_weights_became_nan_stops_there_naming_it_and_saves_none_of_them(capsys, workspace, tmp_path):
    """At lr 50 the losses turn nan within a few epochs; mmcv's runner went on, saved nan weights
    as epoch_N.pth and latest.pth and exited 0, and their evaluation reported AP 0."""
    work = tmp_path / "work"
    data = f"data_root={workspace / 'demo'}/"
    argv = ["train", PLAIN_TINY, "--work-dir", str(work), "--no-validate", "--cfg-options", data, "optimizer.lr=50"]
    assert lcp(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    diverged = re.match(r"lcp train: error: training diverged in epoch (\d+), iteration \d+: ", err)
    assert diverged, err
    assert "loss nan" in err and "the weights are no longer finite (backbone." in err, err
    assert "lower the learning rate (optimizer.lr, 50 in this run)" in err, err
    epoch = int(diverged.group(1))
    assert sorted(path.name for path in work.glob("epoch_*.pth")) == [f"epoch_{n}.pth" for n in range(1, epoch)][-3:]
    for path in work.glob("epoch_*.pth"):
        weights = torch.load(path, map_location="cpu", weights_only=False)["state_dict"].values()
        assert all(bool(torch.isfinite(value).all()) for value in weights if value.is_floating_point()), path
