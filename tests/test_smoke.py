"""`make smoke` as a test: the whole tiny screening grid through the CLI (about a minute)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from semillero.records import RECORD, read_record
from tests.conftest import REPO, SCREENED_HUB_IDS


@pytest.mark.slow
def test_tiny_screening_sweep_end_to_end(isolated: Path) -> None:
    semillero = str(Path(sys.executable).parent / "semillero")
    out = subprocess.run(
        [semillero, "sweep", "EXP=gpt2_screening", "SCALE=tiny"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "7/7 runs done" in out.stdout and "winner by train_loss" in out.stdout
    study = isolated / "tiny" / "gpt2_screening"
    records = [read_record(p) for p in study.glob(f"*/{RECORD}")]
    assert sorted(r.config["model"]["hub_id"] for r in records) == sorted(SCREENED_HUB_IDS)
    assert all(r.status == "done" and r.wandb["mode"] == "offline" for r in records)
    assert len(list((study / "wandb").glob("offline-run-*"))) == 7
    table = pd.read_csv(study / "report.csv")
    assert table["published_train_loss"].notna().all()
    assert (study / "report.md").is_file() and (study / "report.png").is_file()
