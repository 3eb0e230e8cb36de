"""`lcp train` refuses a resume or init checkpoint that is not there in one line (exit 2) and makes
no work dir, whichever way it was named: --resume-from, the config's resume_from (also under
--auto-resume with nothing in the work dir to resume), --load-from, and the config's load_from."""

from __future__ import annotations

from pathlib import Path

import pytest

from lcp.cli import main as lcp

CONFIGS = Path(__file__).resolve().parents[2] / "config" / "mmdet"
PLAIN_TINY = str(CONFIGS / "cascade_rcnn_tiny_demo.py")
LCP_TINY = str(CONFIGS / "lcp_tiny_demo.py")


@pytest.mark.parametrize(
    ("config", "arguments", "refused"),
    [
        (
            PLAIN_TINY,
            ["--resume-from", "gone/epoch_3.pth"],
            "gone/epoch_3.pth: checkpoint to resume from does not exist",
        ),
        (
            PLAIN_TINY,
            ["--cfg-options", "resume_from=gone/epoch_3.pth"],
            "gone/epoch_3.pth: checkpoint to resume from (resume_from) does not exist",
        ),
        # mmdet's train tool resumes from the config's resume_from when --auto-resume finds nothing;
        # this trained from scratch instead, without a word
        (
            PLAIN_TINY,
            ["--auto-resume", "--cfg-options", "resume_from=gone/epoch_3.pth"],
            "gone/epoch_3.pth: checkpoint to resume from (resume_from) does not exist",
        ),
        (PLAIN_TINY, ["--load-from", "gone/init.pth"], "gone/init.pth: initial checkpoint (load_from) does not exist"),
        # the tiny LCP config's own load_from, relative to the folder the command runs in
        (
            LCP_TINY,
            [],
            "work_dirs/cascade_rcnn_tiny_demo/latest.pth: initial checkpoint (load_from) does not exist",
        ),
    ],
)
def test_a_missing_checkpoint_is_one_line_and_no_work_dir(
    workspace, tmp_path, monkeypatch, capsys, config, arguments, refused
):
    monkeypatch.chdir(tmp_path)
    work_dir = tmp_path / "work"
    options = ["--cfg-options", f"data_root={workspace / 'demo'}/", "data.workers_per_gpu=0"]
    assert lcp(["train", config, "--work-dir", str(work_dir), "--no-validate", *options, *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"lcp train: error: {refused}"]
    assert list(tmp_path.iterdir()) == []
