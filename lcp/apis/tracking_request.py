"""What a tracked `lcp train` or `lcp test` asks MLflow for: the run's name parts, the store, and
whether the final checkpoint is uploaded (lcp.commands.tracking_flags makes one from the flags)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrackingRequest:
    step: str
    scene: str | None = None
    method: str | None = None
    variant: str | None = None
    tracking_uri: str | None = None
    log_checkpoint: bool = False

    def run_names(self, cfg) -> dict[str, Any]:
        """scene/step/method/variant of a run of `cfg`, defaults filled in; LCPError for a bad
        name or store (lcp.tracking.api.run_names), before any work."""
        from lcp.tracking.api import run_names

        return run_names(
            cfg,
            scene=self.scene,
            step=self.step,
            method=self.method,
            variant=self.variant,
            tracking_uri=self.tracking_uri,
        )
