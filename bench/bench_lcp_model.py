"""Speed of LCPDetector R50-FPN against mmdet's plain Cascade R-CNN R50-FPN, built from the project's configs.

The detectors come from config/mmdet/lcp_r50_foggy_city.py and cascade_rcnn_r50_city.py
(random weights: their backbones have init_cfg=None), fed batches of random images at the
published scale (1333x800 resized, padded to 800x1344) with a few boxes each. One run on
one device measures, in fp32 and in mmdet's fp16 (wrap_fp16_model + a GradScaler, as
Fp16OptimizerHook trains):

  train images/s  one optimizer step as mmcv's runner does it: model.train_step (forward,
                  loss parsing with its .item() syncs), zero_grad, backward, SGD step;
                  LCP with its front's CUDA graphs also sets the gradients to None before
                  the forward, as lcp train does (lcp/hooks/gradients.py);
                  plain Cascade, and LCP in each training mode
  test images/s   model(return_loss=False, rescale=True) under no_grad, as `lcp test`
  peak memory     torch.cuda.max_memory_allocated of each measurement
  GPU busy        CUDA kernel time of a step (from two profiled steps) / the step's
                  unprofiled time; low = the GPU waits on the CPU (Python, kernel
                  launches, host syncs such as NMS, nonzero, .item())
  syncs/step      ops of a profiled step that make the host wait for a GPU (nonzero,
                  .item(), unique, masked_select, NMS), counted on any device: the
                  CPU-side cost that the GPU-busy figure shows, by cause

and the ratios to plain Cascade fp32 (the baseline) and to plain Cascade in the same
precision, with the time per step (on a GPU the whole step, not host time alone) and eager
ATen ops per step against plain Cascade in the same precision. The baseline, in training and
at test time, is mmdet's stock Cascade R-CNN: mmdet's MaxIoUAssigner, RandomSampler,
RPNHead, CascadeRoIHead, Shared2FCBBoxHead and SingleRoIExtractor where
the project's configs use their sync-free counterparts (same function without host syncs,
lcp/models/sync_free.py lists them); the rows "plain train, sync-free" and "plain test,
sync-free" measure that difference alone. LCP rows are measured with the default forward (shallow_batching='auto')
and with the alternatives the defaults were chosen against: 'always' batches the raw and
crux shallow passes in crux-mode training too, 'never' is the straightforward two-pass
forward, and channels-last memory layout. Each optimisation also has a row without it: "LCP
... stock mmdet" (mmdet's heads, assigner and sampler with their host syncs) and, on a GPU
only, "LCP ... no graphs" (the front run eagerly instead of from CUDA graphs,
lcp/models/graph_capture.py; the column "graphs" says how many the detector held, 0 where a
row meant to replay one did not). --json writes every row with its ratios, after each row.
bench/gpu/run.sh runs this at the published scale on a bare GPU machine in one command.

    python bench/bench_lcp_model.py [--batch 2] [--iters 20] [--warmup 5] [--profile-dir DIR] [--json OUT]
    python bench/bench_lcp_model.py --tiny     # tiny configs at 128x128 on the CPU, in seconds

--profile-dir writes torch.profiler tables (top ops by their own GPU time) of one training
iteration of LCP in crux mode and of plain Cascade, in each precision.

The GPU figures below predate the CUDA graphs. Measured once on an H100 (torch 2.11+cu130,
mmcv-full 1.7.2 CUDA build), batch 2 at 800x1344, 15 iterations after 4, one run; img/s fp32 /
fp16 (peak GiB fp32 / fp16):
  train  plain 18.2 / 12.4 (3.7 / 2.6)   LCP catch-up 52.3 / 68.7 (2.3 / 1.4)
         LCP crux 11.7 / 10.5 (7.8 / 4.8); always batch 9.7 / 10.3 (10.2 / 6.0);
         channels-last 12.1 / 10.6
  test   plain 43.3 / 30.7   LCP 31.6 / 31.0; never batch 31.8 / 27.4; channels-last 31.5 / 30.8
CUDA kernel time of one profiled step: plain 49 ms fp32 / 35 ms fp16, LCP crux 94 / 64 ms,
against 110 / 162 and 171 / 191 ms per unprofiled step: training is CPU-bound (87 host
syncs per step in mmdet's heads), so fp16 shortens the kernels but autocast's extra CPU
work per op makes the step slower; only the GPU-bound catch-up step gains (+31%). An
earlier run on another H100 gave the same training figures within 10% (crux always-batch
10.7, channels-last 12.0 img/s fp32) but LCP test 34.0 batched / 36.6 two passes: test
differences below about 15% are run-to-run noise of these CPU-bound steps.
Those GPU figures predate SyncFreeMaxIoUAssigner and the sync-free sampler, heads and RoI
extractor. Host syncs per step, counted on the CPU at --tiny size (the project's 2-core
machine, shared): stock mmdet 166 / 203 / 293 per training step with 6 / 20 / 50 boxes per
image (its assigner costs two per ground-truth box and image in the RPN's low-quality
matching); with SyncFreeMaxIoUAssigner alone the project's configs had 112 (LCP crux 109)
and 28 per LCP test batch. With the sync-free sampler, RPN and Cascade heads and RoI
extractor: plain training 23, LCP crux training 20, plain test 19, LCP test 16 (from 31 /
28), whatever the number of boxes; LCP adds none of its own. What remains: mmdet's loss
parsing (one .item() per logged value, 12 per training step), the RPN's proposal NMS and
its min_bbox_size check (two per image), and at test time NMS (RPN and R-CNN, per image).
Eager ATen ops per step against stock plain Cascade in the same run: sync-free plain
training 0.94, LCP crux training 0.98, LCP test 1.03 (of plain test). Host time on that CPU
(best of 8 steps, one thread; whole-run figures there vary 3x with the machine's load):
stock plain training 82-86 ms, sync-free plain 101-109 ms, of which the RoI extractor is
about 18 ms (every level's RoIAlign visits every RoI, the other levels' as empty boxes) and
the sampler and heads about 4 ms; LCP crux 240 ms; plain test 39 ms, LCP test 66 ms. On the
CPU a sync costs nothing, so these are the extra host work the GPU step trades for its
syncs. Whether the RoI extractor pays on a GPU is still to be measured, so the configs keep
mmdet's SingleRoIExtractor (12 more syncs) and the rows "sync-free RoI" measure lcp's
SyncFreeRoIExtractor beside it. Loss parsing then went to one transfer per step
(lcp/models/loss_parsing.py; a tolist() that this count does not see): the same CPU, same
day, per step with the configs as they are / with the sync-free RoI extractor: plain
training 23 / -, LCP crux training 20 / 8, LCP test 28 / 16. The RPN's proposals and the
test-time NMS then became fixed-size (lcp/models/sync_free_nms.py: greedy NMS in rounds,
one read-back per NMS call for the whole batch): LCP crux training 13 / 1, LCP test 14 / 2.
What remains is that one read-back per NMS call (greedy NMS is sequential: the number of
rounds depends on the boxes) and, with the configs' extractor, its per-level nonzero.
Until 2026-11-29 the count took a sync nested in another (mmcv's NMSop calls masked_select,
which calls _local_scalar_dense) up to three times, and the test rows' baseline was the
sync-free plain test, not mmdet's. Counted once per wait, --tiny on that CPU, one run
(img/s ratios to the stock row of the same step): training stock plain 160, sync-free plain
13, LCP crux 13 (sync-free RoI 1), LCP crux with mmdet's heads 145; test stock plain 23,
sync-free plain 14, LCP 14 (sync-free RoI 2), LCP with mmdet's heads 20. The sync-free
counts did not change; the stock ones above were too high. Eager ATen ops against stock
plain: LCP crux training 0.99, LCP test 1.13.
Host time of the fixed-size NMS on that CPU (best of 15, one thread): RPN proposals 10.8 ms
against mmdet's 5.5, R-CNN simple_test 35 ms against 25, a whole tiny test 132 ms against 115.
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "config" / "mmdet"
PUBLISHED = dict(
    plain=CONFIGS / "cascade_rcnn_r50_city.py", lcp=CONFIGS / "lcp_r50_foggy_city.py", height=800, width=1344
)
TINY = dict(plain=CONFIGS / "cascade_rcnn_tiny_demo.py", lcp=CONFIGS / "lcp_tiny_demo.py", height=128, width=128)


@dataclass(frozen=True)
class Variant:
    """One row of the table: which detector, which step, which forward options."""

    name: str
    detector: str  # 'plain' | 'lcp'
    step: str  # 'train' | 'test'
    train_mode: str | None = None
    shallow_batching: str = "auto"
    channels_last: bool = False
    stock_mmdet: bool = False  # mmdet's own components instead of the configs' sync-free ones
    sync_free_extractor: bool = False  # lcp's SyncFreeRoIExtractor where the configs keep mmdet's
    graph_capture: bool = True  # LCPDetector's CUDA graphs of its front (a no-op on the CPU)


VARIANTS = [
    Variant("plain train", "plain", "train", stock_mmdet=True),
    Variant("plain train, sync-free", "plain", "train"),
    Variant("LCP train catch-up", "lcp", "train", "catch_up_learner"),
    Variant("LCP train catch-up, never batch", "lcp", "train", "catch_up_learner", shallow_batching="never"),
    Variant("LCP train catch-up, ch-last", "lcp", "train", "catch_up_learner", channels_last=True),
    Variant("LCP train crux", "lcp", "train", "crux_learner"),
    Variant("LCP train crux, always batch", "lcp", "train", "crux_learner", shallow_batching="always"),
    Variant("LCP train crux, ch-last", "lcp", "train", "crux_learner", channels_last=True),
    Variant("LCP train crux, sync-free RoI", "lcp", "train", "crux_learner", sync_free_extractor=True),
    Variant("LCP train crux, stock mmdet", "lcp", "train", "crux_learner", stock_mmdet=True),
    Variant("LCP train crux, no graphs", "lcp", "train", "crux_learner", graph_capture=False),
    Variant("plain test", "plain", "test", stock_mmdet=True),
    Variant("plain test, sync-free", "plain", "test"),
    Variant("LCP test", "lcp", "test"),
    Variant("LCP test, never batch", "lcp", "test", shallow_batching="never"),
    Variant("LCP test, ch-last", "lcp", "test", channels_last=True),
    Variant("LCP test, sync-free RoI", "lcp", "test", sync_free_extractor=True),
    Variant("LCP test, stock mmdet", "lcp", "test", stock_mmdet=True),
    Variant("LCP test, no graphs", "lcp", "test", graph_capture=False),
]


@dataclass
class Result:
    variant: str
    step: str
    precision: str
    images_per_s: float
    peak_mem_gib: float | None
    gpu_busy: float | None
    syncs_per_step: float | None
    aten_ops_per_step: float | None
    ms_per_step: float
    graphs: int | None = None  # CUDA graphs LCPDetector held after the row's steps
    vs_plain_fp32: float | None = None
    vs_plain_same: float | None = None


def model_cfgs(scale: dict) -> dict:
    """The model configs of the plain and the LCP config files, ${...} resolved."""
    import lcp.models  # noqa: F401  registers LCPDetector & co.
    from lcp.apis.config import load_config

    return {name: load_config(scale[name]).model for name in ("plain", "lcp")}


def variant_cfg(cfgs: dict, variant: Variant):
    cfg = copy.deepcopy(cfgs[variant.detector])
    if variant.stock_mmdet:
        from lcp.models.sync_free import with_stock_mmdet

        cfg = with_stock_mmdet(cfg)
    if variant.sync_free_extractor:
        cfg.roi_head.bbox_roi_extractor.type = "SyncFreeRoIExtractor"
    if variant.detector == "lcp":
        cfg.backbone.shallow_batching = variant.shallow_batching
        cfg.channels_last = variant.channels_last
        cfg.graph_capture = dict(cfg.get("graph_capture") or {}, enabled=variant.graph_capture)
    return cfg


def make_batch(batch_size, height, width, num_classes, device, seed=0):
    """Normalised-looking random images, mmdet image metas and 6 boxes per image; img_df for LCP."""
    import numpy as np

    generator = torch.Generator().manual_seed(seed)
    metas, boxes, labels = [], [], []
    for _ in range(batch_size):
        metas.append(
            dict(
                img_shape=(height, width, 3),
                ori_shape=(height, width, 3),
                pad_shape=(height, width, 3),
                batch_input_shape=(height, width),
                scale_factor=np.ones(4, dtype=np.float32),
                flip=False,
            )
        )
        xy = torch.rand(6, 2, generator=generator) * torch.tensor([width * 0.7, height * 0.7])
        wh = height / 25 + torch.rand(6, 2, generator=generator) * torch.tensor([width * 0.25, height * 0.25])
        boxes.append(torch.cat([xy, xy + wh], 1).to(device))
        labels.append(torch.randint(0, num_classes, (6,), generator=generator).to(device))
    img = torch.randn(batch_size, 3, height, width, generator=generator).to(device)
    img_df = torch.randn(batch_size, 3, height, width, generator=generator).to(device)
    return dict(img=img, img_metas=metas, gt_bboxes=boxes, gt_labels=labels, img_df=img_df)


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


class Bench:
    """Builds one variant's model and gives its step function."""

    def __init__(self, cfgs, data, device, fp16):
        self.cfgs, self.data, self.device, self.fp16 = cfgs, data, device, fp16

    def build(self, variant: Variant):
        from mmcv.runner import build_optimizer, wrap_fp16_model
        from mmdet.models import build_detector

        torch.manual_seed(0)
        model = build_detector(variant_cfg(self.cfgs, variant)).to(self.device)
        if self.fp16:
            wrap_fp16_model(model)
        if variant.step == "test":
            model.eval()
            inputs = dict(img=[self.data["img"]], img_metas=[self.data["img_metas"]])

            def step():
                with torch.no_grad():
                    model(**inputs, return_loss=False, rescale=True)

            return model, step

        if variant.train_mode is not None:
            model.set_train_mode(variant.train_mode)
        model.train()
        optimizer = build_optimizer(model, dict(type="SGD", lr=1e-5, momentum=0.9, weight_decay=1e-4))
        scaler = torch.amp.GradScaler("cuda", enabled=self.fp16)
        inputs = self.data if variant.detector == "lcp" else {k: v for k, v in self.data.items() if k != "img_df"}

        # as lcp train does with its ReleaseGradientsHook: the front's graphs find no gradient kept
        release = getattr(getattr(model, "front_graphs", None), "enabled", False)

        def step():
            if release:
                optimizer.zero_grad(set_to_none=True)
            outputs = model.train_step(inputs, optimizer)
            optimizer.zero_grad()
            scaler.scale(outputs["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()

        return model, step


def kernel_seconds(profile) -> float:
    """Summed CUDA kernel time of a torch.profiler run."""
    return (
        sum(
            event.device_time_total for event in profile.events() if event.device_type == torch.autograd.DeviceType.CUDA
        )
        / 1e6
    )


SYNCING_OPS = {"aten::nonzero", "aten::_local_scalar_dense", "aten::_unique2", "aten::masked_select", "NMSop"}


def syncs_per_step(profile, steps) -> float:
    """Host syncs per step: syncing ops not called inside another syncing op (mmcv's NMSop
    calls masked_select, which calls _local_scalar_dense: one wait, not three)."""

    def inside_a_sync(event) -> bool:
        parent = event.cpu_parent
        while parent is not None:
            if parent.name in SYNCING_OPS:
                return True
            parent = parent.cpu_parent
        return False

    events = [event for event in profile.events() if event.name in SYNCING_OPS]
    return sum(not inside_a_sync(event) for event in events) / steps


def aten_ops_per_step(profile, steps) -> float:
    """Eager ATen op calls, nested ones included: each costs the host a dispatch."""
    return sum(event.count for event in profile.key_averages() if event.key.startswith("aten::")) / steps


def profile_steps(step, device, steps):
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    synchronize(device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(device)
    return prof, time.perf_counter() - start


def measure(bench: Bench, variant: Variant, args) -> Result:
    model, step = bench.build(variant)
    for _ in range(args.warmup):
        step()
    synchronize(bench.device)
    if bench.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    synchronize(bench.device)
    seconds = (time.perf_counter() - start) / args.iters
    peak = torch.cuda.max_memory_allocated() / 2**30 if bench.device == "cuda" else None
    graphs = len(model.front_graphs.graphs) if hasattr(model, "front_graphs") else None
    busy = syncs = ops = None
    if args.busy_steps:
        prof, _ = profile_steps(step, bench.device, args.busy_steps)
        syncs = syncs_per_step(prof, args.busy_steps)
        ops = aten_ops_per_step(prof, args.busy_steps)
        if bench.device == "cuda":
            # profiling slows the CPU side down, so the kernels are set against the unprofiled step
            busy = kernel_seconds(prof) / args.busy_steps / seconds
    del model, step
    gc.collect()
    if bench.device == "cuda":
        torch.cuda.empty_cache()
    return Result(
        variant.name,
        variant.step,
        "fp16" if bench.fp16 else "fp32",
        args.batch / seconds,
        peak,
        busy,
        syncs,
        ops,
        1e3 * seconds,
        graphs,
    )


def add_ratios(results: list[Result]) -> None:
    """img/s against plain Cascade fp32 and against plain Cascade in the same precision, where measured."""
    plain = {(r.precision, r.step): r for r in results if r.variant in ("plain train", "plain test")}
    for r in results:
        fp32, same = plain.get(("fp32", r.step)), plain.get((r.precision, r.step))
        r.vs_plain_fp32 = r.images_per_s / fp32.images_per_s if fp32 else None
        r.vs_plain_same = r.images_per_s / same.images_per_s if same else None


def write_profile(bench: Bench, variant: Variant, args, path: Path) -> None:
    """torch.profiler's top ops (by their own GPU time, else CPU time) of one training iteration."""
    from lcp.io import write_text

    model, step = bench.build(variant)
    for _ in range(max(args.warmup, 1)):
        step()
    prof, wall = profile_steps(step, bench.device, 1)
    sort_by = "self_device_time_total" if bench.device == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort_by, row_limit=args.profile_rows)
    kernels = kernel_seconds(prof) if bench.device == "cuda" else 0.0
    header = (
        f"{variant.name}, {'fp16' if bench.fp16 else 'fp32'}, batch {args.batch} x {args.height}x{args.width}, "
        f"one iteration: wall {wall * 1e3:.1f} ms, CUDA kernels {kernels * 1e3:.1f} ms\n"
    )
    write_text(path, header + table + "\n")
    print(header + "\n".join(table.splitlines()[: args.profile_print + 3]))
    del model, step
    gc.collect()
    if bench.device == "cuda":
        torch.cuda.empty_cache()


def print_table(results: list[Result]) -> None:
    """img/s against plain Cascade; ms and ATen ops per step against plain Cascade in the same precision."""
    plain = {(r.precision, r.step): r for r in results if r.variant in ("plain train", "plain test")}
    print(
        f"\n{'step':34} {'prec':4} {'img/s':>7} {'peak GiB':>8} {'GPU busy':>8} {'syncs/step':>10} "
        f"{'vs plain fp32':>13} {'vs plain same':>13} {'ms/step':>8} {'x plain':>7} {'ATen ops':>8} {'x plain':>7} "
        f"{'graphs':>6}"
    )
    nan = float("nan")
    for r in results:
        same = plain.get((r.precision, r.step))
        vs_fp32 = nan if r.vs_plain_fp32 is None else r.vs_plain_fp32
        vs_same = nan if r.vs_plain_same is None else r.vs_plain_same
        ms_ratio = r.ms_per_step / same.ms_per_step if same else nan
        ops_ratio = r.aten_ops_per_step / same.aten_ops_per_step if same and r.aten_ops_per_step else nan
        peak = f"{r.peak_mem_gib:8.2f}" if r.peak_mem_gib is not None else f"{'-':>8}"
        busy = f"{100 * r.gpu_busy:7.0f}%" if r.gpu_busy is not None else f"{'-':>8}"
        syncs = f"{r.syncs_per_step:10.0f}" if r.syncs_per_step is not None else f"{'-':>10}"
        ops = f"{r.aten_ops_per_step:8.0f}" if r.aten_ops_per_step is not None else f"{'-':>8}"
        graphs = f"{r.graphs:6d}" if r.graphs is not None else f"{'-':>6}"
        print(
            f"{r.variant:34} {r.precision:4} {r.images_per_s:7.2f} {peak} {busy} {syncs} "
            f"{vs_fp32:13.2f} {vs_same:13.2f} {r.ms_per_step:8.0f} {ms_ratio:7.2f} {ops} {ops_ratio:7.2f} {graphs}"
        )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs at 128x128, one iteration, on the CPU")
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda unless --tiny")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, help="timed iterations (default 20; 1 with --tiny)")
    parser.add_argument("--warmup", type=int, help="untimed iterations first (default 5; 1 with --tiny)")
    parser.add_argument(
        "--busy-steps", type=int, default=2, help="profiled steps for the GPU-busy and syncs/step columns (0: off)"
    )
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "fp16"], help="default: both on a GPU")
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="subset of rows, by name")
    parser.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cuDNN autotuning off")
    parser.add_argument("--profile-dir", type=Path, help="write torch.profiler tables here")
    parser.add_argument("--profile-rows", type=int, default=40)
    parser.add_argument("--profile-print", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the results as json")
    parser.add_argument("--table", type=Path, metavar="JSON", help="only print the table of a --json file")
    args = parser.parse_args(argv)
    if args.table:
        return args
    scale = TINY if args.tiny else PUBLISHED
    args.height = scale["height"]
    args.width = scale["width"]
    args.scale = scale
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    args.iters = args.iters or (1 if args.tiny else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 5)
    args.precisions = args.precisions or (["fp32"] if args.device == "cpu" else ["fp32", "fp16"])
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible; use --tiny (or --device cpu) to run on the CPU")
    if args.device == "cpu" and "fp16" in args.precisions:
        parser.error("fp16: mmdet's mixed precision runs under CUDA autocast; on the CPU use fp32")
    known = {v.name for v in VARIANTS}
    if args.variants and not set(args.variants) <= known:
        parser.error(f"unknown --variants {sorted(set(args.variants) - known)}; known: {sorted(known)}")
    return args


def selected_variants(names: list[str] | None, device: str) -> list[Variant]:
    """The named rows, else all of them but those that differ from another row only on a GPU."""
    if names:
        return [v for v in VARIANTS if v.name in names]
    return [v for v in VARIANTS if v.graph_capture or device == "cuda"]


def main(argv=None) -> int:
    args = parse_args(argv)
    from lcp.io import write_json

    if args.table:
        import json

        print_table([Result(**row) for row in json.loads(args.table.read_text())["results"]])
        return 0

    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    cfgs = model_cfgs(args.scale)
    num_classes = cfgs["plain"].roi_head.bbox_head[0].num_classes
    data = make_batch(args.batch, args.height, args.width, num_classes, args.device)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(
        f"{device_name}, torch {torch.__version__}, batch {args.batch} x {args.height}x{args.width}, "
        f"{args.iters} timed iterations after {args.warmup}; cudnn.benchmark {torch.backends.cudnn.benchmark}, "
        f"cudnn TF32 {torch.backends.cudnn.allow_tf32}, matmul TF32 {torch.backends.cuda.matmul.allow_tf32}"
    )
    variants = selected_variants(args.variants, args.device)
    results = []
    for precision in args.precisions:
        bench = Bench(cfgs, data, args.device, fp16=precision == "fp16")
        for variant in variants:
            result = measure(bench, variant, args)
            results.append(result)
            busy = f", GPU busy {100 * result.gpu_busy:.0f}%" if result.gpu_busy is not None else ""
            print(f"  {precision} {variant.name:34} {result.images_per_s:7.2f} img/s{busy}", flush=True)
            add_ratios(results)
            if args.json:  # after every row: a run cut short keeps what it measured
                write_json(
                    args.json,
                    dict(
                        device=device_name,
                        torch=torch.__version__,
                        batch=args.batch,
                        height=args.height,
                        width=args.width,
                        iters=args.iters,
                        warmup=args.warmup,
                        cudnn_benchmark=torch.backends.cudnn.benchmark,
                        results=[asdict(r) for r in results],
                    ),
                )
    print_table(results)
    if args.profile_dir:
        crux = next(v for v in VARIANTS if v.name == "LCP train crux")
        plain = next(v for v in VARIANTS if v.name == "plain train")
        for precision in args.precisions:
            bench = Bench(cfgs, data, args.device, fp16=precision == "fp16")
            write_profile(bench, crux, args, args.profile_dir / f"profile_lcp_crux_{precision}.txt")
            write_profile(bench, plain, args, args.profile_dir / f"profile_plain_{precision}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
