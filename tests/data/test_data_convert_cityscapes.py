"""`lcp data convert cityscapes`: gtFine polygons -> boxes for clear, foggy and rainy images."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.convert_sources import (
    CONFIG_ORDER,
    HEIGHT,
    OTHER_CLASSES,
    TRAIN_FRAME,
    TRAIN_OBJECTS,
    VAL_FRAME,
    VAL_OBJECTS,
    WIDTH,
    boxes_by_file,
    category_names,
    convert,
    extent,
    load_coco,
    write_cityscapes,
    write_image,
    write_polygons,
)


@pytest.fixture
def cityscapes(tmp_path: Path) -> dict[str, Path]:
    return write_cityscapes(tmp_path)


def expected_train_boxes():
    by_label = {obj["label"]: obj["polygon"] for obj in TRAIN_OBJECTS if not obj.get("deleted")}
    return sorted(
        [
            ("car", extent(by_label["car"]), 0),
            ("person", extent(by_label["person"]), 0),
            ("car", extent(by_label["cargroup"]), 1),
            ("bicycle", extent(by_label["bicycle"]), 0),
            *((label, extent(by_label[label]), 0) for label in OTHER_CLASSES),
        ]
    )


def test_clear_set_boxes_are_polygon_extents(cityscapes, capsys):
    code, stdout, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--workers", "1")
    assert code == 0, stderr
    train = load_coco(cityscapes["out"] / "annotations/city_images_train.json")
    test = load_coco(cityscapes["out"] / "annotations/city_images_test.json")
    assert category_names(train) == CONFIG_ORDER == category_names(test)
    assert boxes_by_file(train) == {f"{TRAIN_FRAME}_leftImg8bit.jpg": expected_train_boxes()}
    assert boxes_by_file(test) == {
        f"{VAL_FRAME}_leftImg8bit.jpg": sorted(
            [("bus", extent(VAL_OBJECTS[0]["polygon"]), 0), ("rider", extent(VAL_OBJECTS[1]["polygon"]), 0)]
        )
    }
    assert train.loadImgs(train.getImgIds())[0]["width"] == WIDTH
    assert sorted(p.name for p in (cityscapes["out"] / "city_images").glob("*.jpg")) == [
        f"{TRAIN_FRAME}_leftImg8bit.jpg",
        f"{VAL_FRAME}_leftImg8bit.jpg",
    ]  # flat, test split left out
    assert "bicycle" in stderr and "clipped" in stderr
    assert "caravan polygon (ignoreInEval in cityscapesscripts), ignored" in stdout
    assert "2  polygon of a class without instances" in stdout  # road, sky
    assert "1  deleted polygon, skipped" in stdout
    assert "leftImg8bit image of a frame without fine annotations" in stdout


def test_foggy_set_takes_one_beta_with_the_same_boxes(cityscapes, capsys):
    code, _, stderr = convert(
        capsys,
        "cityscapes",
        cityscapes["root"],
        cityscapes["out"],
        "--foggy",
        cityscapes["foggy"],
        "--beta",
        "0.01",
        "--workers",
        "2",
    )
    assert code == 0, stderr
    train = load_coco(cityscapes["out"] / "annotations/foggy_city_images_train.json")
    assert boxes_by_file(train) == {f"{TRAIN_FRAME}_leftImg8bit_foggy_beta_0.01.jpg": expected_train_boxes()}
    test = load_coco(cityscapes["out"] / "annotations/foggy_city_images_test.json")
    assert list(boxes_by_file(test)) == [f"{VAL_FRAME}_leftImg8bit_foggy_beta_0.01.jpg"]
    assert len(list((cityscapes["out"] / "foggy_city_images").glob("*.jpg"))) == 2
    assert not (cityscapes["out"] / "city_images").exists()


def test_rainy_variants_selected_by_pattern(cityscapes, capsys):
    out = cityscapes["out"]
    code, stdout, stderr = convert(
        capsys, "cityscapes", cityscapes["root"], out, "--rainy", cityscapes["rainy"], "--workers", "1"
    )
    assert code == 0, stderr
    train = load_coco(out / "annotations/rainy_city_images_train.json")
    assert len(train.getImgIds()) == 2  # both patterns, each an image with the frame's boxes
    assert all(boxes == expected_train_boxes() for boxes in boxes_by_file(train).values())
    assert not (out / "annotations/rainy_city_images_test.json").exists()
    assert "1  annotated frame without a Rainy Cityscapes image" in stdout

    code, _, stderr = convert(
        capsys,
        "cityscapes",
        cityscapes["root"],
        out,
        "--rainy",
        cityscapes["rainy"],
        "--rain-pattern",
        "2",
        "--name",
        "rain_p2",
        "--workers",
        "1",
    )
    assert code == 0, stderr
    names = list(boxes_by_file(load_coco(out / "annotations/rain_p2_train.json")))
    assert names == [f"{TRAIN_FRAME}_leftImg8bit_rain_alpha_0.01_beta_0.005_dropsize_0.01_pattern_2.jpg"]


def test_class_subset_and_order(cityscapes, capsys):
    code, _, stderr = convert(
        capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--classes", "person,car", "--workers", "1"
    )
    assert code == 0, stderr
    train = load_coco(cityscapes["out"] / "annotations/city_images_train.json")
    assert category_names(train) == ["person", "car"]
    assert [label for label, _, _ in next(iter(boxes_by_file(train).values()))] == ["car", "car", "person"]
    code, _, stderr = convert(
        capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--classes", "person,caravan", "--overwrite"
    )
    assert code == 2 and "caravan" in stderr and "not a Cityscapes detection class" in stderr


@pytest.mark.parametrize(
    "objects, message",
    [
        ([{"label": "spaceship", "polygon": [[1, 1], [5, 5]]}], "unknown Cityscapes label 'spaceship'"),
        ([{"label": "car"}], "not a Cityscapes polygon file"),
    ],
    ids=["unknown-label", "no-polygon"],
)
def test_malformed_polygons_name_the_file(cityscapes, capsys, objects, message):
    path = write_polygons(cityscapes["root"], "val", VAL_FRAME, objects)
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--workers", "1")
    assert code == 2
    assert str(path) in stderr and message in stderr
    assert not (cityscapes["out"] / "city_images").exists()


def test_missing_clear_image_is_an_error(cityscapes, capsys):
    (cityscapes["root"] / "leftImg8bit" / "val" / "frankfurt" / f"{VAL_FRAME}_leftImg8bit.png").unlink()
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"])
    assert code == 2 and f"{VAL_FRAME}_gtFine_polygons.json" in stderr and "no leftImg8bit image" in stderr


def test_images_downscaled_after_labelling_are_refused(cityscapes, capsys):
    # the polygon files record 64x32; at 32x16 the boxes would be clipped at their labelled places
    for image in (cityscapes["root"] / "leftImg8bit").rglob("*.png"):
        write_image(image, WIDTH // 2, HEIGHT // 2)
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--workers", "1")
    assert code == 2 and "Traceback" not in stderr
    assert f"{TRAIN_FRAME}_gtFine_polygons.json records 64x32, the image is 32x16" in stderr
    assert "boxes leave the image but fit the recorded size" in stderr


def test_a_class_without_a_box_is_refused(cityscapes, capsys):
    objects = [obj for obj in TRAIN_OBJECTS if obj["label"] != "train"]
    write_polygons(cityscapes["root"], "train", TRAIN_FRAME, objects)
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--classes", "car,train")
    assert code == 2 and "Traceback" not in stderr
    assert f"{cityscapes['root'] / 'gtFine'}: class 'train' has no box" in stderr
    assert not cityscapes["out"].exists() or not any(cityscapes["out"].iterdir())


def test_a_class_the_rainy_subset_lacks_is_a_warning(cityscapes, capsys):
    objects = [obj for obj in TRAIN_OBJECTS if obj["label"] != "train"]
    write_polygons(cityscapes["root"], "train", TRAIN_FRAME, objects)
    code, _, stderr = convert(
        capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--rainy", cityscapes["rainy"]
    )
    assert code == 0, stderr
    assert "class 'train' has no box on the Rainy Cityscapes images" in stderr


def test_a_missing_gtfine_split_folder_leaves_that_split_out_and_says_so(cityscapes, capsys):
    import shutil

    shutil.rmtree(cityscapes["root"] / "gtFine" / "val")
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--workers", "1")
    assert code == 0, stderr
    assert f"warning: {cityscapes['root'] / 'gtFine' / 'val'}: no gtFine/val folder: the test split stays empty" in (
        stderr
    )
    assert list(boxes_by_file(load_coco(cityscapes["out"] / "annotations/city_images_train.json"))) == [
        f"{TRAIN_FRAME}_leftImg8bit.jpg"
    ]
    assert not (cityscapes["out"] / "annotations/city_images_test.json").exists()


def test_a_frame_annotated_twice_is_refused(cityscapes, capsys):
    again = write_polygons(cityscapes["root"], "val", TRAIN_FRAME, VAL_OBJECTS)
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--workers", "1")
    first = cityscapes["root"] / "gtFine" / "train" / "aachen" / f"{TRAIN_FRAME}_gtFine_polygons.json"
    assert code == 2 and stderr.strip() == (
        f"lcp data: error: {again}: frame {TRAIN_FRAME} is annotated twice (also {first})"
    )
    assert not cityscapes["out"].exists()


def test_a_polygon_without_points_is_skipped_with_a_warning(cityscapes, capsys):
    path = write_polygons(cityscapes["root"], "val", VAL_FRAME, [*VAL_OBJECTS, {"label": "car", "polygon": []}])
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--workers", "1")
    assert code == 0, stderr
    assert f"warning: {path}: object 3 (car): polygon without points, skipped" in stderr
    test = load_coco(cityscapes["out"] / "annotations/city_images_test.json")
    assert [label for label, _, _ in boxes_by_file(test)[f"{VAL_FRAME}_leftImg8bit.jpg"]] == ["bus", "rider"]


def test_rainy_variants_selected_by_beta_and_drop_size(cityscapes, capsys):
    rainy = cityscapes["rainy"] / "train" / "aachen"
    for beta, dropsize in (("0.015", "0.01"), ("0.005", "0.002")):
        name = f"{TRAIN_FRAME}_leftImg8bit_rain_alpha_0.01_beta_{beta}_dropsize_{dropsize}_pattern_1.png"
        write_image(rainy / name, WIDTH, HEIGHT)

    def variants(*options: str) -> list[str]:
        code, _, stderr = convert(
            capsys, "cityscapes", cityscapes["root"], cityscapes["out"], "--rainy", rainy.parent.parent, *options
        )
        assert code == 0, stderr
        names = boxes_by_file(load_coco(cityscapes["out"] / "annotations/rainy_city_images_train.json"))
        return sorted(name.split("_rain_")[1] for name in names)

    assert variants("--rain-beta", "0.015", "--workers", "1") == ["alpha_0.01_beta_0.015_dropsize_0.01_pattern_1.jpg"]
    assert variants("--rain-dropsize", "0.002", "--overwrite") == ["alpha_0.01_beta_0.005_dropsize_0.002_pattern_1.jpg"]
    assert variants("--rain-beta", "0.005", "--rain-dropsize", "0.01", "0.002", "--overwrite") == [
        "alpha_0.01_beta_0.005_dropsize_0.002_pattern_1.jpg",
        "alpha_0.01_beta_0.005_dropsize_0.01_pattern_1.jpg",
        "alpha_0.01_beta_0.005_dropsize_0.01_pattern_2.jpg",
    ]
    none = cityscapes["out"].parent / "none"
    code, _, stderr = convert(
        capsys, "cityscapes", cityscapes["root"], none, "--rainy", cityscapes["rainy"], "--rain-beta", "0.02"
    )
    assert code == 2 and stderr.strip() == (
        f"lcp data: error: {cityscapes['rainy']}: no Rainy Cityscapes images of annotated frames (with the chosen "
        "variant)"
    )
    assert not none.exists()


def test_a_file_whose_beta_is_no_number_is_not_taken_for_an_image_of_the_set(cityscapes, capsys):
    # "0.0.1" matched the name pattern and float() raised a traceback
    stray = cityscapes["foggy"] / "train" / "aachen" / f"{TRAIN_FRAME}_leftImg8bit_foggy_beta_0.0.1.png"
    write_image(stray, WIDTH, HEIGHT)
    files = ("--foggy", cityscapes["foggy"], "--beta", "0.01", "--workers", "1")
    code, _, stderr = convert(capsys, "cityscapes", cityscapes["root"], cityscapes["out"], *files)
    assert code == 0, stderr
    assert f"warning: {stray}: file not named like Foggy Cityscapes images, ignored" in stderr
    assert len(list((cityscapes["out"] / "foggy_city_images").glob("*.jpg"))) == 2
