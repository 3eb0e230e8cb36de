"""ImageNet-initialised pretraining (issue 14.1): which configs start from torchvision's
ResNet-50, the real mmcv loading from torch's hub cache (a small checkpoint written into a
temporary TORCH_HOME), the one-line error of an offline machine, and `lcp weights fetch`.
Nothing here touches the network: downloads are file:// URLs."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import pytest
import torch

from lcp.apis.config import load_config, read_config
from lcp.cli import add_subcommands
from lcp.errors import LCPError
from lcp.models.pretrained import HubCheckpoint, fetch_checkpoint, hub_checkpoint, prepare_pretrained_init

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "config" / "mmdet"
IMAGENET = {"type": "Pretrained", "checkpoint": "torchvision://resnet50"}
# what mmcv 1.7.2 resolves torchvision://resnet50 to with the pinned torchvision
RESNET50_FILE = "resnet50-0676ba61.pth"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache: the folder torch.hub.load_state_dict_from_url reads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def weights(argv: list[str]) -> int:
    """`lcp weights ARGV...` as the lcp command parses and runs it."""
    parser = argparse.ArgumentParser(prog="lcp")
    add_subcommands(parser, {"weights": "lcp.commands.weights"}, dest="command", metavar="COMMAND")
    args = parser.parse_args(["weights", *argv])
    return args._main(args)


@pytest.mark.parametrize(
    "config,init",
    [
        ("cascade_rcnn_r50_city.py", IMAGENET),
        ("cascade_rcnn_r50_dfui.py", IMAGENET),
        ("lcp_r50_urpc.py", None),
        ("lcp_r50_foggy_city.py", None),
        ("lcp_r50_rainy_city.py", None),
        ("lcp_r50_custom_template.py", None),
        ("cascade_rcnn_tiny_demo.py", None),
        ("lcp_tiny_demo.py", None),
    ],
)
def test_only_the_r50_pretraining_configs_start_from_imagenet(config, init):
    assert read_config(CONFIGS / config, import_modules=False).model.backbone.init_cfg == init


def test_the_imagenet_weights_come_from_torchs_hub_cache(hub_cache):
    checkpoint = hub_checkpoint("torchvision://resnet50")
    assert checkpoint.url == f"https://download.pytorch.org/models/{RESNET50_FILE}"
    assert checkpoint.cache_path == hub_cache / RESNET50_FILE and checkpoint.hash_prefix == "0676ba61"
    assert hub_checkpoint("checkpoints/mine.pth") is None
    with pytest.raises(LCPError, match="^torchvision://resnet5: torchvision has no weights of that name"):
        hub_checkpoint("torchvision://resnet5")


def test_pretraining_loads_the_cached_weights_into_the_backbone(hub_cache):
    """mmcv's own Pretrained init reads the file from the cache: its tensors end up in the
    backbone of the R50 pretraining config (the rest of the ResNet keeps its own init). The
    backbone is built alone: the detector's init_weights calls the same code for it."""
    from mmdet.models import build_backbone

    generator = torch.Generator().manual_seed(0)
    imagenet = {
        "conv1.weight": torch.randn(64, 3, 7, 7, generator=generator),
        "layer4.2.conv3.weight": torch.randn(2048, 512, 1, 1, generator=generator),
        "bn1.running_mean": torch.randn(64, generator=generator),
        "fc.weight": torch.randn(1000, 2048, generator=generator),
    }  # the classifier: not in the backbone
    hub_cache.mkdir(parents=True)
    torch.save(imagenet, hub_cache / RESNET50_FILE)
    config = str(CONFIGS / "cascade_rcnn_r50_city.py")
    cfg = load_config(config)

    prepare_pretrained_init(cfg, config)
    backbone = build_backbone(cfg.model.backbone)
    backbone.init_weights()

    backbone = backbone.state_dict()
    for key in ("conv1.weight", "layer4.2.conv3.weight", "bn1.running_mean"):
        assert torch.equal(backbone[key], imagenet[key]), key
    assert not torch.equal(backbone["layer1.0.conv1.weight"], torch.zeros_like(backbone["layer1.0.conv1.weight"]))
    assert sorted(os.listdir(hub_cache)) == [RESNET50_FILE]  # read, nothing else fetched


def test_an_offline_machine_gets_one_line_naming_the_file_and_nothing_is_downloaded(hub_cache):
    config = str(CONFIGS / "cascade_rcnn_r50_dfui.py")
    cfg = load_config(config)
    with pytest.raises(LCPError) as caught:
        prepare_pretrained_init(cfg, config)
    assert str(caught.value) == (
        f"{config}: model.backbone.init_cfg starts from the pretrained weights torchvision://resnet50, and "
        f"{hub_cache / RESNET50_FILE} is not there (training downloads nothing): run `lcp weights fetch "
        "torchvision://resnet50` on a machine with internet and the same TORCH_HOME, or download "
        f"https://download.pytorch.org/models/{RESNET50_FILE} and put it there; "
        "--cfg-options model.backbone.init_cfg=None trains from scratch"
    )
    assert not hub_cache.parent.parent.exists()


@pytest.mark.parametrize(
    ("option", "name", "file_name"),
    [
        ("+model.backbone.pretrained", "torchvision://resnet50", RESNET50_FILE),
        ("+model.pretrained", "torchvision://resnet50", RESNET50_FILE),
        ("model.backbone.init_cfg.checkpoint", "open-mmlab://resnext101_64x4d", "resnext101_64x4d-ee2c6f71.pth"),
    ],
)
def test_the_older_spellings_of_pretrained_weights_are_checked_too(hub_cache, option, name, file_name):
    """`pretrained=` and open-mmlab:// passed the pre-flight and then failed in a download."""
    config = str(CONFIGS / "cascade_rcnn_tiny_demo.py")
    cfg = load_config(config, {option: name} if option.startswith("+") else {})
    if not option.startswith("+"):
        cfg.model.backbone.init_cfg = {"type": "Pretrained", "checkpoint": name}
    with pytest.raises(
        LCPError, match=rf"starts from the pretrained weights {name}, and {hub_cache / file_name} is not"
    ):
        prepare_pretrained_init(cfg, config)
    cfg.load_from = "a checkpoint"  # a run from a checkpoint drops them all
    prepare_pretrained_init(cfg, config)
    assert cfg.model.get("pretrained") is None and cfg.model.backbone.get("pretrained") is None


def test_training_from_scratch_needs_no_weights(hub_cache):
    config = str(CONFIGS / "cascade_rcnn_r50_city.py")
    cfg = load_config(config, {"model.backbone.init_cfg": None})
    prepare_pretrained_init(cfg, config)
    assert cfg.model.backbone.init_cfg is None


@pytest.mark.parametrize("start", ["load_from", "resume_from"])
def test_a_run_from_a_checkpoint_needs_no_imagenet_weights(hub_cache, tmp_path, start):
    """The baseline fine-tunes the pretraining config from the pretrained detector: the
    checkpoint replaces the ImageNet weights, so they are not loaded, nor needed."""
    config = str(CONFIGS / "cascade_rcnn_r50_city.py")
    cfg = load_config(config)
    cfg[start] = str(tmp_path / "pretrain.pth")
    prepare_pretrained_init(cfg, config)
    assert cfg.model.backbone.init_cfg is None


def test_a_missing_local_checkpoint_is_named(hub_cache, tmp_path):
    config = str(CONFIGS / "cascade_rcnn_r50_city.py")
    missing = tmp_path / "resnet50.pth"
    cfg = load_config(config, {"model.backbone.init_cfg.checkpoint": str(missing)})
    with pytest.raises(LCPError, match=f"^{config}: model.backbone.init_cfg.checkpoint {missing} does not exist"):
        prepare_pretrained_init(cfg, config)


def small_checkpoint(folder: Path, stem: str) -> tuple[Path, bytes]:
    """A small checkpoint file named as torch.hub names them, STEM-<sha256 prefix>.pth."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "scratch.pth"
    torch.save({"conv1.weight": torch.ones(2, 3, 1, 1)}, scratch)
    data = scratch.read_bytes()
    path = folder / f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    scratch.rename(path)
    return path, data


def test_fetch_downloads_into_the_cache_with_the_users_umask(hub_cache, tmp_path):
    source, data = small_checkpoint(tmp_path / "mirror", "tiny")
    checkpoint = HubCheckpoint(source.as_uri(), source.as_uri())
    old = os.umask(0o027)
    try:
        path, written = fetch_checkpoint(checkpoint)
    finally:
        os.umask(old)
    assert written and path == hub_cache / source.name and path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(hub_cache)) == [source.name]  # no temporary left
    assert fetch_checkpoint(checkpoint) == (path, False)


def test_fetch_from_a_file_is_checked_against_the_hash_in_its_name(hub_cache, tmp_path, capsys):
    wrong, _ = small_checkpoint(tmp_path / "downloads", "resnet50")
    with pytest.raises(LCPError) as caught:
        weights(["fetch", "--from", str(wrong)])
    assert str(caught.value).startswith(f"{wrong}: not {RESNET50_FILE} (its SHA-256 starts ")
    assert str(caught.value).endswith(f"the name says 0676ba61); nothing was written to {hub_cache / RESNET50_FILE}")
    assert not os.listdir(hub_cache)  # no temporary left either


def test_fetch_from_a_mirror_is_checked_too(hub_cache, tmp_path):
    wrong, _ = small_checkpoint(tmp_path / "mirror", "resnet50")
    with pytest.raises(LCPError, match=f"^{wrong.as_uri()}: not {RESNET50_FILE} "):
        weights(["fetch", "resnet50", "--url", wrong.as_uri()])
    missing = (tmp_path / "mirror" / "absent.pth").as_uri()
    with pytest.raises(LCPError, match=f"^{missing}: download failed .*pass --from FILE$"):
        weights(["fetch", "--url", missing])
    assert not os.listdir(hub_cache)


def test_fetch_of_a_name_without_a_hash_still_needs_a_checkpoint(hub_cache, tmp_path):
    """With no hash in the URL's name any file went into the cache, and training failed later."""
    bogus = tmp_path / "bogus.pth"
    bogus.write_text("hi\n")
    url = "https://example.com/w/foo.pth"
    with pytest.raises(LCPError, match=f"^{bogus}: not a PyTorch checkpoint .*nothing was written to "):
        weights(["fetch", url, "--from", str(bogus)])
    assert not hub_cache.exists() or not os.listdir(hub_cache)
    good, data = small_checkpoint(tmp_path / "downloads", "foo")
    assert weights(["fetch", url, "--from", str(good)]) == 0
    assert (hub_cache / "foo.pth").read_bytes() == data


def test_fetch_keeps_what_the_cache_holds(hub_cache, capsys):
    hub_cache.mkdir(parents=True)
    (hub_cache / RESNET50_FILE).write_bytes(b"cached")
    assert weights(["fetch"]) == 0
    assert capsys.readouterr().out == (
        f"torchvision://resnet50: {hub_cache / RESNET50_FILE} already there (--overwrite replaces it)\n"
    )
    assert (hub_cache / RESNET50_FILE).read_bytes() == b"cached"
    with pytest.raises(LCPError, match="^--url and --from take one NAME, not 2$"):
        weights(["fetch", "resnet50", "resnet101", "--from", "x.pth"])


@pytest.mark.parametrize("name", ["s3://bucket/resnet50.pth", "mmcls://resnet50"])
def test_fetch_names_weights_that_are_not_the_hub_caches(hub_cache, name):
    with pytest.raises(LCPError, match=f"^{name}: not weights from torch's hub cache; give torchvision://NAME or an"):
        weights(["fetch", name])
    assert not hub_cache.exists()


def test_lcp_train_checks_the_cache_before_it_builds_anything(hub_cache, workspace, tmp_path, capsys):
    from lcp.cli import main as lcp

    data = workspace / "demo"
    work_dir = tmp_path / "work"
    status = lcp(
        [
            "train",
            str(CONFIGS / "cascade_rcnn_r50_dfui.py"),
            "--work-dir",
            str(work_dir),
            "--cfg-options",
            f"data_root={data}/",
            "train_img_dir=clean/",
            "train_ann=annotations/clean_train.json",
            "test_img_dir=clean/",
            "test_ann=annotations/clean_test.json",
            "classes=[circle,square,triangle]",
            "num_classes=3",
        ]
    )
    assert status == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(hub_cache / RESNET50_FILE) in error[0] and "lcp weights fetch" in error[0]
    assert not list(work_dir.glob("*.pth")) and not hub_cache.parent.parent.exists()
