"""LCPMlflowLoggerHook: an mmcv logger hook that records a training run in MLflow.

Use it through `lcp.tracking.add_tracking(cfg, ...)` (what `lcp train --track` does), or
in a config: `log_config = dict(hooks=[..., dict(type='LCPMlflowLoggerHook', scene=...,
step=..., method=...)])` with 'lcp.tracking.hook' in custom_imports.

What it records (metric steps: the global iteration for train/*, the epoch for epoch/* and val/*):
- params: scene/step/method, seed, gpus and the settings that tell runs apart
  (lcp.tracking.params.training_params: lr (the optimizer's: after --auto-scale-lr, the scaled
  one), epochs, batch, image scale, init, KL weight, crux lr_mult, mode plan), annotation
  fingerprints, degradation sidecars, package versions, git commit/dirty; the whole resolved
  config (runner.meta['config']) is the artifact config/config.py;
- dataset inputs: the train annotation file (context training) and the val/test ones
  (context evaluation), with their sha256 as digest;
- the loss terms every `interval` iterations (log_config.interval, as mmcv's logger hooks),
  each the mean over those iterations (the text log's values), one series per LCP training
  mode: train/catch_up/kl_loss, train/crux/loss_rpn_cls, ... (train/<term> for a model without
  modes); train/lr, train/momentum, train/img_per_s;
- epoch/crux_learner_mode (1 crux learner, 0 catch-up learner; also tag
  lcp.train_mode.epoch_NNN), epoch/img_per_s, epoch/train_time_s, epoch/peak_gpu_mem_mib
  (CUDA; the epoch's own peak, its evaluation included);
- epoch/crux_mask_mean, epoch/crux_mask_std, epoch/crux_mask_frac_above_half,
  epoch/crux_mask_spatial_std and epoch/crux_grad_norm when the config has CruxHealthHook
  (lcp.hooks.crux_health), and at the end the tags lcp.crux_health ("alive"/"collapsed") and
  lcp.crux_verdict (the "crux learner collapsed: ..." sentence; absent when alive);
- val/AP, val/AP50, ..., val/AP/<class> in percent after each evaluation (lcp.tracking.metrics;
  mmdet's -1 for an area range without ground truth is left out);
- system/* (CPU, memory, disk, network; GPU where nvidia-ml-py is installed) from MLflow's
  system metrics monitor, every `system_metrics_secs` (MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL);
- artifacts: the resolved config, the run's logs, crux heat-map pictures (LCP models); the
  final checkpoint as the tag lcp.checkpoint, uploaded as the artifact model/<file> with
  log_checkpoint=True or register_model=True, which also registers it as a new version of
  `lcp-<scene>-<method>` in the model registry (register_model=None: LCP_REGISTER_MODEL decides).

The log names the run, its id and where to see it in the UI when training starts.

Tracking failures never stop training (lcp.tracking.run.TrackedRun journals and replays).
A resumed training (runner.epoch > 0 at the start) continues the MLflow run recorded in
<work_dir>/mlflow-run.json (lcp.tracking.run_file). Only rank 0 logs.

The hook only gathers what the runner holds and sends it: what is recorded is computed by
lcp.tracking.training_record, images/s by lcp.tracking.throughput.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Sequence
from pathlib import Path

from mmcv.runner import HOOKS, get_dist_info
from mmcv.runner.hooks.logger import LoggerHook

from lcp.io import write_text
from lcp.tracking import params as run_params
from lcp.tracking import settings
from lcp.tracking import training_record as record
from lcp.tracking.classwise import ClasswiseCapture
from lcp.tracking.client import error_line
from lcp.tracking.run import TrackedRun
from lcp.tracking.run_file import previous_run, save_run_file, stopped_reason
from lcp.tracking.throughput import Throughput

log = logging.getLogger("lcp.tracking")

ARTIFACT_DIR = "mlflow-artifacts"
MODEL_ARTIFACT = "model"


@HOOKS.register_module()
class LCPMlflowLoggerHook(LoggerHook):
    def __init__(
        self,
        scene: str,
        step: str,
        method: str,
        variant: str | None = None,
        tracking_uri: str | None = None,
        interval: int = 1,
        log_checkpoint: bool = False,
        num_heatmaps: int = 4,
        sidecars: Sequence[str] = (),  # ignored: config copies and checkpoints written before it went hold it
        config_file: str | None = None,
        register_model: bool | None = None,
        system_metrics_secs: float = 10.0,
        flush_secs: float = 5.0,
        retry_secs: float = 30.0,
        ignore_last: bool = True,
        reset_flag: bool = False,
        by_epoch: bool = True,
    ):
        super().__init__(interval=interval, ignore_last=ignore_last, reset_flag=reset_flag, by_epoch=by_epoch)
        self.scene = scene
        self.step = step
        self.method = method
        self.variant = variant
        self.run_name = settings.run_name(scene, step, method, variant, settings.job_seed_name())  # validates
        self.tracking_uri = tracking_uri
        self.register_model = settings.register_model_wanted(register_model)
        self.log_checkpoint = log_checkpoint or self.register_model
        self.system_metrics_secs = system_metrics_secs
        self._system_metrics = None
        self.num_heatmaps = num_heatmaps
        self.config_file = config_file
        self.flush_secs = flush_secs
        self.retry_secs = retry_secs
        self.run: TrackedRun | None = None
        self.cfg = None
        self._capture = ClasswiseCapture()
        self._last_eval_step: int | None = None
        self._throughput = Throughput()
        self._loss_sums: dict[str, tuple[float, int]] = {}

    # ---- start and end --------------------------------------------------------------

    def before_run(self, runner) -> None:
        super().before_run(runner)  # makes the last logger hook reset the log buffer
        if get_dist_info()[0] != 0:
            return
        self.cfg = record.resolved_config(runner.meta)
        work_dir = Path(runner.work_dir)
        resumed = runner.epoch > 0 or runner.iter > 0
        previous = previous_run(work_dir, self.run_name) if resumed else None
        seed = record.training_seed(runner.meta, self.cfg)
        extra = {"lcp.work_dir": str(work_dir.resolve()), "lcp.config_file": self.config_file}
        if seed is not None:  # the seed this training really uses, whatever LCP_SEED says
            extra[settings.TAG_SEED] = str(seed)
        if previous:
            extra[settings.TAG_RUN_KEY] = previous["run_key"]
        tags = run_params.run_tags(self.scene, self.step, self.method, self.variant, source="lcp train", **extra)
        self.run = TrackedRun(
            experiment=settings.experiment_name(self.scene),
            run_name=self.run_name,
            work_dir=work_dir,
            tags=tags,
            tracking_uri=self.tracking_uri,
            run_id=previous.get("run_id") if previous else None,
            flush_secs=self.flush_secs,
            retry_secs=self.retry_secs,
        ).start()
        save_run_file(work_dir, self.run)
        runner.logger.info(self.run.where())
        if previous and not self.run.replaced:
            # under this run of the workflow now: its parent summarises it, and ends it if it is killed
            moved = {key: tags[key] for key in (settings.TAG_INVOCATION, "mlflow.parentRunId") if tags.get(key)}
            self.run.set_tags({f"lcp.resumed_at_epoch.{runner.epoch:03d}": runner.iter, **moved})
        else:
            self.run.log_params(
                record.start_params(
                    scene=self.scene,
                    step=self.step,
                    method=self.method,
                    variant=self.variant,
                    seed=seed,
                    gpus=get_dist_info()[1],
                    cfg=self.cfg,
                    lr=record.optimizer_lr(runner.optimizer),
                    deterministic=(runner.meta or {}).get("deterministic"),
                )
            )
            if self.cfg is not None:
                config_copy = work_dir / ARTIFACT_DIR / "config.py"
                write_text(config_copy, self.cfg.pretty_text)
                self.run.log_artifact(config_copy, "config")
                self.run.log_inputs(run_params.dataset_inputs(self.cfg.get("data") or {}, record.INPUT_CONTEXTS))
        self._system_metrics = self.run.start_system_metrics(
            self.system_metrics_secs, resumed=bool(previous and not self.run.replaced)
        )
        runner.logger.addHandler(self._capture)
        atexit.register(self._on_exit)

    def after_run(self, runner) -> None:
        if self.run is None:
            return
        self._stop_watching(runner)
        work_dir = Path(runner.work_dir)
        self.run.set_tags(self._crux_health_tags(runner))
        self.run.flush()
        self._log_heatmaps(runner, work_dir)
        checkpoint = record.final_checkpoint(work_dir)
        if checkpoint:
            self.run.set_tags({"lcp.checkpoint": str(checkpoint)})
            if self.log_checkpoint:
                self.run.log_artifact(checkpoint, MODEL_ARTIFACT)
            if self.register_model:
                self.run.register_model(
                    settings.registered_model_name(self.scene, self.method),
                    MODEL_ARTIFACT,
                    description=f"{self.run_name}: {checkpoint.name}",
                )
        self._end(runner, "FINISHED")

    def after_failed_run(self, runner, exc: BaseException) -> None:
        """runner.run raised (lcp.apis.train.train_detector calls this; mmcv's runner has no such
        point): the run ends KILLED for an interrupt (Ctrl-C, SIGTERM), FAILED otherwise, with the
        reason as a tag of the epoch it stopped in and the run's log, so the store says why."""
        if self.run is None or self.run.finished:
            return
        self._stop_watching(runner)
        status = "FAILED" if isinstance(exc, Exception) else "KILLED"  # lcp.cli's SIGTERM is no Exception
        tag = f"lcp.stopped_in_epoch.{runner.epoch + 1:03d}"  # stays true when a resume reopens the run
        self.run.set_tags({tag: stopped_reason(status, error_line(exc))})
        # rank 0 of several (lcp train --gpus N) stopped because another rank failed (by the launcher's
        # SIGTERM, or the lost connection): lcp train rewrites this tag with that rank's error
        self._end(runner, status, stopped_tag=tag)

    def _stop_watching(self, runner) -> None:
        """Undo what before_run started: the class-wise capture, the exit fallback, system metrics."""
        runner.logger.removeHandler(self._capture)
        atexit.unregister(self._on_exit)
        self._stop_system_metrics()

    def _end(self, runner, status: str, stopped_tag: str | None = None) -> None:
        """Upload the run's text and json logs, end the run with `status`, record it in the work dir."""
        work_dir = Path(runner.work_dir)
        timestamp = getattr(runner, "timestamp", None)
        for suffix in (".log", ".log.json"):
            if timestamp and (work_dir / f"{timestamp}{suffix}").is_file():
                self.run.log_artifact(work_dir / f"{timestamp}{suffix}", "logs")
        self.run.finish(status)
        save_run_file(work_dir, self.run, stopped_tag)

    def _on_exit(self) -> None:
        """The process ends without after_run (training raised): close the run as FAILED."""
        self._stop_system_metrics()
        if self.run is not None and not self.run.finished:
            self.run.finish("FAILED")

    def _stop_system_metrics(self) -> None:
        if self._system_metrics is not None:
            self._system_metrics.finish()
            self._system_metrics = None

    # ---- per iteration and per epoch ------------------------------------------------

    def before_train_epoch(self, runner) -> None:
        import torch

        super().before_epoch(runner)
        if self.run is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()  # else epoch/peak_gpu_mem_mib is the run's peak so far
        self._throughput.start_epoch()
        self._loss_sums = {}  # a logging point's means stay within one epoch, so one training mode

    def before_train_iter(self, runner) -> None:
        self._throughput.before_iteration()

    def after_train_iter(self, runner) -> None:
        if self.run is not None:
            self._throughput.after_iteration(int((runner.outputs or {}).get("num_samples", 0)) * get_dist_info()[1])
            for name, value in ((runner.outputs or {}).get("log_vars") or {}).items():
                if self.is_scalar(value):
                    total, count = self._loss_sums.get(name, (0.0, 0))
                    self._loss_sums[name] = (total + float(value), count + 1)
            due = (
                self.every_n_inner_iters(runner, self.interval)
                if self.by_epoch
                else self.every_n_iters(runner, self.interval)
            )
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
        losses = {name: total / count for name, (total, count) in self._loss_sums.items()}
        self._loss_sums = {}
        schedule = {**self.get_lr_tags(runner), **self.get_momentum_tags(runner)}
        metrics = record.iteration_metrics(losses, schedule, self._train_mode(runner), self._throughput.point_rate())
        self.run.log_metrics(metrics, step=runner.iter + 1)

    def _log_epoch(self, runner, epoch: int) -> None:
        import torch

        mode = self._train_mode(runner)
        health = self._health_hook(runner)
        metrics = record.epoch_metrics(
            train_mode=mode,
            train_time=self._throughput.epoch_time(),
            images=self._throughput.epoch_images,
            peak_gpu_mem_mib=torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            crux_stats=health.epochs.get(epoch, {}) if health is not None else {},
        )
        self.run.set_tags(record.epoch_tags(mode, epoch))
        self.run.log_metrics(metrics, step=epoch)

    def _has_eval_results(self, runner) -> bool:
        """mmcv's own test (LoggerHook.get_mode): a ready buffer without train timing holds eval results."""
        return runner.log_buffer.ready and self.get_mode(runner) == "val"

    def _log_eval(self, runner, step: int) -> None:
        """The log buffer's eval results and the class-wise AP mmdet logged as a table, once per step."""
        metrics = record.eval_metrics(
            runner.log_buffer.output, (runner.outputs or {}).get("log_vars") or {}, self._capture.pop().get("bbox", {})
        )
        if metrics and step != self._last_eval_step:
            self.run.log_metrics(metrics, step=step)
            self.run.flush()
            self._last_eval_step = step

    # ---- helpers --------------------------------------------------------------------

    @staticmethod
    def _train_mode(runner) -> str | None:
        return getattr(getattr(runner.model, "module", runner.model), "train_mode", None)

    @staticmethod
    def _health_hook(runner):
        from lcp.hooks.crux_health import find_health_hook

        return find_health_hook(runner)

    def _crux_health_tags(self, runner) -> dict[str, str | None]:
        """lcp.crux_health and lcp.crux_verdict from CruxHealthHook's verdict (its after_run runs first)."""
        from lcp.tracking.api import crux_health_tags

        health = self._health_hook(runner)
        if health is None or health.final_stats is None:
            return {}
        return crux_health_tags({"collapsed": health.verdict is not None, "verdict": health.verdict})

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
