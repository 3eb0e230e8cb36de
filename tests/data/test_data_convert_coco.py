"""`lcp data convert coco`: re-map categories, keep or re-split, copy images flat."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.convert_sources import (
    boxes_by_file,
    category_names,
    convert,
    load_coco,
    write_image,
    write_json,
    write_turned_image,
)


def coco_file(images: list[tuple[int, str]], annotations: list[tuple[int, int, list]], **extra) -> dict:
    return {
        "images": [{"id": i, "file_name": name, "width": 32, "height": 24} for i, name in images],
        "annotations": [
            {"id": n, "image_id": i, "category_id": c, "bbox": b, "iscrowd": 0}
            for n, (i, c, b) in enumerate(annotations, start=1)
        ],
        "categories": [{"id": 5, "name": "car"}, {"id": 9, "name": "person"}, {"id": 11, "name": "van"}],
        **extra,
    }


@pytest.fixture
def source(tmp_path: Path) -> dict[str, Path]:
    images = tmp_path / "src_images"
    write_image(images / "day/x.png", seed=1)
    write_image(images / "night/x.png", seed=2)  # same stem: flat names must keep both
    write_image(images / "night/y.jpg", seed=3)
    train = tmp_path / "train.json"
    test = tmp_path / "test.json"
    write_json(
        train,
        coco_file(
            [(1, "day/x.png"), (2, "night/x.png")],
            [(1, 5, [1, 2, 10, 5]), (1, 11, [20, 2, 5, 5]), (2, 9, [28, 20, 10, 10])],
        ),
    )
    write_json(test, coco_file([(7, "night/y.jpg")], [(7, 9, [0, 0, 4, 4])]))
    return {"images": images, "train": train, "test": test, "out": tmp_path / "scene"}


def test_remaps_categories_and_keeps_the_given_split(source, capsys):
    code, stdout, stderr = convert(
        capsys,
        "coco",
        source["images"],
        source["out"],
        "--train",
        source["train"],
        "--test",
        source["test"],
        "--rename",
        "van=car",
        "--classes",
        "person,car",
        "--workers",
        "1",
    )
    assert code == 0, stderr
    train = load_coco(source["out"] / "annotations/images_train.json")
    test = load_coco(source["out"] / "annotations/images_test.json")
    assert category_names(train) == ["person", "car"]
    assert boxes_by_file(train) == {
        "day__x_png.jpg": [("car", [1.0, 2.0, 10.0, 5.0], 0), ("car", [20.0, 2.0, 5.0, 5.0], 0)],  # van merged into car
        "night__x_png.jpg": [("person", [28.0, 20.0, 4.0, 4.0], 0)],  # clipped to the decoded 32x24
    }
    assert boxes_by_file(test) == {"y.jpg": [("person", [0.0, 0.0, 4.0, 4.0], 0)]}
    assert train.loadImgs(train.getImgIds())[0]["width"] == 32


def test_resplit_pools_both_files(source, capsys):
    code, _, stderr = convert(
        capsys,
        "coco",
        source["images"],
        source["out"],
        "--train",
        source["train"],
        "--test",
        source["test"],
        "--test-fraction",
        "0.34",
        "--seed",
        "3",
        "--workers",
        "1",
    )
    assert code == 0, stderr
    train = load_coco(source["out"] / "annotations/images_train.json")
    test = load_coco(source["out"] / "annotations/images_test.json")
    assert len(train.getImgIds()) + len(test.getImgIds()) == 3 and len(test.getImgIds()) >= 1
    assert category_names(train) == ["car", "person", "van"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["images"].append({"id": 3, "file_name": "gone.jpg"}), "images[2]: image file"),
        (
            lambda d: d["annotations"].append({"id": 9, "image_id": 42, "category_id": 5, "bbox": [0, 0, 1, 1]}),
            "annotations[3]: image_id 42 is not in `images`",
        ),
        (
            lambda d: d["annotations"].append({"id": 9, "image_id": 1, "category_id": 77, "bbox": [0, 0, 1, 1]}),
            "annotations[3]: category_id 77 is not in `categories`",
        ),
        (
            lambda d: d["annotations"].append({"id": 9, "image_id": 1, "category_id": 5, "bbox": [0, 0, 1]}),
            "annotations[3]: `bbox` is [0, 0, 1]",
        ),
        (lambda d: d.pop("categories"), "`categories` must be a list"),
        (lambda d: d["annotations"][0].update(iscrowd="0"), "annotations[0]: `iscrowd` is '0', expected 0 or 1"),
        (lambda d: d["annotations"][0].update(ignore=2), "annotations[0]: `ignore` is 2, expected 0 or 1"),
        (lambda d: d["images"][1].update(id=1), "images[1]: image id 1 appears twice"),
        (lambda d: d["categories"][1].update(id=5), "categories[1]: category id 5 appears twice"),
        (lambda d: d["images"][0].update(file_name="d\0ay/x.png"), "`file_name` 'd\\x00ay/x.png' holds a NUL"),
    ],
    ids=[
        "missing-image",
        "unknown-image",
        "unknown-category",
        "short-bbox",
        "no-categories",
        "text-crowd",
        "ignore-2",
        "image-id-twice",
        "category-id-twice",
        "nul-in-file-name",
    ],
)
def test_malformed_coco_names_file_and_entry(source, capsys, edit, message):
    import json

    data = json.loads(source["train"].read_text())
    edit(data)
    write_json(source["train"], data)
    code, _, stderr = convert(capsys, "coco", source["images"], source["out"], "--train", source["train"])
    assert code == 2 and stderr.strip().startswith(f"lcp data: error: {source['train']}: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and not source["out"].exists()


def test_image_in_both_files_is_an_error(source, capsys):
    write_json(source["test"], coco_file([(7, "day/x.png")], []))
    code, _, stderr = convert(
        capsys, "coco", source["images"], source["out"], "--train", source["train"], "--test", source["test"]
    )
    assert code == 2 and "is also listed in" in stderr


def test_a_box_that_rounds_to_no_width_is_dropped_and_said(source, capsys):
    """Boxes are written to 0.01 px: one thinner than that (or clipped to less) used to be
    written with width 0, which the data check then refused, with no word from convert."""
    thin, clipped_thin = [1, 2, 0.004, 5], [31.998, 2, 5, 5]  # the image is 32 px wide
    write_json(
        source["train"], coco_file([(1, "day/x.png")], [(1, 5, thin), (1, 5, clipped_thin), (1, 5, [1, 2, 10, 5])])
    )
    code, stdout, stderr = convert(
        capsys, "coco", source["images"], source["out"], "--train", source["train"], "--classes", "car"
    )
    assert code == 0, stderr
    train = load_coco(source["out"] / "annotations/images_train.json")
    assert boxes_by_file(train) == {"x.jpg": [("car", [1.0, 2.0, 10.0, 5.0], 0)]}
    assert (stdout + stderr).count("box under 0.01 px wide or high (inside the image), dropped") >= 1, stdout + stderr


def test_an_ignore_region_stays_ignored(source, capsys):
    """Some COCO-style sets mark regions to ignore with `ignore: 1`, which mmdet honours like
    iscrowd; the converter used to write them as ordinary boxes to train on and score against."""
    import json

    data = json.loads(source["train"].read_text())
    data["annotations"][0]["ignore"] = 1
    data["annotations"][2]["iscrowd"] = True
    data["annotations"].append({"id": 50, "image_id": 2, "category_id": 5, "bbox": [1, 1, 5, 5], "iscrowd": 0})
    write_json(source["train"], data)
    files = ("--train", source["train"], "--test", source["test"])  # the test set's person box is no crowd
    code, _, stderr = convert(capsys, "coco", source["images"], source["out"], *files)
    assert code == 0, stderr
    train = load_coco(source["out"] / "annotations/images_train.json")
    assert boxes_by_file(train) == {
        "day__x_png.jpg": [("car", [1.0, 2.0, 10.0, 5.0], 1), ("van", [20.0, 2.0, 5.0, 5.0], 0)],
        "night__x_png.jpg": [("car", [1.0, 1.0, 5.0, 5.0], 0), ("person", [28.0, 20.0, 4.0, 4.0], 1)],
    }


def test_boxes_drawn_on_the_stored_pixels_of_an_exif_turned_image_are_refused(tmp_path, capsys):
    # phone photos: stored 32x24, turned to 24x32 by their EXIF orientation when OpenCV or mmdet
    # read them; a json recording 32x24 was labelled on the stored pixels, so its boxes would land
    # elsewhere on the image mmdet trains on
    images = tmp_path / "src"
    write_turned_image(images / "a.jpg", orientation=6)
    write_turned_image(images / "b.png", orientation=8)  # OpenCV turns PNGs by their EXIF too
    write_image(images / "c.jpg")
    data = coco_file([(1, "a.jpg"), (2, "b.png"), (3, "c.jpg")], [(1, 5, [1, 2, 25, 5]), (3, 5, [1, 2, 3, 4])])
    write_json(tmp_path / "train.json", data)
    out = tmp_path / "scene"
    code, _, stderr = convert(
        capsys, "coco", images, out, "--train", tmp_path / "train.json", "--classes", "car", "--workers", "1"
    )
    assert code == 2 and not out.exists()  # no image set, no staging folder, no empty OUT left
    line = stderr.strip().splitlines()[-1]
    assert f"{images / 'a.jpg'}: {tmp_path / 'train.json'} records 32x24" in line
    assert "EXIF orientation 6 turns it to 24x32" in line and "(and 1 more such images)" in line
    assert "exiftool -Orientation=" in line


def test_an_exif_turned_image_labelled_turned_is_converted_with_a_warning(tmp_path, capsys):
    images = tmp_path / "src"
    write_turned_image(images / "a.jpg", orientation=6)
    data = coco_file([(1, "a.jpg")], [(1, 5, [1, 2, 20, 28])])
    data["images"][0].update(width=24, height=32)  # the size viewers show: the boxes fit it
    write_json(tmp_path / "train.json", data)
    out = tmp_path / "scene"
    code, _, stderr = convert(
        capsys, "coco", images, out, "--train", tmp_path / "train.json", "--classes", "car", "--workers", "1"
    )
    assert code == 0, stderr
    assert "a.jpg: EXIF orientation 6: read turned to 24x32" in stderr
    coco = load_coco(out / "annotations/images_train.json")
    assert [(i["width"], i["height"]) for i in coco.dataset["images"]] == [(24, 32)]
    assert boxes_by_file(coco) == {"a.jpg": [("car", [1.0, 2.0, 20.0, 28.0], 0)]}


def test_a_recorded_size_other_than_the_image_is_warned_about(tmp_path, capsys):
    # e.g. images downsized after labelling: the boxes are in the recorded image's pixels
    images = tmp_path / "src"
    write_image(images / "a.png")
    data = coco_file([(1, "a.png")], [(1, 5, [1, 2, 10, 5])])
    data["images"][0].update(width=64, height=48)
    write_json(tmp_path / "train.json", data)
    code, _, stderr = convert(
        capsys,
        "coco",
        images,
        tmp_path / "scene",
        "--train",
        tmp_path / "train.json",
        "--classes",
        "car",
        "--workers",
        "1",
    )
    assert code == 0, stderr
    assert f"a.png: {tmp_path / 'train.json'} records 64x48, the image is 32x24" in stderr


def test_a_recorded_size_that_is_no_size_is_not_compared(tmp_path, capsys):
    images = tmp_path / "src"
    write_image(images / "a.png")
    data = coco_file([(1, "a.png")], [(1, 5, [1, 2, 10, 5])])
    data["images"][0].update(width=float("inf"), height=0)  # an OverflowError traceback
    write_json(tmp_path / "train.json", data)
    argv = ["coco", images, tmp_path / "scene", "--train", tmp_path / "train.json", "--classes", "car"]
    code, _, stderr = convert(capsys, *argv, "--workers", "1")
    assert code == 0 and "records" not in stderr, stderr


def test_absolute_and_climbing_file_names_are_converted_like_any_other(tmp_path, monkeypatch, capsys):
    """An absolute file_name (exporters write them) crashed after every image was decoded with
    "Can't mix absolute and relative paths" when IMAGES was relative; one climbing out with ../
    beside a file of the same stem was named '..__src__x_jpg.jpg', a hidden file that the data
    check and training skip."""
    write_image(tmp_path / "images/day/x.jpg", seed=1)
    write_image(tmp_path / "src/x.jpg", seed=2)
    write_image(tmp_path / "images/y.jpg", seed=3)
    names = [(1, "day/x.jpg"), (2, "../src/x.jpg"), (3, str(tmp_path / "images/y.jpg"))]
    write_json(tmp_path / "train.json", coco_file(names, [(i, 5, [1, 1, 4, 4]) for i, _ in names]))
    monkeypatch.chdir(tmp_path)
    argv = ["coco", "images", "scene", "--train", "train.json", "--test-fraction", "0", "--classes", "car"]
    code, _, stderr = convert(capsys, *argv)
    assert code == 0, stderr
    written = sorted(path.name for path in (tmp_path / "scene/images").glob("*.jpg"))
    assert written == ["images__day__x_jpg.jpg", "src__x_jpg.jpg", "y.jpg"]


def test_boxes_drawn_at_a_recorded_size_larger_than_the_image_are_refused(tmp_path, capsys):
    """Images downscaled after labelling: the boxes were clipped to the image, elsewhere than
    their objects, with a warning and exit 0, and the data check passed the result."""
    images = tmp_path / "src"
    write_image(images / "a.png")  # 32x24
    data = coco_file([(1, "a.png")], [(1, 5, [20, 10, 30, 20])])  # within 64x48, not within 32x24
    data["images"][0].update(width=64, height=48)
    write_json(tmp_path / "train.json", data)
    argv = ["coco", images, tmp_path / "scene", "--train", tmp_path / "train.json", "--classes", "car"]
    code, _, stderr = convert(capsys, *argv, "--workers", "1")
    assert code == 2
    assert stderr.strip().splitlines()[-1] == (
        f"lcp data: error: {images / 'a.png'}: {tmp_path / 'train.json'} records 64x48, the image is 32x24, and its "
        "boxes leave the image but fit the recorded size: they were drawn at 64x48; give the images at the size "
        "they were labelled at, or scale the boxes and the recorded sizes to the images, and convert again"
    )
    assert not (tmp_path / "scene").exists()


def test_a_climbing_file_name_below_a_linked_images_folder_climbs_out_of_the_link_target(tmp_path, capsys):
    """`images` a link to /store/coco/train2017 and a file_name ../extra/b.jpg: the system finds
    /store/coco/extra/b.jpg, and the converter looked beside the link."""
    store = tmp_path / "store/coco"
    write_image(store / "train2017/a.jpg", seed=1)
    write_image(store / "extra/b.jpg", seed=2)
    (tmp_path / "work").mkdir()
    (tmp_path / "work/images").symlink_to(store / "train2017")
    names = [(1, "a.jpg"), (2, "../extra/b.jpg")]
    write_json(tmp_path / "train.json", coco_file(names, [(i, 5, [1, 1, 4, 4]) for i, _ in names]))
    argv = ["coco", tmp_path / "work/images", tmp_path / "scene", "--train", tmp_path / "train.json"]
    code, _, stderr = convert(capsys, *argv, "--test-fraction", "0", "--classes", "car")
    assert code == 0, stderr
    assert sorted(path.name for path in (tmp_path / "scene/images").glob("*.jpg")) == ["a.jpg", "b.jpg"]


def test_without_train_or_test_json_nothing_is_converted(source, capsys):
    code, _, stderr = convert(capsys, "coco", source["images"], source["out"])
    assert code == 2 and stderr.strip() == f"lcp data: error: {source['images']}: give --train JSON and/or --test JSON"
    assert not source["out"].exists()


def test_a_box_entirely_outside_its_image_is_dropped_and_said(source, capsys):
    # a recorded size equal to the image's: no labelling at another size explains the box
    write_json(source["train"], coco_file([(1, "day/x.png")], [(1, 5, [40, 2, 5, 5]), (1, 5, [1, 2, 10, 5])]))
    files = ("--train", source["train"], "--classes", "car")
    code, _, stderr = convert(capsys, "coco", source["images"], source["out"], *files)
    assert code == 0, stderr
    assert (
        f"warning: {source['train']}: annotations[0] (car) (image 32x24): images: box entirely outside the image, "
        "dropped"
    ) in stderr
    train = load_coco(source["out"] / "annotations/images_train.json")
    assert boxes_by_file(train) == {"x.jpg": [("car", [1.0, 2.0, 10.0, 5.0], 0)]}


def test_a_test_list_entry_that_matches_no_image_is_named(source, tmp_path, capsys):
    test_list = tmp_path / "test.txt"
    test_list.write_text("y.jpg\nz.jpg\n")
    files = ("--train", source["train"], "--test", source["test"], "--test-list", test_list)
    code, _, stderr = convert(capsys, "coco", source["images"], source["out"], *files, "--workers", "1")
    assert code == 0, stderr
    assert f"warning: {test_list}: z: test-list entry matches no converted image, ignored" in stderr
    assert list(boxes_by_file(load_coco(source["out"] / "annotations/images_test.json"))) == ["y.jpg"]
    assert sorted(boxes_by_file(load_coco(source["out"] / "annotations/images_train.json"))) == [
        "day__x_png.jpg",
        "night__x_png.jpg",
    ]
