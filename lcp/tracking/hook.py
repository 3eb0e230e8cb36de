"""LCPMlflowLoggerHook: an mmcv logger hook that records a training run in MLflow.

Use it through `lcp.tracking.add_tracking(cfg, ...)` (what `lcp train --track` does), or
in a config: `log_config = dict(hooks=[..., dict(type='LCPMlflowLoggerHook', scene=...,
step=..., method=...)])` with 'lcp.tracking.hook' in custom_imports.

What it records (metric steps: the global iteration for train/*, the epoch for epoch/* and val/*):
- params: the resolved config (runner.meta['config'], flattened), seed, scene/step/method,
  annotation fingerprints, degradation sidecars, package versions, git commit/dirty;
- train/<loss term> (kl_loss included), train/lr, train/momentum, train/img_per_s every
  `interval` iterations, from the iteration's own outputs (not the log buffer's averages);
- epoch/crux_learner_mode (1 crux learner, 0 catch-up learner; also tag
  lcp.train_mode.epoch_NNN), epoch/img_per_s, epoch/train_time_s, epoch/peak_gpu_mem_mib (CUDA);
- epoch/crux_mask_mean, epoch/crux_mask_std, epoch/crux_mask_frac_above_half,
  epoch/crux_mask_spatial_std and epoch/crux_grad_norm when the config has CruxHealthHook
  (lcp.hooks.crux_health), and at the end the tags lcp.crux_health ("alive"/"collapsed") and
  lcp.crux_verdict (the "crux learner collapsed: ..." sentence; absent when alive);
- val/<metric> (bbox_mAP, bbox_mAP_50, ...) and val/<metric>_AP/<class> after each evaluation;
- artifacts: the resolved config, the run's logs, crux heat-map pictures (LCP models); the
  final checkpoint as the tag lcp.checkpoint, uploaded too with log_checkpoint=True.

Tracking failures never stop training (lcp.tracking.run.TrackedRun journals and replays).
A resumed training (runner.epoch > 0 at the start) continues the MLflow run recorded in
<work_dir>/mlflow-run.json. Only rank 0 logs.
"""

from __future__ import annotations

import atexit
import logging
import time
from pathlib import Path
from typing import Any, Sequence

from mmcv.runner import HOOKS, get_dist_info
from mmcv.runner.hooks.logger import LoggerHook

from lcp.io import read_json, write_json, write_text
from lcp.tracking import params as run_params
from lcp.tracking import settings
from lcp.tracking.classwise import ClasswiseCapture
from lcp.tracking.run import TrackedRun

log = logging.getLogger("lcp.tracking")

RUN_FILE = "mlflow-run.json"
ARTIFACT_DIR = "mlflow-artifacts"
NOT_EVAL_KEYS = {"time", "data_time", "memory", "eval_iter_num", "lr"}
HEALTH_PREFIX = "crux/"  # CruxHealthHook's keys in the log buffer: epoch metrics, not eval results
TRAIN_MODE_VALUE = {"catch_up_learner": 0.0, "crux_learner": 1.0}


@HOOKS.register_module()
class LCPMlflowLoggerHook(LoggerHook):
    def __init__(self, scene: str, step: str, method: str, variant: str | None = None,
                 tracking_uri: str | None = None, interval: int = 1, log_checkpoint: bool = False,
                 num_heatmaps: int = 4, sidecars: Sequence[str] = (), config_file: str | None = None,
                 flush_secs: float = 5.0, retry_secs: float = 30.0, ignore_last: bool = True,
                 reset_flag: bool = False, by_epoch: bool = True):
        super().__init__(interval=interval, ignore_last=ignore_last, reset_flag=reset_flag, by_epoch=by_epoch)
        self.scene = scene
        self.step = step
        self.method = method
        self.variant = variant
        self.run_name = settings.run_name(scene, step, method, variant)  # validates the names
        self.tracking_uri = tracking_uri
        self.log_checkpoint = log_checkpoint
        self.num_heatmaps = num_heatmaps
        self.sidecars = list(sidecars)
        self.config_file = config_file
        self.flush_secs = flush_secs
        self.retry_secs = retry_secs
        self.run: TrackedRun | None = None
        self.cfg = None
        self._capture = ClasswiseCapture()
        self._last_eval_step: int | None = None
        self._epoch_start = self._last_point = self._last_iter_end = 0.0
        self._epoch_images = self._point_images = 0
        self._epoch_timed = False

    # ---- start and end --------------------------------------------------------------

    def before_run(self, runner) -> None:
        super().before_run(runner)  # makes the last logger hook reset the log buffer
        if get_dist_info()[0] != 0:
            return
        self.cfg = self._resolved_config(runner)
        work_dir = Path(runner.work_dir)
        resumed = runner.epoch > 0 or runner.iter > 0
        previous = self._previous_run(work_dir) if resumed else None
        tags = {**run_params.runtime_tags(),
                settings.TAG_SCENE: self.scene, settings.TAG_STEP: self.step, settings.TAG_METHOD: self.method,
                settings.TAG_VARIANT: self.variant, "lcp.work_dir": str(work_dir.resolve()),
                "lcp.config_file": self.config_file, "mlflow.source.name": "lcp train"}
        seed = (runner.meta or {}).get("seed", self.cfg.get("seed") if self.cfg else None)
        if seed is not None:  # the seed this training really uses, whatever LCP_SEED says
            tags[settings.TAG_SEED] = str(seed)
        parent = settings.parent_run_ids().get(self.scene)
        if parent:
            tags["mlflow.parentRunId"] = parent
        if previous:
            tags[settings.TAG_RUN_KEY] = previous["run_key"]
        self.run = TrackedRun(experiment=settings.experiment_name(self.scene), run_name=self.run_name,
                              work_dir=work_dir, tags=tags, tracking_uri=self.tracking_uri,
                              run_id=previous.get("run_id") if previous else None,
                              flush_secs=self.flush_secs, retry_secs=self.retry_secs).start()
        self._save_run_file(work_dir)
        if previous:
            self.run.set_tags({f"lcp.resumed_at_epoch.{runner.epoch:03d}": runner.iter})
        else:
            self.run.log_params(self._params(runner))
            if self.cfg is not None:
                config_copy = work_dir / ARTIFACT_DIR / "config.py"
                write_text(config_copy, self.cfg.pretty_text)
                self.run.log_artifact(config_copy, "config")
        runner.logger.addHandler(self._capture)
        atexit.register(self._on_exit)

    def after_run(self, runner) -> None:
        if self.run is None:
            return
        runner.logger.removeHandler(self._capture)
        atexit.unregister(self._on_exit)
        work_dir = Path(runner.work_dir)
        self.run.set_tags(self._crux_health_tags(runner))
        self.run.flush()
        self._log_heatmaps(runner, work_dir)
        checkpoint = self._final_checkpoint(work_dir)
        if checkpoint:
            self.run.set_tags({"lcp.checkpoint": str(checkpoint)})
            if self.log_checkpoint:
                self.run.log_artifact(checkpoint, "checkpoints")
        timestamp = getattr(runner, "timestamp", None)
        for suffix in (".log", ".log.json"):
            if timestamp and (work_dir / f"{timestamp}{suffix}").is_file():
                self.run.log_artifact(work_dir / f"{timestamp}{suffix}", "logs")
        self.run.finish("FINISHED")
        self._save_run_file(work_dir)

    def _on_exit(self) -> None:
        """The process ends without after_run (training raised): close the run as FAILED."""
        if self.run is not None and not self.run.finished:
            self.run.finish("FAILED")

    # ---- per iteration and per epoch ------------------------------------------------

    def before_train_epoch(self, runner) -> None:
        super().before_epoch(runner)
        self._epoch_images = self._point_images = 0
        self._epoch_timed = False

    def before_train_iter(self, runner) -> None:
        # timed from the first iteration: mmcv's EpochBasedRunner sleeps 2 s after before_train_epoch
        if not self._epoch_timed:
            self._epoch_timed = True
            self._epoch_start = self._last_point = self._last_iter_end = time.perf_counter()

    def after_train_iter(self, runner) -> None:
        if self.run is not None:
            images = int((runner.outputs or {}).get("num_samples", 0)) * get_dist_info()[1]
            self._epoch_images += images
            self._point_images += images
            self._last_iter_end = time.perf_counter()
            due = (self.every_n_inner_iters(runner, self.interval) if self.by_epoch
                   else self.every_n_iters(runner, self.interval))
            if due:
                self._log_iteration(runner)
            if not self.by_epoch and self._has_eval_results(runner):  # IterBasedRunner evaluates here
                self._log_eval(runner, runner.iter + 1)
        # the buffer's averages belong to the text logger; the last logger hook clears them
        if runner.log_buffer.ready and self.reset_flag:
            runner.log_buffer.clear_output()

    def after_train_epoch(self, runner) -> None:
        if self.run is not None:
            epoch = runner.epoch + 1  # mmcv counts the epoch as done only after these hooks
            self._log_epoch(runner, epoch)
            if self._has_eval_results(runner):
                self._log_eval(runner, epoch)
            self.run.flush()
        if runner.log_buffer.ready and self.reset_flag:
            runner.log_buffer.clear_output()

    def log(self, runner) -> None:
        """Called by LoggerHook for a ('val', n) workflow epoch: its averages are eval metrics."""
        if self.run is not None and self.get_mode(runner) == "val":
            self._log_eval(runner, self.get_epoch(runner))

    def _log_iteration(self, runner) -> None:
        metrics = {}
        for name, value in ((runner.outputs or {}).get("log_vars") or {}).items():
            if self.is_scalar(value):
                metrics[run_params.safe_key(f"train/{name}")] = float(value)
        for name, value in {**self.get_lr_tags(runner), **self.get_momentum_tags(runner)}.items():
            name = name.replace("learning_rate", "lr")
            metrics[run_params.safe_key(f"train/{name}")] = float(value)
        elapsed = self._last_iter_end - self._last_point
        if elapsed > 0 and self._point_images:
            metrics["train/img_per_s"] = self._point_images / elapsed
        self._last_point, self._point_images = self._last_iter_end, 0
        self.run.log_metrics(metrics, step=runner.iter + 1)

    def _log_epoch(self, runner, epoch: int) -> None:
        metrics = {}
        train_time = self._last_iter_end - self._epoch_start
        if train_time > 0:
            metrics["epoch/train_time_s"] = train_time
            metrics["epoch/img_per_s"] = self._epoch_images / train_time
        mode = getattr(getattr(runner.model, "module", runner.model), "train_mode", None)
        if mode in TRAIN_MODE_VALUE:
            metrics["epoch/crux_learner_mode"] = TRAIN_MODE_VALUE[mode]
            self.run.set_tags({f"lcp.train_mode.epoch_{epoch:03d}": mode})
        import torch

        if torch.cuda.is_available():
            metrics["epoch/peak_gpu_mem_mib"] = torch.cuda.max_memory_allocated() / 2**20
        health = self._health_hook(runner)
        if health is not None:
            for name, value in health.epochs.get(epoch, {}).items():
                metrics[f"epoch/crux_{name}"] = float(value)
        self.run.log_metrics(metrics, step=epoch)

    def _has_eval_results(self, runner) -> bool:
        """mmcv's own test (LoggerHook.get_mode): a ready buffer without train timing holds eval results."""
        return runner.log_buffer.ready and self.get_mode(runner) == "val"

    def _log_eval(self, runner, step: int) -> None:
        """Numeric eval results of the log buffer, and the class-wise AP mmdet logged as a table."""
        metrics = {}
        train_keys = set(((runner.outputs or {}).get("log_vars") or {}))
        for name, value in runner.log_buffer.output.items():
            if name in NOT_EVAL_KEYS or name in train_keys or name.startswith(HEALTH_PREFIX):
                continue
            if isinstance(value, dict):  # a dataset that returns {class: AP} itself
                for cls, ap in value.items():
                    if self.is_scalar(ap):
                        metrics[run_params.safe_key(f"val/{name}/{cls}")] = float(ap)
            elif self.is_scalar(value):
                metrics[run_params.safe_key(f"val/{name}")] = float(value)
        for metric, table in self._capture.pop().items():
            for cls, ap in table.items():
                metrics[run_params.safe_key(f"val/{metric}_AP/{cls}")] = ap
        if metrics and step != self._last_eval_step:
            self.run.log_metrics(metrics, step=step)
            self.run.flush()
            self._last_eval_step = step

    # ---- helpers --------------------------------------------------------------------

    @staticmethod
    def _health_hook(runner):
        from lcp.hooks.crux_health import find_health_hook

        return find_health_hook(runner)

    def _crux_health_tags(self, runner) -> dict[str, Any]:
        """lcp.crux_health and lcp.crux_verdict from CruxHealthHook's verdict (its after_run runs first)."""
        from lcp.tracking.api import crux_health_tags

        health = self._health_hook(runner)
        if health is None or health.final_stats is None:
            return {}
        return crux_health_tags({"collapsed": health.verdict is not None, "verdict": health.verdict})

    @staticmethod
    def _resolved_config(runner):
        """The config the runner trains with, from runner.meta['config'] (mmdet's train tools set it)."""
        text = (runner.meta or {}).get("config")
        if not text:
            return None
        from mmcv import Config

        try:
            return Config.fromstring(text, ".py")
        except Exception as exc:  # noqa: BLE001  params are a record, not worth stopping training for
            log.warning("MLflow: could not read the config from runner.meta (%s); config params not logged", exc)
            return None

    def _params(self, runner) -> dict[str, Any]:
        meta = runner.meta or {}
        params: dict[str, Any] = {"scene": self.scene, "step": self.step, "method": self.method,
                                  "seed": meta.get("seed", self.cfg.get("seed") if self.cfg else None)}
        if self.variant:
            params["variant"] = self.variant
        sidecars = list(self.sidecars)
        if self.cfg is not None:
            params.update(run_params.config_params(self.cfg))
            data = self.cfg.get("data") or {}
            params.update(run_params.data_params(data))
            sidecars += [str(path) for path in run_params.sidecars_of(data)]
        try:
            params.update(run_params.degradation_params(list(dict.fromkeys(sidecars))))
        except Exception as exc:  # noqa: BLE001  an unreadable sidecar must not stop training
            log.warning("MLflow: degradation params not logged: %s", exc)
        params.update(run_params.package_versions())
        params.update(run_params.git_state())
        return params

    def _previous_run(self, work_dir: Path) -> dict[str, Any] | None:
        path = work_dir / RUN_FILE
        if not path.is_file():
            return None
        try:
            previous = read_json(path)
        except Exception:  # noqa: BLE001  a damaged record: start a new run
            return None
        if previous.get("run_name") != self.run_name or not previous.get("run_key"):
            return None
        return previous

    def _save_run_file(self, work_dir: Path) -> None:
        write_json(work_dir / RUN_FILE, {"run_key": self.run.run_key, "run_id": self.run.run_id,
                                         "run_name": self.run_name, "experiment": self.run.experiment,
                                         "tracking_uri": self.run.tracking_uri})

    def _log_heatmaps(self, runner, work_dir: Path) -> None:
        model = getattr(runner.model, "module", runner.model)
        test_cfg = ((self.cfg or {}).get("data") or {}).get("test")
        if self.num_heatmaps <= 0 or not hasattr(model, "crux_learner") or not test_cfg:
            return
        from lcp.tracking.heatmaps import save_crux_heatmaps

        out_dir = work_dir / ARTIFACT_DIR / "crux_heatmaps"
        try:
            save_crux_heatmaps(model, test_cfg, out_dir, self.num_heatmaps)
        except Exception as exc:  # noqa: BLE001  pictures are a courtesy, not worth a failed run
            log.warning("MLflow: crux heat maps not made: %s", exc)
            return
        self.run.log_artifact(out_dir, "crux_heatmaps")

    @staticmethod
    def _final_checkpoint(work_dir: Path) -> Path | None:
        latest = work_dir / "latest.pth"
        if latest.exists():
            return latest.resolve()
        numbered = sorted(work_dir.glob("epoch_*.pth"), key=lambda p: p.stat().st_mtime)
        return numbered[-1].resolve() if numbered else None
