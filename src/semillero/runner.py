"""One run, start to end: check, load data, record, build, train, evaluate, record.

Bad input fails before anything is written: config and source checks first, then the data
is loaded and cleaned, and only then does the run get a record and a W&B run. Anything
that fails after that point leaves the record marked `failed`, with its traceback beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from transformers import set_seed

from semillero.config.compose import conf_dir, run_dir, run_hash, run_name
from semillero.config.schema import RunConfig
from semillero.data.prepare import prepare_data
from semillero.data.tokenize import tokenize
from semillero.evaluation.generate import generate_samples
from semillero.methods import clm
from semillero.models.loader import load_model
from semillero.models.twin import twin_class
from semillero.plan import preflight
from semillero.records import RunRecord, device_name, git_state, now, stack_versions
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


def execute(run: RunConfig, config: dict[str, Any], overrides: list[str]) -> RunRecord:
    """Runs one composed, validated config and returns its final record."""
    timer = Timer()
    folder = run_dir(run)
    preflight(run)
    if run.scale == "tiny":
        twin_class(run.model)  # a typo in the twin's shape fails here, not after the record
    with timer.stage("load_data"):
        splits, data_info = prepare_data(run)
    print(
        f"[semillero] {run_name(run)}: {data_info['train_rows']} train / "
        f"{data_info['eval_rows']} eval rows; dropped {data_info['rows_dropped']} blank "
        f"of {data_info['rows_in']}",
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
        device=device_name(),
        precision=resolve_precision(run.trainer)[2],
        data=data_info,
    )
    record.write(folder)
    tracker = Tracker()  # replaced below; a failing W&B start must still close the record
    try:
        tracker = make_tracker(
            run.tracker,
            name=folder.name,
            run_id=record.config_hash,
            group=run.study,
            tags=[run.scale, run.model.name, run.dataset.name, run.method.name],
            config=config | {"config_hash": record.config_hash},
            folder=folder.parent,
        )
        record.wandb = dict(tracker.info)
        set_seed(run.seed)  # before the model is built: a twin's random init is seeded too
        with timer.stage("load_model"):
            loaded = load_model(run.model, run.scale, run.paths.cache_dir)
        record.model = {
            "source": loaded.source,
            "class": type(loaded.model).__name__,
            "parameters": loaded.parameters,
            "pad_token": loaded.pad_token,
        }
        with timer.stage("tokenise"):
            tokens = tokenize(
                splits,
                loaded.tokenizer,
                run.dataset.text_column,
                run.method.max_length,
                run.method.padding,
            )
        record.data["fingerprints"] = {name: ds._fingerprint for name, ds in tokens.items()}
        record.write(folder)

        with timer.stage("train"):
            metrics, record.history = clm.train(
                run, loaded, tokens, folder / "trainer", tracker.report_to
            )
        with timer.stage("generate"):
            record.samples = generate_samples(
                loaded.model, loaded.tokenizer, run.method.generation, run.seed
            )
        record.metrics = metrics
        timer.timings["eval"] = metrics["eval_runtime"]
        tracker.log_summary(metrics)
        tracker.log_samples(run.method.generation.prompt, record.samples)
        record.status = "done"
    except BaseException as exc:
        record.fail(exc, folder)
        raise
    finally:
        record.timings = timer.timings
        record.finished_at = record.finished_at or now()
        record.write(folder)
        tracker.finish(ok=record.status == "done")
    print(
        f"[semillero] {folder.name}: loss {metrics['train_loss']:.4f}, eval loss "
        f"{metrics['eval_loss']:.4f}, {metrics['train_runtime']:.1f}s -> {folder / 'record.json'}",
        flush=True,
    )
    return record
