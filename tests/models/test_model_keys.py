"""State-dict layout of LCPDetector R50 against mmdet's own CascadeRCNN R50-FPN, and checkpoint loading."""

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from helpers.model_configs import build, mmdet_cascade_r50_cfg, tiny_lcp_cfg, to_lcp
from lcp.errors import LCPError
from lcp.models.checkpoint import load_lcp_checkpoint

MANIFEST = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "lcp_r50_added_keys.json").read_text())[
    "keys"
]


@pytest.fixture(scope="module")
def r50_models():
    torch.manual_seed(0)
    cascade_cfg = mmdet_cascade_r50_cfg()
    return build(cascade_cfg), build(to_lcp(cascade_cfg))


def test_r50_adds_exactly_the_manifest_keys_and_shapes(r50_models):
    cascade, lcp_model = r50_models
    cascade_state, lcp_state = cascade.state_dict(), lcp_model.state_dict()
    added = {key: list(value.shape) for key, value in lcp_state.items() if key not in cascade_state}
    assert added == MANIFEST
    for key, value in cascade_state.items():
        assert key in lcp_state, key
        assert lcp_state[key].shape == value.shape, key


def test_cascade_plus_manifest_keys_load_strictly(r50_models):
    cascade, lcp_model = r50_models
    generator = torch.Generator().manual_seed(1)
    state = dict(cascade.state_dict())
    for key, shape in MANIFEST.items():
        state[key] = torch.randn(shape, generator=generator)
    result = load_lcp_checkpoint(lcp_model, {"meta": {}, "state_dict": state}, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    loaded = lcp_model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_plain_cascade_checkpoint_reports_the_lcp_keys_missing(r50_models):
    cascade, lcp_model = r50_models
    result = load_lcp_checkpoint(lcp_model, cascade.state_dict(), strict=False)
    assert sorted(result.missing_keys) == sorted(MANIFEST)
    assert result.unexpected_keys == []
    with pytest.raises(
        LCPError, match=r"does not match the model exactly: missing backbone\.catch_up_learner.*\(26 in all\)"
    ):
        load_lcp_checkpoint(lcp_model, cascade.state_dict(), strict=True)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build(tiny_lcp_cfg())


def test_checkpoint_file_from_data_parallel_loads(tiny_model, tmp_path):
    torch.manual_seed(2)
    source = build(tiny_lcp_cfg())
    path = tmp_path / "epoch_1.pth"
    torch.save(
        {
            "meta": {"epoch": 1, "CLASSES": ("a", "b")},
            "state_dict": {"module." + key: value for key, value in source.state_dict().items()},
        },
        path,
    )
    result = load_lcp_checkpoint(tiny_model, path, strict=True)
    assert result == ([], [])
    for key, value in source.state_dict().items():
        assert torch.equal(tiny_model.state_dict()[key], value), key


def test_checkpoint_of_other_shapes_is_refused_naming_the_file(tiny_model, tmp_path):
    wider = build(tiny_lcp_cfg(base_channels=16))
    path = tmp_path / "wider.pth"
    torch.save({"state_dict": wider.state_dict()}, path)
    before = {key: value.clone() for key, value in tiny_model.state_dict().items()}
    with pytest.raises(
        LCPError, match=rf"^{re.escape(str(path))}: \d+ entries have another shape.*another architecture"
    ):
        load_lcp_checkpoint(tiny_model, path)
    assert all(torch.equal(before[key], value) for key, value in tiny_model.state_dict().items())


def test_a_checkpoint_of_other_classes_fine_tunes_its_class_layers_anew_or_is_refused_strictly(tmp_path):
    torch.manual_seed(3)
    five = build(tiny_lcp_cfg(num_classes=5)).state_dict()
    torch.manual_seed(4)
    model = build(tiny_lcp_cfg())
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(LCPError, match=r"^<state dict>: trained for 5 classes, the model has 2 \(roi_head.bbox_head"):
        load_lcp_checkpoint(model, five, strict=True)
    missing, unexpected = load_lcp_checkpoint(model, five)
    class_layers = [f"roi_head.bbox_head.{stage}.fc_cls.{p}" for stage in range(3) for p in ("weight", "bias")]
    assert sorted(missing) == sorted(class_layers) and unexpected == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key] if key in class_layers else five[key]), key


def test_a_checkpoint_lacking_part_of_the_detector_is_refused(tiny_model, tmp_path):
    """A Faster R-CNN-like file (the cascade's later heads absent) loaded without a word
    beyond an INFO line, and those heads trained from random values. Only LCP's own modules
    (and BatchNorm counters) may be missing."""
    state = {k: v for k, v in tiny_model.state_dict().items() if not k.startswith("roi_head.bbox_head.2.")}
    path = tmp_path / "faster_like.pth"
    torch.save({"state_dict": state}, path)
    before = {key: value.clone() for key, value in tiny_model.state_dict().items()}
    with pytest.raises(LCPError, match=rf"^{re.escape(str(path))}: lacks \d+ entries of LCPDetector besides LCP's own"):
        load_lcp_checkpoint(tiny_model, path)
    assert all(torch.equal(before[key], value) for key, value in tiny_model.state_dict().items())
    lcp_only = ("crux_learner.", "backbone.catch_up_")
    plain = {k: v for k, v in before.items() if not k.startswith(lcp_only) and not k.endswith("num_batches_tracked")}
    missing = load_lcp_checkpoint(tiny_model, {"state_dict": plain}).missing_keys
    assert missing and all(k.startswith(lcp_only) for k in missing)


def test_a_checkpoint_of_a_deeper_variant_is_refused_and_extra_heads_are_ignored(tiny_model, tmp_path):
    """A ResNet-101 Cascade R-CNN holds every entry of the ResNet-50 one with the same shape, and
    loaded without a word into a mix of both; a head the model lacks (a mask head) is ignored."""
    state = dict(tiny_model.state_dict())
    deeper = {**state, "backbone.layer3.6.conv1.weight": torch.zeros(8, 8, 1, 1)}
    path = tmp_path / "deeper.pth"
    torch.save({"state_dict": deeper}, path)
    with pytest.raises(
        LCPError,
        match=rf"^{re.escape(str(path))}: holds 1 entries inside modules of LCPDetector .*"
        r"backbone\.layer3\.6\.conv1\.weight.*deeper or wider variant",
    ):
        load_lcp_checkpoint(tiny_model, path)
    extra = {
        "roi_head.mask_head.0.convs.0.conv.weight": torch.zeros(4, 4, 3, 3),
        "roi_head.bbox_head.0.loss_cls.cum_samples": torch.zeros(4),  # mmdet's SeesawLoss keeps its counts
    }
    assert load_lcp_checkpoint(tiny_model, {"state_dict": {**state, **extra}}).unexpected_keys == list(extra)


def test_a_checkpoint_without_batchnorm_counters_loads_strictly(tiny_model, tmp_path):
    # older PyTorch saved no num_batches_tracked; lcp test and --resume-from refused such files
    state = {k: v for k, v in tiny_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert load_lcp_checkpoint(tiny_model, {"state_dict": state}, strict=True) == ([], [])


def test_a_checkpoint_without_state_dict_names_what_it_holds(tiny_model, tmp_path):
    """Weights under another key (detectron2's and DETR's 'model') were 'its 'state_dict' is not a
    mapping of names to tensors', of a file that has none."""
    path = tmp_path / "other_tool.pth"
    torch.save({"model": tiny_model.state_dict(), "optimizer": {}, "epoch": 3}, path)
    with pytest.raises(
        LCPError,
        match=rf"^{re.escape(str(path))}: not a checkpoint: it holds no 'state_dict' and is no state dict either "
        r"\(its entries: model, optimizer, epoch\); save the model's weights as 'state_dict'$",
    ):
        load_lcp_checkpoint(tiny_model, path)


def test_checkpoint_without_any_model_key_is_refused(tiny_model, tmp_path):
    path = tmp_path / "classifier.pth"
    torch.save({"fc.weight": torch.zeros(10, 4), "fc.bias": torch.zeros(10)}, path)
    with pytest.raises(LCPError, match=rf"^{re.escape(str(path))}: none of the .* entries of LCPDetector"):
        load_lcp_checkpoint(tiny_model, path)


def test_the_workflow_placeholder_is_named_as_such(tiny_model, tmp_path):
    """A killed training's placeholder that --touch or --cleanup-metadata marked complete was
    "not a PyTorch checkpoint (not in one of torch.save's formats)": the file says what it is."""
    from lcp.workflow.workdir import PLACEHOLDER

    path = tmp_path / "latest.pth"
    path.write_text(PLACEHOLDER.format(work_dir=tmp_path / "work"))
    with pytest.raises(
        LCPError,
        match=r"not a PyTorch checkpoint \(a text file: 'lcp workdir: placeholder while .*work trains; not a "
        r"checkpoint'\)$",
    ):
        load_lcp_checkpoint(tiny_model, path)


def test_unreadable_or_missing_checkpoint_files(tiny_model, tmp_path, monkeypatch):
    garbage = tmp_path / "notes.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(LCPError, match=rf"^{re.escape(str(garbage))}: not a PyTorch checkpoint"):
        load_lcp_checkpoint(tiny_model, garbage)
    with pytest.raises(LCPError, match=r"absent\.pth: file not found"):
        load_lcp_checkpoint(tiny_model, tmp_path / "absent.pth")
    # a copy or save cut short was "not a PyTorch checkpoint (OSError: [Errno 22] Invalid argument)"
    for legacy in (False, True):
        cut = tmp_path / f"cut{legacy}.pth"
        torch.save({"state_dict": tiny_model.state_dict()}, cut, _use_new_zipfile_serialization=not legacy)
        cut.write_bytes(cut.read_bytes()[:20000])
        said = rf"^{re.escape(str(cut))}: a truncated or damaged PyTorch checkpoint \(20000 bytes; "
        with pytest.raises(LCPError, match=said):
            load_lcp_checkpoint(tiny_model, cut)
    # a whole one whose meta holds a class of a module this environment lacks is not called cut
    module = tmp_path / "gonemod.py"
    module.write_text("class Note:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import gonemod

    whole = tmp_path / "whole.pth"
    torch.save({"meta": {"note": gonemod.Note()}, "state_dict": tiny_model.state_dict()}, whole)
    module.unlink()
    monkeypatch.delitem(sys.modules, "gonemod")
    with pytest.warns(UserWarning, match="only load checkpoints you trust"):
        with pytest.raises(
            LCPError,
            match=rf"^{re.escape(str(whole))}: a PyTorch checkpoint this environment cannot load "
            r"\(ModuleNotFoundError: No module named 'gonemod'\); where it loads, save its 'state_dict' and 'meta' "
            r"alone and give that file$",  # an mmdet 3.x training checkpoint needs mmengine for its message_hub
        ):
            load_lcp_checkpoint(tiny_model, whole)


def test_checkpoint_with_numpy_meta_loads_with_a_warning(tiny_model, tmp_path):
    import numpy as np

    path = tmp_path / "mmcv_style.pth"
    torch.save({"meta": {"best_score": np.float64(0.5)}, "state_dict": tiny_model.state_dict()}, path)
    with pytest.warns(UserWarning, match="only load checkpoints you trust"):
        assert load_lcp_checkpoint(tiny_model, path, strict=True) == ([], [])
    # the same in the format PyTorch wrote before 1.6 was refused as "not a PyTorch checkpoint"
    legacy = tmp_path / "legacy.pth"
    checkpoint = {"meta": {"best_score": np.float64(0.5)}, "state_dict": tiny_model.state_dict()}
    torch.save(checkpoint, legacy, _use_new_zipfile_serialization=False)
    with pytest.warns(UserWarning, match="only load checkpoints you trust"):
        assert load_lcp_checkpoint(tiny_model, legacy, strict=True) == ([], [])


def test_an_archive_under_a_checkpoint_name_says_what_it_holds(tiny_model, tmp_path):
    """A zip of anything was 'a PyTorch checkpoint this environment cannot load (RuntimeError: [enforce
    fail at inline_container.cc:180] ...)', a tar torch's long advice on weights_only=False."""
    import tarfile
    import zipfile

    checkpoint = tmp_path / "lcp_r50_urpc.pth"
    torch.save({"state_dict": tiny_model.state_dict()}, checkpoint)
    with zipfile.ZipFile(tmp_path / "zipped.pth", "w") as archive:
        archive.write(checkpoint, checkpoint.name)
    with zipfile.ZipFile(tmp_path / "notes.pth", "w") as archive:
        archive.writestr("readme.txt", "weights on request")
    for mode, name in (("w", "tarred.pth"), ("w:gz", "tarred_gz.pth")):
        with tarfile.open(tmp_path / name, mode) as archive:
            archive.add(checkpoint, checkpoint.name)
    unpack = "; unpack lcp_r50_urpc.pth from it and give that file)"
    for name, holds in [
        ("zipped.pth", "a zip archive of lcp_r50_urpc.pth" + unpack),
        ("tarred.pth", "a tar archive of lcp_r50_urpc.pth" + unpack),
        ("tarred_gz.pth", "a tar archive of lcp_r50_urpc.pth" + unpack),
        ("notes.pth", "a zip archive of readme.txt)"),
    ]:
        path = tmp_path / name
        with pytest.raises(LCPError, match=rf"^{re.escape(f'{path}: not a PyTorch checkpoint ({holds}')}$"):
            load_lcp_checkpoint(tiny_model, path)
