#!/usr/bin/env bash
# One-command GPU measurement of the LCP model at the published scale (bench/bench_lcp_model.py,
# batch 2 at 800x1344): plain Cascade R-CNN and LCP (crux, catch-up, test) in fp32 and fp16, each
# optimisation on and off (sync-free heads, CUDA graphs of the front, shallow batching,
# channels-last), with img/s, ratios, GPU-busy share and host syncs per step; the whole run
# within 8 minutes on an H100/H200, the results as json.
#
# On a bare GPU machine without network, with the machine's own python and torch:
#
#   bash bench/gpu/run.sh --fetch            # once, where PyPI is reachable: fills .whl/gpu/
#   bash bench/gpu/run.sh                    # on the GPU machine, with .whl/gpu/ copied along
#
# --fetch puts in .whl/gpu/ (ignored by git) mmdet's and mmcv's pure-Python dependencies as
# Python 3.12 manylinux wheels, mmcv-full's sdist and, from ../shared/wheels, the prebuilt
# mmcv-full (CUDA ops for Python 3.12 + torch 2.11 CUDA 13 + sm_90 alone). The run installs them
# with pip --no-index into a folder on PYTHONPATH ($LCP_GPU_ENV, default /tmp/lcp-gpu-env: a venv
# made from a venv's python would not see that python's torch), unpacks the prebuilt mmcv-full
# when bench/gpu/machine.py says it fits, and otherwise SAYS SO and builds mmcv-full from the
# sdist for the GPU it finds (about 4-5 minutes on 16 cores, leaving less time to measure).
# Then it checks that mmcv's CUDA ops run, asks lcp train and lcp test what only a GPU can answer
# (bench/gpu/gpu_checks.py: graph capture, graphs = eager, fp16 AP, --gpu-id; about a minute), and
# measures, stopping when 8 minutes are spent
# (LCP_GPU_SECONDS=480): each row reaches the json as soon as it is measured, so a run cut short
# keeps what it measured, and the table is printed from the json in either case.
#
# Options:
#   --fetch [DIR]     download the wheels and the sdist into DIR (default .whl/gpu) and stop
#   --wheels DIR      where to find them (default: $LCP_GPU_WHEELS, .whl/gpu, shared/wheels,
#                     ../shared/wheels, searched file by file)
#   --out DIR         where the json and the log go (default: $OUT if set, else bench-out/gpu)
#   --check           only say whether this machine can run it and which mmcv-full it would use
#   --study SECONDS   then run bench/gpu/study.py (issue 11's mini-study: baseline vs LCP, R50 on a
#                     512 px synthetic-fog scene, seeds 0 and 1) for the last SECONDS of the run;
#                     its scene is generated in the background while the bench measures
#   --study-seeds "S ..."  the study's seeds (default: study.py's, 0 and 1)
#   --no-bench        skip the model bench (with --study: the study alone)
#   -- ARGS           passed on to bench_lcp_model.py (default: --iters 10 --warmup 4)
# Environment: PYTHON (default python3), LCP_GPU_ENV, LCP_GPU_WHEELS, LCP_GPU_SECONDS, MAX_JOBS.
# Output: DIR/bench_lcp_model.json (rows with img/s, ratios to plain Cascade, peak memory, GPU
# busy, syncs/step, graphs held), DIR/gpu_checks.json, with --study DIR/study.json; and
# DIR/logs.tgz with every log (setup.log, bench_lcp_model.log, gpu_checks.log, study.log,
# each study training's logs under study/, --profile-dir's tables when under DIR).
# Exit status: 0 measured, 2 this machine cannot run it (no torch, no GPU, files missing),
# 1 a step failed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR/../.. source=scripts/pins.env
. "$repo/scripts/pins.env"
python=${PYTHON:-python3}
env_dir=${LCP_GPU_ENV:-/tmp/lcp-gpu-env}
seconds=${LCP_GPU_SECONDS:-480}
prebuilt=mmcv_full_cuda_sm90_cp312_torch211.tgz
sdist=mmcv-full-$MMCV.tar.gz
wheels_needed=("mmdet==$MMDET" addict==2.4.0 yapf==0.43.0 platformdirs==4.14.8 terminaltables==3.1.10
               pycocotools==2.0.11 "setuptools==$SETUPTOOLS")

say() { printf 'bench/gpu: %s\n' "$*" >&2; }
die() { printf 'bench/gpu: error: %s\n' "$1" >&2; exit "${2:-1}"; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

mode=run wheels_dir=${LCP_GPU_WHEELS:-} out=${OUT:-$repo/bench-out/gpu} fetch_dir=$repo/.whl/gpu study=0 bench=1
study_seeds=()
bench_args=(--iters 10 --warmup 4)
while (($#)); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --fetch) mode=fetch; if [[ ${2:-} && $2 != -* ]]; then fetch_dir=$2; shift; fi ;;
        --wheels) wheels_dir=${2:?--wheels needs a folder}; shift ;;
        --out) out=${2:?--out needs a folder}; shift ;;
        --check) mode=check ;;
        --study) study=${2:?--study needs seconds}; shift ;;
        --study-seeds) read -ra study_seeds <<<"${2:?--study-seeds needs seeds}"; shift ;;
        --no-bench) bench=0 ;;
        --) shift; bench_args=("$@"); break ;;
        *) die "unknown option $1 (see --help)" 2 ;;
    esac
    shift
done

if [[ $mode == fetch ]]; then
    mkdir -p "$fetch_dir"
    say "downloading Python 3.12 manylinux wheels and the mmcv-full $MMCV sdist into $fetch_dir"
    "$python" -m pip download --disable-pip-version-check -q --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$fetch_dir" "${wheels_needed[@]}"
    "$python" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: -d "$fetch_dir" \
        "mmcv-full==$MMCV"
    if [[ -f $repo/../shared/wheels/$prebuilt ]]; then
        install -m 0644 "$repo/../shared/wheels/$prebuilt" "$fetch_dir/"
    else
        say "no ../shared/wheels/$prebuilt here: the GPU machine will build mmcv-full from the sdist"
    fi
    say "ready: copy $fetch_dir along (the device tool: carry .whl) and run bash bench/gpu/run.sh there"
    exit 0
fi

command -v "$python" >/dev/null 2>&1 || die "'$python' not found: set PYTHON to the machine's python with a CUDA torch" 2
start=$SECONDS
arch=$("$python" "$repo/bench/gpu/machine.py" --arch) || exit 2
fits=0
"$python" "$repo/bench/gpu/machine.py" || { status=$?; [[ $status == 3 ]] || exit 2; fits=$status; }

search=("$wheels_dir" "$repo/.whl/gpu" "$repo/shared/wheels" "$repo/../shared/wheels")
find_file() {  # the first folder of the search list that holds a file matching $1
    local dir match
    for dir in "${search[@]}"; do
        [[ -n $dir && -d $dir ]] || continue
        match=$(find "$dir" -maxdepth 1 -name "$1" -print -quit)
        if [[ -n $match ]]; then echo "$match"; return 0; fi
    done
    return 1
}
wheel_files=()
for spec in "${wheels_needed[@]}"; do
    name=${spec%%==*} version=${spec##*==}
    file=$(find_file "${name}-${version}-*.whl") || die "no wheel of $spec in ${search[*]}: run bash bench/gpu/run.sh --fetch where PyPI is reachable, and bring .whl/gpu along" 2
    wheel_files+=("$file")
done
if [[ $fits == 0 ]]; then
    mmcv_source=$(find_file "$prebuilt") || { say "no $prebuilt found: building from the sdist instead"; fits=3; }
fi
if [[ $fits == 3 ]]; then
    mmcv_source=$(find_file "$sdist") || die "mmcv-full must be built here but no $sdist is in ${search[*]} (bash bench/gpu/run.sh --fetch brings it)" 2
fi
if [[ $mode == check ]]; then
    say "would install ${#wheel_files[@]} wheels and mmcv-full from $mmcv_source for sm_${arch/./}"
    exit 0
fi

mkdir -p "$out"
pack_logs() {  # the device tool brings back a few files only: the jsons, and one archive of the rest
    (cd "$out" && find . -type f ! -name logs.tgz | grep -v '^\./[^/]*\.json$' | sort |
        tar -czf logs.tgz --remove-files -T - && find . -mindepth 1 -type d -empty -delete) ||
        say "could not pack the logs in $out"
}
trap pack_logs EXIT
setup_log=$out/setup.log
: >"$setup_log"
say "setting up $env_dir (log: $setup_log)"
rm -rf "$env_dir" && mkdir -p "$env_dir"
"$python" -m pip install --disable-pip-version-check -q --no-index --no-deps --no-compile --target "$env_dir" \
    "${wheel_files[@]}" >>"$setup_log" 2>&1 || die "installing the wheels failed (see $setup_log)"
export PYTHONPATH=$env_dir:$repo${PYTHONPATH:+:$PYTHONPATH}
if [[ $fits == 0 ]]; then
    tar -xzf "$mmcv_source" -C "$env_dir"
else
    say "BUILDING mmcv-full $MMCV from $mmcv_source for sm_${arch/./} (the prebuilt one does not fit, above):" \
        "about 4-5 minutes on 16 cores, out of the $seconds s of this run"
    build=$(mktemp -d)
    tar -xzf "$mmcv_source" -C "$build"
    src=$build/mmcv-full-$MMCV
    # torch >= 2.14 headers need C++20; mmcv's setup.py hard-codes c++17 (as scripts/install.sh does)
    if "$python" -c 'import sys, torch; sys.exit(0 if tuple(map(int, torch.__version__.split("+")[0].split(".")[:2])) >= (2, 14) else 1)'; then
        sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    fi
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$python" -m pip wheel --disable-pip-version-check -q --no-index --no-deps --no-build-isolation \
        -w "$build/dist" .) >>"$setup_log" 2>&1 || die "building mmcv-full failed (see $setup_log)"
    "$python" -m pip install --disable-pip-version-check -q --no-index --no-deps --target "$env_dir" \
        "$build"/dist/mmcv_full-*.whl >>"$setup_log" 2>&1 || die "installing the built mmcv-full failed (see $setup_log)"
fi
"$python" -X faulthandler - <<'EOF' 2>>"$setup_log" || { tail -n 30 "$setup_log" >&2; die "mmcv's CUDA ops or the lcp models do not load (see $setup_log)"; }
import torch
from mmcv.ops import nms, roi_align

import lcp.models  # noqa: F401  the bench's registry

boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0]], device="cuda")
kept, _ = nms(boxes, torch.tensor([0.9, 0.8], device="cuda"), 0.5)
rois = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]], device="cuda")
pooled = roi_align(torch.ones(1, 1, 8, 8, device="cuda"), rois, (2, 2), 1.0, 0)
assert kept.shape[0] == 1 and torch.allclose(pooled, torch.ones_like(pooled)), "mmcv's CUDA ops compute wrong results"
from lcp.apis.environment import run_environment

run_environment()  # what lcp train logs first
print(f"mmcv's CUDA ops run on {torch.cuda.get_device_name()}")
EOF
say "set up in $((SECONDS - start)) s; measuring for at most $((seconds - (SECONDS - start))) s more"

say "what only a GPU can answer about lcp train and lcp test (bench/gpu/gpu_checks.py)"
timeout --kill-after=10 180 "$python" "$repo/bench/gpu/gpu_checks.py" --work "$env_dir-checks" \
    --json "$out/gpu_checks.json" >"$out/gpu_checks.log" 2>&1 || say "the GPU checks failed (see $out/gpu_checks.log)"
grep -E "^(collector in capture|capture after switch.*|failed capture|train capture|test capture|graphs = eager|eager = eager|fp16|--gpu-id): " "$out/gpu_checks.log" >&2 || true

json=$out/bench_lcp_model.json
study_work=$env_dir-study
if ((study > 0)); then
    rm -rf "$study_work" && mkdir -p "$out/study"
    "$python" "$repo/bench/gpu/study.py" --work "$study_work" --data-only >"$out/study/data.out" 2>&1 &
    data_pid=$!
fi
status=0
if ((bench)); then
    left=$((seconds - (SECONDS - start) - study - 15))
    ((left > 30)) || die "no time left to measure after the setup ($((SECONDS - start)) s)"
    set +e
    PYTHONUNBUFFERED=1 timeout --signal=INT --kill-after=10 "$left" \
        "$python" "$repo/bench/bench_lcp_model.py" --json "$json" "${bench_args[@]}" 2>&1 | tee "$out/bench_lcp_model.log"
    status=${PIPESTATUS[0]}
    set -e
fi
if [[ $status != 0 ]]; then
    if [[ $status == 124 || $status == 130 || $status == 137 ]]; then
        say "the time limit cut the bench short; the table below holds the rows it measured"
    else
        say "the bench failed (exit $status, see $out/bench_lcp_model.log); the rows it measured follow"
    fi
    [[ -f $json ]] && "$python" "$repo/bench/bench_lcp_model.py" --table "$json"
    status=1
fi
if ((study > 0)); then
    wait "$data_pid" || die "generating the study's scene failed (see $out/study/data.out)"
    say "the study, for the remaining $((seconds - (SECONDS - start))) s"
    set +e
    PYTHONUNBUFFERED=1 "$python" "$repo/bench/gpu/study.py" --work "$study_work" --json "$out/study.json" \
        ${study_seeds[@]+--seeds "${study_seeds[@]}"} --seconds $((seconds - (SECONDS - start) - 10)) 2>&1 | tee "$out/study.log"
    ((PIPESTATUS[0] == 0)) || status=1
    set -e
    (cd "$study_work" && find . \( -name '*.out' -o -name '*.log' -o -name '*.log.json' -o -name eval.json \) \
        -exec cp --parents -t "$out/study" {} +)
fi
((status == 0)) || exit 1
say "done in $((SECONDS - start)) s: $json"
