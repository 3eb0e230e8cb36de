"""What is installed: the toolchain against the project's pins (`lcp env`), and the environment a
training logs at its start."""

from __future__ import annotations

import importlib.metadata as metadata
import sys

PACKAGES = (
    "torch",
    "torchvision",
    "mmcv-full",
    "mmdet",
    "numpy",
    "opencv-python-headless",
    "pycocotools",
    "snakemake",
    "snakemake-executor-plugin-slurm",
    "mlflow",
    "pandas",
)


def pinned_versions() -> dict[str, str]:
    """The `name==version` pins that the installed lcp distribution declares."""
    pins = {}
    for requirement in metadata.requires("lcp") or []:
        if ";" in requirement or "==" not in requirement:
            continue
        name, version = requirement.split("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def toolchain_report() -> tuple[list[tuple[str, str, str]], list[str]]:
    """Rows (package, installed, pinned) and a list of problems: every pinned package (the main
    ones first) and whether mmcv's compiled ops load, with CUDA where a GPU is visible."""
    pins = pinned_versions()
    rows, problems = [], []
    for name in [*PACKAGES, *sorted(set(pins) - set(PACKAGES))]:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        pinned = pins.get(name, "")
        rows.append((name, installed, pinned))
        if pinned and installed.split("+")[0] != pinned:
            problems.append(f"{name} is {installed}, the project pins {pinned}")
    try:
        import torch
        from mmcv.ops import get_compiling_cuda_version, nms

        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]])
        nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
        compiled_cuda = get_compiling_cuda_version()
        rows.append(("mmcv ops", "ok", f"CUDA {compiled_cuda}"))
        rows.append(("CUDA device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none", ""))
        if torch.cuda.is_available() and compiled_cuda == "not available":
            problems.append(
                "a GPU is visible but mmcv-full's ops were built for the CPU alone (RoIAlign and NMS would fail "
                "on it); rebuild them: FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=<your GPUs> make setup"
            )
    except Exception as exc:  # report whatever stops the compiled ops from loading
        rows.append(("mmcv ops", "broken", ""))
        problems.append(f"mmcv's compiled ops do not load: {exc}")
    return rows, problems


def run_environment() -> dict[str, str]:
    """What mmdet's collect_env() logs at the start of a training, without importing torchvision
    for its version (3 s of a short job's start-up; see lcp.deferred_imports)."""
    import subprocess

    import cv2
    import torch

    info = {
        "sys.platform": sys.platform,
        "Python": sys.version.replace("\n", ""),
        "CUDA available": str(torch.cuda.is_available()),
    }
    for index in range(torch.cuda.device_count()):
        info[f"GPU {index}"] = torch.cuda.get_device_name(index)
    try:
        gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True, timeout=30)
        info["GCC"] = gcc.stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        info["GCC"] = "n/a"
    info["PyTorch"] = torch.__version__
    info["PyTorch CUDA"] = str(torch.version.cuda)
    info["PyTorch compiling details"] = torch.__config__.show()
    # on the CPU the result depends on it: another thread count sums in another order
    info["PyTorch threads"] = str(torch.get_num_threads())
    for label, package in (
        ("TorchVision", "torchvision"),
        ("MMCV", "mmcv-full"),
        ("MMDetection", "mmdet"),
        ("lcp", "lcp"),
    ):
        try:
            info[label] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[label] = "missing"
    info["OpenCV"] = cv2.__version__
    return info
