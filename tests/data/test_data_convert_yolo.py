"""`lcp data convert yolo`: normalised txt labels -> pixel COCO boxes, split from the folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.convert_sources import boxes_by_file, category_names, convert, load_coco, write_image

W, H = 40, 20


@pytest.fixture
def yolo(tmp_path: Path) -> Path:
    root = tmp_path / "yolo"
    write_image(root / "images/train/a.jpg", W, H, seed=1)
    write_image(root / "images/train/c.png", W, H, seed=3)  # no label file: a negative
    write_image(root / "images/val/b.bmp", W, H, seed=2)
    (root / "labels/train").mkdir(parents=True)
    (root / "labels/val").mkdir(parents=True)
    (root / "labels/train/a.txt").write_text("0 0.25 0.5 0.5 0.4\n\n2 0.95 0.5 0.2 0.2\n")  # 2nd box leaves the image
    (root / "labels/val/b.txt").write_text("1 0.5 0.5 0.1 1.0\n")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: boat\n  1: buoy\n  2: person\n"
    )
    return root


def test_split_folders_and_pixel_boxes(yolo, tmp_path, capsys):
    out = tmp_path / "scene"
    code, stdout, stderr = convert(capsys, "yolo", yolo, out, "--workers", "1")
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    test = load_coco(out / "annotations/images_test.json")
    assert category_names(train) == ["boat", "buoy", "person"]
    assert boxes_by_file(train) == {
        "a.jpg": [("boat", [0.0, 6.0, 20.0, 8.0], 0), ("person", [34.0, 8.0, 6.0, 4.0], 0)],  # clipped at x=40
        "c.jpg": [],
    }
    assert boxes_by_file(test) == {"b.jpg": [("buoy", [18.0, 0.0, 4.0, 20.0], 0)]}
    assert "labels/train/a.txt:3 (person)" in stderr and "clipped" in stderr
    assert "1  image without a label file (no objects)" in stdout


def test_names_file_with_class_subset_and_resplit(yolo, tmp_path, capsys):
    names = tmp_path / "obj.names"
    names.write_text("boat\nbuoy\nperson\n")
    out = tmp_path / "scene"
    code, stdout, stderr = convert(
        capsys,
        "yolo",
        yolo,
        out,
        "--names",
        names,
        "--classes",
        "person,boat",
        "--test-fraction",
        "0",
        "--workers",
        "1",
    )
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    assert category_names(train) == ["person", "boat"]
    assert len(train.getImgIds()) == 3  # re-split: the val image joins train
    assert "1  box of class 'buoy' (not in --classes), dropped" in stdout


@pytest.mark.parametrize(
    "label_text, message",
    [
        ("7 0.5 0.5 0.1 0.1\n", "labels/val/b.txt:1: class id 7 has no name (the names: 0 boat, 1 buoy, 2 person)"),
        ("1 0.5 0.5 0.1\n", "labels/val/b.txt:1: expected 'class cx cy w h' (5 numbers), got 4 fields"),
        ("1 0.5 x 0.1 0.1\n", "labels/val/b.txt:1: not numbers"),
    ],
    ids=["class-out-of-range", "too-few-fields", "not-a-number"],
)
def test_malformed_labels_name_file_and_line(yolo, tmp_path, capsys, label_text, message):
    (yolo / "labels/val/b.txt").write_text(label_text)
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "scene")
    assert code == 2 and message in stderr


def test_label_without_image_and_unknown_names(yolo, tmp_path, capsys):
    (yolo / "labels/train/ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "a")
    assert code == 2 and "labels/train/ghost.txt: label file without an image" in stderr
    (yolo / "labels/train/ghost.txt").unlink()
    (yolo / "data.yaml").unlink()
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "b")
    assert code == 2 and stderr.strip() == (
        f"lcp data: error: {yolo} or {yolo}/labels: no classes.txt or data.yaml names the class ids; give --names "
        "FILE (one name a line, line i for id i) — --classes only picks and orders classes by name"
    )


def test_two_images_of_one_stem_are_refused_not_given_the_same_boxes(yolo, tmp_path, capsys):
    write_image(yolo / "images/train/a.png", W, H, seed=4)  # a.txt would label a.jpg and a.png
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "out")
    assert code == 2 and stderr.strip().endswith(
        f"{yolo}/images/train/a.png: same stem as {yolo}/images/train/a.jpg; both would take the boxes of "
        f"{yolo}/labels/train/a.txt, so stems must be unique"
    ), stderr
    assert not (tmp_path / "out").exists()


def test_pixel_coordinates_are_refused_naming_file_and_line(yolo, tmp_path, capsys):
    # the a.jpg boxes in pixels of the 40x20 image: every one would fall outside the image
    (yolo / "labels/train/a.txt").write_text("0 0.25 0.5 0.5 0.4\n0 10 10 20 8\n")
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "scene")
    assert code == 2
    assert stderr.strip() == (
        f"lcp data: error: {yolo}/labels/train/a.txt:2: cx cy w h 10 10 20 8 are not normalised to 0..1; "
        "YOLO labels give them as fractions of the image width and height (pixel coordinates? divide by the size)"
    )
    assert not (tmp_path / "scene").exists()


def test_a_conversion_that_drops_every_box_fails(yolo, tmp_path, capsys):
    (yolo / "labels/train/a.txt").write_text("0 0.25 0.5 0 0.4\n")  # no width
    (yolo / "labels/val/b.txt").write_text("1 0.5 0.5 0.1 0\n")  # no height
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "yolo", yolo, out, "--classes", "boat,buoy", "--workers", "1")
    assert code == 2
    assert stderr.strip().splitlines()[-1] == (
        f"lcp data: error: {out}/images: all 2 boxes of the source were dropped (see the warnings); "
        "a set without boxes has nothing to train or evaluate on"
    )
    assert not (out / "images").exists() and not list(out.glob("annotations/*.json"))


def test_a_class_without_boxes_is_refused_naming_the_classes_that_have_some(yolo, tmp_path, capsys):
    (yolo / "labels/val/b.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # no buoy left
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "a", "--classes", "boat,buoy")
    assert code == 2
    assert stderr.strip() == (  # the files are named, and the fix for a workflow user too
        f"lcp data: error: {yolo / 'labels'}: class 'buoy' has no box (crowd, difficult and ignored boxes aside: "
        "mmdet trains on none); the classes with boxes are boat, person; choose among them with --classes (in "
        "the workflow: the scene's classes)"
    )
    assert not (tmp_path / "a").exists()
    # also a class of the names file nobody labelled, without --classes
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "b")
    assert code == 2 and "class 'buoy' has no box (crowd" in stderr


def test_a_mistyped_class_is_refused_not_given_the_boxes_of_its_index(yolo, tmp_path, capsys):
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "a", "--classes", "boat,bouy,person")
    assert code == 2
    assert stderr.strip() == (
        f"lcp data: error: --classes: bouy not among the names of {yolo}/data.yaml (0 boat, 1 buoy, 2 person)"
    )
    assert not (tmp_path / "a").exists()


def test_classes_in_another_order_reorder_the_categories_of_the_data_yaml_names(yolo, tmp_path, capsys):
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "yolo", yolo, out, "--classes", "person,buoy,boat", "--workers", "1")
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    assert category_names(train) == ["person", "buoy", "boat"]
    # each box keeps its data.yaml name, whatever the order of --classes
    assert boxes_by_file(train)["a.jpg"] == [("boat", [0.0, 6.0, 20.0, 8.0], 0), ("person", [34.0, 8.0, 6.0, 4.0], 0)]


def write_pair(folder: Path, stem: str, label_folder: Path, lines: str) -> None:
    write_image(folder / f"{stem}.jpg", W, H, seed=len(stem))
    (label_folder / f"{stem}.txt").parent.mkdir(parents=True, exist_ok=True)
    (label_folder / f"{stem}.txt").write_text(lines)


def test_classes_in_another_order_than_classes_txt_never_rename_the_boxes(tmp_path, capsys):
    """The issue's case: classes.txt says car, person; the scene's classes are person, car.
    Before, --classes was the id map and every car became a person."""
    src = tmp_path / "set"
    write_pair(src, "a", src, "0 0.25 0.5 0.5 0.4\n")  # id 0: car
    write_pair(src, "bb", src, "1 0.5 0.5 0.1 1.0\n")  # id 1: person
    (src / "classes.txt").write_text("car\nperson\n")
    out = tmp_path / "scene"
    code, _, stderr = convert(
        capsys, "yolo", src, out, "--classes", "person,car", "--test-fraction", "0", "--workers", "1"
    )
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    assert category_names(train) == ["person", "car"]
    assert boxes_by_file(train) == {
        "a.jpg": [("car", [0.0, 6.0, 20.0, 8.0], 0)],
        "bb.jpg": [("person", [18.0, 0.0, 4.0, 20.0], 0)],
    }


def test_classes_do_not_stand_in_for_missing_names(tmp_path, capsys):
    src = tmp_path / "set"
    write_pair(src, "a", src, "0 0.25 0.5 0.5 0.4\n")
    code, _, stderr = convert(capsys, "yolo", src, tmp_path / "scene", "--classes", "person,car")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "no classes.txt or data.yaml names the class ids; give --names FILE" in stderr
    assert not (tmp_path / "scene").exists()


def test_labels_in_a_sibling_folder_with_their_classes_txt(tmp_path, capsys):
    images, labels = tmp_path / "Fog", tmp_path / "Fog_YOLO_darknet"
    write_pair(images, "a", labels, "1 0.25 0.5 0.5 0.4\n")
    write_pair(images / "sub", "b", labels / "sub", "0 0.5 0.5 0.1 1.0\n")
    (labels / "classes.txt").write_text("car\nperson\n")
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "yolo", images, out, "--labels", labels, "--test-fraction", "0", "--workers", "1")
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    assert boxes_by_file(train) == {
        "a.jpg": [("person", [0.0, 6.0, 20.0, 8.0], 0)],
        "b.jpg": [("car", [18.0, 0.0, 4.0, 20.0], 0)],
    }
    code, _, stderr = convert(capsys, "yolo", images, tmp_path / "x", "--labels", tmp_path / "nowhere")
    assert code == 2 and f"{tmp_path}/nowhere: not a folder (--labels)" in stderr


def test_sparse_ids_of_an_ultralytics_data_yaml(tmp_path, capsys):
    src = tmp_path / "set"
    write_pair(src / "images/train", "a", src / "labels/train", "1 0.25 0.5 0.5 0.4\n6 0.5 0.5 0.1 1.0\n")
    write_pair(src / "images/val", "b", src / "labels/val", "2 0.5 0.5 0.1 1.0\n")
    (src / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnc: 3\nnames: {1: boat, 2: buoy, 6: person}\n"
    )
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "yolo", src, out, "--classes", "person,boat,buoy", "--workers", "1")
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    assert category_names(train) == ["person", "boat", "buoy"]
    assert boxes_by_file(train)["a.jpg"] == [("boat", [0.0, 6.0, 20.0, 8.0], 0), ("person", [18.0, 0.0, 4.0, 20.0], 0)]
    (src / "labels/val/b.txt").write_text("3 0.5 0.5 0.1 1.0\n")  # an id the gaps leave without a name
    code, _, stderr = convert(capsys, "yolo", src, tmp_path / "x")
    assert code == 2 and stderr.strip() == (
        f"lcp data: error: {src}/labels/val/b.txt:1: class id 3 has no name (the names: 1 boat, 2 buoy, 6 person)"
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ("car\n\nperson\n", "line 2 is empty; line i names class id i, so every line must hold a name"),
        ("car\nperson\ncar\n", "'car' names two ids; each class id needs a name of its own"),
    ],
    ids=["blank-line-inside", "name-twice"],
)
def test_a_names_file_that_would_shift_or_merge_ids_is_refused(tmp_path, capsys, text, problem):
    src = tmp_path / "set"
    write_pair(src, "a", src, "0 0.25 0.5 0.5 0.4\n")
    names = tmp_path / "obj.names"
    names.write_text(text)
    code, _, stderr = convert(capsys, "yolo", src, tmp_path / "scene", "--names", names)
    assert code == 2 and stderr.strip() == f"lcp data: error: {names}: {problem}"


def test_ultralytics_split_folders_keep_their_split(tmp_path, capsys):
    """images/train2017 and images/val2017 (Ultralytics' COCO layout) were not recognised, so
    the set was re-drawn and validation images went into training without a word."""
    src = tmp_path / "set"
    write_pair(src / "images/train2017", "a", src / "labels/train2017", "0 0.25 0.5 0.5 0.4\n")
    write_pair(src / "images/val2017", "b", src / "labels/val2017", "0 0.5 0.5 0.1 1.0\n")
    (src / "data.yaml").write_text("train: images/train2017\nval: images/val2017\nnames: [car]\n")
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "yolo", src, out, "--workers", "1")
    assert code == 0, stderr
    assert list(boxes_by_file(load_coco(out / "annotations/images_train.json"))) == ["a.jpg"]
    assert list(boxes_by_file(load_coco(out / "annotations/images_test.json"))) == ["b.jpg"]


def test_a_byte_order_mark_is_not_part_of_the_first_name(tmp_path, capsys):
    """Windows editors write classes.txt with a BOM: class 0 was named '\\ufeffcar'."""
    src = tmp_path / "set"
    write_pair(src, "a", src, "\ufeff0 0.25 0.5 0.5 0.4\n")
    write_pair(src, "bb", src, "1 0.5 0.5 0.1 1.0\n")
    (src / "classes.txt").write_bytes(b"\xef\xbb\xbfcar\r\nperson\r\n")
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "yolo", src, out, "--classes", "car", "--test-fraction", "0")
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    assert category_names(train) == ["car"]
    assert boxes_by_file(train)["a.jpg"] == [("car", [0.0, 6.0, 20.0, 8.0], 0)]


def test_a_label_file_with_an_uppercase_extension_labels_its_image(yolo, tmp_path, capsys):
    (yolo / "labels/train/a.txt").rename(yolo / "labels/train/a.TXT")
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "yolo", yolo, out, "--workers", "1")
    assert code == 0, stderr
    assert [box[0] for box in boxes_by_file(load_coco(out / "annotations/images_train.json"))["a.jpg"]] == [
        "boat",
        "person",
    ]
    (yolo / "labels/train/a.txt").write_text("1 0.5 0.5 0.1 0.1\n")
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "again", "--workers", "1")
    assert code == 2 and "a.txt: same label as" in stderr and "a.TXT" in stderr


def test_a_data_yaml_that_is_not_yaml_is_one_line_with_its_line_and_column(yolo, tmp_path, capsys):
    # was PyYAML's own text: eight lines naming "<unicode string>", line 2, column 1
    (yolo / "data.yaml").write_text("path: .\nnames: [boat, buoy\n")
    code, _, stderr = convert(capsys, "yolo", yolo, tmp_path / "a")
    assert code == 2 and stderr.strip() == (
        f"lcp data: error: {yolo}/data.yaml:3:1: not valid YAML: while parsing a flow sequence: "
        "expected ',' or ']', but got '<stream end>'"
    ), stderr


@pytest.mark.parametrize(
    "names, problem",
    [
        ("boat", "`names:` must be a list of names or a mapping of class ids (0, 1, ...) to names"),
        ("{'0': boat, '1': buoy}", "`names:` must be a list of names or a mapping of class ids (0, 1, ...) to names"),
        ("{true: boat, 1: buoy}", "`names:` must be a list of names or a mapping of class ids (0, 1, ...) to names"),
        ("[]", "no class names"),
        ("{}", "no class names"),
        # each became a class named by Python's text of it: "['boat']", "None", "True", "{'a': 1}"
        ("[[boat], buoy]", "`names:` gives class id 0 the name ['boat'], not a name"),
        ("[boat, ~]", "`names:` gives class id 1 the name None, not a name"),
        ("[yes, no]", "`names:` gives class id 0 the name True, not a name"),
        ("{0: {a: 1}, 1: buoy}", "`names:` gives class id 0 the name {'a': 1}, not a name"),
    ],
    ids=["text", "text-ids", "boolean-id", "empty-list", "empty-mapping", "nested", "null", "yes-no", "mapping"],
)
def test_a_data_yaml_names_of_the_wrong_type_or_none_are_refused(tmp_path, capsys, names, problem):
    src = tmp_path / "set"
    write_pair(src, "a", src, "0 0.25 0.5 0.5 0.4\n1 0.5 0.5 0.1 0.1\n")
    (src / "data.yaml").write_text(f"names: {names}\n")
    code, _, stderr = convert(capsys, "yolo", src, tmp_path / "scene", "--test-fraction", "0")
    assert code == 2 and stderr.strip().startswith(f"lcp data: error: {src / 'data.yaml'}: {problem}"), stderr
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "scene").exists()


def test_numbers_in_a_data_yaml_names_are_class_names(tmp_path, capsys):
    src = tmp_path / "set"
    write_pair(src, "a", src, "0 0.25 0.5 0.5 0.4\n1 0.5 0.5 0.1 0.1\n")
    (src / "data.yaml").write_text("names: [7, 2.5]\n")
    code, _, stderr = convert(capsys, "yolo", src, tmp_path / "scene", "--test-fraction", "0", "--workers", "1")
    assert code == 0, stderr
    assert category_names(load_coco(tmp_path / "scene/annotations/images_train.json")) == ["7", "2.5"]
