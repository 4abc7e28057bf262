"""Weights & Biases: one W&B run per semillero run, grouped by study.

Keys come from the environment only (WANDB_API_KEY); nothing here reads or logs them.
Without a key the run is written offline under <study folder>/wandb/, for `wandb sync`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from semillero.config.schema import TrackerConfig

log = logging.getLogger(__name__)


def resolve_mode(mode: str) -> str:
    """auto -> online when a key is in the environment, else offline.

    >>> resolve_mode("offline")
    'offline'
    """
    if mode != "auto":
        return mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


class Tracker:
    """No tracker: every method does nothing. The record is still written."""

    report_to: list[str] = []  # noqa: RUF012 - read-only class default
    info: dict[str, Any] = {}  # noqa: RUF012

    def replay(self, history: list[dict[str, Any]]) -> None:
        pass

    def log_samples(self, prompt: str, samples: list[str]) -> None:
        pass

    def log_summary(self, metrics: dict[str, Any]) -> None:
        pass

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        pass

    def finish(self, ok: bool) -> None:
        pass


class WandbTracker(Tracker):
    report_to = ["wandb"]  # noqa: RUF012 - Trainer's WandbCallback logs into our run

    def __init__(
        self,
        cfg: TrackerConfig,
        *,
        name: str,
        run_id: str,
        group: str,
        tags: list[str],
        config: dict[str, Any],
        folder: Path,
        resuming: bool = False,
    ) -> None:
        import wandb

        mode = resolve_mode(cfg.mode)
        folder.mkdir(parents=True, exist_ok=True)
        if mode == "offline" and resuming:
            # An offline run cannot be continued in place: the killed attempt's folder is
            # renamed out of `wandb sync`'s offline-run-* glob, and the new attempt replays
            # the history up to the checkpoint, so one folder holds one clean history.
            for old in (folder / "wandb").glob(f"offline-run-*-{run_id}"):
                old.rename(old.with_name(f"superseded-{old.name}"))
        self._wandb = wandb
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=group,
            name=name,
            id=run_id,
            tags=tags,
            config=config,
            dir=str(folder),
            mode=mode,  # type: ignore[arg-type]
            resume="allow",
            settings=wandb.Settings(silent=True, console="off"),
        )
        self.info = {"mode": mode, "path": self.run.path, "dir": str(Path(self.run.dir).parent)}
        log.info("W&B %s run %s (%s)", mode, self.run.path, self.info["dir"])

    def replay(self, history: list[dict[str, Any]]) -> None:
        """Logs a resumed offline run's history up to its checkpoint, as WandbCallback logged
        it. (An online run resumed by id already holds those steps on the server.)"""
        from transformers.integrations.integration_utils import rewrite_logs

        if self.info["mode"] != "offline":
            return
        for entry in history:
            logs = {k: v for k, v in entry.items() if k != "step"}
            self.run.log({**rewrite_logs(logs), "train/global_step": entry["step"]})

    def log_samples(self, prompt: str, samples: list[str]) -> None:
        table = self._wandb.Table(columns=["prompt", "sample"], data=[[prompt, s] for s in samples])
        self.run.log({"samples": table})

    def log_table(self, name: str, rows: list[dict[str, Any]]) -> None:
        """A list of same-keyed rows as a W&B table (e.g. samples with their rewards)."""
        if not rows:
            return
        keys = list(rows[0])
        columns: list[str | int] = list(keys)
        table = self._wandb.Table(columns=columns, data=[[r.get(k) for k in keys] for r in rows])
        self.run.log({name: table})

    def log_summary(self, metrics: dict[str, Any]) -> None:
        self.run.summary.update({f"final/{k}": v for k, v in metrics.items()})

    def finish(self, ok: bool) -> None:
        self.run.finish(exit_code=0 if ok else 1)


def make_tracker(cfg: TrackerConfig, **kwargs: Any) -> Tracker:
    if cfg.name == "none" or resolve_mode(cfg.mode) == "disabled":
        return Tracker()
    return WandbTracker(cfg, **kwargs)
