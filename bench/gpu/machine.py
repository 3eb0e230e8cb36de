"""Whether this interpreter can run the GPU bench, and whether the prebuilt mmcv-full fits it.

    python bench/gpu/machine.py          # says so in words; exit 0 prebuilt fits, 3 build needed, 2 no GPU
    python bench/gpu/machine.py --arch   # prints the GPU's compute capability (e.g. 9.0) for TORCH_CUDA_ARCH_LIST

The prebuilt mmcv-full (../shared/wheels/mmcv_full_cuda_sm90_cp312_torch211.tgz) holds compiled
CUDA ops for one Python, one torch ABI and one GPU architecture; anything else needs the build
from the sdist (bench/gpu/run.sh does it).
"""

from __future__ import annotations

import os
import sys

FITS, NO_GPU, BUILD = 0, 2, 3
PREBUILT = dict(python=(3, 12), torch="2.11", cuda="13.0", capability=(9, 0))


def verdict(
    python: tuple[int, int], torch_version: str | None, cuda_version: str | None, capability: tuple[int, int] | None
) -> tuple[int, str]:
    """(exit code, sentence) for an interpreter with this torch, its CUDA and the GPU's capability."""
    if torch_version is None:
        return NO_GPU, "this Python has no torch: run with PYTHON=<the machine's python with a CUDA torch>"
    if cuda_version is None:
        return NO_GPU, f"torch {torch_version} is a CPU build: this bench needs a CUDA torch and a GPU"
    if capability is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return NO_GPU, (
            f"no CUDA GPU is visible to torch {torch_version}"
            + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else "")
            + ": this bench measures a GPU, run it on a machine with one"
        )
    differences = []
    if tuple(python) != PREBUILT["python"]:
        differences.append(f"Python {python[0]}.{python[1]} (not {'.'.join(map(str, PREBUILT['python']))})")
    if torch_version.split("+")[0].rsplit(".", 1)[0] != PREBUILT["torch"]:
        differences.append(f"torch {torch_version} (not {PREBUILT['torch']}.x)")
    if cuda_version.rsplit(".", 1)[0] != PREBUILT["cuda"].rsplit(".", 1)[0]:
        differences.append(f"CUDA {cuda_version} (not {PREBUILT['cuda']})")
    if tuple(capability) != PREBUILT["capability"]:
        differences.append(f"a GPU of compute capability {capability[0]}.{capability[1]} (not sm_90)")
    if differences:
        return BUILD, (
            "the prebuilt mmcv-full (Python 3.12, torch 2.11, CUDA 13, sm_90) does not fit this machine: "
            + ", ".join(differences)
            + "; mmcv-full 1.7.2 is built from its sdist instead"
        )
    return FITS, (
        f"Python {python[0]}.{python[1]}, torch {torch_version}, CUDA {cuda_version}, "
        f"sm_{capability[0]}{capability[1]}: the prebuilt mmcv-full fits"
    )


def this_machine() -> tuple[tuple[int, int], str | None, str | None, tuple[int, int] | None]:
    python = sys.version_info[:2]
    try:
        import torch
    except ImportError:
        return python, None, None, None
    capability = torch.cuda.get_device_capability() if torch.cuda.is_available() else None
    return python, torch.__version__, torch.version.cuda, capability


def main(argv: list[str]) -> int:
    machine = this_machine()
    code, sentence = verdict(*machine)
    if argv == ["--arch"]:
        if code == NO_GPU:
            print(f"bench/gpu: {sentence}", file=sys.stderr)
            return code
        print("{}.{}".format(*machine[3]))
        return 0
    print(f"bench/gpu: {sentence}", file=sys.stderr if code == NO_GPU else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
