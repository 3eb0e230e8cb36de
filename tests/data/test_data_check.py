"""`lcp data check`: passes a proper synthesised set, names every way a broken one is broken."""

import json
import shutil
from pathlib import Path

import cv2
import pytest

from lcp.cli import main as lcp
from lcp.errors import LCPError
from lcp.workflow.preflight import UNFIXABLE_STATUS

SIZE = 64
CLASSES = "circle,square,triangle"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("check") / "demo"
    assert (
        lcp(
            [
                "data",
                "demo",
                "--out",
                str(out),
                "--num-images",
                "8",
                "--size",
                str(SIZE),
                "--seed",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    return out


@pytest.fixture
def scene(pristine, tmp_path) -> Path:
    """A private copy to break."""
    return Path(shutil.copytree(pristine, tmp_path / "demo"))


def check(scene: Path, *extra: str, lowq: str = "lowq", workers: str = "1") -> tuple[int, dict]:
    report = scene.parent / "report.json"
    report.unlink(missing_ok=True)
    anns = [str(p) for p in sorted((scene / "annotations").glob("*.json"))]
    code = lcp(
        [
            "data",
            "check",
            "--lowq",
            str(scene / lowq),
            "--clean",
            str(scene / "clean"),
            "--ann",
            *anns,
            "--classes",
            CLASSES,
            "--report",
            str(report),
            "--workers",
            workers,
            "--no-progress",
            *extra,
        ]
    )
    return code, json.loads(report.read_text())


def lowq_name(index: int, beta: str = "0.04") -> str:
    return f"demo_{index:06d}_foggy_beta_{beta}.jpg"


def failing_files(report: dict, reason: str) -> set[str]:
    return {Path(item["file"]).name for item in report["errors"].get(reason, {}).get("items", [])}


def test_a_proper_set_passes(pristine, capsys):
    code, report = check(pristine, workers="2")
    assert code == 0 and report["ok"] and report["errors"] == {}
    assert report["degradation"] == "fog" and report["counts"]["pairs"] == 8
    summary = report["degradation_summary"]["by_variant"]["beta_0.04"]
    assert summary["images"] == 8 and 0.5 < summary["mean"] < 0.95
    assert "PASSED" in capsys.readouterr().out


def test_swapped_images_do_not_show_their_clean_scene(scene, capsys):
    a, b = scene / "lowq" / lowq_name(1), scene / "lowq" / lowq_name(2)
    a.rename(scene / "tmp.jpg")
    b.rename(a)
    (scene / "tmp.jpg").rename(b)
    code, report = check(scene)
    # a failed check is a refused input: the workflow's retries of it end at once
    assert code == UNFIXABLE_STATUS == 2 and not report["ok"]
    assert failing_files(report, "content_mismatch") == {a.name, b.name}
    out = capsys.readouterr().out
    assert "FAILED" in out and "content_mismatch" in out and a.name in out


def test_renamed_and_resized_images_are_named(scene):
    (scene / "lowq" / lowq_name(3)).rename(scene / "lowq" / lowq_name(99))
    path = scene / "lowq" / lowq_name(4)
    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path)), (SIZE + 8, SIZE)))
    (scene / "lowq" / lowq_name(5)).rename(scene / "lowq" / "demo_000005.jpg")  # lost its suffix
    code, report = check(scene)
    assert code == 2
    assert failing_files(report, "unpaired_lowq") == {lowq_name(99), "demo_000005.jpg"}
    assert failing_files(report, "not_in_sidecar") == {lowq_name(99), "demo_000005.jpg"}
    assert lowq_name(4) in failing_files(report, "size_mismatch")
    assert "missing_image" in report["errors"]  # lowq_*.json still lists the renamed files


def test_undegraded_copies_are_rejected_with_or_without_sidecar(scene):
    for path in (scene / "lowq").glob("*.jpg"):
        shutil.copyfile(scene / "clean" / path.name.replace("_foggy_beta_0.04", ""), path)
    code, report = check(scene)
    assert code == 2 and failing_files(report, "not_degraded") == {lowq_name(i) for i in range(1, 9)}
    (scene / "lowq" / "synthesis.json").unlink()
    code, report = check(scene)
    assert code == 2 and len(failing_files(report, "not_degraded")) == 8


def test_fog_of_another_strength_than_the_sidecar_says_is_out_of_range(scene):
    assert (
        lcp(
            [
                "data",
                "synth",
                "fog",
                "--src",
                str(scene / "clean"),
                "--out",
                str(scene / "thin"),
                "--beta",
                "0.01",
                "--depth-dir",
                str(scene / "depth"),
                "--near",
                "3",
                "--far",
                "150",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    for path in (scene / "thin").glob("*.jpg"):
        path.replace(scene / "lowq" / path.name.replace("beta_0.01", "beta_0.04"))
    code, report = check(scene)
    assert code == 2 and len(failing_files(report, "degradation_out_of_range")) >= 6
    assert "beta gives" in report["errors"]["degradation_out_of_range"]["items"][0]["detail"]


def test_another_degradation_under_fog_names_is_out_of_range_without_a_sidecar(scene):
    """Without a sidecar only 'no fog' was judged: underwater images named as fog (negative
    transmissions, which fog cannot give) passed, as converted sets have no sidecar."""
    assert (
        lcp(
            ["data", "synth", "underwater", "--src", str(scene / "clean"), "--out", str(scene / "uw")]
            + ["--depth-dir", str(scene / "depth"), "--workers", "1", "--no-progress"]
        )
        == 0
    )
    (scene / "lowq" / "synthesis.json").unlink()
    for path in (scene / "uw").glob("*.jpg"):
        path.replace(scene / "lowq" / lowq_name(int(path.name.split("_")[1])))
    code, report = check(scene)
    assert code == 2 and failing_files(report, "degradation_out_of_range")
    assert "below 0, which fog" in report["errors"]["degradation_out_of_range"]["items"][0]["detail"]


def test_truncated_and_empty_files(scene):
    clean = scene / "clean" / "demo_000006.jpg"
    clean.write_bytes(clean.read_bytes()[: clean.stat().st_size // 2])
    (scene / "lowq" / lowq_name(7)).write_bytes(b"")
    code, report = check(scene)
    assert code == 2
    assert failing_files(report, "truncated_image") == {"demo_000006.jpg"}
    assert failing_files(report, "empty_image_file") == {lowq_name(7)}


def edit(path: Path, change) -> None:
    coco = json.loads(path.read_text())
    change(coco)
    path.write_text(json.dumps(coco))


def test_annotation_problems_are_each_named(scene):
    train = scene / "annotations" / "clean_train.json"

    def break_it(coco):
        coco["annotations"][0]["bbox"] = [SIZE - 10, 5, 30, 10]  # leaves the image
        coco["annotations"][1]["bbox"] = [5, 5, 0, 10]  # no area
        coco["annotations"][2]["category_id"] = 99  # no such category
        coco["annotations"][3]["id"] = coco["annotations"][4]["id"]  # duplicate id
        coco["images"][0]["width"] = SIZE * 2  # wrong recorded size
        coco["annotations"][5]["bbox"] = [float("nan"), 5, 10, float("nan")]  # passed every comparison
        coco["annotations"][6]["bbox"] = [True, 5, 10, 10]
        coco["annotations"][7]["area"] = 0  # mmdet trains on no such box; COCOeval counts it in no size range

    edit(train, break_it)
    edit(scene / "annotations" / "lowq_test.json", lambda coco: coco["categories"].append({"id": 4, "name": "hexagon"}))
    code, report = check(scene)
    assert code == 2
    errors = report["errors"]
    for reason in (
        "box_outside_image",
        "box_nonpositive_area",
        "unknown_category",
        "duplicate_annotation_id",
        "size_mismatch",
        "invalid_box",
    ):
        assert reason in errors, reason
        assert any(item["file"] == str(train) for item in errors[reason]["items"]), reason
    assert any("'hexagon'" in item["detail"] for item in errors["unknown_category"]["items"])
    assert set(errors) == {
        "box_outside_image",
        "box_nonpositive_area",
        "unknown_category",
        "duplicate_annotation_id",
        "size_mismatch",
        "invalid_box",
    }
    assert len(errors["invalid_box"]["items"]) == 2
    assert [item["detail"].rsplit(": ", 1)[1] for item in errors["box_nonpositive_area"]["items"]] == [
        "width 0, height 10",
        "area 0",
    ]


def test_an_id_written_as_text_is_quoted_not_shown_as_the_number_it_is_not(scene):
    # "category id 3 is not in categories" read as nonsense when category 3 exists: the id was "3"
    def break_it(coco):
        coco["annotations"][0]["category_id"] = str(coco["annotations"][0]["category_id"])
        coco["annotations"][1]["image_id"] = str(coco["annotations"][1]["image_id"])

    edit(scene / "annotations" / "clean_train.json", break_it)
    code, report = check(scene)
    assert code == 2
    [unknown] = report["errors"]["unknown_category"]["items"]
    [orphan] = report["errors"]["orphan_annotation"]["items"]
    assert unknown["detail"].endswith(" is not in categories") and "category id '" in unknown["detail"], unknown
    assert orphan["detail"].endswith(" is not in images") and "image id '" in orphan["detail"], orphan


def test_annotation_files_that_would_train_or_score_wrongly_are_named(scene):
    """Each passed: a category name given two ids (mmdet makes the second id background, so its
    boxes are lost), a low-quality file listing a clean image (found in --clean, missing where
    training reads), a test image that is also a training image, and a class whose only boxes
    are crowd (never trained on, scored without ground truth)."""
    annotations = scene / "annotations"
    triangle = 3

    def two_circle_ids(coco):
        coco["categories"].append({"id": 7, "name": "circle"})

    def lists_a_clean_image(coco):
        coco["images"][0]["file_name"] = coco["images"][0]["file_name"].replace("_foggy_beta_0.04", "")

    train = json.loads((annotations / "lowq_train.json").read_text())

    def also_a_training_image(coco):
        image = {**train["images"][1], "id": 1000}
        coco["images"].append(image)

    def triangles_only_crowd(coco):
        for ann in coco["annotations"]:
            if ann["category_id"] == triangle:
                ann["iscrowd"] = 1

    edit(annotations / "lowq_test.json", two_circle_ids)
    edit(annotations / "lowq_train.json", lists_a_clean_image)
    edit(annotations / "lowq_test.json", also_a_training_image)
    for path in annotations.glob("*.json"):
        edit(path, triangles_only_crowd)
    code, report = check(scene)
    assert code == 2
    details = {reason: [item["detail"] for item in entry["items"]] for reason, entry in report["errors"].items()}
    assert details["duplicate_category_name"] == ["category 'circle' has ids 1, 7; one id a name"]
    assert failing_files(report, "images_in_two_folders") == {"lowq_train.json"}
    leaked = f"{train['images'][1]['file_name']} is listed in {annotations / 'lowq_test.json'} too"
    assert leaked in details["image_in_two_files"]
    assert details["class_without_boxes"] == ["class 'triangle' has no box in any annotation file"]


def test_configured_classes_must_all_be_categories(pristine, tmp_path):
    report = tmp_path / "r.json"
    code = lcp(
        [
            "data",
            "check",
            "--lowq",
            str(pristine / "lowq"),
            "--clean",
            str(pristine / "clean"),
            "--ann",
            str(pristine / "annotations" / "clean_test.json"),
            "--classes",
            "circle,square,star",
            "--report",
            str(report),
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    errors = json.loads(report.read_text())["errors"]
    assert code == 2 and set(errors) == {"unknown_category", "category_mismatch"}
    assert "'star'" in errors["category_mismatch"]["items"][0]["detail"]


@pytest.mark.parametrize(
    "kind, options",
    [
        ("rain", ["--intensity", "medium", "heavy", "--near", "3", "--far", "150"]),
        ("underwater", ["--water", "I", "9C"]),
    ],
)
def test_rain_and_underwater_sets_pass_and_their_copies_do_not(pristine, tmp_path, kind, options):
    out = tmp_path / kind
    if kind == "rain":  # the scene's own depth; underwater keeps the default 1-10 m ground plane
        options = [*options, "--depth-dir", str(pristine / "depth")]
    assert (
        lcp(
            [
                "data",
                "synth",
                kind,
                "--src",
                str(pristine / "clean"),
                "--out",
                str(out),
                "--workers",
                "1",
                "--no-progress",
                *options,
            ]
        )
        == 0
    )
    args = [
        "data",
        "check",
        "--lowq",
        str(out),
        "--clean",
        str(pristine / "clean"),
        "--workers",
        "1",
        "--no-progress",
        "--report",
        str(tmp_path / "r.json"),
    ]
    assert lcp(args) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["degradation"] == kind and len(report["degradation_summary"]["by_variant"]) == 2
    sidecar = json.loads((out / "synthesis.json").read_text())
    for name, record in sidecar["images"].items():
        shutil.copyfile(pristine / "clean" / record["source"], out / name)
    assert lcp(args) == 2
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["errors"]["not_degraded"]["count"] == 16


def test_bad_input_is_an_error_not_a_report(pristine, tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    code = lcp(
        [
            "data",
            "check",
            "--lowq",
            str(pristine / "lowq"),
            "--clean",
            str(pristine / "clean"),
            "--ann",
            str(tmp_path / "bad.json"),
            "--report",
            str(tmp_path / "r.json"),
            "--no-progress",
        ]
    )
    assert code == 2 and "bad.json: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    for section, key, value, kind in (
        ("annotations", "id", [1], "an id"),
        ("images", "file_name", 5, "a string"),
        ("images", "id", {"a": 1}, "an id"),
        ("images", "width", "64", "a whole number"),
        ("categories", "name", ["circle"], "a string"),
        ("annotations", "category_id", True, "an id"),
    ):
        coco = json.loads((pristine / "annotations" / "lowq_test.json").read_text())
        coco[section][0][key] = value
        (tmp_path / "typed.json").write_text(json.dumps(coco))
        argv = ["data", "check", "--lowq", str(pristine / "lowq"), "--clean", str(pristine / "clean")]
        assert lcp([*argv, "--ann", str(tmp_path / "typed.json"), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"typed.json: {section}[0].{key} is {value!r}, not {kind}" in err, err
    code = lcp(["data", "check", "--lowq", str(tmp_path / "none"), "--clean", str(pristine / "clean")])
    assert code == 2 and capsys.readouterr().err.strip().endswith(f"{tmp_path / 'none'}: image folder does not exist")


@pytest.mark.parametrize(
    "change",
    [
        lambda record: "edited",
        lambda record: {**record, "expected": {"transmission": "0.7"}},
        lambda record: {**record, "atmospheric_light_rgb": [1.0, 1.0]},
    ],
    ids=["not-a-record", "text-transmission", "two-channel-light"],
)
def test_a_sidecar_edited_by_hand_is_one_line(scene, capsys, change):
    """These were an AttributeError or TypeError traceback naming no file."""
    sidecar = scene / "lowq" / "synthesis.json"
    data = json.loads(sidecar.read_text())
    data["images"][lowq_name(1)] = change(data["images"][lowq_name(1)])
    sidecar.write_text(json.dumps(data))
    argv = ["data", "check", "--lowq", str(scene / "lowq"), "--clean", str(scene / "clean"), "--no-progress"]
    assert lcp(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"lcp data: error: {sidecar}: the record of {lowq_name(1)} is not what lcp data synth writes (edited by hand?)"
    )


def test_the_check_modifies_nothing(pristine):
    before = {p: p.stat().st_mtime_ns for p in pristine.rglob("*")}
    check(pristine)
    assert {p: p.stat().st_mtime_ns for p in pristine.rglob("*")} == before


# Objects erased by the degradation (issue 13, part 4).


def synth_fog_with_boxes(scene: Path, out: str, *options: str) -> Path:
    anns = []
    for split in ("train", "test"):
        anns += [
            "--ann",
            str(scene / "annotations" / f"clean_{split}.json"),
            "--ann-out",
            str(scene / "annotations" / f"{out}_{split}.json"),
        ]
    assert (
        lcp(
            [
                "data",
                "synth",
                "fog",
                "--src",
                str(scene / "clean"),
                "--out",
                str(scene / out),
                *anns,
                "--workers",
                "1",
                "--no-progress",
                *options,
            ]
        )
        == 0
    )
    return scene / out


def check_lowq(scene: Path, lowq: str, *extra: str) -> tuple[int, dict]:
    report = scene.parent / f"{lowq}.json"
    anns = [str(scene / "annotations" / f"{lowq}_{split}.json") for split in ("train", "test")]
    code = lcp(
        [
            "data",
            "check",
            "--lowq",
            str(scene / lowq),
            "--clean",
            str(scene / "clean"),
            "--ann",
            *anns,
            "--classes",
            CLASSES,
            "--report",
            str(report),
            "--workers",
            "1",
            "--no-progress",
            *extra,
        ]
    )
    return code, json.loads(report.read_text())


def test_a_proper_set_reports_its_depth_and_visible_boxes(pristine):
    code, report = check(pristine)
    assert code == 0 and report["depth_sources"] == {"depth-maps": 8}
    boxes = report["box_visibility"]["by_variant"]["beta_0.04"]
    lowq_boxes = sum(
        len(json.loads((pristine / "annotations" / f"lowq_{s}.json").read_text())["annotations"])
        for s in ("train", "test")
    )
    assert boxes["boxes"] == lowq_boxes and boxes["erased"] == 0
    assert report["images"][lowq_name(1)]["depth_source"] == "depth-maps"
    assert not {"fallback_depth", "boxes_erased", "box_visibility_unknown"} & set(report["warnings"])


def test_a_fog_check_fails_when_the_boxes_are_erased(scene, capsys):
    # No depth given: the road-scene ground plane puts everything above its horizon (45% down)
    # at 300 m, where beta 0.05 leaves a transmission of 3e-7; many of the objects stand there.
    synth_fog_with_boxes(scene, "fallback", "--beta", "0.05")
    assert "images used the fallback depth" in capsys.readouterr().out
    code, report = check_lowq(scene, "fallback")
    assert code == 2 and set(report["errors"]) == {"boxes_erased"}
    boxes = report["box_visibility"]["by_variant"]["beta_0.05"]
    assert boxes["boxes"] == report["counts"]["annotations"] and boxes["erased_share"] > 0.1
    detail = report["errors"]["boxes_erased"]["items"][0]["detail"]
    assert f"{boxes['erased']} of {boxes['boxes']} boxes" in detail and "8 ground-plane" in detail
    assert report["depth_sources"] == {"ground-plane": 8}
    assert report["warnings"]["fallback_depth"]["count"] == 1
    assert report["warnings"]["fallback_depth_whitens"]["count"] == 8
    assert sum(e.get("boxes_erased", 0) for e in report["images"].values()) == boxes["erased"]
    out = capsys.readouterr().out
    assert "FAILED" in out and "box visibility [beta_0.05]" in out and "8 images ground-plane" in out


def test_a_synthesised_set_whose_annotations_hold_no_box_is_summarised_not_a_traceback(scene, capsys):
    """Images listed without boxes (a converted `folder` set) left the visibility median None,
    which the summary formatted as a number: a TypeError after the whole check."""
    for split in ("train", "test"):
        path = scene / "annotations" / f"clean_{split}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "annotations": []}))
    synth_fog_with_boxes(scene, "empty")
    capsys.readouterr()
    code, report = check_lowq(scene, "empty")
    assert report["box_visibility"]["by_variant"]["beta_0.02"]["boxes"] == 0
    out = capsys.readouterr().out  # failed for the scene's classes without a box, and says so
    assert code == 2 and "box visibility [beta_0.02]: no boxes" in out
    assert out.rstrip().endswith("FAILED: 3 error(s): class_without_boxes")


def test_the_erased_share_and_threshold_are_options(scene):
    synth_fog_with_boxes(scene, "fallback", "--beta", "0.05")
    code, report = check_lowq(scene, "fallback", "--max-erased-share", "0.9")
    assert code == 0 and report["errors"] == {} and report["warnings"]["boxes_erased"]["count"] >= 1
    code, report = check_lowq(scene, "fallback", "--erased-below", "0")
    assert code == 0 and "boxes_erased" not in report["warnings"]
    code = lcp(
        ["data", "check", "--lowq", str(scene / "lowq"), "--clean", str(scene / "clean"), "--max-erased-share", "1.5"]
    )
    assert code == 2


def test_a_sidecar_without_box_visibility_is_named(scene):
    assert (
        lcp(
            [
                "data",
                "synth",
                "fog",
                "--src",
                str(scene / "clean"),
                "--out",
                str(scene / "nobox"),
                "--depth-dir",
                str(scene / "depth"),
                "--near",
                "3",
                "--far",
                "150",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    code, report = check(scene, lowq="nobox")
    assert report["warnings"]["box_visibility_unknown"]["items"][0]["detail"].startswith("8 images")
    assert "boxes_erased" not in report["errors"]


# Real low-quality sets: nothing synthesised, nothing to pair (issue 13, part 5).


def real_set(scene: Path) -> tuple[Path, list[str]]:
    """The clean images and their annotations stand in for a real low-quality set (no markers, no sidecar)."""
    return scene / "clean", [str(scene / "annotations" / f"clean_{split}.json") for split in ("train", "test")]


def check_real(scene: Path, *extra: str) -> tuple[int, dict]:
    images, anns = real_set(scene)
    report = scene.parent / "real.json"
    report.unlink(missing_ok=True)
    code = lcp(
        [
            "data",
            "check",
            "--lowq",
            str(images),
            "--ann",
            *anns,
            "--classes",
            CLASSES,
            "--report",
            str(report),
            "--workers",
            "2",
            "--no-progress",
            *extra,
        ]
    )
    return code, json.loads(report.read_text()) if report.exists() else {}


def test_a_real_low_quality_set_is_checked_without_pairing(pristine, capsys):
    code, report = check_real(pristine)
    assert code == 0 and report["ok"] and report["errors"] == {}
    assert report["mode"] == "annotations-and-images" and report["degradation"] is None
    assert report["counts"]["pairs"] == 0 and report["counts"]["lowq_images"] == 8
    assert "annotations and images only" in capsys.readouterr().out
    # the workflow's form for a `degradation: none` scene names the clean set too
    code, report = check_real(pristine, "--clean", str(pristine / "lowq"), "--degradation", "none")
    assert code == 0 and report["clean_dir"] is None and report["counts"]["pairs"] == 0


def test_a_broken_real_set_is_named_without_pairing(scene):
    images, anns = real_set(scene)
    (images / "demo_000006.jpg").write_bytes((images / "demo_000006.jpg").read_bytes()[:300])
    (images / "stray.jpg").write_bytes(b"")  # in no annotation file, and empty
    shutil.copyfile(images / "demo_000001.jpg", scene / "lowq" / "demo_000002.jpg")
    (images / "demo_000002.jpg").unlink()  # missing; not taken from --clean
    edit(Path(anns[0]), lambda coco: coco["annotations"][0].update(bbox=[SIZE - 4, 0, 20, 20]))
    code, report = check_real(scene, "--clean", str(scene / "lowq"), "--degradation", "none")
    assert code == 2
    assert failing_files(report, "truncated_image") == {"demo_000006.jpg"}
    assert failing_files(report, "empty_image_file") == {"stray.jpg"}
    assert "demo_000002.jpg" in report["errors"]["missing_image"]["items"][0]["detail"]
    assert failing_files(report, "box_outside_image") == {"clean_train.json"}
    assert {Path(i["file"]).name for i in report["warnings"]["image_not_annotated"]["items"]} == {"stray.jpg"}
    assert not {"unpaired_lowq", "not_degraded", "content_mismatch"} & set(report["errors"])


def test_an_unmarked_set_with_a_clean_set_still_asks_which_degradation(pristine, capsys):
    images, anns = real_set(pristine)
    code = lcp(["data", "check", "--lowq", str(images), "--clean", str(pristine / "lowq"), "--no-progress"])
    assert code == 2 and "or none for a real low-quality set" in capsys.readouterr().err
    code = lcp(["data", "check", "--lowq", str(pristine / "lowq"), "--no-progress"])  # a fog sidecar, no --clean
    assert code == 2 and "pass --clean, or --degradation none" in capsys.readouterr().err


def test_the_library_takes_plain_arguments_and_prints_nothing(pristine, tmp_path, capsys):
    """What `lcp data check` reports, check_set returns to a Python caller; printing is the command's."""
    from lcp.data.check import check_set, format_summary

    anns = sorted((pristine / "annotations").glob("lowq_*.json"))
    report = check_set(
        pristine / "lowq", pristine / "clean", anns, classes=CLASSES.split(","), workers=2, progress=False
    )
    assert capsys.readouterr() == ("", "")
    assert report["ok"] and report["counts"]["pairs"] == 8 and format_summary(report).endswith("PASSED")
    code = lcp(
        [
            "data",
            "check",
            "--lowq",
            str(pristine / "lowq"),
            "--clean",
            str(pristine / "clean"),
            "--ann",
            *map(str, anns),
            "--classes",
            CLASSES,
            "--report",
            str(tmp_path / "r.json"),
            "--no-progress",
        ]
    )
    assert code == 0 and capsys.readouterr().out == format_summary(report) + "\n"
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(report))
    with pytest.raises(LCPError, match=r"^--max-erased-share: a share in \[0, 1\], got 1.5$"):
        check_set(pristine / "lowq", pristine / "clean", anns, max_erased_share=1.5)


def test_underwater_images_of_another_water_type_than_the_sidecar_says_are_out_of_range(pristine, tmp_path):
    sets = {}
    for water in ("I", "9C"):
        out = tmp_path / water
        synth = ["data", "synth", "underwater", "--src", str(pristine / "clean"), "--out", str(out)]
        assert lcp([*synth, "--water", water, "--workers", "1", "--no-progress"]) == 0
        sidecar = json.loads((out / "synthesis.json").read_text())
        sets[water] = {record["source"]: out / name for name, record in sidecar["images"].items()}
    for source, clear_water in sets["I"].items():  # coastal 9C images under the clear ocean water's names
        shutil.copyfile(sets["9C"][source], clear_water)
    report = tmp_path / "r.json"
    check = [
        "data",
        "check",
        "--lowq",
        str(tmp_path / "I"),
        "--clean",
        str(pristine / "clean"),
        "--report",
        str(report),
    ]
    assert lcp([*check, "--workers", "1", "--no-progress"]) == 2
    errors = json.loads(report.read_text())["errors"]
    assert errors["degradation_out_of_range"]["count"] == len(sets["I"])
    assert "the sidecar's water type gives" in errors["degradation_out_of_range"]["items"][0]["detail"]


def test_a_clean_image_no_low_quality_image_pairs_with_is_named(scene):
    shutil.copyfile(scene / "clean" / "demo_000001.jpg", scene / "clean" / "unpaired.jpg")
    code, report = check(scene)
    assert code == 0, report["errors"]
    items = report["warnings"]["clean_without_lowq"]["items"]
    assert [(Path(item["file"]).name, item["detail"]) for item in items] == [
        ("unpaired.jpg", "no low-quality image pairs with it")
    ]


def test_a_clean_image_in_two_formats_or_another_than_the_sidecar_s_source_does_not_pair(scene):
    """The clean images of a refused pair were also warned about as having no low-quality
    image, which their own low-quality image's error contradicts."""
    shutil.copyfile(scene / "clean" / "demo_000001.jpg", scene / "clean" / "demo_000001.png")
    sidecar = scene / "lowq" / "synthesis.json"
    data = json.loads(sidecar.read_text())
    data["images"][lowq_name(2)]["source"] = "demo_000003.jpg"
    sidecar.write_text(json.dumps(data))
    code, report = check(scene)
    assert code == 2 and set(report["errors"]) == {"ambiguous_pair", "mispaired"}
    [ambiguous] = report["errors"]["ambiguous_pair"]["items"]
    assert (Path(ambiguous["file"]).name, ambiguous["detail"]) == (
        lowq_name(1),
        "several clean images: demo_000001.jpg, demo_000001.png",
    )
    [mispaired] = report["errors"]["mispaired"]["items"]
    assert (Path(mispaired["file"]).name, mispaired["detail"]) == (
        lowq_name(2),
        "synthesis.json says it was made from demo_000003.jpg, its name pairs it with demo_000002.jpg",
    )
    assert report["counts"]["pairs"] == 6 and "clean_without_lowq" not in report["warnings"]


def test_an_image_listed_twice_in_an_annotation_file_is_named(scene):
    def list_twice(coco):
        coco["images"][1]["file_name"] = coco["images"][0]["file_name"]

    train = scene / "annotations" / "lowq_train.json"
    edit(train, list_twice)
    name = json.loads(train.read_text())["images"][0]["file_name"]
    code, report = check(scene)
    assert code == 2
    assert [(item["file"], item["detail"]) for item in report["errors"]["duplicate_file_name"]["items"]] == [
        (str(train), f"{name} is listed twice")
    ]


def test_a_degradation_other_than_the_sidecar_s_is_named_and_an_unknown_one_refused(scene, capsys):
    code, report = check(scene, "--degradation", "rain")
    assert code == 2 and report["degradation"] == "rain"
    [mismatch] = report["errors"]["degradation_mismatch"]["items"]
    assert mismatch == {
        "file": str(scene / "lowq" / "synthesis.json"),
        "detail": "the sidecar says fog, --degradation says rain",
    }
    assert report["errors"]["unpaired_lowq"]["count"] == 8  # foggy names: no rain image pairs
    # the boxes' visibility under the variant the sidecar records, not under an empty name "[]"
    assert list(report["box_visibility"]["by_variant"]) == ["beta_0.04"]
    assert "\n  box visibility [beta_0.04]: median " in capsys.readouterr().out
    sidecar = scene / "lowq" / "synthesis.json"
    edit(sidecar, lambda data: data.update(degradation="snow"))
    capsys.readouterr()
    report = scene.parent / "snow.json"
    argv = ["data", "check", "--lowq", str(scene / "lowq"), "--clean", str(scene / "clean")]
    assert lcp([*argv, "--report", str(report), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == f"lcp data: error: {sidecar}: unknown degradation 'snow'"
    assert not report.exists()


def test_an_image_far_wider_than_high_is_compared_not_a_traceback(tmp_path):
    """Downscaled to the comparison size, a 6000x4 image had 0 rows: OpenCV's assertion."""
    import numpy as np

    clean = tmp_path / "clean"
    clean.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        cv2.imwrite(str(clean / f"{name}.png"), rng.integers(0, 256, (4, 6000, 3), dtype=np.uint8))
    synth = ["data", "synth", "fog", "--src", str(clean), "--out", str(tmp_path / "fog"), "--workers", "1"]
    assert lcp([*synth, "--no-progress"]) == 0
    argv = ["data", "check", "--lowq", str(tmp_path / "fog"), "--clean", str(clean), "--workers", "1"]
    report = tmp_path / "r.json"
    lcp([*argv, "--report", str(report), "--no-progress"])
    result = json.loads(report.read_text())
    assert "content_mismatch" not in result["errors"]
    assert all(entry["measured"] is not None for entry in result["images"].values())
    a, b = tmp_path / "fog" / "a_foggy_beta_0.02.jpg", tmp_path / "fog" / "b_foggy_beta_0.02.jpg"
    a.rename(tmp_path / "t.jpg")
    b.rename(a)
    (tmp_path / "t.jpg").rename(b)
    assert lcp([*argv, "--report", str(report), "--no-progress"]) == 2
    assert failing_files(json.loads(report.read_text()), "content_mismatch") == {a.name, b.name}


# Images larger than the scene comparison size, as every real set (Cityscapes: 2048x1024) is.


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    """Two 2048x1024 street-like frames (two shapes scenes side by side) with their depth,
    and fog synthesised from them with that depth."""
    import numpy as np

    from lcp.data.depth import encode_depth_png
    from lcp.data.shapes_scene import render_scene

    root = tmp_path_factory.mktemp("large")
    (root / "clean").mkdir()
    (root / "depth").mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        left, right = render_scene(1024, rng), render_scene(1024, rng)
        cv2.imwrite(str(root / "clean" / f"frame_{index}.png"), np.concatenate([left.image, right.image], axis=1))
        depth = np.concatenate([left.depth, right.depth], axis=1)
        (root / "depth" / f"frame_{index}.png").write_bytes(encode_depth_png(depth))
    synth = ["data", "synth", "fog", "--src", str(root / "clean"), "--out", str(root / "fog"), "--beta", "0.01"]
    depth = ["--depth-dir", str(root / "depth"), "--near", "3", "--far", "150"]
    assert lcp([*synth, *depth, "--workers", "1", "--no-progress"]) == 0
    return root


def check_large(lowq: Path, clean: Path) -> tuple[int, dict]:
    report = lowq.parent / "large.json"
    argv = ["data", "check", "--lowq", str(lowq), "--clean", str(clean), "--report", str(report)]
    code = lcp([*argv, "--workers", "1", "--no-progress"])
    return code, json.loads(report.read_text())


def test_large_images_are_compared_downscaled_as_they_would_be_at_full_size(large, monkeypatch):
    from lcp.data.check import pairs
    from lcp.data.degradations import DEGRADATIONS
    from lcp.data.images import read_image, to_float

    assert cv2.imread(str(large / "clean" / "frame_0.png")).shape[:2] == (1024, 2048)
    assert 2048 > pairs.SCENE_COMPARISON_SIZE
    code, report = check_large(large / "fog", large / "clean")
    assert code == 0 and report["errors"] == {} and report["counts"]["pairs"] == 2
    assert 0.85 < report["degradation_summary"]["by_variant"]["beta_0.01"]["mean"] < 0.95

    sidecar = json.loads((large / "fog" / "synthesis.json").read_text())["images"]
    fog = DEGRADATIONS["fog"]
    clean = {name: to_float(read_image(large / "clean" / name)) for name in ("frame_0.png", "frame_1.png")}
    correlations = {}
    for size in (pairs.SCENE_COMPARISON_SIZE, 4096):
        monkeypatch.setattr(pairs, "SCENE_COMPARISON_SIZE", size)
        for name, record in sidecar.items():
            lowq = fog.structure(to_float(read_image(large / "fog" / name)), record)
            for source, image in clean.items():
                correlation = pairs.scene_correlation(fog.structure(image, record), lowq)
                correlations.setdefault((name, source == record["source"]), []).append(correlation)
    for (name, own), (downscaled, full) in correlations.items():
        assert abs(downscaled - full) < 0.05, (name, own, downscaled, full)
        assert (downscaled >= pairs.MIN_SCENE_CORRELATION) == own, (name, own, downscaled)


def test_large_images_swapped_or_undegraded_are_flagged(large, tmp_path):
    fog = Path(shutil.copytree(large / "fog", tmp_path / "fog"))
    a, b = fog / "frame_0_foggy_beta_0.01.jpg", fog / "frame_1_foggy_beta_0.01.jpg"
    a.rename(tmp_path / "t.jpg")
    b.rename(a)
    (tmp_path / "t.jpg").rename(b)
    code, report = check_large(fog, large / "clean")
    assert code == 2 and failing_files(report, "content_mismatch") == {a.name, b.name}
    shutil.copyfile(large / "fog" / a.name, a)
    cv2.imwrite(str(b), cv2.imread(str(large / "clean" / "frame_1.png")))
    code, report = check_large(fog, large / "clean")
    assert code == 2 and set(report["errors"]) == {"not_degraded"} and failing_files(report, "not_degraded") == {b.name}
