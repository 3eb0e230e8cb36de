"""`lcp data synth`: the physical models put on disk what they claim, reproducibly."""

import hashlib
import inspect
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from lcp.cli import main as lcp
from lcp.data.degradations import DEGRADATIONS
from lcp.data.degradations.fog import Fog
from lcp.data.degradations.rain import INTENSITIES, Rain, dominant_orientation, streak_layer
from lcp.data.degradations.underwater import Underwater
from lcp.data.depth import encode_depth_png, ground_plane_depth
from lcp.data.synth import image_rng
from lcp.errors import LCPError

SIZE = 64


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def synth(kind: str, src: Path, out: Path, *extra: str) -> int:
    return lcp(["data", "synth", kind, "--src", str(src), "--out", str(out), "--no-progress", "--workers", "1", *extra])


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "demo"
    assert lcp(["data", "demo", "--out", str(out), "--num-images", "6", "--size", str(SIZE), "--no-progress"]) == 0
    return out


def flat_images(folder: Path, colours: list[tuple[int, int, int]], size=(48, 32)) -> list[str]:
    """Uniform images (no texture), so the model's output can be predicted per pixel."""
    folder.mkdir()
    names = []
    for index, colour in enumerate(colours):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        image[:] = colour
        image[:6, :6] = 255  # a white patch: the dark channel's brightest pixels, so A = white
        names.append(f"flat{index}.png")
        cv2.imwrite(str(folder / names[-1]), image)
    return names


@pytest.mark.parametrize("kind", ["fog", "rain", "underwater"])
def test_same_seed_same_bytes_for_any_worker_count(scene, tmp_path, kind):
    src = scene / "clean"
    assert synth(kind, src, tmp_path / "one", "--seed", "3") == 0
    assert (
        lcp(
            [
                "data",
                "synth",
                kind,
                "--src",
                str(src),
                "--out",
                str(tmp_path / "two"),
                "--seed",
                "3",
                "--workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
    assert synth(kind, src, tmp_path / "again", "--seed", "3") == 0
    assert digest(tmp_path / "again") == digest(tmp_path / "one")
    if kind == "rain":  # the only model with randomness
        assert synth(kind, src, tmp_path / "other", "--seed", "4") == 0
        assert digest(tmp_path / "other") != digest(tmp_path / "one")


def test_the_atmospheric_light_breaks_ties_by_pixel_index_not_by_cpu():
    """Which tied pixels np.argpartition kept at the cut depended on numpy's CPU-specific code,
    so fog and rain files differed between cluster nodes with and without AVX-512."""
    from lcp.data.degradations.optics import brightest_pixels

    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, size=5000).astype(np.float32)  # hundreds of ties at every level
    for count in (1, 5, 137, 900):
        expected = np.sort(np.argsort(values, kind="stable")[-count:])
        assert np.array_equal(np.sort(brightest_pixels(values, count)), expected), count


def test_fog_follows_koschmieder_with_a_given_depth_map(tmp_path):
    flat_images(tmp_path / "clean", [(40, 90, 160)])
    (tmp_path / "depth").mkdir()
    depth = np.tile(np.linspace(10.0, 110.0, 48, dtype=np.float32), (32, 1))  # far to the right
    np.save(tmp_path / "depth" / "flat0.npy", depth)
    assert (
        synth(
            "fog",
            tmp_path / "clean",
            tmp_path / "fog",
            "--depth-dir",
            str(tmp_path / "depth"),
            "--beta",
            "0.01",
            "0.02",
            "--near",
            "1",
            "--far",
            "1000",
        )
        == 0
    )
    sidecar = json.loads((tmp_path / "fog" / "synthesis.json").read_text())
    assert sorted(sidecar["images"]) == ["flat0_foggy_beta_0.01.jpg", "flat0_foggy_beta_0.02.jpg"]
    assert sidecar["depth"]["source"] == "depth-maps" and sidecar["model"].startswith("I = J * t")
    light = np.array(sidecar["images"]["flat0_foggy_beta_0.02.jpg"]["atmospheric_light_rgb"][::-1])
    assert np.allclose(light, 1.0, atol=0.01)
    clean = np.array([40, 90, 160], np.float32) / 255
    for beta in (0.01, 0.02):
        foggy = cv2.imread(str(tmp_path / "fog" / f"flat0_foggy_beta_{beta}.jpg")).astype(np.float32) / 255
        t = np.exp(-beta * depth)[..., None]
        expected = clean * t + light * (1 - t)
        assert np.abs(foggy[8:] - expected[8:]).max() < 0.03


def test_two_depth_maps_of_one_image_are_refused(tmp_path, capsys):
    """flat0.npy and flat0.png in the depth folder: the png was used without a word."""
    flat_images(tmp_path / "clean", [(40, 90, 160)])
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "flat0.npy", np.full((32, 48), 30.0, np.float32))
    (tmp_path / "depth" / "flat0.png").write_bytes(encode_depth_png(np.full((32, 48), 300.0, np.float32)))
    assert synth("fog", tmp_path / "clean", tmp_path / "out", "--depth-dir", str(tmp_path / "depth")) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(f"{tmp_path / 'depth'}: flat0.npy and flat0.png both give flat0's depth; keep one")
    )
    assert not (tmp_path / "out").exists()


def test_a_depth_map_of_another_aspect_ratio_is_refused_and_a_scaled_one_used(tmp_path, capsys):
    flat_images(tmp_path / "clean", [(40, 90, 160)])  # 48x32
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "flat0.npy", np.full((16, 24), 30.0, np.float32))  # half the size
    assert synth("fog", tmp_path / "clean", tmp_path / "half", "--depth-dir", str(tmp_path / "depth")) == 0
    np.save(tmp_path / "depth" / "flat0.npy", np.full((48, 32), 30.0, np.float32))  # transposed
    assert synth("fog", tmp_path / "clean", tmp_path / "transposed", "--depth-dir", str(tmp_path / "depth")) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{tmp_path / 'depth' / 'flat0.npy'}: the depth map is 32x48, its image flat0.png 48x32: another aspect "
        "ratio (cropped or transposed?); give a map of the image's shape or a scaled copy of it"
    ), err
    assert not (tmp_path / "transposed").exists()


def test_cityscapes_disparity_gives_depth(tmp_path):
    flat_images(tmp_path / "clean", [(30, 60, 200)])
    (tmp_path / "clean" / "flat0.png").rename(tmp_path / "clean" / "aachen_000000_000019_leftImg8bit.png")
    (tmp_path / "disparity" / "aachen").mkdir(parents=True)
    (tmp_path / "camera" / "aachen").mkdir(parents=True)
    baseline, fx = 0.2, 2000.0
    true_depth = np.tile(np.linspace(20.0, 200.0, 48), (32, 1))
    raw = np.rint(baseline * fx / true_depth * 256 + 1).astype(np.uint16)
    raw[:, :4] = 0  # invalid: takes the nearest valid depth on the row
    cv2.imwrite(str(tmp_path / "disparity" / "aachen" / "aachen_000000_000019_disparity.png"), raw)
    (tmp_path / "camera" / "aachen" / "aachen_000000_000019_camera.json").write_text(
        json.dumps({"extrinsic": {"baseline": baseline}, "intrinsic": {"fx": fx, "fy": fx}})
    )
    assert (
        synth(
            "fog",
            tmp_path / "clean",
            tmp_path / "fog",
            "--disparity-dir",
            str(tmp_path / "disparity"),
            "--camera-dir",
            str(tmp_path / "camera"),
            "--beta",
            "0.01",
        )
        == 0
    )
    record = json.loads((tmp_path / "fog" / "synthesis.json").read_text())
    assert record["depth"]["source"] == "cityscapes-disparity"
    depth_used = true_depth.copy()
    depth_used[:, :4] = true_depth[:, 4:5]
    expected_t = np.exp(-0.01 * depth_used).mean()
    assert record["images"]["aachen_000000_000019_leftImg8bit_foggy_beta_0.01.jpg"][
        "mean_transmission"
    ] == pytest.approx(expected_t, abs=2e-3)


def test_ground_plane_fallback_is_near_at_the_bottom_and_far_above_the_horizon():
    depth = ground_plane_depth(100, 10, near=5.0, far=300.0, horizon=0.4)
    assert depth[-1, 0] == pytest.approx(5.0) and depth[0, 0] == 300.0
    assert np.all(np.diff(depth[:, 0]) <= 0)  # never nearer further up


def test_rain_streaks_fall_at_the_requested_angle_and_scale_with_intensity(scene, tmp_path):
    for angle in (-25.0, 0.0, 20.0):
        layer = streak_layer(256, 256, 0.004, 0.08, angle, np.random.default_rng(0))
        measured, coherence = dominant_orientation(layer)
        assert abs(measured - angle) < 4 and coherence > 0.5
        assert 0.02 < (layer > 0.05).mean() < 0.2
    assert (
        synth(
            "rain",
            scene / "clean",
            tmp_path / "rain",
            "--intensity",
            "light",
            "heavy",
            "--angle",
            "15",
            "--depth-dir",
            str(scene / "depth"),
        )
        == 0
    )
    sidecar = json.loads((tmp_path / "rain" / "synthesis.json").read_text())
    assert len(sidecar["images"]) == 12
    name = next(n for n in sidecar["images"] if "_density_0.12_" in n)
    assert name.startswith("demo_000001_rain_alpha_0.01_beta_0.015_dropsize_0.004_density_0.12_angle_15")
    coverage = {
        level: np.mean([r["streak_coverage"] for n, r in sidecar["images"].items() if f"_density_{d}_" in n])
        for level, d in (("light", 0.03), ("heavy", 0.12))
    }
    assert coverage["heavy"] > 2 * coverage["light"]
    assert all(abs(r["angle_deg"] - 15) <= 3 for r in sidecar["images"].values())


def test_underwater_red_fades_first(tmp_path):
    flat_images(tmp_path / "clean", [(128, 128, 128)])
    assert synth("underwater", tmp_path / "clean", tmp_path / "water", "--water", "I", "9C") == 0
    for water in ("I", "9C"):
        image = cv2.imread(str(tmp_path / "water" / f"flat0_underwater_type_{water}.jpg")).astype(np.float32)
        blue, green, red = image[8:].reshape(-1, 3).mean(axis=0)
        assert red < green and red < blue and red < 128  # grey turned blue-green
    clear = cv2.imread(str(tmp_path / "water" / "flat0_underwater_type_I.jpg")).astype(np.float32)
    murky = cv2.imread(str(tmp_path / "water" / "flat0_underwater_type_9C.jpg")).astype(np.float32)
    assert clear[8:, :, 0].mean() > murky[8:, :, 0].mean()  # murky coastal water swallows blue too


def test_annotations_follow_the_new_names(scene, tmp_path):
    ann = scene / "annotations" / "clean_train.json"
    assert (
        synth("fog", scene / "clean", tmp_path / "one", "--ann", str(ann), "--ann-out", str(tmp_path / "one.json")) == 0
    )
    source, single = json.loads(ann.read_text()), json.loads((tmp_path / "one.json").read_text())
    assert [i["id"] for i in single["images"]] == [i["id"] for i in source["images"]]
    assert [i["file_name"] for i in single["images"]] == [
        i["file_name"].replace(".jpg", "_foggy_beta_0.02.jpg") for i in source["images"]
    ]
    assert single["annotations"] == source["annotations"]
    # only the images the annotation file lists (the clean folder holds the test images too)
    assert sorted(p.name for p in (tmp_path / "one").glob("*.jpg")) == sorted(i["file_name"] for i in single["images"])
    assert len(list((scene / "clean").glob("*.jpg"))) > len(single["images"])

    assert (
        synth(
            "fog",
            scene / "clean",
            tmp_path / "two",
            "--beta",
            "0.01",
            "0.02",
            "--ann",
            str(ann),
            "--ann-out",
            str(tmp_path / "two.json"),
        )
        == 0
    )
    double = json.loads((tmp_path / "two.json").read_text())
    assert len(double["images"]) == 2 * len(source["images"])
    assert len(double["annotations"]) == 2 * len(source["annotations"])
    assert len({i["id"] for i in double["images"]}) == len(double["images"])
    assert {i["file_name"] for i in double["images"]} <= {p.name for p in (tmp_path / "two").iterdir()}


def test_bad_input_is_one_line_and_leaves_nothing(scene, tmp_path, capsys):
    assert synth("fog", tmp_path / "nowhere", tmp_path / "out") == 2
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path / 'nowhere'}: image folder does not exist")
    (tmp_path / "depth").mkdir()
    np.save(tmp_path / "depth" / "unrelated.npy", np.ones((4, 4), np.float32))
    assert synth("fog", scene / "clean", tmp_path / "out", "--depth-dir", str(tmp_path / "depth")) == 2
    assert "no depth map demo_000001" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert synth("fog", scene / "clean", tmp_path / "out") == 0
    assert synth("fog", scene / "clean", tmp_path / "out") == 2
    assert "already exists" in capsys.readouterr().err
    assert synth("fog", scene / "clean", tmp_path / "out", "--beta", "0") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["depth", "out"]


@pytest.mark.parametrize("near, far", [("50", "10"), ("0", "300"), ("nan", "300"), ("5", "5")])
def test_depth_limits_out_of_order_are_refused_naming_their_options(scene, tmp_path, capsys, near, far):
    """The message said "depth limits: need 0 < near < far", naming no option to change."""
    assert synth("fog", scene / "clean", tmp_path / "out", "--near", near, "--far", far) == 2
    assert capsys.readouterr().err.strip() == (
        f"lcp data: error: --near/--far: the depth limits need 0 < --near < --far (metres), "
        f"got --near {float(near):g} --far {float(far):g}"
    )
    assert not (tmp_path / "out").exists()


def test_annotations_that_cannot_follow_their_images_are_refused_before_any_work(scene, tmp_path, capsys):
    """Duplicate image ids used to give one image's boxes to another and orphan annotations
    vanished, both silently, as did the boxes of a category id written as text in training
    and evaluation; two inputs into one --ann-out kept only the last."""
    source = json.loads((scene / "annotations" / "clean_train.json").read_text())
    first, second = source["images"][:2]
    broken = {
        "the same id twice": (
            {**source, "images": [first, {**second, "id": first["id"]}]},
            f"image id {first['id']} is used by {first['file_name']!r} and {second['file_name']!r}",
        ),
        "an orphan": (
            {
                **source,
                "annotations": [*source["annotations"], {**source["annotations"][0], "id": 999, "image_id": 77}],
            },
            "annotation 999 refers to image id 77, which no image has",
        ),
        "a category id as text": (
            {
                **source,
                "annotations": [{**source["annotations"][0], "id": 998, "category_id": "1"}, *source["annotations"]],
            },
            "annotations[0] (id 998) has category_id '1', the id of no category (they are 1, 2, 3); "
            "write it as 1, as the category does; mmdet and COCOeval would leave its box out silently",
        ),
        "a file listed twice": (
            {**source, "images": [first, {**first, "id": 4242}]},
            f"the file {first['file_name']!r} is listed twice among the images",
        ),
    }
    for name, (coco, message) in broken.items():
        ann = tmp_path / f"{name}.json"
        ann.write_text(json.dumps(coco))
        assert (
            synth("fog", scene / "clean", tmp_path / "out", "--ann", str(ann), "--ann-out", str(tmp_path / "o.json"))
            == 2
        )
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"{ann}: {message}"), (name, err)

    train, test = (scene / "annotations" / f"clean_{split}.json" for split in ("train", "test"))
    out_json = str(tmp_path / "o.json")
    extra = ["--ann", str(train), "--ann-out", out_json, "--ann", str(test), "--ann-out", out_json, "--overwrite"]
    assert synth("fog", scene / "clean", tmp_path / "out", *extra) == 2
    assert (
        capsys.readouterr().err.strip().endswith(f"given as --ann-out for both {train} and {test}; give each its own")
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.json" for name in broken)


def write_coco_boxes(path: Path, file_name: str, size: tuple[int, int], boxes: list[list[float]]) -> None:
    path.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": file_name, "width": size[0], "height": size[1]}],
                "annotations": [
                    {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                    for i, b in enumerate(boxes)
                ],
                "categories": [{"id": 1, "name": "thing"}],
            }
        )
    )


def test_the_sidecar_records_each_box_visibility_and_the_depth_source(tmp_path):
    flat_images(tmp_path / "clean", [(40, 90, 160)])
    (tmp_path / "depth").mkdir()
    depth = np.tile(np.linspace(10.0, 110.0, 48, dtype=np.float32), (32, 1))  # far to the right
    np.save(tmp_path / "depth" / "flat0.npy", depth)
    near_box, far_box = [0, 8, 8, 8], [40, 8, 8, 8.5]
    write_coco_boxes(tmp_path / "ann.json", "flat0.png", (48, 32), [near_box, far_box])
    assert (
        synth(
            "fog",
            tmp_path / "clean",
            tmp_path / "fog",
            "--depth-dir",
            str(tmp_path / "depth"),
            "--beta",
            "0.03",
            "--near",
            "1",
            "--far",
            "1000",
            "--ann",
            str(tmp_path / "ann.json"),
            "--ann-out",
            str(tmp_path / "out.json"),
        )
        == 0
    )
    record = json.loads((tmp_path / "fog" / "synthesis.json").read_text())["images"]["flat0_foggy_beta_0.03.jpg"]
    assert record["depth"] == {"source": "depth-maps", "fallback": False, "file": "flat0.npy"}
    t = np.exp(-0.03 * depth)
    assert [b["bbox"] for b in record["boxes"]] == [near_box, far_box]
    assert record["boxes"][0]["visibility"] == pytest.approx(t[8:16, 0:8].mean(), abs=1e-4)
    assert record["boxes"][1]["visibility"] == pytest.approx(t[8:17, 40:48].mean(), abs=1e-4)  # partial row counts
    assert record["visibility"]["mean"] == pytest.approx(t.mean(), abs=1e-4)
    assert record["visibility"]["whitened_share"] == pytest.approx((t < 0.1).mean(), abs=1e-4)


@pytest.mark.parametrize("kind, options", [("rain", ["--intensity", "heavy"]), ("underwater", ["--water", "9C"])])
def test_rain_and_underwater_record_what_they_leave_visible(tmp_path, kind, options, capsys):
    # No depth: the fallback ground plane, which the sidecar and the command's output name.
    flat_images(tmp_path / "clean", [(40, 90, 160)], size=(64, 64))
    bottom, top = [8, 52, 12, 12], [8, 2, 12, 12]
    write_coco_boxes(tmp_path / "ann.json", "flat0.png", (64, 64), [bottom, top])
    assert (
        synth(
            kind,
            tmp_path / "clean",
            tmp_path / kind,
            *options,
            "--ann",
            str(tmp_path / "ann.json"),
            "--ann-out",
            str(tmp_path / "out.json"),
        )
        == 0
    )
    assert "1 images used the fallback depth" in capsys.readouterr().out
    (record,) = json.loads((tmp_path / kind / "synthesis.json").read_text())["images"].values()
    assert record["depth"] == {"source": "ground-plane", "fallback": True}
    near, far = (b["visibility"] for b in record["boxes"])
    assert 0 <= far < near <= 1  # the ground plane is nearest at the bottom


def test_each_degradation_is_built_from_plain_keyword_arguments(scene, tmp_path):
    """The library takes typed keywords, no argparse: every option synth offers is a keyword of
    its model's constructor, the models built from keywords alone synthesise and refuse as the
    command does, and the command builds the same model from its flags."""
    for model in DEGRADATIONS.values():
        assert [option.name for option in model.options] == list(inspect.signature(model).parameters)

    fog = Fog(beta=[0.01, 0.03])
    rain = Rain(intensity=["light", "heavy"], angle=5.0, drop_size=0.01)
    underwater = Underwater(water=["I", "9C"])
    assert fog.variants() == [{"beta": 0.01}, {"beta": 0.03}]
    assert rain.variants() == [
        {**INTENSITIES["light"], "dropsize": 0.01, "angle": 5.0},
        {**INTENSITIES["heavy"], "dropsize": 0.01, "angle": 5.0},
    ]
    assert underwater.variants() == [{"type": "I"}, {"type": "9C"}]
    clean = np.full((32, 48, 3), 0.5, np.float32)
    depth = np.full((32, 48), 20.0, np.float32)
    for degradation in (fog, rain, underwater):
        for variant in degradation.variants():
            image, visibility, _ = degradation.synthesise(clean, depth, variant, np.random.default_rng(0))
            assert image.shape == clean.shape and 0.0 < visibility.mean() < 1.0
    with pytest.raises(LCPError, match=r"^--drop-size: 0 is not a fraction of the image height in \(0, 0\.05\]$"):
        Rain(drop_size=0)
    with pytest.raises(LCPError, match=r"^--water: unknown type"):
        Underwater(water=["2C"])

    flags = ["--intensity", "heavy", "--angle", "12", "--alpha", "0.02", "--beta", "0.004", "--drop-size", "0.01"]
    assert synth("rain", scene / "clean", tmp_path / "rain", *flags, "--density", "0.05") == 0
    sidecar = json.loads((tmp_path / "rain" / "synthesis.json").read_text())
    keywords = Rain(intensity=["heavy"], angle=12, alpha=0.02, beta=0.004, drop_size=0.01, density=0.05)
    assert sidecar["config"] == keywords.config()
    assert sidecar["variants"] == [{"alpha": 0.02, "beta": 0.004, "dropsize": 0.01, "density": 0.05, "angle": 12.0}]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Rain(alpha=math.nan), "--alpha: nan is not a finite value >= 0"),
        (lambda: Rain(beta=math.inf), "--beta: inf is not a finite value >= 0"),
        (lambda: Rain(density=math.nan), "--density: nan is not the fraction of the image covered, in [0, 1]"),
        (lambda: Rain(density=50), "--density: 50 is not the fraction of the image covered, in [0, 1]"),
        (lambda: Rain(drop_size=5), "--drop-size: 5 is not a fraction of the image height in (0, 0.05]"),
        (lambda: Rain(drop_size=math.inf), "--drop-size: inf is not a fraction"),
        (lambda: Fog(beta=math.inf), "--beta: attenuation coefficients must be finite and > 0, got [inf]"),
        (lambda: Fog(beta=[0.01, math.nan]), "--beta: attenuation coefficients must be finite and > 0"),
    ],
    ids=["alpha-nan", "beta-inf", "density-nan", "density-50", "drop-size-5", "drop-size-inf", "fog-inf", "fog-nan"],
)
def test_degradation_parameters_outside_their_range_are_refused(make, message):
    """NaN passed `value < 0` and gave all-black images (and bare NaN in synthesis.json);
    a density above 1 whitened them; a drop size of 5 asked OpenCV for 2 GB; fog beta inf
    made every image one flat colour. Each exited 0 or with a traceback."""
    with pytest.raises(LCPError) as error:
        make()
    assert str(error.value).startswith(message)


def test_a_file_name_that_is_not_utf8_is_synthesised(tmp_path):
    """Linux names written in Latin-1 reach Python as surrogate escapes; hashing the name for
    the image's random stream raised UnicodeEncodeError as a traceback. Valid names keep
    their stream (the bytes hashed are the same)."""
    src = tmp_path / "src"
    flat_images(src, [(90, 120, 150)])
    odd = src / os.fsdecode(b"latin\xe9.png")
    (src / "flat0.png").rename(odd)
    assert synth("rain", src, tmp_path / "out", "--seed", "1") == 0
    assert len(list((tmp_path / "out").glob("latin*.jpg"))) == 1
    utf8_stream = np.random.default_rng([1, int.from_bytes(hashlib.sha256(b"flat0.png").digest()[:8], "little")])
    assert image_rng(1, "flat0.png").integers(1 << 30) == utf8_stream.integers(1 << 30)


def test_a_link_to_a_missing_image_is_named_not_skipped(scene, tmp_path, capsys):
    """A dangling link in a source folder was left out silently: the synthesised set, and the
    data check's count, one image short."""
    src = tmp_path / "src"
    src.mkdir()
    for image in sorted((scene / "clean").glob("*.jpg"))[:2]:
        (src / image.name).symlink_to(image)
    (src / "moved.jpg").symlink_to(tmp_path / "elsewhere" / "moved.jpg")
    assert synth("fog", src, tmp_path / "fog") == 2
    assert capsys.readouterr().err.strip() == f"lcp data: error: {src / 'moved.jpg'}: file not found"
    assert not (tmp_path / "fog").exists()


def test_an_annotated_image_of_another_size_than_recorded_is_refused(scene, tmp_path, capsys):
    """Its boxes were carried over to a synthesised image they do not fit (a photo EXIF-turned a
    quarter, an image resized after labelling), exit 0, and the check's box test passed them."""
    src = tmp_path / "src"
    src.mkdir()
    coco = json.loads((scene / "annotations" / "clean_train.json").read_text())
    for image in coco["images"]:
        (src / image["file_name"]).write_bytes((scene / "clean" / image["file_name"]).read_bytes())
    first = src / coco["images"][0]["file_name"]
    cv2.imwrite(str(first), cv2.resize(cv2.imread(str(first)), (SIZE // 2, SIZE // 2)))
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps(coco))
    assert synth("fog", src, tmp_path / "fog", "--ann", str(ann), "--ann-out", str(tmp_path / "fog.json")) == 2
    assert capsys.readouterr().err.strip() == (
        f"lcp data: error: {first}: {ann} records {SIZE}x{SIZE}, the image reads as {SIZE // 2}x{SIZE // 2} (EXIF "
        "orientation applied, as mmdet reads it), so its boxes would not fit the synthesised image; convert the set "
        "first (lcp data convert coco), which writes the images as they are read"
    )
    assert not (tmp_path / "fog").exists() and not (tmp_path / "fog.json").exists()


def save_npz_as_npy(path: Path) -> None:
    np.savez(path.with_suffix(".npz"), depth=np.full((32, 48), 30.0, np.float32))
    path.with_suffix(".npz").rename(path)


@pytest.mark.parametrize(
    "name, write, problem",
    [
        (
            "flat0.npy",
            lambda p: p.write_bytes(b"not numpy"),
            "not a readable .npy depth map (This file contains pickled",
        ),
        (
            "flat0.npy",
            lambda p: (np.save(p, np.full((32, 48), 30.0, np.float32)), p.write_bytes(p.read_bytes()[:200])),
            "not a readable .npy depth map (Failed to read all data",
        ),
        ("flat0.npy", save_npz_as_npy, "not a readable .npy depth map (a NpzFile, not one array)"),  # was a traceback
        ("flat0.npy", lambda p: np.save(p, np.full((32, 48, 1), 30.0)), "depth map must be 2-D, got shape (32, 48, 1)"),
        (
            "flat0.png",
            lambda p: cv2.imwrite(str(p), np.full((32, 48), 30, np.uint8)),
            "depth png must be single-channel 16-bit (metres * 256)",
        ),
        (
            "flat0.png",
            lambda p: cv2.imwrite(str(p), np.full((32, 48, 3), 7680, np.uint16)),
            "depth png must be single-channel 16-bit (metres * 256)",
        ),
    ],
    ids=["not-numpy", "truncated", "npz", "3-d", "8-bit-png", "3-channel-png"],
)
def test_a_depth_map_that_is_no_depth_map_is_one_line_and_leaves_nothing(tmp_path, capsys, name, write, problem):
    flat_images(tmp_path / "clean", [(40, 90, 160)])
    (tmp_path / "depth").mkdir()
    write(tmp_path / "depth" / name)
    assert synth("fog", tmp_path / "clean", tmp_path / "out", "--depth-dir", str(tmp_path / "depth")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lcp data: error: {tmp_path / 'depth' / name}: {problem}") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "depth"]


def test_an_empty_or_missing_depth_folder_is_refused(tmp_path, capsys):
    flat_images(tmp_path / "clean", [(40, 90, 160)])
    (tmp_path / "depth").mkdir()
    (tmp_path / "depth" / "notes.txt").write_text("depth maps to come\n")
    assert synth("fog", tmp_path / "clean", tmp_path / "out", "--depth-dir", str(tmp_path / "depth")) == 2
    assert capsys.readouterr().err.strip() == (
        f"lcp data: error: {tmp_path / 'depth'}: no .npy or .png depth maps in this folder"
    )
    assert synth("fog", tmp_path / "clean", tmp_path / "out", "--depth-dir", str(tmp_path / "none")) == 2
    assert capsys.readouterr().err.strip() == f"lcp data: error: {tmp_path / 'none'}: depth folder not found"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "depth"]


def write_cityscapes_depth(tmp_path: Path, camera: str, disparity_dtype=np.uint16) -> Path:
    flat_images(tmp_path / "clean", [(30, 60, 200)])
    (tmp_path / "clean" / "flat0.png").rename(tmp_path / "clean" / "aachen_000000_000019_leftImg8bit.png")
    (tmp_path / "disparity").mkdir()
    (tmp_path / "camera").mkdir()
    raw = np.full((32, 48), 0.2 * 2000.0 / 50.0 * 256 + 1).astype(disparity_dtype)  # 50 m
    cv2.imwrite(str(tmp_path / "disparity" / "aachen_000000_000019_disparity.png"), raw)
    path = tmp_path / "camera" / "aachen_000000_000019_camera.json"
    path.write_text(camera)
    return path


def synth_cityscapes(tmp_path: Path) -> int:
    folders = ["--disparity-dir", str(tmp_path / "disparity"), "--camera-dir", str(tmp_path / "camera")]
    return synth("fog", tmp_path / "clean", tmp_path / "fog", *folders, "--beta", "0.01")


@pytest.mark.parametrize(
    "camera, problem",
    [
        ("{not json", "not a Cityscapes camera json (JSONDecodeError("),
        ('{"extrinsic": {}, "intrinsic": {"fx": 2000}}', "not a Cityscapes camera json (KeyError('baseline'))"),
        ('{"extrinsic": {"baseline": "wide"}, "intrinsic": {"fx": 2000}}', "not a Cityscapes camera json (ValueError("),
        # each of these synthesised an image, exit 0: no fog at all, a transmission of 3, the far
        # limit everywhere, a 1 m baseline
        ('{"extrinsic": {"baseline": 0}, "intrinsic": {"fx": 2000}}', "extrinsic.baseline is 0; a Cityscapes camera"),
        ('{"extrinsic": {"baseline": -0.2}, "intrinsic": {"fx": 2000}}', "extrinsic.baseline is -0.2; a Cityscapes"),
        ('{"extrinsic": {"baseline": NaN}, "intrinsic": {"fx": 2000}}', "extrinsic.baseline is nan; a Cityscapes"),
        ('{"extrinsic": {"baseline": true}, "intrinsic": {"fx": 2000}}', "extrinsic.baseline is True; a Cityscapes"),
        ('{"extrinsic": {"baseline": 0.2}, "intrinsic": {"fx": 0}}', "intrinsic.fx is 0; a Cityscapes camera json"),
        # a traceback (OverflowError: int too large to convert to float)
        (
            '{"extrinsic": {"baseline": 1%s}, "intrinsic": {"fx": 2000}}' % ("0" * 400),
            "not a Cityscapes camera json (OverflowError('int too large to convert to float'))",
        ),
    ],
    ids=["not-json", "no-baseline", "text-baseline", "zero", "negative", "nan", "boolean", "zero-fx", "400-digits"],
)
def test_a_bad_camera_json_is_one_line_and_leaves_nothing(tmp_path, capsys, camera, problem):
    path = write_cityscapes_depth(tmp_path, camera)
    assert synth_cityscapes(tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lcp data: error: {path}: {problem}") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "fog").exists()


def test_an_8_bit_disparity_png_is_refused_not_read_as_far_away(tmp_path, capsys):
    write_cityscapes_depth(tmp_path, '{"extrinsic": {"baseline": 0.2}, "intrinsic": {"fx": 2000}}', np.uint8)
    assert synth_cityscapes(tmp_path) == 2
    disparity = tmp_path / "disparity" / "aachen_000000_000019_disparity.png"
    assert capsys.readouterr().err.strip() == (
        f"lcp data: error: {disparity}: not a single-channel 16-bit disparity png (256 * disparity + 1)"
    )
    assert not (tmp_path / "fog").exists()


@pytest.mark.parametrize("horizon", ["1", "-0.1", "nan"])
def test_a_horizon_outside_the_image_is_refused(scene, tmp_path, capsys, horizon):
    assert synth("fog", scene / "clean", tmp_path / "out", "--horizon", horizon) == 2
    assert capsys.readouterr().err.strip() == f"lcp data: error: --horizon: must be in [0, 1), got {float(horizon)}"
    assert list(tmp_path.iterdir()) == []


def test_the_horizon_and_quality_options_shape_the_output(tmp_path):
    flat_images(tmp_path / "clean", [(40, 90, 160)])
    beta, transmissions, sizes = 0.02, {}, {}
    for horizon, quality in (("0.2", "95"), ("0.7", "20")):
        out = tmp_path / horizon
        options = ["--horizon", horizon, "--quality", quality, "--beta", str(beta)]
        assert synth("fog", tmp_path / "clean", out, *options) == 0
        sidecar = json.loads((out / "synthesis.json").read_text())
        assert sidecar["depth"]["horizon"] == float(horizon) and sidecar["jpeg_quality"] == int(quality)
        [record] = sidecar["images"].values()
        expected = np.exp(-beta * ground_plane_depth(32, 48, 5.0, 300.0, float(horizon))).mean()
        assert record["mean_transmission"] == pytest.approx(expected, abs=1e-4)
        transmissions[horizon] = record["mean_transmission"]
        sizes[quality] = (out / "flat0_foggy_beta_0.02.jpg").stat().st_size
    assert transmissions["0.7"] < transmissions["0.2"]  # a horizon further down: more far sky above it
    assert sizes["20"] < sizes["95"]


def test_an_existing_ann_out_is_kept_without_overwrite(scene, tmp_path, capsys):
    ann_out = tmp_path / "fog_train.json"
    ann_out.write_text("mine\n")
    ann = ["--ann", str(scene / "annotations" / "clean_train.json"), "--ann-out", str(ann_out)]
    assert synth("fog", scene / "clean", tmp_path / "fog", *ann) == 2
    assert (
        capsys.readouterr().err.strip() == f"lcp data: error: {ann_out}: already exists; remove it or pass --overwrite"
    )
    assert ann_out.read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["fog_train.json"]
    assert synth("fog", scene / "clean", tmp_path / "fog", *ann, "--overwrite") == 0
    assert json.loads(ann_out.read_text())["images"][0]["file_name"].endswith("_foggy_beta_0.02.jpg")
