"""One run, start to end: check, load data, record, build, train, evaluate, record.

Bad input fails before anything is written: config and source checks first, then the data
is loaded and cleaned, and only then does the run get a record and a W&B run. Anything
that fails after that point leaves the record marked `failed`, with its traceback beside it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from transformers import set_seed

from semillero.config.compose import conf_dir, run_dir, run_hash, run_name
from semillero.config.schema import RunConfig
from semillero.data.prepare import prepare_data
from semillero.methods import Job, method_runner
from semillero.methods.clm import LOSS_FILE
from semillero.models.adapter import attach_adapter, check_targets, meta_model, quantised_layers
from semillero.models.loader import load_model
from semillero.models.source import check_cached
from semillero.models.twin import twin_class
from semillero.plan import preflight
from semillero.records import (
    RECORD,
    RunRecord,
    device_name,
    git_state,
    image_info,
    now,
    read_record,
    stack_versions,
)
from semillero.tracking.wandb import Tracker, make_tracker
from semillero.trainer_args import resolve_precision

log = logging.getLogger(__name__)


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint that was written to the end. Trainer writes trainer_state.json
    last and RunningLoss its sum after that, so a process killed mid-save leaves a folder
    without both; transformers' get_last_checkpoint would pick that folder and fail."""
    found = []
    for path in folder.glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit():
            found.append((int(step), path))
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text())
            json.loads((path / LOSS_FILE).read_text())
        except (OSError, ValueError):
            continue
        return str(path)
    return None


def wandb_id(folder: Path, config_hash: str) -> str:
    """The run's W&B id: its config hash, so that a resumed run continues the same W&B run.
    After FORCE set earlier attempts aside, a suffix keeps the new run apart from theirs."""
    replaced = len(list(folder.parent.glob(f"{folder.name}.replaced-*")))
    return f"{config_hash}-r{replaced}" if replaced else config_hash


def execute(
    run: RunConfig, config: dict[str, Any], overrides: list[str], force: bool = False
) -> RunRecord | None:
    """Runs one composed, validated config and returns its final record.

    A run whose record says `done` is skipped (force=True sets its folder aside and runs it
    again); one that says running/failed/interrupted resumes from its last checkpoint. A
    lock per run keeps two sweeps from running the same run at once: the second skips it
    and returns None.
    """
    folder = run_dir(run)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder.parent / f".{folder.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"[semillero] {folder.name}: running in another process; skipped", flush=True)
        return None
    try:
        return _execute(run, config, overrides, force, folder)
    finally:
        lock.release()


def _previous(folder: Path) -> RunRecord | None:
    """The record a run left before, or None when it starts afresh."""
    path = folder / RECORD
    return read_record(path) if path.is_file() else None


def _set_aside(folder: Path) -> None:
    """FORCE: the earlier attempt is renamed `<run>.replaced-<time>`, never deleted. Called
    once the new attempt's checks and data have passed, so a bad input never hides a run."""
    aside = folder.with_name(f"{folder.name}.replaced-{now().replace(':', '')}")
    folder.rename(aside)
    print(f"[semillero] {folder.name}: FORCE: earlier attempt moved to {aside}", flush=True)


def _execute(
    run: RunConfig, config: dict[str, Any], overrides: list[str], force: bool, folder: Path
) -> RunRecord:
    previous = _previous(folder)
    if previous is not None and previous.status == "done" and not force:
        print(
            f"[semillero] {folder.name}: done on {previous.finished_at}; skipped "
            "(FORCE=1 runs it again)",
            flush=True,
        )
        return previous
    timer = Timer()
    preflight(run)  # paths, lengths, the trainer settings as transformers/TRL see them
    if run.scale == "tiny":
        twin_class(run.model)  # a typo in the twin's shape fails here, not after the record
    if run.adapter.type == "lora":
        skeleton = meta_model(run.model, run.scale)  # no weights: a wrong target fails here
        if skeleton is not None:
            check_targets(skeleton, run.adapter, run.model.name)
    with timer.stage("load_data"):
        splits, data_info = prepare_data(run)
    print(
        f"[semillero] {run_name(run)}: {data_info['train_rows']} train / "
        f"{data_info['eval_rows']} eval rows; dropped {data_info['rows_dropped']} blank "
        f"of {data_info['rows_in']}",
        flush=True,
    )
    check_cached(run.model, run.scale)  # offline: the hub model is in the cache
    if previous is not None and force:
        _set_aside(folder)
        previous = None
    checkpoint = last_complete_checkpoint(folder / "trainer") if previous else None
    if previous is not None:
        print(
            f"[semillero] {folder.name}: was {previous.status}; "
            + (f"resuming from {checkpoint}" if checkpoint else "no checkpoint, starting over"),
            flush=True,
        )

    record = RunRecord(
        run_name=folder.name,
        config_hash=run_hash(run),
        study=run.study,
        scale=run.scale,
        seed=run.seed,
        config=config,
        overrides=overrides,
        git=git_state(conf_dir().parent),
        stack=stack_versions(),
        image=image_info(),
        device=device_name(),
        precision=resolve_precision(run.trainer)[2],
        data=data_info,
        attempt=previous.attempt + 1 if previous else 1,
        resumed_from=checkpoint,
    )
    record.write(folder)
    try:
        if run.method.distributed.strategy == "single":
            record.distributed = {"strategy": "single", "processes": 1}
            train_and_evaluate(
                run, record, folder, checkpoint, splits, timer, lambda: record.write(folder)
            )
        else:
            from semillero.distributed import launch

            launch(run, record, folder, checkpoint, timer.timings)
        record.status = "done"
    except BaseException as exc:
        record.fail(exc, folder)  # KeyboardInterrupt is recorded as `interrupted`
        raise
    finally:
        record.timings = record.timings | timer.timings
        record.finished_at = record.finished_at or now()
        record.write(folder)
    m = record.metrics
    shown = [f"loss {m['train_loss']:.4f}"]
    shown += [f"eval loss {m['eval_loss']:.4f}"] if "eval_loss" in m else []
    shown += [f"reward {m['final_reward']:.3f}"] if m.get("final_reward") is not None else []
    print(
        f"[semillero] {folder.name}: {', '.join(shown)}, {m['train_runtime']:.1f}s -> "
        f"{folder / 'record.json'}",
        flush=True,
    )
    return record


def train_and_evaluate(
    run: RunConfig,
    record: RunRecord,
    folder: Path,
    checkpoint: str | None,
    splits: Any,
    timer: Timer,
    publish: Callable[[], object],
    main: bool = True,
) -> None:
    """The part of a run that holds the model: W&B, model, adapter, the method. Fills in
    `record` and calls `publish()` when it has something new to keep. A distributed run calls
    it in every process; only the main one (main=True) talks to W&B."""
    tracker = Tracker()  # replaced below; a failing W&B start must still finish cleanly
    ok = False
    try:
        if main:
            tracker = make_tracker(
                run.tracker,
                name=folder.name,
                run_id=wandb_id(folder, record.config_hash),
                group=run.study,
                tags=[
                    run.scale,
                    run.model.name,
                    run.dataset.name,
                    run.adapter.name,
                    run.method.name,
                ],
                config=record.config | {"config_hash": record.config_hash, "image": record.image},
                folder=folder.parent,
                resuming=checkpoint is not None,
            )
            record.wandb = dict(tracker.info)
        if checkpoint:
            state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
            tracker.replay(state["log_history"])
        set_seed(run.seed)  # before the model and the adapter are built: both are seeded
        with timer.stage("load_model"):
            loaded = load_model(
                run.model, run.scale, run.paths.cache_dir, run.adapter, folder / "twin"
            )
            if run.method.name == "axolotl":  # Axolotl builds its own adapter, in its venv
                adapter = {"built_by": "axolotl", "type": run.adapter.name, "r": run.adapter.r}
            else:
                loaded.model, adapter = attach_adapter(  # type: ignore[assignment]
                    loaded.model, run.adapter, run.model.name, run.trainer.activation_checkpointing
                )
        record.model = {
            "source": loaded.source,
            "class": type(loaded.model).__name__,
            "parameters": loaded.parameters,
            "pad_token": loaded.pad_token,
            "base": loaded.base,
            "weights": loaded.weights,
            "adapter": adapter,
        }
        if run.adapter.quantization is not None:
            record.model["layers"] = quantised_layers(loaded.model)
        publish()
        job = Job(
            run=run,
            loaded=loaded,
            splits=splits,
            folder=folder,
            report_to=tracker.report_to,
            checkpoint=checkpoint,
            tracker=tracker,
            timings=timer.timings,
            record_data=record.data,
        )
        outcome = method_runner(run.method.name)(job)
        record.metrics = outcome.metrics
        record.history = outcome.history
        record.samples = outcome.samples
        record.tables = outcome.tables
        record.artifacts = outcome.artifacts
        tracker.log_summary(outcome.metrics)
        ok = True
    finally:
        tracker.finish(ok=ok)
