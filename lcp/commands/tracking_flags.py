"""The MLflow tracking flags `lcp train` and `lcp test` share (--track/--no-track, --tracking-uri,
--scene, --method, --step, --variant, --log-checkpoint), and what they ask for."""

from __future__ import annotations

import argparse

from lcp.apis.tracking_request import TrackingRequest
from lcp.tracking import settings


def add_tracking_arguments(parser: argparse.ArgumentParser, default_step: str, checkpoint_upload: bool = True) -> None:
    group = parser.add_argument_group(
        "MLflow tracking",
        "On with --track, or when MLFLOW_TRACKING_URI is set (--no-track turns it off). The store is "
        "$MLFLOW_TRACKING_URI, else --tracking-uri, else results/mlflow/mlflow.db (sqlite) in the checkout.",
    )
    switch = group.add_mutually_exclusive_group()
    switch.add_argument("--track", dest="track", action="store_true", default=None, help="log this run to MLflow")
    switch.add_argument("--no-track", dest="track", action="store_false", help="do not log to MLflow")
    group.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI when MLFLOW_TRACKING_URI is not set (implies --track)",
    )
    group.add_argument(
        "--scene", help="scene name: the run goes to experiment lcp/SCENE (default: the config file's name)"
    )
    group.add_argument(
        "--method", choices=["baseline", "lcp"], help="default: lcp for an LCPDetector config, else baseline"
    )
    group.add_argument(
        "--step",
        default=default_step,
        help=f"workflow step in the run name SCENE/STEP/METHOD (default: {default_step})",
    )
    group.add_argument("--variant", help="extra run-name part, e.g. a robustness severity (beta_0.02)")
    if checkpoint_upload:
        group.add_argument(
            "--log-checkpoint",
            action="store_true",
            help="upload the final checkpoint to MLflow as the artifact model/<file> (default: its path as a tag only)",
        )


def tracking_request(args: argparse.Namespace) -> TrackingRequest | None:
    """What the flags ask MLflow for, or None when this run is not tracked."""
    if not settings.tracking_on(args.track, args.tracking_uri):
        return None
    return TrackingRequest(
        step=args.step,
        scene=args.scene,
        method=args.method,
        variant=args.variant,
        tracking_uri=args.tracking_uri,
        log_checkpoint=getattr(args, "log_checkpoint", False),  # `lcp test` uploads no checkpoint
    )
