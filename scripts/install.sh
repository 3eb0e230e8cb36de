#!/usr/bin/env bash
# Set up the project's virtual environment from nothing, idempotently:
#   python >= 3.11 venv -> torch/torchvision -> mmcv-full 1.7.2 (built once from its PyPI
#   sdist and cached outside the work tree) -> the lcp package with its pinned deps.
# Environment knobs:
#   LCP_VENV            venv folder (default: .venv in the repo)
#   LCP_PYTHON          interpreter to build the venv from (default: python3)
#   LCP_WHEEL_CACHE     where built mmcv-full wheels are kept (default: ~/.cache/lcp/wheels)
#   FORCE_CUDA=1        build mmcv-full's CUDA ops (with TORCH_CUDA_ARCH_LIST, e.g. "8.0;9.0");
#                       FORCE_CUDA=0 the CPU ops; unset: keep the build the venv has (CPU when new)
#   MAX_JOBS            parallel compile jobs (default: number of cores)
set -euo pipefail

die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'install: %s\n' "$*" >&2; }

# GNU tools (realpath -m, sha256sum, sed -i) and mmcv-full's Linux build: elsewhere this failed on
# its first line with "realpath: illegal option -- m"
[[ $(uname -s) == Linux ]] \
    || die "this project sets up on Linux, not $(uname -s): use a Linux machine, WSL2, or a container (e.g. docker run -it -v \"\$PWD\":/lcp python:3.11 bash)"
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(realpath -m "${LCP_VENV:-$repo/.venv}")  # absolute: the build runs in another folder
python=${LCP_PYTHON:-python3}
cache=${LCP_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lcp/wheels}
pins=$repo/scripts/pins.env
# shellcheck source=pins.env
. "$pins"

command -v "$python" >/dev/null 2>&1 || die "'$python' not found; install Python >= $PYTHON_MIN or set LCP_PYTHON"
py_version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) \
    || die "'$python' does not run; set LCP_PYTHON to a Python >= $PYTHON_MIN"
if [[ $(printf '%s\n' "$PYTHON_MIN" "$py_version" | sort -V | head -n1) != "$PYTHON_MIN" ]]; then
    die "Python >= $PYTHON_MIN is required, '$python' is $py_version; set LCP_PYTHON to a newer interpreter"
fi

stamp=$venv/.lcp-installed
# The mmcv-full build (CPU, or CUDA for which GPUs) is part of what is installed: a CPU venv
# moved to CUDA must get the CUDA wheel although its version is the same. Without FORCE_CUDA
# (the README's `make test` after a CUDA install) the venv keeps the build it has.
mmcv_marker=$venv/.lcp-mmcv-flavour
if [[ ${FORCE_CUDA:-} == 1 ]]; then
    flavour=cuda-$(echo "${TORCH_CUDA_ARCH_LIST:-native}" | tr ' ;.' '__p')
elif [[ -z ${FORCE_CUDA:-} && -f $mmcv_marker ]]; then
    flavour=$(cat "$mmcv_marker")
else
    flavour=cpu
fi
want=$(cat "$pins" "$repo/pyproject.toml" "$repo/scripts/install.sh" | sha256sum | cut -c1-16)-$flavour
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    say "environment up to date ($venv)"
    exit 0
fi

# A conda env (envs/lcp.yaml) is used as it is; any other folder that is not a venv is refused,
# never cleared.
conda_env=$([[ -d $venv/conda-meta ]] && echo 1 || true)
if [[ -e $venv && ! -f $venv/pyvenv.cfg && -z $conda_env && -n $(ls -A "$venv" 2>/dev/null) ]]; then
    die "$venv is not a virtual environment (no pyvenv.cfg) and not empty; set LCP_VENV to a new folder or remove it"
fi
vpy=$venv/bin/python
venv_works() {
    [[ -f $venv/pyvenv.cfg || -n $conda_env ]] && "$vpy" -c 'import sys' 2>/dev/null \
        && "$vpy" -m pip --version >/dev/null 2>&1
}
if [[ -n $conda_env ]] && ! venv_works; then
    die "$venv is a conda env whose python or pip does not run; install them in it (envs/lcp.yaml has both)"
fi
mmcv_version() { "$vpy" -c 'import importlib.metadata as m; print(m.version("mmcv-full"))' 2>/dev/null || true; }
mmcv_installed=
if venv_works; then
    # The venv's own Python decides the mmcv-full wheel (LCP_PYTHON only makes new venvs).
    base=$vpy
    mmcv_installed=$(mmcv_version)
    py_version=$("$vpy" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
    if [[ $(printf '%s\n' "$PYTHON_MIN" "$py_version" | sort -V | head -n1) != "$PYTHON_MIN" ]]; then
        die "Python >= $PYTHON_MIN is required, the venv $venv has $py_version; remove it and run again"
    fi
else
    base=$python
fi
py_tag=cp$(echo "$py_version" | cut -d. -f1,2 | tr -d .)
wheel_dir=$cache/mmcv-full-$MMCV-$py_tag-torch$TORCH-$flavour
wheel=$(ls "$wheel_dir"/mmcv_full-*.whl 2>/dev/null | head -n1 || true)
# a wheel is needed only to install mmcv-full or to change its build
if [[ $mmcv_installed == "$MMCV" && $(cat "$mmcv_marker" 2>/dev/null || echo cpu) == "$flavour" ]]; then
    need_wheel=
else
    need_wheel=1
fi
if [[ -z $wheel && -n $need_wheel && $flavour == cuda-* && -z ${FORCE_CUDA:-} ]]; then
    # the build would get no CUDA ops (mmcv builds them only when asked), yet be cached as CUDA
    die "the venv has mmcv-full's $flavour build and none is cached to reinstall: run again with FORCE_CUDA=1 and TORCH_CUDA_ARCH_LIST set (or FORCE_CUDA=0 for the CPU build)"
fi
if [[ -z $wheel && -n $need_wheel ]]; then
    # Fail before spending minutes on downloads if the compile cannot work or has nowhere to go.
    command -v gcc >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 \
        || die "gcc/g++ not found: mmcv-full compiles C++ ops (on Debian/Ubuntu: apt-get install build-essential)"
    inc=$("$base" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    [[ -f $inc/Python.h ]] || die "Python headers missing ($inc/Python.h): mmcv-full compiles against them (on Debian/Ubuntu: apt-get install python3-dev)"
    { mkdir -p "$wheel_dir" 2>/dev/null && [[ -w $wheel_dir ]]; } \
        || die "$wheel_dir: cannot be made or written, so the mmcv-full build could not be kept; set LCP_WHEEL_CACHE to a writable folder"
fi

if [[ -z $conda_env && ! -f $venv/pyvenv.cfg ]]; then
    say "creating virtual environment $venv"
    "$python" -m venv "$venv" || die "could not create a venv with '$python' (on Debian/Ubuntu: apt-get install python3-venv)"
elif ! venv_works; then
    # A venv whose creation failed or was interrupted (no python3-venv, Ctrl-C in ensurepip)
    # has no pip, and one whose interpreter was removed (a Python upgrade) does not run;
    # every later run would die in pip.
    say "re-creating virtual environment $venv: its python or pip does not run (left half-made, or its interpreter is gone)"
    "$python" -m venv --clear "$venv" \
        || die "could not re-create the venv $venv with '$python' (on Debian/Ubuntu: apt-get install python3-venv)"
fi
pipi() { "$vpy" -m pip install --disable-pip-version-check -q "$@"; }

# torch's CUDA build with its nvidia libraries takes about 6.5 GB; on a fuller disk pip fails
# minutes in, after pages of warnings. Checked whenever the pinned torch is not the one installed.
if ! "$vpy" -c 'import importlib.metadata as m, sys; sys.exit(m.version("torch").split("+")[0] != sys.argv[1])' \
    "$TORCH" >/dev/null 2>&1; then
    free_kib=$(df -Pk "$venv" | awk 'NR == 2 {print $4}')
    if (( free_kib < 7 * 1024 * 1024 )); then
        die "$((free_kib / 1024)) MB free on the disk of $venv, and installing torch $TORCH there needs about 7 GB: free some space or set LCP_VENV to a folder on another disk"
    fi
fi

pipi "setuptools==$SETUPTOOLS" wheel ninja "opencv-python-headless==$OPENCV" "numpy==$NUMPY"
pipi "torch==$TORCH" "torchvision==$TORCHVISION"

mmcv_installed=$(mmcv_version)

if [[ -z $wheel && -n $need_wheel ]]; then
    say "building mmcv-full $MMCV ($flavour ops) from source; takes ~10 min on 2 cores, done once per machine"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$vpy" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: -d "$work" "mmcv-full==$MMCV"
    tar -xzf "$work"/mmcv-full-"$MMCV".tar.gz -C "$work"
    src=$work/mmcv-full-$MMCV
    # torch >= 2.14 headers need C++20; mmcv's setup.py hard-codes c++17.
    if "$vpy" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(0 if v >= (2, 14) else 1)'; then
        sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
        grep -q 'c++20' "$src/setup.py" || die "could not raise mmcv-full's C++ standard in $src/setup.py"
    fi
    (cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$vpy" -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation -w "$work/dist" .) \
        || die "mmcv-full build failed (see the compiler output above)"
    built=$(ls "$work"/dist/mmcv_full-*.whl)
    # Debug info makes the wheel ~30 MB instead of ~1.5 MB.
    "$vpy" -m wheel unpack -d "$work/unpacked" "$built" >/dev/null
    find "$work/unpacked" -name '*.so' -exec strip --strip-debug {} +
    rm "$built"
    "$vpy" -m wheel pack -d "$work/dist" "$work"/unpacked/* >/dev/null
    mkdir -p "$wheel_dir"
    tmp=$(mktemp -d "$wheel_dir/.tmp.XXXX")
    cp "$work"/dist/mmcv_full-*.whl "$tmp/"
    mv "$tmp"/*.whl "$wheel_dir/" && rmdir "$tmp"
    wheel=$(ls "$wheel_dir"/mmcv_full-*.whl | head -n1)
    say "cached $wheel"
fi
if [[ $mmcv_installed != "$MMCV" ]]; then
    pipi "$wheel"
elif [[ $(cat "$mmcv_marker" 2>/dev/null || echo cpu) != "$flavour" ]]; then
    say "replacing the installed mmcv-full $MMCV by its $flavour build"
    pipi --force-reinstall --no-deps "$wheel"
fi
echo "$flavour" > "$mmcv_marker"

say "installing lcp and its pinned dependencies"
pipi -e "${repo}[test]"
check=$("$vpy" -m lcp.cli env --check 2>&1) || { printf '%s\n' "$check" >&2; die "environment check failed (above)"; }
if [[ ${FORCE_CUDA:-0} == 1 ]]; then
    cuda=$("$vpy" -c 'from mmcv.ops import get_compiling_cuda_version as v; print(v())' 2>/dev/null) || cuda="mmcv.ops not importable"
    [[ $cuda =~ ^[0-9] ]] || die "FORCE_CUDA=1 but the installed mmcv-full has no CUDA ops (compiled CUDA: $cuda)"
fi
echo "$want" > "$stamp"
say "ready: $venv"
