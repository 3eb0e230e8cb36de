"""No lcp command destroys its input or data it did not write, leaves temporaries behind
once rerun, or writes what colleagues cannot read: outputs are checked against the sources,
--overwrite replaces only folders lcp marked as its own, modes follow the umask, and
`lcp infer` publishes all its outputs or none."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmdet.models import build_detector

from helpers.unprivileged import run_lcp
from lcp.apis.config import load_config
from lcp.cli import main as lcp
from lcp.io import MIN_STALE_AGE_S

REPO = Path(__file__).resolve().parents[2]
LCP_TINY = str(REPO / "config" / "mmdet" / "lcp_tiny_demo.py")
LCP_COMMAND = Path(sys.executable).parent / "lcp"
MARKER = ".lcp-output"


def digest(root: Path) -> dict[str, str]:
    """Every file and link below `root` (itself included) by relative path: content hash and mode."""
    paths = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
    found = {}
    for path in paths:
        key = str(path.relative_to(root)) if path != root else "."
        if path.is_symlink():
            found[key] = "link " + os.readlink(path)
        elif path.is_file():
            found[key] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {stat.S_IMODE(path.stat().st_mode):o}"
        else:
            found[key] = f"dir {stat.S_IMODE(path.stat().st_mode):o}"
    return found


def refused(capsys, argv: list[str], *words: str) -> str:
    """Run an lcp command that must fail with one error line holding `words`."""
    code = lcp(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def demo(out: Path, *extra: str) -> list[str]:
    return ["data", "demo", "--out", str(out), "--num-images", "3", "--size", "32", "--no-progress", *extra]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("safety") / "scene"
    assert lcp(demo(out)) == 0
    return out


# ---- the three cases of the issue: the source stays byte-identical --------------------


def test_synth_onto_its_own_source_is_refused(scene, capsys):
    before = digest(scene)
    clean = scene / "clean"
    refused(
        capsys,
        [
            "data",
            "synth",
            "fog",
            "--src",
            str(clean),
            "--out",
            str(clean),
            "--overwrite",
            "--ann",
            str(scene / "annotations/clean_train.json"),
            "--ann-out",
            str(scene / "annotations/fog_train.json"),
            "--no-progress",
            "--workers",
            "1",
        ],
        f"{clean}: is the source",
    )
    assert digest(scene) == before


def test_convert_yolo_into_its_own_source_is_refused(tmp_path, capsys):
    src = tmp_path / "yolo"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    cv2.imwrite(str(src / "images/a.png"), np.full((16, 16, 3), 90, np.uint8))
    (src / "labels/a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (src / "classes.txt").write_text("boat\n")
    before = digest(src)
    refused(
        capsys,
        ["data", "convert", "yolo", str(src), str(src), "--overwrite", "--workers", "1"],
        f"{src / 'images'}: lies inside the source {src}",
    )
    assert digest(src) == before


def test_demo_overwrite_of_a_folder_lcp_did_not_write_is_refused(tmp_path, capsys):
    data = tmp_path / "mine"
    (data / "photos").mkdir(parents=True)
    (data / "photos/holiday.jpg").write_bytes(b"\xff\xd8\xff precious")
    (data / "notes.txt").write_text("keep me")
    before = digest(data)
    refused(capsys, demo(data, "--overwrite"), f"{data}: already exists and holds no {MARKER}", "remove it by hand")
    assert digest(data) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


# ---- the rules behind them -------------------------------------------------------------


def test_an_output_inside_containing_or_linked_to_a_source_is_refused(scene, tmp_path, capsys):
    before = digest(scene)
    clean = scene / "clean"
    synth = ["data", "synth", "fog", "--src", str(clean), "--no-progress", "--workers", "1", "--overwrite"]
    refused(capsys, [*synth, "--out", str(clean / "fog")], f"{clean / 'fog'}: lies inside the source {clean}")
    refused(capsys, [*synth, "--out", str(scene)], f"{scene}: contains the source {clean}")
    link = tmp_path / "link"
    link.symlink_to(clean)
    refused(capsys, [*synth, "--out", str(link)], f"{link}: is the source {clean}")
    depth = scene / "depth"
    refused(
        capsys,
        [*synth, "--out", str(depth / "fog"), "--depth-dir", str(depth)],
        f"{depth / 'fog'}: lies inside the source {depth}",
    )
    assert digest(scene) == before


def test_an_image_linked_from_the_output_it_would_replace_is_refused(scene, tmp_path, capsys):
    """Source images that are links into an earlier output (a subset picked by linking) were
    read, then deleted with the folder --overwrite replaced: the links dangled, the source lost."""
    out = tmp_path / "out"
    assert lcp(["data", "convert", "folder", str(scene / "clean"), str(out), "--workers", "1"]) == 0
    synth = ["data", "synth", "fog", "--src", str(scene / "clean"), "--no-progress", "--workers", "1"]
    assert lcp([*synth, "--out", str(out / "fog")]) == 0
    capsys.readouterr()
    for folder in ("images", "fog"):
        picked = tmp_path / "picked" / folder
        picked.mkdir(parents=True)
        for image in sorted((out / folder).glob("*.jpg"))[:2]:
            (picked / image.name).symlink_to(image)
    before = digest(out)
    link = sorted((tmp_path / "picked/images").iterdir())[0]
    convert = ["data", "convert", "folder", str(tmp_path / "picked/images"), str(out), "--overwrite"]
    refused(capsys, [*convert, "--workers", "1"], f"{out / 'images'}: contains the source {link}")
    link = sorted((tmp_path / "picked/fog").iterdir())[0]
    synth[4] = str(link.parent)
    refused(capsys, [*synth, "--out", str(out / "fog"), "--overwrite"], f"{out / 'fog'}: contains the source {link}")
    assert digest(out) == before


def test_rewritten_annotations_may_not_replace_their_source(scene, tmp_path, capsys):
    ann = scene / "annotations/clean_test.json"
    before = ann.read_bytes()
    refused(
        capsys,
        [
            "data",
            "synth",
            "fog",
            "--src",
            str(scene / "clean"),
            "--out",
            str(tmp_path / "fog"),
            "--ann",
            str(ann),
            "--ann-out",
            str(ann),
            "--overwrite",
            "--no-progress",
            "--workers",
            "1",
        ],
        f"{ann}: is the source {ann}",
    )
    assert ann.read_bytes() == before and not (tmp_path / "fog").exists()


def test_the_check_report_may_not_replace_what_it_checks(scene, capsys):
    before = digest(scene)
    ann = scene / "annotations/lowq_test.json"
    check = ["data", "check", "--lowq", str(scene / "lowq"), "--clean", str(scene / "clean"), "--ann", str(ann)]
    refused(capsys, [*check, "--no-progress", "--report", str(ann)], f"{ann}: is the source {ann}")
    image = next((scene / "lowq").glob("*.jpg"))
    refused(capsys, [*check, "--no-progress", "--report", str(image)], f"lies inside the source {scene / 'lowq'}")
    assert digest(scene) == before


def test_overwrite_replaces_a_folder_lcp_wrote_and_says_so(scene, tmp_path, capsys):
    out = tmp_path / "fog"
    synth = [
        "data",
        "synth",
        "fog",
        "--src",
        str(scene / "clean"),
        "--out",
        str(out),
        "--no-progress",
        "--workers",
        "1",
    ]
    assert lcp([*synth, "--beta", "0.01"]) == 0
    assert (out / MARKER).is_file()
    capsys.readouterr()
    assert lcp([*synth, "--beta", "0.02", "--overwrite"]) == 0
    assert f"{out}: replaced the folder lcp wrote there before" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.jpg"))[0].endswith("_foggy_beta_0.02.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fog"]


def test_an_unmarked_folder_from_an_older_lcp_is_not_replaced(scene, tmp_path, capsys):
    """Folders written before the marker existed: the error line says to remove them by hand."""
    out = tmp_path / "fog"
    assert (
        lcp(
            [
                "data",
                "synth",
                "fog",
                "--src",
                str(scene / "clean"),
                "--out",
                str(out),
                "--no-progress",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    (out / MARKER).unlink()
    before = digest(out)
    refused(
        capsys,
        [
            "data",
            "synth",
            "fog",
            "--src",
            str(scene / "clean"),
            "--out",
            str(out),
            "--overwrite",
            "--no-progress",
            "--workers",
            "1",
        ],
        "remove it by hand",
    )
    assert digest(out) == before


def test_convert_overwrites_only_image_sets_it_wrote(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), np.full((16, 16, 3), 90, np.uint8))
    out = tmp_path / "scene"
    convert = [
        "data",
        "convert",
        "folder",
        str(src),
        str(out),
        "--name",
        "set",
        "--workers",
        "1",
        "--test-fraction",
        "0",
    ]
    (out / "set").mkdir(parents=True)
    (out / "set/mine.jpg").write_bytes(b"not lcp's")
    refused(capsys, [*convert, "--overwrite"], f"{out / 'set'}: already exists and holds no {MARKER}")
    assert [p.name for p in (out / "set").iterdir()] == ["mine.jpg"]

    (out / "set/mine.jpg").unlink()
    (out / "set").rmdir()
    (out / "annotations").mkdir()
    (out / "annotations/set_train.json").write_text("{}")
    refused(
        capsys,
        [*convert, "--overwrite"],
        f"{out / 'annotations/set_train.json'}: already exists beside no image set lcp wrote",
    )
    assert (out / "annotations/set_train.json").read_text() == "{}"

    (out / "annotations/set_train.json").unlink()
    assert lcp(convert) == 0
    assert lcp([*convert, "--overwrite"]) == 0
    assert f"{out / 'set'}: replaced the folder lcp wrote there before" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["annotations", "set"]  # no staging left


def test_an_overwrite_refused_by_the_system_leaves_the_older_set_whole(scene, tmp_path):
    out = tmp_path / "scene"
    convert = ["data", "convert", "folder", "--workers", "1", "--test-fraction", "0.34"]
    assert run_lcp(*convert, str(scene / "clean"), str(out)).returncode == 0
    before = digest(out)
    (out / "annotations").chmod(0o555)
    try:
        result = run_lcp(*convert, str(scene / "lowq"), str(out), "--overwrite")
    finally:
        (out / "annotations").chmod(0o755)
    assert result.returncode == 2 and result.stderr.strip().endswith("Permission denied"), result.stderr
    assert digest(out) == before  # the images still match their json files


def test_a_refused_annotation_output_fails_before_the_synthesised_folder_appears(scene, tmp_path):
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    synth = ["data", "synth", "fog", "--src", str(scene / "clean"), "--out", str(tmp_path / "fog"), "--no-progress"]
    ann = ["--ann", str(scene / "annotations/clean_train.json"), "--ann-out", str(readonly / "fog_train.json")]
    result = run_lcp(*synth, *ann)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"lcp data: error: {readonly / 'fog_train.json'}: Permission denied"
    assert not (tmp_path / "fog").exists() and list(readonly.iterdir()) == []


# ---- modes -------------------------------------------------------------------------------


def test_a_full_disk_while_converting_is_one_line_naming_the_image(scene, tmp_path, capsys, monkeypatch):
    """The write in the worker raised an OSError without a file name: a 64-line traceback from
    a worker process, with no file named."""
    import errno

    write_bytes = Path.write_bytes

    def disk_full(path, data):
        if path.suffix == ".jpg" and path.parent.name == "set":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    out = tmp_path / "scene"
    argv = ["data", "convert", "folder", str(scene / "clean"), str(out), "--name", "set", "--workers", "1"]
    assert lcp(argv) == 1
    error = capsys.readouterr().err.strip()
    assert re.fullmatch(rf"lcp data: error: {re.escape(str(out / 'set'))}/[^/ ]+\.jpg: No space left on device", error)
    assert not out.exists()


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_modes_of_written_files_follow_the_umask(scene, tmp_path, umask):
    old = os.umask(umask)
    try:
        assert lcp(demo(tmp_path / "demo")) == 0
        assert (
            lcp(
                [
                    "data",
                    "convert",
                    "folder",
                    str(scene / "clean"),
                    str(tmp_path / "converted"),
                    "--name",
                    "clean",
                    "--workers",
                    "1",
                ]
            )
            == 0
        )
        assert (
            lcp(
                [
                    "data",
                    "synth",
                    "fog",
                    "--src",
                    str(scene / "clean"),
                    "--out",
                    str(tmp_path / "fog"),
                    "--ann",
                    str(scene / "annotations/clean_test.json"),
                    "--ann-out",
                    str(tmp_path / "fog_test.json"),
                    "--no-progress",
                    "--workers",
                    "1",
                ]
            )
            == 0
        )
    finally:
        os.umask(old)
    written = [
        tmp_path / "demo",
        *(tmp_path / "demo").rglob("*"),
        tmp_path / "converted",
        *(tmp_path / "converted").rglob("*"),
        tmp_path / "fog",
        tmp_path / "fog_test.json",
    ]
    assert any(p.suffix == ".json" for p in written)
    for path in written:
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


# ---- leftovers of a killed run ---------------------------------------------------------


HOLD_FLOCK = (  # what a writing lcp process does to its temporary
    "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); "
    "print('held', flush=True); time.sleep(60)"
)


def test_a_rerun_removes_what_a_killed_demo_left_and_keeps_a_live_ones(tmp_path):
    out = tmp_path / "demo"
    process = subprocess.Popen(
        [
            str(LCP_COMMAND),
            "data",
            "demo",
            "--out",
            str(out),
            "--num-images",
            "100000",
            "--size",
            "32",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".demo.*.tmp")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (leftover,) = tmp_path.glob(".demo.*.tmp")
    match = re.fullmatch(rf"\.demo\.(.+)-{process.pid}\.([0-9a-f]{{8}})\.tmp", leftover.name)
    assert match, leftover.name

    time.sleep(MIN_STALE_AGE_S)  # a temporary younger than that may be one just being made
    live = tmp_path / f".demo.{match[1]}-{process.pid}.0badcafe.tmp"  # a run still writing, whatever its pid
    live.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FLOCK, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        os.utime(live, (time.time() - 60, time.time() - 60))  # old enough to be removed if nobody held it
        assert lcp(demo(out)) == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["demo", live.name])
    finally:
        holder.kill()
        holder.wait()
    assert lcp(demo(out, "--overwrite")) == 0  # its writer gone, from this host or another
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_the_workers_of_a_killed_run_end_with_it(scene, tmp_path):
    """After a `kill -9` of lcp its pool workers wrote on for minutes, holding the locks that mark
    its temporaries live, so the next run could not remove them."""
    import psutil

    many = tmp_path / "many"
    many.mkdir()
    for index in range(400):
        (many / f"{index:04d}.png").symlink_to(next((scene / "clean").glob("*.jpg")))
    command = [str(LCP_COMMAND), "data", "synth", "fog", "--src", str(many), "--out", str(tmp_path / "fog")]
    process = subprocess.Popen([*command, "--workers", "2", "--no-progress"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(psutil.Process(process.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = psutil.Process(process.pid).children()
    assert len(workers) == 2, process.stderr.read() if process.poll() is not None else "no workers"
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(workers, timeout=30)
    for worker in alive:  # the failure is reported, not left running
        worker.kill()
    assert not alive
    time.sleep(MIN_STALE_AGE_S)  # a temporary younger than that may be one just being made
    assert lcp([*command[1:], "--workers", "1", "--no-progress"]) == 0  # and the rerun clears the temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fog", "many"]


# ---- lcp infer: all outputs or none ----------------------------------------------------


@pytest.fixture(scope="module")
def untrained(scene, tmp_path_factory) -> Path:
    """A real (untrained) checkpoint of the tiny LCP detector."""
    cfg = load_config(LCP_TINY, {"data_root": f"{scene}/"})
    path = tmp_path_factory.mktemp("ckpt") / "lcp_tiny.pth"
    torch.save(
        {"state_dict": build_detector(cfg.model).state_dict(), "meta": {"CLASSES": ("circle", "square", "triangle")}},
        path,
    )
    return path


def infer(checkpoint: Path, scene: Path, images: list[Path], out_dir: Path, *extra: str) -> list[str]:
    return [
        "infer",
        LCP_TINY,
        str(checkpoint),
        *map(str, images),
        "--out-dir",
        str(out_dir),
        "--cfg-options",
        f"data_root={scene}/",
        *extra,
    ]


def test_infer_refuses_a_non_image_before_writing(scene, untrained, tmp_path, capsys):
    good = sorted((scene / "lowq").glob("*.jpg"))
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    out_dir = tmp_path / "out"
    refused(capsys, infer(untrained, scene, [good[0], notes], out_dir), f"{notes}: not an image file")
    assert not out_dir.exists()


def test_infer_failing_midway_writes_nothing_and_the_rerun_is_not_refused(scene, untrained, tmp_path, capsys):
    good = sorted((scene / "lowq").glob("*.jpg"))
    broken = tmp_path / "zz_broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)  # a PNG signature, then nothing decodable
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "earlier.json").write_text("{}")
    assert lcp(infer(untrained, scene, [*good, broken], out_dir)) == 2
    assert f"{broken}: truncated PNG (no IEND chunk)" in capsys.readouterr().err
    assert [p.name for p in out_dir.iterdir()] == ["earlier.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "zz_broken.png"]

    assert lcp(infer(untrained, scene, good, out_dir)) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        ["earlier.json", *(f"{p.stem}.json" for p in good), *(f"{p.stem}.jpg" for p in good)]
    )


def test_infer_refuses_a_folder_where_one_of_its_files_goes_before_any_work(scene, untrained, tmp_path, capsys):
    """It failed when moving that file in, the first images' files published already."""
    images = sorted((scene / "lowq").glob("*.jpg"))[:2]
    out_dir = tmp_path / "out"
    (out_dir / f"{images[1].stem}.json").mkdir(parents=True)
    assert lcp([*infer(untrained, scene, images, out_dir), "--overwrite"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{out_dir / images[1].stem}.json: is a folder, not a file")
    assert [p.name for p in out_dir.iterdir()] == [f"{images[1].stem}.json"]


def test_infer_refuses_to_replace_its_earlier_output_without_overwrite(scene, untrained, tmp_path, capsys):
    image = sorted((scene / "lowq").glob("*.jpg"))[0]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / f"{image.stem}.json").write_text("{}")
    refused(capsys, infer(untrained, scene, [image], out_dir), f"{out_dir / image.stem}.json: already exists; remove")
    assert [p.name for p in out_dir.iterdir()] == [f"{image.stem}.json"]
    assert (out_dir / f"{image.stem}.json").read_text() == "{}"


def test_infer_refuses_images_whose_outputs_would_collide_or_are_not_there(scene, untrained, tmp_path, capsys):
    image = sorted((scene / "lowq").glob("*.jpg"))[0]
    namesake = tmp_path / "other" / f"{image.stem}.png"
    namesake.parent.mkdir()
    cv2.imwrite(str(namesake), cv2.imread(str(image)))
    out_dir = tmp_path / "out"
    refused(capsys, infer(untrained, scene, [image, namesake], out_dir), f"{namesake}: has the same name as {image}")
    refused(
        capsys, infer(untrained, scene, [tmp_path / "gone.jpg"], out_dir), f"{tmp_path}/gone.jpg: image does not exist"
    )
    refused(capsys, infer(untrained, scene, [image], untrained), f"{untrained}: exists and is not a folder")
    refused(capsys, infer(untrained, scene, [image], out_dir, "--score-thr", "1.5"), "--score-thr 1.5: must be between")
    assert not out_dir.exists()


def test_infer_refuses_a_truncated_jpeg_before_the_model_loads(scene, untrained, tmp_path, capsys):
    """OpenCV decodes half a JPEG (grey below the cut); mmcv's loader does not: a traceback."""
    whole = sorted((scene / "lowq").glob("*.jpg"))[0].read_bytes()
    half = tmp_path / "half.jpg"
    half.write_bytes(whole[: len(whole) // 2])
    refused(capsys, infer(untrained, scene, [half], tmp_path / "out"), f"{half}: truncated JPEG")
    assert not (tmp_path / "out").exists()


def test_infer_on_a_folder_says_what_it_leaves_out(scene, untrained, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(sorted((scene / "lowq").glob("*.jpg"))[0].read_bytes())
    cv2.imwrite(str(folder / "b.bmp"), np.zeros((8, 8, 3), np.uint8))
    (folder / "sub").mkdir()
    (folder / "notes.json").write_text("{}")  # not an image: not worth a word
    (folder / ".lcp-output").write_text("")
    assert lcp(infer(untrained, scene, [folder], tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert f"{folder}: 2 entries left out, not a .jpg/.jpeg/.png image directly inside the folder (e.g. b.bmp)" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "a.json"]


def test_report_pictures_may_not_go_into_the_test_set_they_are_drawn_from(scene, untrained, capsys):
    """A heat map written into the test images' folder became a test image of the next run."""
    before = digest(scene)
    options = ["--cfg-options", f"data_root={scene}/"]
    heatmaps = ["heatmaps", LCP_TINY, str(untrained), "--out-dir", str(scene / "lowq"), "--count", "1", *options]
    refused(capsys, heatmaps, f"lies inside the source {scene}/lowq/")
    detections = ["report", "detections", LCP_TINY, str(untrained), "--out", str(scene / "lowq" / "b_0.jpg"), *options]
    refused(capsys, detections, f"lies inside the source {scene}/lowq/")
    assert digest(scene) == before


def test_report_detections_refuses_two_pictures_into_one_file(scene, untrained, tmp_path, capsys):
    """Two --out of one file kept the second picture alone, and said both were written."""
    # the scene's train split (2 images) as the test set: one picture per image
    options = ["--cfg-options", f"data_root={scene}/", "test_ann=annotations/lowq_train.json"]
    for second in (tmp_path / "d.jpg", tmp_path / "x" / ".." / "d.jpg"):
        argv = ["report", "detections", LCP_TINY, str(untrained), "--out", str(tmp_path / "d.jpg")]
        refused(capsys, [*argv, "--out", str(second), *options], f"{second}: given for two outputs")
        assert not (tmp_path / "d.jpg").exists()


def test_infer_never_writes_over_an_input_image_or_beside_it(scene, untrained, tmp_path, capsys):
    image = tmp_path / "photo.jpg"
    image.write_bytes(sorted((scene / "lowq").glob("*.jpg"))[0].read_bytes())
    before = image.read_bytes()
    refused(capsys, infer(untrained, scene, [image], tmp_path, "--overwrite"), f"lies inside the source {tmp_path}")
    assert image.read_bytes() == before
    # the picture of x.png is x.jpg: with --overwrite it replaced the user's own x.jpg beside it
    png = tmp_path / "x.png"
    cv2.imwrite(str(png), cv2.imread(str(image)))
    (tmp_path / "x.jpg").write_bytes(before)
    refused(capsys, infer(untrained, scene, [png], tmp_path, "--overwrite"), f"lies inside the source {tmp_path}")
    assert (tmp_path / "x.jpg").read_bytes() == before


def test_infer_runs_on_an_image_opencv_reads_named_on_its_own(scene, untrained, tmp_path, capsys):
    # a folder leaves .bmp files out and says to name them one by one; named, one was refused
    bmp = tmp_path / "in" / "b.bmp"
    bmp.parent.mkdir()
    cv2.imwrite(str(bmp), cv2.imread(str(sorted((scene / "lowq").glob("*.jpg"))[0])))
    assert lcp(infer(untrained, scene, [bmp], tmp_path / "out")) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.jpg", "b.json"]


def test_pictures_of_a_checkpoint_whose_class_names_do_not_fit_are_one_line(scene, tmp_path, capsys):
    cfg = load_config(LCP_TINY, {"data_root": f"{scene}/"})
    checkpoint = tmp_path / "two_names.pth"
    torch.save({"state_dict": build_detector(cfg.model).state_dict(), "meta": {"CLASSES": ("a", "b")}}, checkpoint)
    options = ["--cfg-options", f"data_root={scene}/"]
    detections = ["report", "detections", LCP_TINY, str(checkpoint), "--out", str(tmp_path / "d.jpg"), *options]
    # an IndexError traceback while drawing
    refused(capsys, detections, "the checkpoint's class names ['a', 'b'] do not fit the model's 3 classes")
    image = sorted((scene / "lowq").glob("*.jpg"))[0]
    refused(capsys, infer(checkpoint, scene, [image], tmp_path / "out"), "the checkpoint's class names ['a', 'b']")


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    evaluation = tmp_path / "e.json"
    evaluation.write_text(json.dumps({"bbox_mAP": 0.3, "bbox_mAP_50": 0.5, "bbox_mAP_75": 0.2, "classwise": {}}))
    argv = ["report", "metrics", "--eval", f"lcp={evaluation}", "--csv", str(tmp_path / "afile" / "m.csv")]
    refused(capsys, argv, f"{tmp_path / 'afile' / 'm.csv'}: cannot make the folder it goes into")


def test_a_folder_the_system_refuses_to_write_is_one_line_and_nothing_is_left(scene, tmp_path):
    readonly = tmp_path / "readonly"
    readonly.mkdir(mode=0o555)
    commands = {
        "convert": ["data", "convert", "folder", str(scene / "clean"), str(readonly / "out")],
        "demo": demo(readonly / "demo"),
        # the pytest folders have no spaces: each command is its words
        "synth": f"data synth fog --src {scene / 'clean'} --out {readonly / 'fog'} --no-progress".split(),
        "check report": (
            f"data check --lowq {scene / 'lowq'} --clean {scene / 'clean'} --report {readonly / 'check.json'}"
        ).split(),
    }
    for name, argv in commands.items():
        result = run_lcp(*argv)
        err = result.stderr.strip()
        assert result.returncode == 2, (name, err)
        assert "Traceback" not in err and err.splitlines()[-1].endswith("Permission denied"), (name, err)
        assert str(readonly) in err.splitlines()[-1], (name, err)
    assert list(readonly.iterdir()) == []


def test_a_full_disk_is_one_line_a_retry_may_pass_and_nothing_is_left(scene, tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    small = tmp_path / "small"
    small.mkdir()
    lcp_command = [str(LCP_COMMAND), "data", "convert", "folder", str(scene / "clean"), str(small / "out")]
    mount = f"mount -t tmpfs -o size=12k tmpfs {small}"
    script = f"{mount} && {shlex.join(lcp_command)}; status=$?; ls -A {small}; exit $status"
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False)
    err = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert err[-1].startswith("lcp data: error: ") and err[-1].endswith("No space left on device"), result.stderr
    assert "Traceback" not in result.stderr and ".tmp" not in err[-1], result.stderr
    assert result.stdout.strip() == "", result.stdout  # the tmpfs was left empty


def test_errors_name_the_published_path_not_the_temporary_one():
    from lcp.io import published_path

    assert published_path("/d/.out.node1-42.0a1b2c3d.tmp/images/x.jpg") == "/d/out/images/x.jpg"
    assert published_path("/d/.report.json.node-a_b-7.ffffffff.old") == "/d/report.json"
    assert published_path("/d/.hidden/x.jpg") == "/d/.hidden/x.jpg"


@pytest.mark.parametrize(
    "signum, to_group",
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
    ids=["sigterm-to-lcp", "sigterm-to-the-job", "ctrl-c"],
)
def test_a_stop_signal_stops_the_workers_says_one_line_and_leaves_no_temporary(tmp_path, signum, to_group):
    """A cluster's SIGTERM killed only the parent: its workers hung on (holding the job's output
    pipes) and wrote on into the temporary folder, which stayed for good. Ctrl-C printed a
    traceback from every worker."""
    scene = tmp_path / "scene"
    assert lcp(["data", "demo", "--out", str(scene), "--num-images", "200", "--size", "192", "--no-progress"]) == 0
    out = tmp_path / "fog"
    command = [str(LCP_COMMAND), "data", "synth", "fog", "--src", str(scene / "clean"), "--out", str(out)]
    job = subprocess.Popen(
        [*command, "--workers", "2", "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a terminal's Ctrl-C: Python ignores SIGINT in a process started with it ignored (a CI
        # runner in the background), so the child gets the default back
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not any(tmp_path.glob(".fog.*.tmp/*.jpg")) and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if to_group:
        os.killpg(job.pid, signum)
    else:
        job.send_signal(signum)
    _, err = job.communicate(timeout=60)
    words = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted (Ctrl-C)"
    assert job.returncode == (128 + signal.SIGTERM if signum == signal.SIGTERM else 130), err
    assert err == f"lcp data: {words}; nothing unfinished was published\n"
    time.sleep(0.5)
    survivors = [p for p in Path("/proc").glob("[0-9]*") if str(out).encode() in _cmdline(p)]
    assert survivors == [] and sorted(p.name for p in tmp_path.iterdir()) == ["scene"]


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


def test_what_goes_with_a_folder_is_in_place_before_the_replaced_folder_is_removed(tmp_path):
    """The old folder's removal (long for a large set) came before the json files' renames: a
    kill in it left new images under the old annotations, marked complete."""
    from lcp.io import replace_folder

    path, new = tmp_path / "images", tmp_path / "new"
    path.mkdir()
    (path / "old.jpg").write_text("old")
    new.mkdir()
    (new / "new.jpg").write_text("new")
    seen = []
    replace_folder(new, path, then=lambda: seen.append((sorted(p.name for p in path.iterdir()), _old_sets(tmp_path))))
    assert seen == [(["new.jpg"], 1)] and _old_sets(tmp_path) == 0


def _old_sets(folder: Path) -> int:
    return len(list(folder.glob(".images.*.old")))


def test_an_output_another_run_published_meanwhile_is_refused_not_replaced(tmp_path):
    """Two runs without --overwrite both passed the check made before their work, and the later
    one replaced the earlier one's file or folder, both saying they succeeded."""
    from lcp.errors import LCPError
    from lcp.io import atomic_path, replace_folder

    target = tmp_path / "x.json"
    with pytest.raises(LCPError, match="already exists"):
        with atomic_path(target, overwrite=False) as tmp:
            tmp.write_text("mine")
            target.write_text("the other run's")
    assert target.read_text() == "the other run's" and list(tmp_path.iterdir()) == [target]
    folder, staged = tmp_path / "set", tmp_path / "staged"
    folder.mkdir()
    (folder / "theirs.jpg").write_text("theirs")
    staged.mkdir()
    with pytest.raises(LCPError, match="already exists"):
        replace_folder(staged, folder, overwrite=False)
    assert [p.name for p in folder.iterdir()] == ["theirs.jpg"]


def test_two_runs_writing_one_output_publish_one_after_the_other(scene, tmp_path):
    """Both passed the check made before their work; the later one replaced the earlier one's set
    (or mixed its images with the other's json files), both saying they succeeded."""
    from lcp.io import publishing

    out = tmp_path / "scene"
    out.mkdir()
    command = [str(LCP_COMMAND), "data", "convert", "folder", str(scene / "clean"), str(out), "--workers", "1"]
    with publishing(out):  # another run is publishing into OUT
        run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert run.poll() is None  # done with its work, it waits to publish
        assert lcp(["data", "convert", "folder", str(scene / "lowq"), str(tmp_path / "other")]) == 0
        for entry in (tmp_path / "other").iterdir():  # what the other run publishes meanwhile
            os.rename(entry, out / entry.name)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 2 and err.strip().endswith("already exists; remove it or pass --overwrite"), err
    assert sorted(p.name for p in (out / "images").iterdir() if p.suffix == ".jpg") == sorted(
        p.name for p in (scene / "lowq").iterdir() if p.suffix == ".jpg"
    )


def test_a_folder_whose_companions_cannot_follow_is_taken_back(tmp_path):
    from lcp.io import replace_folder

    def refused():
        raise OSError(13, "Permission denied", "annotations/x.json")

    for existing in (False, True):
        path, new = tmp_path / f"set{existing}", tmp_path / f"new{existing}"
        new.mkdir()
        (new / "new.jpg").write_text("new")
        if existing:
            path.mkdir()
            (path / "old.jpg").write_text("old")
        with pytest.raises(OSError):
            replace_folder(new, path, then=refused)
        assert [p.name for p in new.iterdir()] == ["new.jpg"]  # for the caller to remove
        assert ([p.name for p in path.iterdir()] == ["old.jpg"]) if existing else not path.exists()
    assert not list(tmp_path.glob(".*.old"))


def test_without_hard_links_a_new_file_is_still_published_once(tmp_path, monkeypatch):
    """FAT and some FUSE file systems refuse link(2): every write of a new file failed."""
    from lcp.errors import LCPError
    from lcp.io import atomic_path

    def no_links(source, target):
        raise OSError(1, "Operation not permitted", source)

    monkeypatch.setattr(os, "link", no_links)
    with atomic_path(tmp_path / "a.json", overwrite=False) as tmp:
        tmp.write_text("mine")
    assert (tmp_path / "a.json").read_text() == "mine"
    with pytest.raises(LCPError, match="already exists"):
        with atomic_path(tmp_path / "a.json", overwrite=False) as tmp:
            tmp.write_text("again")
    assert (tmp_path / "a.json").read_text() == "mine" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_the_staged_annotations_of_a_running_synth_stay_held(tmp_path):
    """Their temporary was replaced by another file after its flock was taken: a second run's
    clean-up deleted it, and the first published its folder without annotations."""
    scene = tmp_path / "scene"
    assert lcp(["data", "demo", "--out", str(scene), "--num-images", "200", "--size", "192", "--no-progress"]) == 0
    ann = ["--ann", str(scene / "annotations/clean_train.json"), "--ann-out", str(tmp_path / "fog_train.json")]
    synth = [str(LCP_COMMAND), "data", "synth", "fog", "--src", str(scene / "clean"), "--out", str(tmp_path / "fog")]
    job = subprocess.Popen([*synth, *ann, "--workers", "1", "--no-progress"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".fog.*.tmp/*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (staged,) = tmp_path.glob(".fog_train.json.*.tmp")
    os.utime(staged, (time.time() - 7200, time.time() - 7200))  # however long the run has been going
    clean_up = "import sys, pathlib; from lcp.io import remove_stale_temporaries as r; r(pathlib.Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", clean_up, str(tmp_path / "fog_train.json")], check=True)
    assert staged.exists()
    _, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    assert json.loads((tmp_path / "fog_train.json").read_text())["images"]


def test_a_held_temporary_looks_recent_to_other_hosts_however_long_its_run(tmp_path):
    """Another host cannot see this host's flocks on some cluster file systems: it judged a live
    staging folder by its own mtime, which stops once the writes go into its subfolders."""
    script = (
        "import os, sys, time, pathlib; import lcp.io as io; io.HEARTBEAT_S = 0.2\n"
        "with io.atomic_path(pathlib.Path(sys.argv[1])) as tmp:\n"
        "    os.utime(tmp, (0, 0)); time.sleep(1.0); print(time.time() - os.stat(tmp).st_mtime)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 1.0


def test_a_child_process_publishes_inside_its_parent_s_temporary_folder(tmp_path):
    """The parent held its temporary folder's flock and the child, publishing into it, waited
    for that flock forever (bench/half_fog.py builds its scene so)."""
    from lcp.io import atomic_folder

    with atomic_folder(tmp_path / "outer") as staging:
        result = subprocess.run(
            [str(LCP_COMMAND), *demo(staging / "inner")], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "outer" / "inner" / MARKER).is_file()


def test_a_published_file_is_on_disk_before_it_is_renamed_into_place(tmp_path, monkeypatch):
    """Nothing put a file's data on disk before its rename: a crash of its node soon after (power,
    a kernel panic) could leave an eval json or a checkpoint published empty on XFS or Lustre, and
    the next job, on another node, read it."""
    from lcp.io import write_json

    events = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recorded_replace(source, target):
        events.append(("replace", str(Path(source).resolve())))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    write_json(tmp_path / "eval.json", {"bbox_mAP": 0.5})
    (first, synced), (then, renamed) = events
    assert (first, then) == ("fsync", "replace") and synced == renamed
    assert Path(synced).parent == tmp_path.resolve() and Path(synced).name.startswith(".eval.json.")
