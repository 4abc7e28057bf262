"""`model=from:<study>` takes the winner of another study from its records."""

from __future__ import annotations

from pathlib import Path

import pytest

from semillero.config.compose import compose, validate
from semillero.errors import ConfigError
from semillero.selection import resolve_model_from
from tests.helpers.records import screening_record


def write(folder: Path, model: str, loss: float, status: str = "done") -> None:
    record = screening_record(model, loss, status=status, scale="tiny")
    record.write(folder / record.run_name)


def test_the_winner_by_the_studys_own_metric_is_taken(isolated: Path) -> None:
    study = isolated / "tiny" / "gpt2_screening"
    write(study, "distilgpt2", 5.3)
    write(study, "gpt-neo-125m", 4.7)
    write(study, "spanish-gpt2", 1.0, status="failed")  # not finished: ignored
    overrides = resolve_model_from(["scale=tiny", "model=from:gpt2_screening"])
    assert overrides[:2] == ["scale=tiny", "model=gpt-neo-125m"]
    run = validate(compose([*overrides, "experiment=poetry_vs_combined"]))
    assert run.model.name == "gpt-neo-125m"
    assert run.model_from and run.model_from.startswith("gpt2_screening winner by train_loss")


def test_no_finished_runs_names_the_command_to_run(isolated: Path) -> None:
    with pytest.raises(ConfigError, match="make sweep EXP=gpt2_screening SCALE=tiny"):
        resolve_model_from(["scale=tiny", "model=from:gpt2_screening"])


def test_other_overrides_pass_through() -> None:
    assert resolve_model_from(["model=distilgpt2", "seed=3"]) == ["model=distilgpt2", "seed=3"]
