"""lcp.apis.training_run and lcp.apis.checkpoint_evaluation called with plain arguments, as a
program would without the command line: they print nothing on stdout, and return what
`lcp train` and `lcp test` write and print."""

from __future__ import annotations

import json
from pathlib import Path

from helpers.tiny_scene import make_tiny_scene
from lcp.apis.checkpoint_evaluation import evaluate_checkpoint
from lcp.apis.evaluation import format_metrics
from lcp.apis.training_run import TrainingRequest, train_from_config
from lcp.cli import main as lcp

PLAIN_TINY = str(Path(__file__).resolve().parents[2] / "config" / "mmdet" / "cascade_rcnn_tiny_demo.py")


def test_train_and_evaluate_as_library_calls_print_nothing_and_return_what_the_commands_print(tmp_path, capsys):
    scene = make_tiny_scene(tmp_path / "scene")
    options = {"data_root": f"{scene}/", "data.workers_per_gpu": 0, "runner.max_epochs": 1}
    work_dir = tmp_path / "work"

    trained = train_from_config(
        TrainingRequest(PLAIN_TINY, work_dir=str(work_dir), validate=False, cfg_options=options, seed=3)
    )
    assert capsys.readouterr().out == ""
    assert (trained.work_dir, trained.checkpoint, trained.seed) == (work_dir, work_dir / "epoch_1.pth", 3)

    library_json = tmp_path / "library.json"
    evaluation = evaluate_checkpoint(
        PLAIN_TINY, str(trained.checkpoint), eval_out=str(library_json), cfg_options=options
    )
    assert capsys.readouterr().out == ""
    assert evaluation.num_images == 2 and evaluation.eval_out == str(library_json)

    command_json = tmp_path / "command.json"
    cfg_options = [f"{key}={value}" for key, value in options.items()]
    command = ["test", PLAIN_TINY, str(trained.checkpoint), "--eval-out", str(command_json)]
    assert lcp([*command, "--cfg-options", *cfg_options]) == 0
    assert capsys.readouterr().out == f"{format_metrics(evaluation.metrics)}\nmetrics written to {command_json}\n"
    assert json.loads(command_json.read_text()) == json.loads(library_json.read_text())
