"""The data stage of a user-defined scene, run for real: VOC data -> convert -> synthesise fog -> check."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from helpers.convert_sources import write_cityscapes, write_voc_xml
from helpers.workflow import planned_jobs, prepare_workdir, repo_config, snakemake, tiny_demo_config

pytestmark = pytest.mark.slow


def write_street(path, seed: int) -> None:
    """A 96x64 image with edges everywhere (the check compares the scenes' structure)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.resize(blocks, (96, 64), interpolation=cv2.INTER_NEAREST))


def write_voc_set(root, count: int) -> None:
    for index in range(count):
        name = f"street_{index:03d}"
        write_street(root / "JPEGImages" / f"{name}.jpg", seed=index)
        write_voc_xml(
            root / "Annotations" / f"{name}.xml",
            f"{name}.jpg",
            [("person", 10, 30, 24, 60), ("car", 40 + index % 20, 35, 80, 60)],
            size=(96, 64),
        )


def test_custom_scene_converts_synthesises_and_checks(tmp_path):
    source = tmp_path / "my_voc"
    write_voc_set(source, 10)
    config = repo_config()
    config["run"] = ["custom"]
    config["scenes"]["custom"]["image_sets"]["clear"]["path"] = str(source)
    config["scenes"]["custom"]["resources"] = {"default": {"cpus": 1}}
    config["tracking"] = {"enabled": False}
    prepare_workdir(tmp_path, config)

    target = "results/custom/data/check.json"
    assert planned_jobs(snakemake(tmp_path, "-n", target).stdout) == {
        "convert_image_set": 1,
        "synthesize_image_set": 1,
        "check_data": 1,
    }
    result = snakemake(tmp_path, "-c2", target, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:]

    check = json.loads((tmp_path / target).read_text())
    assert check["ok"] is True and check["degradation"] == "fog"
    assert check["counts"]["pairs"] == 10
    converted = json.loads((tmp_path / "data" / "custom" / "annotations" / "clear_train.json").read_text())
    assert [c["name"] for c in converted["categories"]] == ["person", "car"]  # the scene's class order
    synthesised = json.loads((tmp_path / "data" / "synthesized" / "custom" / "foggy_train.json").read_text())
    assert len(synthesised["images"]) == len(converted["images"]) == 8  # the converter's 0.2 test split
    assert all("_foggy_beta_0.02" in image["file_name"] for image in synthesised["images"])
    assert not (tmp_path / "results" / "mlflow").exists()  # tracking off: no store made
    # the training steps read what the check passed
    assert planned_jobs(snakemake(tmp_path, "-n", "results/custom/pretrain/latest.pth").stdout) == {"pretrain": 1}

    # a source file rewritten in place, or added in a subfolder, is named with the way to convert
    # again: snakemake saw the folder's own time only, and the old conversion was used silently
    # (a warning, not a rerun: a rerun would retrain every model after it for any file touched)
    assert "changed after" not in snakemake(tmp_path, "-n", target).stdout
    write_street(source / "JPEGImages" / "street_000.jpg", seed=99)
    dry = snakemake(tmp_path, "-n", target).stdout
    assert planned_jobs(dry) == {}
    converted = "data/custom/annotations/clear_train.json"
    assert (
        f"scenes.custom.image_sets.clear: {source / 'JPEGImages/street_000.jpg'} changed after {converted} was "
        f"converted; the workflow goes on with the old conversion: to convert it again, run with --forcerun {converted}"
    ) in dry
    redo = {"convert_image_set": 1, "synthesize_image_set": 1, "check_data": 1}
    assert planned_jobs(snakemake(tmp_path, "-n", "--forcerun", converted, "--", target).stdout) == redo
    assert snakemake(tmp_path, "-c2", "--forcerun", converted, "--", target, timeout=300).returncode == 0
    assert "changed after" not in snakemake(tmp_path, "-n", target).stdout
    write_voc_xml(source / "Annotations" / "street_010.xml", "street_010.jpg", [("car", 40, 35, 80, 60)], size=(96, 64))
    assert f"{source / 'Annotations'} (and 1 more) changed after" in snakemake(tmp_path, "-n", target).stdout
    # a change snakemake sees itself (the source folder's own time) is converted again, not warned about
    (source / "README.txt").write_text("notes\n")
    dry = snakemake(tmp_path, "-n", target).stdout
    assert planned_jobs(dry)["convert_image_set"] == 1 and "changed after" not in dry


def test_foggy_cityscapes_scene_converts_both_image_sets(tmp_path):
    """The published foggy_city scene's own recipe, pointed at a tiny Cityscapes: the clear
    frames and the beta 0.02 renderings each become an image set with the same boxes."""
    city = write_cityscapes(tmp_path / "sources")
    config = repo_config()
    config["run"] = ["foggy_city"]
    del config["scenes"]["rainy_city"]  # shares city/city_images, from another path
    image_sets = config["scenes"]["foggy_city"]["image_sets"]
    image_sets["city_images"]["path"] = image_sets["foggy_city_images"]["path"] = str(city["root"])
    image_sets["foggy_city_images"]["options"]["foggy"] = str(city["foggy"])
    config["scenes"]["foggy_city"]["resources"] = {"default": {"cpus": 1}}
    config["tracking"] = {"enabled": False}
    prepare_workdir(tmp_path, config)

    targets = [f"data/city/annotations/{name}_train.json" for name in ("city_images", "foggy_city_images")]
    result = snakemake(tmp_path, "-c2", *targets, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:]
    clear, foggy = (json.loads((tmp_path / target).read_text()) for target in targets)
    assert [image["file_name"] for image in foggy["images"]] == [
        image["file_name"].replace("_leftImg8bit.jpg", "_leftImg8bit_foggy_beta_0.02.jpg") for image in clear["images"]
    ]
    assert [ann["bbox"] for ann in foggy["annotations"]] == [ann["bbox"] for ann in clear["annotations"]]
    assert [c["name"] for c in clear["categories"]] == config["scenes"]["foggy_city"]["classes"]


def test_yolo_scene_with_names_in_another_order_converts_with_the_right_labels(tmp_path):
    """The issue's case through the workflow: the set's classes.txt says car, person, the
    scene's classes are [person, car], and the labels sit in a sibling folder. The workflow
    passes the scene's classes as --classes; they pick and order by name, the ids keep the
    set's own names."""
    images, labels = tmp_path / "Fog", tmp_path / "Fog_YOLO_darknet"
    labels.mkdir()
    (labels / "classes.txt").write_text("car\nperson\n")
    for index in range(5):
        write_street(images / f"street_{index}.jpg", seed=index)
        # id 0 (car) on the left half, id 1 (person) in the right quarter
        (labels / f"street_{index}.txt").write_text("0 0.25 0.5 0.5 0.5\n1 0.875 0.5 0.25 1.0\n")
    config = repo_config()
    config["run"] = ["custom"]
    config["scenes"]["custom"]["image_sets"]["clear"] = {
        "convert": "yolo",
        "path": str(images),
        "options": {"labels": str(labels), "test-fraction": 0.2},
    }
    config["scenes"]["custom"]["resources"] = {"default": {"cpus": 1}}
    config["tracking"] = {"enabled": False}
    prepare_workdir(tmp_path, config)

    target = "data/custom/annotations/clear_train.json"
    result = snakemake(tmp_path, "-c1", target, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:]
    converted = json.loads((tmp_path / target).read_text())
    names = {c["id"]: c["name"] for c in converted["categories"]}
    assert list(names.values()) == ["person", "car"]  # the scene's class order
    boxes = sorted((names[ann["category_id"]], ann["bbox"]) for ann in converted["annotations"])
    assert boxes == [("car", [0.0, 16.0, 48.0, 32.0])] * 4 + [("person", [72.0, 0.0, 24.0, 64.0])] * 4


def test_a_project_folder_inside_another_git_checkout_keeps_its_mlflow_store(tmp_path):
    # `snakemake --directory PROJECT`, PROJECT in the user's own repository: the store goes
    # beside PROJECT/results/, not to that repository's root (as for `lcp train` in a subfolder)
    (tmp_path / ".git").mkdir()
    project = tmp_path / "runs" / "fog"
    config = tiny_demo_config(project)
    config["tracking"] = {"enabled": True, "uri": ""}
    prepare_workdir(project, config)
    result = snakemake(project, "-c1", "data/demo", timeout=300)
    assert result.returncode == 0, result.stdout
    assert (project / "results" / "mlflow" / "mlflow.db").is_file()
    assert not (tmp_path / "results").exists()
