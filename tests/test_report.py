"""The report is built from records alone, with the published numbers beside ours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from semillero.config.compose import compose, validate
from semillero.records import find_records
from semillero.report import build, report_study
from tests.conftest import REPO
from tests.helpers.records import screening_record

REPORT = validate(compose(["experiment=gpt2_screening"])).report
assert REPORT is not None


def test_report_from_records(tmp_path: Path) -> None:
    for r in [
        screening_record("distilgpt2", 5.1, hub_id="distilbert/distilgpt2"),
        screening_record("gpt2-small-es", 4.3, hub_id="datificate/gpt2-small-spanish"),
        screening_record("gpt-neo-125m", 4.9, hub_id="EleutherAI/gpt-neo-125M"),
        screening_record("spanish-gpt2", 0.0, hub_id="mrm8488/spanish-gpt2", status="failed"),
    ]:
        r.write(tmp_path / r.run_name)
    text = build(find_records(tmp_path), REPORT, tmp_path, REPO)

    table = pd.read_csv(tmp_path / "report.csv")
    assert list(table["model"]) == ["gpt2-small-es", "gpt-neo-125m", "distilgpt2"]  # by loss
    assert table.loc[0, "published_train_loss"] == 4.4004  # from experiments/.../reference.csv
    assert table.loc[2, "published_train_runtime"] == 16.16
    assert "**Winner by train_loss:** gpt2-small-es (4.3000)" in text
    assert "**Published winner:** gpt2-small-es (4.4004)" in text
    assert "spanish-gpt2" in text.split("## Runs not finished")[1]  # the failed run is listed
    assert "Tiny scale" not in text
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.md").read_text() == text


def test_report_keeps_to_the_current_grid(tmp_path: Path) -> None:
    """Runs of an older config of the study, and attempts set aside by FORCE, stay out."""
    current = screening_record("gpt2-small-es", 4.3, hub_id="datificate/gpt2-small-spanish")
    current.write(tmp_path / current.run_name)
    screening_record("gpt2-small-es", 9.9).write(tmp_path / f"{current.run_name}.replaced-1")
    stale = screening_record("distilgpt2", 1.0, hub_id="distilbert/distilgpt2")
    stale.write(tmp_path / "distilgpt2__spanish-poetry__clm__0123456789ab")
    report_study(tmp_path, REPORT, REPO, names={current.run_name})
    table = pd.read_csv(tmp_path / "report.csv")
    assert list(table["model"]) == ["gpt2-small-es"] and table.loc[0, "train_loss"] == 4.3


def test_a_report_names_the_settings_every_run_was_given(tmp_path: Path) -> None:
    runs = [
        screening_record("distilgpt2", 5.1, hub_id="distilbert/distilgpt2"),
        screening_record("gpt2-small-es", 4.3, hub_id="datificate/gpt2-small-spanish"),
    ]
    for r, model in zip(runs, ("distilgpt2", "gpt2-small-es"), strict=True):
        study = ["experiment=gpt2_screening", "scale=tiny"]
        r.overrides = [*study, f"model={model}", "trainer.max_steps=3"]
        r.write(tmp_path / r.run_name)
    text = build(find_records(tmp_path), REPORT, tmp_path, REPO)
    assert "on top of the study's: `trainer.max_steps=3`. The published" in text
    assert "`model=" not in text and "`scale=" not in text  # the grid and the study are not


def test_a_report_without_extra_settings_says_nothing_of_them(tmp_path: Path) -> None:
    r = screening_record("gpt2-small-es", 4.3, hub_id="datificate/gpt2-small-spanish")
    r.overrides = ["experiment=gpt2_screening", "model=gpt2-small-es"]
    r.write(tmp_path / r.run_name)
    assert "command line" not in build(find_records(tmp_path), REPORT, tmp_path, REPO)
