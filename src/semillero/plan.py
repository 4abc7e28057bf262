"""`semillero plan`: validate and list every run of a study before it spends GPU time.

Nothing here imports torch, transformers or datasets: composing, validating and checking
paths is enough to catch a typo before a sweep starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

from semillero.config.compose import compose, expand_grid, run_dir, validate
from semillero.config.schema import CorpusConfig, DatasetConfig, RunConfig
from semillero.data.source import check_source, resolve_source
from semillero.errors import SemilleroError
from semillero.models.source import model_source
from semillero.records import RECORD, read_record


@dataclass
class GridPoint:
    overrides: list[str]
    run: RunConfig | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.run is None:
            return "invalid"
        path = run_dir(self.run) / RECORD
        return read_record(path).status if path.is_file() else "new"


def preflight(run: RunConfig) -> None:
    """Checks that need no data and no model: local paths exist, sources resolve."""
    model_source(run.model, run.scale)
    for source in data_sources(run):
        check_source(source, resolve_source(source, run.scale))


def data_sources(run: RunConfig) -> list[DatasetConfig]:
    """Every data source a run reads: its data set or corpus members, and the shared split."""
    sources = (
        list(run.dataset.sources.values())
        if isinstance(run.dataset, CorpusConfig)
        else [run.dataset]
    )
    return sources + ([run.shared_eval.source] if run.shared_eval else [])


def plan_grid(overrides: Sequence[str]) -> list[GridPoint]:
    """Composes and validates every grid point; errors are kept, not raised."""
    points = []
    for point in expand_grid(overrides):
        try:
            run = validate(compose(point))
            preflight(run)
            points.append(GridPoint(point, run))
        except SemilleroError as exc:
            points.append(GridPoint(point, error=str(exc)))
    return points


def describe(points: list[GridPoint]) -> str:
    rows = []
    for i, p in enumerate(points, 1):
        if p.run is None:
            rows.append([i, " ".join(p.overrides), "INVALID", "", "", "", "", ""])
            continue
        r, t = p.run, p.run.trainer
        model = f"twin of {r.model.hub_id}" if r.scale == "tiny" else r.model.path or r.model.hub_id
        params = f"{r.model.facts.parameters_m}M" if r.model.facts.parameters_m else "?"
        rows.append(
            [
                i,
                run_dir(r).name,
                p.status,
                model,
                params,
                f"{r.dataset.name} {r.dataset.max_train_samples or 'all'}/"
                f"{r.dataset.max_eval_samples or 'all'}",
                f"{r.method.name} ep={t.num_train_epochs:g} steps={t.max_steps} "
                f"bs={t.per_device_train_batch_size}x{t.gradient_accumulation_steps} "
                f"lr={t.learning_rate:g}",
                "bf16" if t.bf16 else "fp16" if t.fp16 else "fp32",
            ]
        )
    head = ["#", "run", "status", "model", "params", "data train/eval", "method", "precision"]
    text = tabulate(rows, headers=head, tablefmt="simple")
    errors = [f"  #{i}: {p.error}" for i, p in enumerate(points, 1) if p.error]
    if errors:
        text += "\n\nInvalid grid points:\n" + "\n".join(errors)
    return text
