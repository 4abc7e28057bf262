"""The run record: `record.json` in each run's folder, the contract everything else reads.

It is written atomically (a temporary file, then os.replace), so a reader sees either the
previous complete record or the new complete one, never half of one.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from semillero.files import atomic_write_text

RECORD = "record.json"
STACK = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "hydra-core", "wandb")
Status = Literal["running", "done", "failed", "interrupted"]


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    run_name: str
    config_hash: str
    study: str
    scale: str
    status: Status = "running"
    attempt: int = 1  # 2 and up: resumed (or restarted) after a kill, failure or Ctrl-C
    resumed_from: str | None = None  # the Trainer checkpoint this attempt started from
    error: str | None = None
    traceback_file: str | None = None
    started_at: str = Field(default_factory=lambda: now())
    finished_at: str | None = None
    seed: int
    config: dict[str, Any]  # the resolved config: enough to re-run this run
    overrides: list[str] = Field(default_factory=list)
    git: dict[str, Any] = Field(default_factory=dict)
    stack: dict[str, str | None] = Field(default_factory=dict)
    image: dict[str, Any] = Field(default_factory=dict)  # the container and its lock, if any
    device: str = ""
    precision: str = ""
    model: dict[str, Any] = Field(default_factory=dict)  # source, parameters, pad token
    data: dict[str, Any] = Field(default_factory=dict)  # source, fingerprints, rows, drops
    metrics: dict[str, Any] = Field(default_factory=dict)
    samples: list[str] = Field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # a method's tables
    artifacts: dict[str, str] = Field(default_factory=dict)  # name -> path (adapter, model)
    history: list[dict[str, Any]] = Field(default_factory=list)  # Trainer's log, for curves
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    wandb: dict[str, Any] = Field(default_factory=dict)  # run path, mode, folder
    # strategy, processes, backend, global batch, launch files (method.distributed)
    distributed: dict[str, Any] = Field(default_factory=dict)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(folder / RECORD, self.model_dump_json(indent=2))

    def fail(self, exc: BaseException, folder: Path) -> None:
        """Marks the run failed (or interrupted, for Ctrl-C); the traceback goes beside it."""
        tb = folder / "traceback.txt"
        folder.mkdir(parents=True, exist_ok=True)
        tb.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        self.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        self.error = f"{type(exc).__name__}: {exc}"
        self.traceback_file = str(tb)
        self.finished_at = now()


def read_record(path: Path) -> RunRecord:
    return RunRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))


def find_records(folder: Path, names: set[str] | None = None) -> list[RunRecord]:
    """The records of a study folder, oldest first: those of the run folders in `names`
    when given (the study's current grid), never those of attempts set aside by FORCE."""
    paths = [p for p in sorted(folder.glob(f"*/{RECORD}")) if ".replaced-" not in p.parent.name]
    if names is not None:
        paths = [p for p in paths if p.parent.name in names]
    return sorted((read_record(p) for p in paths), key=lambda r: r.started_at)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_state(repo: Path) -> dict[str, Any]:
    """Commit and dirty flag of the checkout that ran (untracked files do not count)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def image_info() -> dict[str, Any]:
    """The container image a run is in: the JSON its Dockerfile wrote at build time.

    Names the image, the commit it was built from and the sha256 of the lock it installed, so
    a result says which exact stack made it. Empty outside an image.
    """
    path = os.environ.get("SEMILLERO_IMAGE_INFO")
    if not path:
        return {}
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"error": f"SEMILLERO_IMAGE_INFO={path} is unreadable: {exc}"}
    return info if isinstance(info, dict) else {"error": f"{path} holds no JSON object"}


def stack_versions() -> dict[str, str | None]:
    import torch

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in STACK:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["cuda"] = torch.version.cuda
    return versions


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
