"""`lcp train --launcher pytorch|slurm`: two processes (gloo on 127.0.0.1) train the tiny LCP
config through a catch-up epoch and a crux epoch. Every parameter ends each epoch
bit-identical on both ranks, frozen parameters do not move (their gradients stay None
although DDP was built while they trained), the mode's own parameters do move, and both
ranks pair every sample with the same detection-favoured image."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lcp.apis.distributed import process_launch_command
from lcp.cli import main as lcp
from lcp.datasets.df_paired import df_choice
from lcp.errors import LCPError

REPO = Path(__file__).resolve().parents[2]
LCP_TINY = REPO / "config" / "mmdet" / "lcp_tiny_demo.py"
HELPERS = Path(__file__).resolve().parents[1] / "helpers"
MODE_PREFIXES = {
    "catch_up_learner": ("backbone.catch_up_learner.",),
    "crux_learner": (
        "crux_learner.",
        "backbone.catch_up_fusion.",
        "backbone.layer3.",
        "backbone.layer4.",
        "neck.",
        "rpn_head.",
        "roi_head.",
    ),
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    assert lcp(["data", "demo", "--out", str(root / "demo"), "--num-images", "10", "--no-progress"]) == 0
    return root


def probe_config(scene: Path, probe_dir: Path) -> Path:
    """The tiny LCP config from random weights, 2 epochs (catch-up, crux), with the probe hook."""
    path = probe_dir.parent / f"{probe_dir.name}.py"
    path.write_text(
        f"_base_ = {str(LCP_TINY)!r}\n"
        f"data_root = {str(scene / 'demo')!r} + '/'\n"
        "load_from = None\n"
        "runner = dict(max_epochs=2)\n"
        "lr_config = dict(warmup=None)\n"
        "data = dict(workers_per_gpu=0)\n"
        "log_config = dict(interval=1)\n"
        "custom_imports = dict(imports=['lcp.models', 'lcp.datasets', 'lcp.hooks', 'ddp_probe'],\n"
        "                      allow_failed_imports=False)\n"
        "custom_hooks = [\n"
        "    dict(type='TrainModeHook', num_epoch=[1, 1, 2], modes=['catch_up_learner', 'crux_learner', 'alter']),\n"
        "    dict(type='DFPairingHook'),\n"
        f"    dict(type='DDPProbeHook', out_dir={str(probe_dir)!r}, priority='LOWEST'),\n"
        "]\n"
    )
    return path


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HELPERS), str(REPO), env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", **extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_records(probe_dir: Path) -> dict[tuple[int, int], dict]:
    return {
        (rank, epoch): torch.load(probe_dir / f"rank{rank}_epoch{epoch}.pt", weights_only=False)
        for rank in (0, 1)
        for epoch in (1, 2)
    }


def check_two_rank_run(probe_dir: Path, seed: int = 0) -> None:
    records = load_records(probe_dir)
    for epoch, mode in ((1, "catch_up_learner"), (2, "crux_learner")):
        rank0, rank1 = records[(0, epoch)], records[(1, epoch)]
        assert rank0["ddp"] == "LCPDistributedDataParallel" and rank0["world_size"] == 2
        assert rank0["mode"] == rank1["mode"] == mode
        trainable = set(rank0["trainable"])
        assert trainable == {name for name in rank0["before"] if name.startswith(MODE_PREFIXES[mode])}
        for name, after in rank0["after"].items():
            assert torch.equal(after, rank1["after"][name]), f"epoch {epoch}: {name} differs between ranks"
            if name not in trainable:
                assert torch.equal(after, rank0["before"][name]), f"epoch {epoch} ({mode}): frozen {name} moved"
        assert set(rank0["grads_none"]) >= set(rank0["before"]) - trainable
        moved = {name for name in trainable if not torch.equal(rank0["after"][name], rank0["before"][name])}
        for prefix in MODE_PREFIXES[mode]:
            assert any(name.startswith(prefix) for name in moved), f"epoch {epoch}: nothing in {prefix} trained"
        # the pairing is a function of (seed, epoch, index): the same on both ranks
        assert rank0["seed"] == rank1["seed"] == seed and rank0["epoch"] == rank1["epoch"] == epoch - 1
        assert (
            rank0["pairing"]
            == rank1["pairing"]
            == [
                rank0["df_filenames"][df_choice(seed, epoch - 1, i, len(rank0["df_filenames"]))]
                for i in range(len(rank0["pairing"]))
            ]
        )


def run_checked(args: list[str], env: dict[str, str], timeout: float = 240) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"


def lcp_train(config: Path, *args: str) -> list[str]:
    """The command line of `lcp train CONFIG ARGS` in a fresh interpreter."""
    return [sys.executable, "-m", "lcp.cli", "train", str(config), *args]


@pytest.mark.slow
def test_two_gpus_outside_slurm_train_as_two_torchrun_processes_in_lockstep(scene, tmp_path):
    probe_dir = tmp_path / "probe"
    config = probe_config(scene, probe_dir)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run_checked(
        lcp_train(config, "--gpus", "2", "--no-validate", "--work-dir", str(tmp_path / "work")),
        child_env(TMPDIR=str(scratch)),
    )
    check_two_rank_run(probe_dir)
    assert {p.name for p in (tmp_path / "work").glob("epoch_*.pth")} == {"epoch_1.pth", "epoch_2.pth"}
    assert list(scratch.iterdir()) == []  # torchrun left a torchelastic_* folder in $TMPDIR on every run


@pytest.mark.slow
def test_srun_two_tasks_train_both_modes_in_lockstep(scene, tmp_path, slurm_cluster):
    probe_dir = tmp_path / "probe"
    config = probe_config(scene, probe_dir)
    env = child_env(
        **{key: value for key, value in slurm_cluster.env.items() if key in ("SLURM_CONF", "PATH")},
        MASTER_PORT=str(free_port()),
    )
    run_checked(
        [
            "srun",
            "--ntasks",
            "2",
            "--cpus-per-task",
            "1",
            "--mem",
            "3000",
            "--time",
            "5",
            *lcp_train(config, "--launcher", "slurm", "--no-validate", "--work-dir", str(tmp_path / "work")),
        ],
        env,
    )
    check_two_rank_run(probe_dir)


@pytest.mark.slow
def test_two_processes_log_one_mlflow_run_with_the_gpus_and_the_lr_they_train_with(scene, tmp_path):
    """--auto-scale-lr on 2 GPUs trains at 0.04 (the config's 0.02 is for a batch of 2); the run's
    lr param said 0.02, the config's, which mmdet scales only after the runner's meta was written."""
    from mlflow.tracking import MlflowClient

    config = probe_config(scene, tmp_path / "probe")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = child_env()
    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS", "LCP_SNAKEMAKE_RULE"):
        env.pop(name, None)
    work_dir = tmp_path / "work"
    run_checked(
        lcp_train(
            config,
            "--gpus",
            "2",
            "--auto-scale-lr",
            "--work-dir",
            str(work_dir),
            "--tracking-uri",
            uri,
            "--scene",
            "ddp",
            "--cfg-options",
            "evaluation.interval=1",
        ),
        env,
    )
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("lcp/ddp").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "ddp/train/lcp"
    assert run.data.params["gpus"] == "2" and run.data.params["batch_per_gpu"] == "2"
    lrs = client.get_metric_history(run.info.run_id, "train/lr")
    assert [m.value for m in lrs] == pytest.approx([0.04] * len(lrs))
    assert run.data.params["lr"] == "0.04"
    # rank 0 alone logs: each point once (8 training images on 2 ranks of 2: 2 iterations an epoch)
    assert sorted(m.step for m in lrs) == [1, 2, 3, 4]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val/AP")) == [1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("error, status", [("RuntimeError", 1), ("LCPError", 2)])
def test_a_failed_process_ends_the_run_with_one_line_and_its_status_and_fails_its_mlflow_run(
    error, status, scene, tmp_path, mlflow_server
):
    """torchrun stops the other process when one fails; lcp's own output ended with torchrun's
    traceback and the stopped process's "terminated (SIGTERM)", with no line of its own. The
    MLflow run, rank 0's, ended KILLED "Terminated" instead of FAILED with the error, and a
    process's exit-2 refusal ended lcp train with torchrun's 1, which the workflow retries."""
    from mlflow.tracking import MlflowClient

    probe_dir = tmp_path / "probe"
    config = probe_config(scene, probe_dir)
    with config.open("a") as text:
        text.write(f"custom_hooks.append(dict(type='FailOnRankHook', rank=1, epoch=2, refuse={error == 'LCPError'}))\n")
    env = child_env()
    for name in ("MLFLOW_TRACKING_URI", "LCP_INVOCATION_ID", "LCP_MLFLOW_PARENT_RUN_IDS", "LCP_SNAKEMAKE_RULE"):
        env.pop(name, None)
    name = f"ddpfails{status}"
    tracking = ["--tracking-uri", mlflow_server.uri, "--scene", name]
    args = lcp_train(config, "--gpus", "2", "--no-validate", *tracking, "--work-dir", str(tmp_path / "work"))
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert result.returncode == status, result.stderr[-5000:]
    assert "FailOnRankHook: rank 1 fails in epoch 2" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "lcp train: error: a training process failed, so torchrun stopped all 2 (exit status 1); torchrun's "
        "report above names the one that failed first and how it ended; its own error, if it printed one, is above that"
    )
    assert {p.name for p in (tmp_path / "work").glob("epoch_*.pth")} == {"epoch_1.pth"}
    client = MlflowClient(mlflow_server.uri)
    (run,) = client.search_runs([client.get_experiment_by_name(f"lcp/{name}").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["lcp.stopped_in_epoch.002"] == f"FAILED: {error}: FailOnRankHook: rank 1 fails in epoch 2"
    assert not list((tmp_path / "work" / "mlflow-pending").glob("*.jsonl"))  # sent: nothing left queued


SLURM_JOB = {"SLURM_JOB_ID": "7"}


@pytest.mark.parametrize(
    "environ, launcher",
    [
        ({}, "torchrun"),
        ({**SLURM_JOB, "SLURM_NTASKS": "4", "SLURM_JOB_NUM_NODES": "2"}, "srun"),
        (SLURM_JOB, "srun"),  # snakemake's job step leaves only the job's id
        ({**SLURM_JOB, "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1"}, "torchrun"),  # one task holding 4 GPUs
    ],
)
def test_several_gpus_start_srun_tasks_in_a_job_of_as_many_tasks_else_torchrun(environ, launcher):
    command = process_launch_command(4, ["train", "cfg.py", "--gpus", "4"], environ, log_dir="/scratch/x")
    if launcher == "srun":
        assert command == [
            "srun",
            "--ntasks=4",
            "--kill-on-bad-exit=1",
            sys.executable,
            "-m",
            "lcp.cli",
            "train",
            "cfg.py",
            "--gpus",
            "4",
            "--launcher",
            "slurm",
        ]
    else:
        assert command == [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=4",
            "--log-dir=/scratch/x",
            "-m",
            "lcp.cli",
            "train",
            "cfg.py",
            "--gpus",
            "4",
            "--launcher",
            "pytorch",
        ]


def test_several_gpus_in_a_multi_node_job_without_a_task_per_gpu_is_refused():
    with pytest.raises(
        LCPError,
        match=r"--gpus 4: this SLURM job has 2 task\(s\) on 2 nodes; training on "
        r"several nodes needs a job of one task per GPU",
    ):
        process_launch_command(4, ["train", "cfg.py"], {**SLURM_JOB, "SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "2"})


def test_several_gpus_check_the_inputs_once_before_starting_any_process(scene, tmp_path, capsys, monkeypatch):
    config = probe_config(scene, tmp_path / "probe")
    monkeypatch.syspath_prepend(str(HELPERS))
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "epoch_1.pth").write_bytes(b"")
    code = lcp(["train", str(config), "--gpus", "2", "--work-dir", str(tmp_path / "work")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith(f"lcp train: error: {tmp_path / 'work'}: already holds checkpoints")
    assert "processes:" not in err  # refused before the launcher


def test_distributed_lcp_config_without_find_unused_parameters_is_refused(scene, tmp_path, capsys, monkeypatch):
    config = probe_config(scene, tmp_path / "probe")
    monkeypatch.syspath_prepend(str(HELPERS))
    for key, value in dict(
        RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port())
    ).items():
        monkeypatch.setenv(key, value)
    try:
        code = lcp(
            [
                "train",
                str(config),
                "--launcher",
                "pytorch",
                "--no-validate",
                "--work-dir",
                str(tmp_path / "work"),
                "--cfg-options",
                "find_unused_parameters=False",
            ]
        )
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lcp train: error: {config}: distributed LCP training needs find_unused_parameters = True (each "
        "training mode freezes part of the model, and DDP must skip the parameters a step does not use)"
    )
