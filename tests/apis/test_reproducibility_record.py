"""What a run records so that it can be repeated: the seed it trains with (also without --seed)
and the CPU thread count, which changes a CPU training's numbers as the seed does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lcp.apis.training_run import RUN_RECORD, TrainingRequest, _check_same_run, run_record
from lcp.errors import LCPError
from lcp.io import write_json

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "config" / "mmdet" / "lcp_tiny_demo.py")


def test_a_run_without_seed_records_the_config_seed_it_trains_with():
    assert run_record(TrainingRequest(config=CONFIG), config_seed=0)["seed"] == 0
    assert run_record(TrainingRequest(config=CONFIG, seed=3), config_seed=0)["seed"] == 3


@pytest.mark.parametrize("recorded_seed", [0, None], ids=["this lcp", "older record, seed null"])
def test_auto_resume_with_the_seed_a_run_used_continues_it(tmp_path, recorded_seed):
    """A run started without --seed (the config's 0) was refused as 'another seed' on
    --auto-resume --seed 0, and the other way round."""
    record = run_record(TrainingRequest(config=CONFIG), config_seed=0) | {"seed": recorded_seed}
    write_json(tmp_path / RUN_RECORD, record)
    _check_same_run(TrainingRequest(config=CONFIG, seed=0), tmp_path, config_seed=0)
    _check_same_run(TrainingRequest(config=CONFIG), tmp_path, config_seed=0)
    with pytest.raises(LCPError, match="another seed"):
        _check_same_run(TrainingRequest(config=CONFIG, seed=1), tmp_path, config_seed=0)


def test_the_training_log_and_mlflow_params_record_the_thread_count():
    from lcp.apis.environment import run_environment
    from lcp.tracking.training_record import start_params

    assert run_environment()["PyTorch threads"] == str(torch.get_num_threads())
    params = start_params(scene="demo", step="train", method="lcp", variant=None, seed=0, gpus=1, cfg=None)
    assert params["threads"] == torch.get_num_threads()
