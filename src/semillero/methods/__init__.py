"""Training methods. Each module has `run(job) -> Outcome`: the part of a run between a
loaded model and a finished record (format the data, train with the library built for
it, evaluate). The runner does the rest: checks, data, record, tracker, model, adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from semillero.config.schema import RunConfig
from semillero.models.loader import LoadedModel


@dataclass
class Job:
    run: RunConfig
    loaded: LoadedModel  # its .model carries the adapter when there is one
    splits: datasets.DatasetDict
    folder: Path  # the run's folder; Trainer writes into folder / "trainer"
    report_to: list[str]
    checkpoint: str | None  # resume from this Trainer checkpoint
    tracker: Any  # semillero.tracking.wandb.Tracker
    timings: dict[str, float]  # seconds per stage, filled in by the method
    record_data: dict[str, Any]  # record.data, for what formatting did (fingerprints, drops)


@dataclass
class Outcome:
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    samples: list[str] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path (adapter, model)


def method_runner(name: str) -> Callable[[Job], Outcome]:
    """The `run` of a method (imported late: each pulls in its own libraries)."""
    if name == "clm":
        from semillero.methods import clm

        return clm.run
    if name == "sft":
        from semillero.methods import sft

        return sft.run
    if name == "grpo":
        from semillero.methods import grpo

        return grpo.run
    if name == "axolotl":
        from semillero.methods import axolotl

        return axolotl.run
    raise ValueError(f"no method {name!r}")


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Adds the seconds spent in the block to timings[stage]."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 3)
