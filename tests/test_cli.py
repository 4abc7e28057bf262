"""The `semillero` command as a user runs it: plan, and bad input that must leave no
finished record behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from semillero.records import RECORD, read_record
from tests.conftest import REPO, SCREENED_HUB_IDS

SEMILLERO = str(Path(sys.executable).parent / "semillero")


def semillero(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEMILLERO, *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy()
    )


def finished(outputs: Path) -> list[Path]:
    return [p for p in outputs.rglob(RECORD) if read_record(p).status == "done"]


def test_plan_lists_the_full_scale_runs_without_loading_data_or_weights() -> None:
    code = (
        "import sys; from semillero.cli import main\n"
        "code = main(['plan', 'EXP=gpt2_screening'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy); sys.exit(code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for hub_id in SCREENED_HUB_IDS:
        assert hub_id in out.stdout
    assert "7 runs, 0 invalid" in out.stdout
    assert "first 500 train / 100 eval rows" in out.stdout
    assert "1 epoch, batch 4x1, lr=5e-05" in out.stdout and "fp16" in out.stdout
    # transformers is imported to check the trainer settings (checks.check_recipe); no data
    # set is read and no model is built.
    assert "HEAVY ['torch', 'transformers']" in out.stdout


def test_model_typo(isolated: Path) -> None:
    out = semillero("train", "scale=tiny", "model=gtp2-small-es")
    assert out.returncode == 2
    assert "Did you mean 'gpt2-small-es'?" in out.stderr
    assert not isolated.exists()


def test_unknown_override_key(isolated: Path) -> None:
    out = semillero("train", "scale=tiny", "trainer.learnig_rate=1")
    assert out.returncode != 0
    assert "Did you mean 'learning_rate'" in out.stdout + out.stderr
    assert not finished(isolated) if isolated.exists() else True


def test_missing_local_model_path(isolated: Path, tmp_path: Path) -> None:
    out = semillero("train", "tracker=none", f"model.path={tmp_path / 'no-such-model'}")
    assert out.returncode != 0
    assert "does not exist: point it at a directory" in out.stderr
    assert not list(isolated.rglob(RECORD)) if isolated.exists() else True


BAD_CSVS = {
    "null": ("author,content,title\nA,,T\nB,verso,U\n", "null, empty or whitespace-only"),
    "blank": ('author,content,title\nA,"",T\nB,verso,U\n', "null, empty or whitespace-only"),
    "whitespace": ('author,content,title\nA,"  \n ",T\nB,verso,U\n', "null, empty or whitespace"),
    "latin1": ("author,content,title\nA,coraz\xf3n,T\n", "is not UTF-8 (byte 0xf3 on line 2)"),
    "no-content-column": ("author,poem,title\nA,verso,T\n", "no column 'content'"),
}


@pytest.mark.parametrize("kind", BAD_CSVS)
def test_bad_csv_stops_before_the_model_and_leaves_no_record(
    kind: str, isolated: Path, tmp_path: Path
) -> None:
    text, message = BAD_CSVS[kind]
    bad = tmp_path / "poems.csv"
    bad.write_bytes(text.encode("latin-1" if kind == "latin1" else "utf-8"))
    # scale=full with a hub model: if the data were not checked first, this would try to
    # load distilgpt2 from the hub (offline) and fail with a different error.
    out = semillero("train", "tracker=wandb", "model=distilgpt2", f"dataset.path={bad}")
    assert out.returncode != 0
    assert message in out.stderr
    assert "cannot load model" not in out.stderr
    assert not isolated.exists() or not list(isolated.rglob("*.json"))  # no record, no W&B


def test_report_without_runs_names_the_fix(isolated: Path) -> None:
    out = semillero("report", "EXP=gpt2_screening")
    assert out.returncode == 2
    assert "make sweep EXP=gpt2_screening SCALE=full" in out.stderr


@pytest.mark.parametrize("args", [["train", "--help"], ["bench", "-h"], ["help"]])
def test_help_after_any_command_prints_the_usage(args: list[str]) -> None:
    out = semillero(*args)
    assert out.returncode == 0
    assert "semillero sweep EXP=<study>" in out.stdout
