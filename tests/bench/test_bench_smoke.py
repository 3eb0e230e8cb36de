"""The bench/ scripts run end to end on the CPU at their --tiny size (no timing is checked)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_model_bench_measures_both_detectors_and_profiles_a_crux_step(tmp_path, capsys):
    bench = load_bench("bench_lcp_model")
    variants = ["plain train", "LCP train catch-up", "LCP train crux, always batch", "plain test", "LCP test, ch-last"]
    assert (
        bench.main(
            [
                "--tiny",
                "--warmup",
                "0",
                "--variants",
                *variants,
                "--profile-dir",
                str(tmp_path / "prof"),
                "--profile-print",
                "0",
                "--json",
                str(tmp_path / "speed.json"),
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "speed.json").read_text())["results"]
    assert [(r["variant"], r["precision"]) for r in results] == [(v, "fp32") for v in variants]
    assert all(r["images_per_s"] > 0 and r["peak_mem_gib"] is None for r in results)
    assert {r["variant"]: r["graphs"] for r in results} == dict.fromkeys(variants, 0) | {
        "plain train": None,
        "plain test": None,
    }
    ratios = {r["variant"]: (r["vs_plain_fp32"], r["vs_plain_same"]) for r in results}
    assert ratios["plain train"] == (1.0, 1.0) and ratios["LCP test, ch-last"][0] > 0
    syncs = {r["variant"]: r["syncs_per_step"] for r in results}
    assert syncs.pop("LCP train catch-up") == 0  # KL loss only, logged with one transfer the probe does not see
    assert all(count > 0 for count in syncs.values())  # NMS at least, in every detection step
    table = capsys.readouterr().out
    assert "vs plain fp32" in table and "syncs/step" in table and "LCP train crux, always batch" in table
    profile = (tmp_path / "prof" / "profile_lcp_crux_fp32.txt").read_text()
    assert "LCP train crux, fp32" in profile and "aten::convolution" in profile
    assert (tmp_path / "prof" / "profile_plain_fp32.txt").is_file()
    assert bench.main(["--table", str(tmp_path / "speed.json")]) == 0  # what bench/gpu/run.sh prints after a cut
    rows = [line.split()[0:3] for line in capsys.readouterr().out.splitlines()[2:]]
    assert [" ".join(row[:2]) for row in rows[:2]] == ["plain train", "LCP train"] and len(rows) == len(variants)


@pytest.mark.slow
def test_demo_seeds_bench_trains_and_compares_both_methods_and_the_oracle_runs_on_its_detector(tmp_path, capsys):
    bench = load_bench("bench_demo_seeds")
    argv = ["--tiny", "--seeds", "3", "--work", str(tmp_path / "work"), "--json", str(tmp_path / "ap.json")]
    assert bench.main(argv) == 0
    rows = json.loads((tmp_path / "ap.json").read_text())["rows"]
    assert [row["seed"] for row in rows] == [3] and {"baseline", "lcp", "crux_health"} <= set(rows[0])
    assert "paired LCP-baseline" in capsys.readouterr().out
    # an LCP variant beside it shares the pretrained detector and the baseline
    variant = ["--lcp-name", "as_pretrained", "--lcp-option", "model.start_as_pretrained=True"]
    assert bench.main(argv + variant) == 0
    assert "  seed 3: baseline" in capsys.readouterr().out
    assert sorted(path.name for path in (tmp_path / "work").iterdir() if path.is_dir()) == [
        "baseline",
        "demo",
        "lcp",
        "lcp_as_pretrained",
        "pretrain",
    ]
    assert (tmp_path / "work" / "demo" / "annotations" / "lowq_test.json").is_file()  # the workflow's data layout

    # bench/injection_oracle.py on the pretrained detector just made
    oracle = load_bench("injection_oracle")
    work = tmp_path / "work"
    options = [f"data_root={work}/", "test_img_dir=demo/lowq/", "test_ann=demo/annotations/lowq_test.json"]
    config = str(BENCH.parent / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")
    argv = [config, str(work / "pretrain" / "latest.pth"), "--json", str(tmp_path / "oracle.json")]
    assert oracle.main(argv + [arg for option in options for arg in ("--option", option)]) == 0
    measured = json.loads((tmp_path / "oracle.json").read_text())
    assert list(measured) == list(oracle.VARIANTS)
    scores = [measured[variant]["score_sum"] for variant in oracle.VARIANTS]
    assert len(set(scores)) == len(scores)  # every replacement changed the detections
    assert "constant" in capsys.readouterr().out
    # a test set that was not synthesised has no clean originals to take: one line, exit status 2
    clean_set = [f"data_root={work}/", "test_img_dir=demo/clean/", "test_ann=demo/annotations/clean_test.json"]
    assert oracle.main(argv[:2] + [arg for option in clean_set for arg in ("--option", option)]) == 2
    assert "synthesis.json: needs the synthesis record" in capsys.readouterr().out

    # bench/crux_clean_content.py: one crux-mode epoch from that detector, the branch fed clean content
    from lcp.models.detector import LCPDetector

    clean_content = load_bench("crux_clean_content")
    original = LCPDetector.extract_feat
    data = [f"data_root={work}/", "train_img_dir=demo/lowq/", "train_ann=demo/annotations/lowq_train.json"]
    data += ["df_img_dir=demo/clean/", "df_ann=demo/annotations/clean_train.json", "data.workers_per_gpu=0"]
    data += ["runner.max_epochs=1", "lr_config.step=[1]"]
    data += ["mode_plan.num_epoch=[1]", "mode_plan.modes=[crux_learner]"]
    run = ["train", str(BENCH.parent / "config" / "mmdet" / "lcp_tiny_demo.py"), "--no-validate"]
    run += ["--work-dir", str(tmp_path / "clean"), "--load-from", str(work / "pretrain" / "latest.pth")]
    assert clean_content.main([*run, "--cfg-options", *data]) == 2  # refused: img_df not the clean original
    assert clean_content.main([*run, "--cfg-options", *data, "data.train.pairing=source"]) == 0
    assert LCPDetector.extract_feat is original  # the patch ends with the run
    (log,) = (tmp_path / "clean").glob("*.log")
    assert "CruxHealthHook: epoch 1: crux learner mask_mean " in log.read_text()

    # the oracle on that LCP checkpoint: its crux branch replaced at the fusion's input, and the
    # fusion bypassed with the raw image's layer2 with and without the catch-up residual
    lcp_config = str(BENCH.parent / "config" / "mmdet" / "lcp_tiny_demo.py")
    argv = [lcp_config, str(tmp_path / "clean" / "latest.pth"), "--json", str(tmp_path / "oracle_lcp.json")]
    assert oracle.main(argv + [arg for option in options for arg in ("--option", option)]) == 0
    measured = json.loads((tmp_path / "oracle_lcp.json").read_text())
    assert list(measured) == list(oracle.VARIANTS + oracle.LCP_VARIANTS)
    assert measured["bypass: layer2"]["score_sum"] != measured["bypass: catch-up"]["score_sum"]
    # the branch variants change only the branch: each differs from the detector as it is
    branch = [measured[f"branch {kind}"]["score_sum"] for kind in ("zero", "constant", "unmasked")]
    assert all(score != measured["degraded"]["score_sum"] for score in branch), (branch, measured["degraded"])

    # bench/half_fog.py: the scene fogged on one half of each image, an LCP start, its masks per half
    import numpy as np
    from PIL import Image

    half_fog = load_bench("half_fog")
    half = tmp_path / "half"
    assert half_fog.main(["data", str(work / "demo"), str(half)]) == 0
    halves = json.loads((half / "halves.json").read_text())
    with pytest.raises(SystemExit, match="expected a folder of `lcp data demo`"):  # no depth maps there
        half_fog.main(["data", str(work / "demo" / "clean"), str(tmp_path / "not-made")])
    assert not (tmp_path / "not-made").exists()
    assert len(halves) == 12 and set(halves.values()) == {"left", "right"}
    for stem, fogged_side in halves.items():
        (lowq,) = (half / "lowq").glob(f"{stem}_foggy_*.jpg")
        (clean,) = (half / "clean").glob(f"{stem}.*")
        difference = np.abs(np.asarray(Image.open(lowq), float) - np.asarray(Image.open(clean), float)).mean(2)
        fogged = half_fog.half_mask(difference.shape, fogged_side)
        assert difference[fogged].mean() > 5 > 1 > difference[~fogged].mean(), stem
    start = tmp_path / "start.pth"
    pretrained = str(work / "pretrain" / "latest.pth")
    assert half_fog.main(["start", lcp_config, pretrained, str(start), "--mask-start", "0.9"]) == 0
    written = start.read_bytes()
    with pytest.raises(SystemExit, match="already exists; remove it or pass --overwrite"):
        half_fog.main(["start", lcp_config, pretrained, str(start), "--mask-start", "0.5"])
    assert start.read_bytes() == written
    with pytest.raises(SystemExit, match="already exists; remove it or pass --overwrite"):
        half_fog.main(["data", str(work / "demo"), str(half)])
    capsys.readouterr()
    assert half_fog.main(["masks", lcp_config, str(start), str(half)]) == 0
    levels = re.search(r"fogged half ([\d.]+), on the clear half ([\d.]+)", capsys.readouterr().out).groups()
    assert all(0.75 < float(level) < 0.97 for level in levels)  # the start's mask, on both halves
    gradient = load_bench("crux_gradient")
    argv = [str(start), "--data-root", f"{half}/", "--halves", str(half / "halves.json"), "--batches", "2"]
    assert gradient.main(argv) == 0
    assert "dL/dm fogged half" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not a halves.json"):
        half_fog.main(["masks", lcp_config, str(start), str(work / "demo")])  # a scene without halves.json
    # LCP trained from that start beside the baseline already trained: its own folder
    argv = ["--tiny", "--seeds", "3", "--work", str(work), "--lcp-start", str(start)]
    assert bench.main(argv) == 0
    assert (work / "lcp_start" / "seed3" / "latest.pth").is_file()
    assert "trained baseline" not in capsys.readouterr().out
    # a folder trained with other settings is refused, not reused
    with pytest.raises(SystemExit, match="trained with other settings"):
        bench.main(["--tiny", "--seeds", "3", "--work", str(work), "--lcp-option", "model.start_as_pretrained=False"])


def test_model_bench_leaves_rows_that_differ_only_on_a_gpu_out_on_the_cpu():
    bench = load_bench("bench_lcp_model")
    on_cpu = {v.name for v in bench.selected_variants(None, "cpu")}
    on_gpu = {v.name for v in bench.selected_variants(None, "cuda")}
    assert on_gpu - on_cpu == {"LCP train crux, no graphs", "LCP test, no graphs"}
    assert {"LCP train crux, stock mmdet", "LCP test, stock mmdet", "plain train"} <= on_cpu
    assert [v.name for v in bench.selected_variants(["LCP test, no graphs"], "cpu")] == ["LCP test, no graphs"]


def test_model_bench_refuses_fp16_on_the_cpu(capsys):
    with pytest.raises(SystemExit):
        load_bench("bench_lcp_model").main(["--tiny", "--precisions", "fp16"])
    assert "fp16: mmdet's mixed precision runs under CUDA autocast; on the CPU use fp32" in capsys.readouterr().err


def test_data_pipeline_bench_loads_paired_batches_with_each_worker_count(capsys):
    assert load_bench("bench_data_pipeline").main(["--tiny", "--workers", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "LoadImageFromFile -> LoadDFImage" in out and "DFFormatBundle" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 3]
    assert [int(row[0]) for row in rows] == [0, 1]
    assert all(float(row[1]) > 0 for row in rows) and rows[0][2] == "1.00"


def test_coco_eval_bench_times_every_phase(capsys):
    assert load_bench("bench_coco_eval").main(["--tiny"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("50 images,")
    phases = next(line for line in out.splitlines() if line.startswith("pycocotools"))
    assert all(phase in phases for phase in ("load", "evaluate", "accumulate", "summarize", "total"))
    ap = float(out.split("AP ")[1].split()[0])
    assert 0 < ap < 100  # jittered ground truth: some detections match, not all


def test_the_model_bench_counts_one_sync_per_wait():
    """mmcv's NMSop calls masked_select, which calls _local_scalar_dense: one NMS was counted
    as three syncs, which inflated the stock rows' counts."""
    import torch
    from mmcv.ops import nms
    from torch.profiler import profile

    bench = load_bench("bench_lcp_model")
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    with profile() as prof:
        nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        torch.ones(3).nonzero()
    assert bench.syncs_per_step(prof, 1) == 2


def test_look_alikes_scene_hides_cool_shapes_among_warm_objects_and_its_gate_tells_them_apart(tmp_path, capsys):
    """bench/look_alikes.py: annotated objects are warm, the unannotated look-alikes cool, and the
    hand-set crux learner opens on warm pixels and shuts on cool ones (the open start everywhere)."""
    import numpy as np
    import torch
    from PIL import Image

    from lcp.models.crux_learner import CruxLearner

    look_alikes = load_bench("look_alikes")
    scene = tmp_path / "demo"
    assert look_alikes.main(["data", str(scene), "--num-images", "6", "--seed", "4"]) == 0
    coco = json.loads((scene / "annotations" / "clean_train.json").read_text())
    coco_test = json.loads((scene / "annotations" / "clean_test.json").read_text())
    images = {image["id"]: image["file_name"] for image in coco["images"] + coco_test["images"]}
    cool_outside_boxes = 0
    for image_id, name in images.items():
        rgb = np.asarray(Image.open(scene / "clean" / name), float)
        inside = np.zeros(rgb.shape[:2], bool)
        for annotation in coco["annotations"] + coco_test["annotations"]:
            if annotation["image_id"] == image_id:
                x, y, w, h = (int(round(v)) for v in annotation["bbox"])
                box = rgb[y + h // 2 - 1 : y + h // 2 + 2, x + w // 2 - 1 : x + w // 2 + 2].reshape(-1, 3).mean(0)
                assert box[0] > box[2], (name, annotation["bbox"])  # warm at the object's centre
                inside[y : y + h, x : x + w] = True
        cool = (rgb[..., 2] > 180) & (rgb[..., 0] < 80)
        cool_outside_boxes += int((cool & ~inside).sum() > 20)
    assert cool_outside_boxes == len(images)  # every image holds a look-alike
    with pytest.raises(SystemExit, match="already exists; remove it or pass --overwrite"):
        look_alikes.main(["data", str(scene)])

    pretrained = tmp_path / "pretrained.pth"
    for bad, said in ((tmp_path / "missing.pth", "file not found"), (scene / "demo.json", "not a PyTorch checkpoint")):
        with pytest.raises(SystemExit, match=said):
            look_alikes.main(["start", str(bad), str(tmp_path / "never.pth")])
    torch.save({"meta": {}}, pretrained)
    with pytest.raises(SystemExit, match="not an mmdet checkpoint"):
        look_alikes.main(["start", str(pretrained), str(tmp_path / "never.pth")])
    assert not (tmp_path / "never.pth").exists()
    torch.save({"state_dict": {}, "meta": {}}, pretrained)
    for extra, warm_level, cool_level in (([], 0.99, 0.01), (["--open"], 0.99, 0.99)):
        out = tmp_path / f"start{len(extra)}.pth"
        assert look_alikes.main(["start", str(pretrained), str(out), *extra]) == 0
        learner = CruxLearner()
        state = torch.load(out, weights_only=False)["state_dict"]
        learner.load_state_dict({k.removeprefix("crux_learner."): v for k, v in state.items()})
        # normalised RGB of a warm (230, 120, 30) and a cool (30, 120, 230) pixel
        mean, std = torch.tensor([123.675, 116.28, 103.53]), torch.tensor([58.395, 57.12, 57.375])
        pixels = (torch.tensor([[230.0, 120, 30], [30, 120, 230]]) - mean) / std
        img = pixels[:, :, None, None].expand(2, 3, 8, 8).contiguous()
        mask = learner.mask(img)
        warm, cool = float(mask[0].mean()), float(mask[1].mean())
        assert warm > warm_level and (cool < cool_level if cool_level < 0.5 else cool > cool_level), (extra, warm, cool)
        with pytest.raises(SystemExit, match="already exists; remove it or pass --overwrite"):
            look_alikes.main(["start", str(pretrained), str(out), *extra])
