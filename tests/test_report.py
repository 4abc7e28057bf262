"""The report is built from records alone, with the published numbers beside ours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from semillero.config.compose import compose, validate
from semillero.records import RunRecord, find_records
from semillero.report import build
from tests.conftest import REPO

REPORT = validate(compose(["experiment=gpt2_screening"])).report
assert REPORT is not None


def record(name: str, hub_id: str, loss: float, status: str = "done") -> RunRecord:
    return RunRecord(
        run_name=f"{name}__spanish-poetry__clm__{abs(hash(name)) % 10**12:012d}",
        config_hash="0" * 12,
        study="gpt2_screening",
        scale="full",
        seed=42,
        status=status,  # type: ignore[arg-type]
        error=None if status == "done" else "RuntimeError: CUDA out of memory",
        config={"model": {"name": name, "hub_id": hub_id}, "dataset": {"name": "spanish-poetry"}},
        metrics={
            "train_loss": loss,
            "train_runtime": 20.0,
            "eval_loss": loss - 0.2,
            "perplexity": 2.0,
        },
        samples=[f"En el silencio de la noche {name}"],
        device="cuda: test",
    )


def test_report_from_records(tmp_path: Path) -> None:
    for r in [
        record("distilgpt2", "distilbert/distilgpt2", 5.1),
        record("gpt2-small-es", "datificate/gpt2-small-spanish", 4.3),
        record("gpt-neo-125m", "EleutherAI/gpt-neo-125M", 4.9),
        record("spanish-gpt2", "mrm8488/spanish-gpt2", 0.0, status="failed"),
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
