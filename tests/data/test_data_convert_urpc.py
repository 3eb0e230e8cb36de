"""`lcp data convert urpc`: URPC2020's VOC xml pairs -> flat jpg folder + COCO train/test."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers.convert_sources import boxes_by_file, category_names, convert, load_coco, write_image, write_voc_xml

URPC_CLASSES = ["echinus", "holothurian", "scallop", "starfish"]


@pytest.fixture
def urpc_src(tmp_path: Path) -> Path:
    """The release layout (train/image, train/box), with the quirks the converter must handle."""
    src = tmp_path / "URPC2020"
    write_image(src / "train/image/000001.jpg", seed=1)
    write_image(src / "train/image/000002.png", seed=2)  # not jpg: must be re-encoded
    write_image(src / "train/image/000003.jpg", seed=3)
    write_image(src / "train/image/000004.jpg", seed=4)
    write_image(src / "train/image/unlabelled.jpg", seed=5)  # no xml: skipped with a warning
    (src / "readme.txt").write_text("not data")
    # <filename> disagrees with the real file name: pairing is by stem
    write_voc_xml(
        src / "train/box/000001.xml", "c000001.jpg", [("echinus", 2, 3, 10, 12), ("starfish", 5, 5, 40, 30)]
    )  # starfish leaves the 32x24 image
    write_voc_xml(
        src / "train/box/000002.xml", "000002.jpg", [("holothurian", 1, 1, 8, 9), ("scallop", 20, 10, 30, 20, 1)]
    )
    # only waterweeds (the released sets' spelling; some copies write it singular)
    write_voc_xml(src / "train/box/000003.xml", "000003.jpg", [("waterweeds", 4, 4, 9, 9), ("waterweed", 2, 2, 5, 5)])
    write_voc_xml(src / "train/box/000004.xml", "000004.jpg", [("scallop", 10.5, 2.5, 19.5, 11.5)])
    return src


def read_split(out: Path, name: str = "urpc") -> dict:
    boxes = {}
    for split in ("train", "test"):
        path = out / "annotations" / f"{name}_{split}.json"
        if path.exists():
            coco = load_coco(path)
            assert category_names(coco) == URPC_CLASSES
            boxes[split] = boxes_by_file(coco)
    return boxes


def test_converts_pairs_by_stem_with_rules_and_summary(urpc_src, tmp_path, capsys):
    out = tmp_path / "scene"
    code, stdout, stderr = convert(capsys, "urpc", urpc_src, out, "--test-fraction", "0.5", "--workers", "1")
    assert code == 0, stderr

    splits = read_split(out)
    assert sorted(splits) == ["test", "train"]
    assert splits["train"] and splits["test"]
    everything = {**splits["train"], **splits["test"]}
    assert sorted(everything) == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]
    assert sorted(p.name for p in (out / "urpc").glob("*.jpg")) == sorted(everything)

    assert everything["000001.jpg"] == [("echinus", [2.0, 3.0, 8.0, 9.0], 0), ("starfish", [5.0, 5.0, 27.0, 19.0], 0)]
    assert everything["000002.jpg"] == [
        ("holothurian", [1.0, 1.0, 7.0, 8.0], 0),
        ("scallop", [20.0, 10.0, 10.0, 10.0], 1),
    ]
    assert everything["000003.jpg"] == []  # waterweed dropped, image kept as a negative
    assert everything["000004.jpg"] == [("scallop", [10.5, 2.5, 9.0, 9.0], 0)]

    # a jpg source is copied unchanged; a png source becomes a decodable jpg close to it
    assert (out / "urpc/000001.jpg").read_bytes() == (urpc_src / "train/image/000001.jpg").read_bytes()
    reencoded = (out / "urpc/000002.jpg").read_bytes()
    assert reencoded[:3] == b"\xff\xd8\xff"
    decoded = cv2.imdecode(np.frombuffer(reencoded, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(urpc_src / "train/image/000002.png"))
    assert decoded.shape == original.shape
    assert np.abs(decoded.astype(int) - original.astype(int)).mean() < 4

    assert "warning:" in stderr and "unlabelled.jpg" in stderr and "readme.txt" in stderr
    assert "000001.xml: object 2 (starfish)" in stderr  # the clipped box is named
    summary = stdout[stdout.index("lcp data convert urpc: done") :]
    assert "1  waterweeds box, dropped (URPC rule)" in summary and "1  waterweed box, dropped (URPC rule)" in summary
    assert "1  urpc: box outside the image, clipped to it" in summary
    assert "1  image without an xml file, skipped" in summary
    assert "images without a box" in summary
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging folder left behind"


def test_same_output_with_one_or_two_workers_and_drop_empty(urpc_src, tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert convert(capsys, "urpc", urpc_src, one, "--workers", "1", "--drop-empty", "--test-fraction", "0.5")[0] == 0
    assert convert(capsys, "urpc", urpc_src, two, "--workers", "2", "--drop-empty", "--test-fraction", "0.5")[0] == 0
    for split in ("train", "test"):
        path = Path("annotations") / f"urpc_{split}.json"
        assert (one / path).read_text() == (two / path).read_text()
    assert sorted(p.name for p in (one / "urpc").glob("*.jpg")) == ["000001.jpg", "000002.jpg", "000004.jpg"]
    for image in (one / "urpc").glob("*.jpg"):
        assert image.read_bytes() == (two / "urpc" / image.name).read_bytes()


def test_refuses_to_overwrite_unless_asked(urpc_src, tmp_path, capsys):
    out = tmp_path / "scene"
    assert convert(capsys, "urpc", urpc_src, out, "--workers", "1")[0] == 0
    (out / "urpc" / "stale.jpg").write_bytes(b"old")
    code, _, stderr = convert(capsys, "urpc", urpc_src, out, "--workers", "1")
    assert code == 2
    assert "already exists" in stderr and "--overwrite" in stderr
    assert convert(capsys, "urpc", urpc_src, out, "--workers", "1", "--overwrite", "--test-fraction", "0")[0] == 0
    assert not (out / "urpc" / "stale.jpg").exists()
    assert not (out / "annotations" / "urpc_test.json").exists(), "a split the new set lacks must not linger"
    assert len(load_coco(out / "annotations" / "urpc_train.json").getImgIds()) == 4


def test_an_image_downscaled_after_labelling_is_refused_as_for_voc(urpc_src, tmp_path, capsys):
    # 000004.xml records 32x24 and a scallop to x 19.5: on the 16x12 image it would be clipped elsewhere
    write_image(urpc_src / "train/image/000004.jpg", 16, 12, seed=4)
    code, _, stderr = convert(capsys, "urpc", urpc_src, tmp_path / "scene", "--workers", "1")
    assert code == 2 and "Traceback" not in stderr
    assert "000004.jpg" in stderr and "records 32x24, the image is 16x12" in stderr
    assert "boxes leave the image but fit the recorded size" in stderr


def test_an_xml_declared_in_a_multibyte_encoding_is_read(urpc_src, tmp_path, capsys):
    xml = urpc_src / "train/box/000004.xml"
    text = xml.read_text().replace("<filename>000004.jpg", "<filename>扇贝000004.jpg")
    xml.write_bytes(('<?xml version="1.0" encoding="gbk"?>\n' + text).encode("gbk"))
    code, _, stderr = convert(capsys, "urpc", urpc_src, tmp_path / "scene", "--workers", "1", "--test-fraction", "0")
    assert code == 0, stderr
    assert read_split(tmp_path / "scene")["train"]["000004.jpg"] == [("scallop", [10.5, 2.5, 9.0, 9.0], 0)]
    xml.write_bytes(b'<?xml version="1.0" encoding="nosuch"?><annotation/>')
    code, _, stderr = convert(capsys, "urpc", urpc_src, tmp_path / "other", "--workers", "1")
    assert code == 2 and "Traceback" not in stderr
    assert "000004.xml: cannot decode its text (unknown encoding: nosuch)" in stderr


@pytest.mark.parametrize(
    "break_it, named, message",
    [
        (lambda src: (src / "train/box/000002.xml").write_text("<annotation><object>"), "000002.xml", "not valid XML"),
        (lambda src: (src / "train/image/000003.jpg").unlink(), "000003.xml", "no image named 000003"),
        (
            lambda src: write_voc_xml(src / "train/box/000004.xml", "x.jpg", [("fish", 1, 1, 5, 5)]),
            "000004.xml",
            "unknown class 'fish'",
        ),
        (
            lambda src: (src / "train/image/000004.jpg").write_text("this is text, not a jpeg"),
            "000004.jpg",
            "not a readable image",
        ),
        (
            lambda src: write_voc_xml(src / "train/box/000001.xml", "x.jpg", [("echinus", 1, "a", 5, 5)]),
            "000001.xml",
            "<ymin> is 'a'",
        ),
    ],
    ids=["broken-xml", "missing-image", "unknown-class", "non-image", "bad-number"],
)
def test_malformed_input_is_a_clear_error(urpc_src, tmp_path, capsys, break_it, named, message):
    break_it(urpc_src)
    out = tmp_path / "scene"
    code, stdout, stderr = convert(capsys, "urpc", urpc_src, out, "--workers", "1")
    assert code == 2
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("lcp data: error: ") and named in error and message in error
    assert "Traceback" not in stderr
    assert not (out / "urpc").exists() and not (out / "annotations").exists()
    assert not out.exists() or not any(out.iterdir()), "nothing may be left half-written"
