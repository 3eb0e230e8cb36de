"""`lcp data convert folder` and the shared pieces: flat names, split draws, output safety."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from helpers.convert_sources import convert, load_coco, write_image
from helpers.unprivileged import run_lcp
from lcp.data.convert.output import flat_names
from lcp.data.convert.samples import Sample
from lcp.data.convert.splits import split_by_fraction


@pytest.fixture
def dfui(tmp_path: Path) -> Path:
    src = tmp_path / "DFUI"
    write_image(src / "a/x.png", 20, 10, seed=1)
    write_image(src / "b/x.png", 30, 10, seed=2)
    write_image(src / "b/deeper/Y.JPG", 16, 16, seed=3)
    write_image(src / ".cache/hidden.jpg", seed=4)  # hidden folders are not data
    (src / "notes.txt").write_text("not an image")
    return src


def test_collects_recursively_flat_with_unique_names(dfui, tmp_path, capsys):
    out = tmp_path / "urpc"
    code, stdout, stderr = convert(capsys, "folder", dfui, out, "--name", "dfui", "--workers", "2")
    assert code == 0, stderr
    assert sorted(p.name for p in (out / "dfui").glob("*.jpg")) == ["Y.jpg", "a__x_png.jpg", "b__x_png.jpg"]
    coco = load_coco(out / "annotations/dfui_train.json")
    sizes = {img["file_name"]: (img["width"], img["height"]) for img in coco.loadImgs(coco.getImgIds())}
    assert sizes == {"Y.jpg": (16, 16), "a__x_png.jpg": (20, 10), "b__x_png.jpg": (30, 10)}
    assert coco.dataset["annotations"] == [] and coco.dataset["categories"] == []
    assert not (out / "annotations/dfui_test.json").exists()
    assert "notes.txt: not an image file" in stderr and "1  not an image file" in stdout


def test_undecodable_image_is_an_error_and_nothing_is_left(dfui, tmp_path, capsys):
    (dfui / "b/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "folder", dfui, out, "--workers", "2")
    assert code == 2 and "b/broken.png: not a readable image" in stderr
    assert not out.exists()


def test_bad_names_and_missing_source_are_errors(dfui, tmp_path, capsys):
    code, _, stderr = convert(capsys, "folder", dfui, tmp_path / "s", "--name", "annotations")
    assert code == 2 and "not usable as an image set name" in stderr
    code, _, stderr = convert(capsys, "folder", tmp_path / "nowhere", tmp_path / "s")
    assert code == 2 and "nowhere: not a folder" in stderr


def test_flat_names_ignore_listing_order_and_case_clashes():
    paths = [Path("/d/a/img.png"), Path("/d/b/IMG.jpg"), Path("/d/a/other.png"), Path("/d/a__img_png.jpg")]
    names = flat_names(paths)
    assert names == ["a__img_png.jpg", "b__IMG_jpg.jpg", "other.jpg", "a__img_png_2.jpg"]
    shuffled = paths[::-1]
    assert flat_names(shuffled) == names[::-1]
    assert len({n.lower() for n in names}) == len(names)


def test_names_that_are_no_utf8_or_hold_control_characters_are_written_plain(tmp_path, capsys):
    """A Latin-1 'é' from an old archive stopped every conversion with a UnicodeEncodeError
    traceback (the split draw); a newline in a name went into the output set's file names."""
    src = tmp_path / "src"
    write_image(src / "new_line.png", 20, 10)
    write_image(src / "new\nline.png", 30, 10)
    write_image(src / "tab\there.png", seed=3)
    write_image(src / "cafe.png", seed=4)
    os.rename(src / "cafe.png", bytes(src / "caf") + b"\xe9.png")  # as a Latin-1 system wrote it
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "folder", src, out, "--test-fraction", "0", "--workers", "1")
    assert code == 0, stderr
    images = load_coco(out / "annotations/images_train.json").dataset["images"]
    widths = {image["file_name"]: image["width"] for image in images}
    assert sorted(widths) == sorted(p.name for p in (out / "images").iterdir() if p.suffix == ".jpg")
    assert sorted(widths) == ["caf_.jpg", "new_line.jpg", "new_line_2.jpg", "tab_here.jpg"]
    assert (widths["new_line.jpg"], widths["new_line_2.jpg"]) == (20, 30)  # the file named so keeps its name


def test_split_draw_is_seeded_and_each_stem_keeps_its_split_whatever_else_the_set_holds():
    def draw(root: str, stems: list[int], seed: int, fraction: float = 0.25) -> dict[str, str]:
        samples = [Sample(Path(f"{root}/{i:04d}.jpg")) for i in stems]
        split_by_fraction(samples, fraction, seed)
        return {s.image.stem: s.split for s in samples}

    stems = list(range(2000))
    first = draw("/urpc/train/image", stems, seed=0)
    assert 0.22 < sum(split == "test" for split in first.values()) / len(stems) < 0.28
    shuffled = random.Random(1).sample(stems, len(stems))
    assert draw("/dfui/images", shuffled, seed=0) == first  # same stems, other folder and order
    # DFUI lacking some of URPC's images: every stem both hold keeps its split (no test image's
    # twin lands in the other set's train split)
    fewer = draw("/dfui/images", [i for i in stems if i % 7], seed=0)
    assert fewer == {stem: split for stem, split in first.items() if stem in fewer}
    assert draw("/urpc/train/image", stems, seed=1) != first
    # a tiny set still gets both splits the fraction asks for
    for seed in range(20):
        assert sorted(set(draw("/t", [1, 2], seed, 0.1).values())) == ["test", "train"]
        assert sorted(set(draw("/t", [1, 2], seed, 0.9).values())) == ["test", "train"]
        assert set(draw("/t", [1, 2], seed, 0.0).values()) == {"train"}
        assert set(draw("/t", [1, 2], seed, 1.0).values()) == {"test"}


def test_a_converter_is_called_with_plain_arguments_and_returns_its_report(dfui, tmp_path, capsys):
    from lcp.data.convert import folder
    from lcp.data.convert.output import Output
    from lcp.data.convert.splits import Split

    out = tmp_path / "scene"
    report = folder.convert(dfui, Output(out, "dfui", workers=1), classes=["fish"], split=Split(test_fraction=0.5))
    assert capsys.readouterr().out == ""  # the summary is the caller's to print
    assert report.render().startswith("lcp data convert folder: done\n")
    train, test = (load_coco(out / f"annotations/dfui_{split}.json") for split in ("train", "test"))
    names = {
        split: sorted(i["file_name"] for i in coco.dataset["images"])
        for split, coco in (("train", train), ("test", test))
    }
    # round(2 stems * 0.5): one stem to test; a/x.png and b/x.png share theirs, so one split
    assert sorted([names["train"], names["test"]]) == [["Y.jpg"], ["a__x_png.jpg", "b__x_png.jpg"]]
    assert [c["name"] for c in train.dataset["categories"]] == ["fish"]


def test_symlinked_folders_are_followed_once_and_a_loop_ends(dfui, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    write_image(elsewhere / "z.png", 12, 12, seed=5)
    (dfui / "linked").symlink_to(elsewhere, target_is_directory=True)
    (dfui / "b" / "loop").symlink_to(dfui / "b", target_is_directory=True)
    out = tmp_path / "scene"
    code, _, stderr = convert(capsys, "folder", dfui, out, "--name", "dfui")
    assert code == 0, stderr
    assert sorted(p.name for p in (out / "dfui").glob("*.jpg")) == ["Y.jpg", "a__x_png.jpg", "b__x_png.jpg", "z.jpg"]


def test_a_folder_that_cannot_be_listed_is_an_error_not_a_smaller_set(dfui, tmp_path):
    locked = dfui / "locked"
    write_image(locked / "w.png", seed=6)
    locked.chmod(0)
    try:
        result = run_lcp("data", "convert", "folder", str(dfui), str(tmp_path / "scene"))
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2 and "locked: cannot list this folder of the source" in result.stderr, result.stderr
    assert not (tmp_path / "scene").exists()
