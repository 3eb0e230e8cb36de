"""`lcp data convert voc`: Pascal VOC layout, class list given or collected, list-file split."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.convert_sources import boxes_by_file, category_names, convert, load_coco, write_image, write_voc_xml


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    root = tmp_path / "VOC"
    objects = {
        "2008_000001": [("dog", 1, 2, 11, 12), ("cat", 12, 3, 20, 9, 1)],  # difficult cat: crowd
        "2008_000002": [("cat", 0, 0, 31, 23), ("bird", 3, 3, 6, 6)],
        "2008_000003": [("dog", 4, 4, 10, 22)],
        "2008_000004": [("bird", 5, 5, 9, 9)],
    }
    for seed, (stem, objs) in enumerate(objects.items()):
        write_image(root / "JPEGImages" / f"{stem}.jpg", seed=seed)
        write_voc_xml(root / "Annotations" / f"{stem}.xml", f"{stem}.jpg", objs)
        # VOC's segmentation PNGs share the stems: the VOC layout must keep them out
        write_image(root / "SegmentationClass" / f"{stem}.png", seed=seed)
    (root / "ImageSets/Main").mkdir(parents=True)
    (root / "ImageSets/Main/test.txt").write_text("2008_000002\n2008_000004\n")
    return root


def test_given_classes_fix_order_and_drop_others(voc, tmp_path, capsys):
    out = tmp_path / "scene"
    code, stdout, stderr = convert(
        capsys,
        "voc",
        voc,
        out,
        "--name",
        "clear",
        "--classes",
        "dog,cat",
        "--test-list",
        voc / "ImageSets/Main/test.txt",
        "--workers",
        "1",
    )
    assert code == 0, stderr
    train = load_coco(out / "annotations/clear_train.json")
    test = load_coco(out / "annotations/clear_test.json")
    assert category_names(train) == ["dog", "cat"] == category_names(test)
    assert boxes_by_file(train) == {
        "2008_000001.jpg": [("cat", [12.0, 3.0, 8.0, 6.0], 1), ("dog", [1.0, 2.0, 10.0, 10.0], 0)],
        "2008_000003.jpg": [("dog", [4.0, 4.0, 6.0, 18.0], 0)],
    }
    assert boxes_by_file(test) == {"2008_000002.jpg": [("cat", [0.0, 0.0, 31.0, 23.0], 0)], "2008_000004.jpg": []}
    assert "2  box of class 'bird' (not in --classes), dropped" in stdout
    assert sorted(p.name for p in (out / "clear").glob("*.jpg")) == [f"2008_00000{i}.jpg" for i in range(1, 5)]


def test_classes_collected_sorted_without_a_list(voc, tmp_path, capsys):
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "voc", voc, out, "--test-fraction", "0", "--workers", "1")
    assert code == 0, stderr
    train = load_coco(out / "annotations/images_train.json")
    assert category_names(train) == ["bird", "cat", "dog"]
    assert len(train.getAnnIds(iscrowd=None)) == 6
    assert not (out / "annotations/images_test.json").exists()


def test_a_class_whose_boxes_are_all_difficult_is_refused(voc, tmp_path, capsys):
    """Difficult boxes become crowd (ignored by mmdet): a class with nothing else was written,
    never trained on and scored without ground truth."""
    write_voc_xml(voc / "Annotations/2008_000002.xml", "2008_000002.jpg", [("cat", 0, 0, 31, 23, 1)])
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "scene", "--classes", "dog,cat")
    assert (
        code == 2
        and f"{voc / 'Annotations'}: class 'cat' has no box (crowd, difficult and ignored boxes aside" in stderr
    )
    assert not (tmp_path / "scene").exists()


def test_a_test_list_of_other_names_is_refused_not_a_set_without_test_images(voc, tmp_path, capsys):
    """Entries in another naming matched no image: every image went to training, with a
    warning per entry and no test set (the workflow then failed on a missing file)."""
    other = tmp_path / "test.txt"
    other.write_text("000002\n000004\n")
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "scene", "--test-list", other)
    assert code == 2
    assert stderr.strip().endswith(
        f"{other}: none of its 2 entries (e.g. 000002) is the stem of a converted image (e.g. 2008_000001); "
        "list the images' names, one a line"
    )
    assert not (tmp_path / "scene").exists()


def test_missing_tags_and_wrong_root_are_errors(voc, tmp_path, capsys):
    (voc / "Annotations/2008_000003.xml").write_text(
        "<annotation><object><bndbox><xmin>1</xmin></bndbox></object></annotation>"
    )
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "a")
    assert code == 2 and "2008_000003.xml: object 1 has no <name>" in stderr
    (voc / "Annotations/2008_000003.xml").write_text("<notvoc/>")
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "b")
    assert code == 2 and "2008_000003.xml: root element is <notvoc>" in stderr


def test_summary_names_other_label_files_and_counts_disagreeing_filenames(tmp_path, capsys):
    """Images, xml files and YOLO .txt labels side by side, two xml <filename>s naming other
    files: the pairing by stem holds, and the summary says what it ignored and what disagreed."""
    root = tmp_path / "mixed"
    for index in range(3):
        stem = f"street_{index}"
        write_image(root / f"{stem}.jpg", seed=index)
        named = f"{stem}.jpg" if index == 0 else f"IMG_{index}.JPG"
        write_voc_xml(root / f"{stem}.xml", named, [("dog", 1, 2, 11, 12)])
        (root / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    code, stdout, stderr = convert(capsys, "voc", root, tmp_path / "scene", "--test-fraction", "0", "--workers", "1")
    assert code == 0, stderr
    assert "3  .txt file, neither an image nor a VOC xml, ignored" in stdout
    assert "2  xml whose <filename> names another file than its image (paired by file stem)" in stdout
    assert len(load_coco(tmp_path / "scene/annotations/images_train.json").getAnnIds()) == 3


def test_a_turned_photo_whose_size_says_it_was_labelled_unturned_is_refused(tmp_path, capsys):
    from helpers.convert_sources import write_turned_image

    write_turned_image(tmp_path / "VOC/a.jpg", orientation=6)  # stored 32x24, read as 24x32
    write_voc_xml(tmp_path / "VOC/a.xml", "a.jpg", [("dog", 1, 2, 30, 8)], size=(32, 24))
    write_image(tmp_path / "VOC/b.jpg", 40, 30)
    write_voc_xml(tmp_path / "VOC/b.xml", "b.jpg", [("dog", 1, 2, 30, 8)], size=(80, 60))
    code, _, stderr = convert(capsys, "voc", tmp_path / "VOC", tmp_path / "out", "--workers", "1")
    assert code == 2
    assert f"{tmp_path / 'VOC/a.xml'} records 32x24, the size of its stored pixels" in stderr
    assert f"b.jpg: {tmp_path / 'VOC/b.xml'} records 80x60, the image is 40x30" in stderr  # a warning


def test_an_object_without_bndbox_and_two_xml_files_of_one_stem_are_refused(voc, tmp_path, capsys):
    xml = voc / "Annotations/2008_000003.xml"
    xml.write_text("<annotation><object><name>dog</name><difficult>0</difficult></object></annotation>")
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "a")
    assert code == 2 and stderr.strip() == f"lcp data: error: {xml}: object 1 (dog): no <bndbox>"
    write_voc_xml(xml, "2008_000003.jpg", [("dog", 4, 4, 10, 22)])
    other = voc / "Annotations/extra/2008_000003.xml"
    write_voc_xml(other, "2008_000003.jpg", [("cat", 1, 1, 5, 5)])  # which one labels the image?
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "b")
    assert code == 2 and stderr.strip() == (
        f"lcp data: error: {other}: same stem as {xml}; images and xml files are paired by stem, "
        "so stems must be unique"
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_images_and_annotations_folders_given_as_options(voc, tmp_path, capsys):
    """A set whose folders are not named JPEGImages/Annotations: each kind is taken from its own
    folder only (the segmentation PNGs of the same stems stay out)."""
    (voc / "JPEGImages").rename(voc / "pictures")
    (voc / "Annotations").rename(voc / "labels")
    write_image(voc / "labels/stray.png")  # an image among the xml files
    folders = ("--images", voc / "pictures", "--annotations", voc / "labels")
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "scene", *folders, "--test-fraction", "0")
    assert code == 0, stderr
    assert f"{voc / 'labels/stray.png'}: .png file, neither an image nor a VOC xml, ignored" in stderr
    train = load_coco(tmp_path / "scene/annotations/images_train.json")
    assert sorted(boxes_by_file(train)) == [f"2008_00000{i}.jpg" for i in range(1, 5)]
    assert sorted(category_names(train)) == ["bird", "cat", "dog"]
    code, _, stderr = convert(capsys, "voc", voc, tmp_path / "other", "--images", voc / "JPEGImages")
    assert code == 2 and stderr.strip() == f"lcp data: error: {voc / 'JPEGImages'}: not a folder"
