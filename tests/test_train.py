"""Runs end to end at tiny scale: every study, determinism, training effect, W&B, secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import set_seed

from semillero.config.compose import compose, expand_grid, group_options, validate
from semillero.data.tokenize import tokenize
from semillero.methods import clm
from semillero.models.loader import load_model
from semillero.records import RECORD, read_record
from semillero.runner import prepare_data
from tests.helpers.runs import cheap, run_tiny


def _needs(study: str) -> Any:
    """Studies through Axolotl run where its venv is (make test-axolotl)."""
    method = validate(compose([f"experiment={study}"])).method.name
    return pytest.param(study, marks=pytest.mark.axolotl) if method == "axolotl" else study


@pytest.mark.parametrize("study", [_needs(s) for s in group_options("experiment")])
def test_every_study_runs_at_tiny_scale(study: str) -> None:
    """Each grid point of each study in conf/experiment/ (recursively), made cheap."""
    for point in expand_grid([f"experiment={study}", "scale=tiny"]):
        record = run_tiny(*point)
        assert record.status == "done"
        assert record.metrics["train_steps"] == 3
        assert record.samples
        method = validate(compose(point)).method
        if method.name == "clm":
            assert record.samples[0].startswith(method.generation.prompt)


def test_training_changes_the_parameters(tmp_path: Path) -> None:
    run = validate(compose(cheap("model=gpt2-small-es")))
    splits, _ = prepare_data(run)
    set_seed(run.seed)
    loaded = load_model(run.model, run.scale, run.paths.cache_dir)
    before = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    tokens = tokenize(splits, loaded.tokenizer, "content", 64, "max_length")
    clm.train(run, loaded, tokens, tmp_path / "trainer", [])
    changed = [n for n, p in loaded.model.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) == len(before), f"unchanged: {set(before) - set(changed)}"


def test_rerun_gives_identical_losses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_tiny("model=gpt-neo-125m", "trainer.max_steps=6")
    monkeypatch.setenv("SEMILLERO_OUTPUT_DIR", str(tmp_path / "again"))
    second = run_tiny("model=gpt-neo-125m", "trainer.max_steps=6")
    for key in ("train_loss", "eval_loss"):
        torch.testing.assert_close(first.metrics[key], second.metrics[key], rtol=0, atol=0)
    assert first.samples == second.samples
    assert first.data["fingerprints"] == second.data["fingerprints"]


def test_seed_changes_the_result() -> None:
    a = run_tiny("model=distilgpt2", "seed=1")
    b = run_tiny("model=distilgpt2", "seed=2")
    assert a.metrics["train_loss"] != b.metrics["train_loss"]


def test_record_holds_the_contract(isolated: Path) -> None:
    record = run_tiny("model=distilgpt2")
    path = next(isolated.rglob(RECORD))
    assert read_record(path) == record
    assert record.status == "done" and record.finished_at
    assert record.config["model"]["hub_id"] == "distilbert/distilgpt2"
    assert len(record.config_hash) == 12 and record.config_hash in record.run_name
    assert {"torch", "transformers", "datasets", "python"} <= set(record.stack)
    assert record.device.startswith(("cpu", "cuda"))
    assert record.data["rows_dropped"] == 3 and record.data["fingerprints"]["train"]
    assert {"load_data", "load_model", "tokenise", "train", "eval"} <= set(record.timings)
    assert record.metrics["useful_tokens_per_second"] > 0
    assert record.metrics["perplexity"] == pytest.approx(2.718281828 ** record.metrics["eval_loss"])
    assert record.model["pad_token"].startswith("eos")


def test_a_run_that_fails_midway_is_recorded_as_failed(isolated: Path) -> None:
    """The model cannot be built (64 is not divisible by 3 heads): the record says failed,
    with the error, and the traceback sits beside it; nothing is marked done."""
    with pytest.raises(ValueError, match="divisible"):
        run_tiny("model=distilgpt2", "model.twin.config.n_head=3")
    record = read_record(next(isolated.rglob(RECORD)))
    assert record.status == "failed"
    assert record.error and "divisible" in record.error
    assert record.traceback_file and "Traceback" in Path(record.traceback_file).read_text()
    assert record.finished_at and "load_model" in record.timings


def test_a_tracker_that_cannot_start_still_closes_the_record(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("W&B is unreachable")

    monkeypatch.setattr("semillero.runner.make_tracker", refuse)
    with pytest.raises(ConnectionError):
        run_tiny("model=distilgpt2")
    record = read_record(next(isolated.rglob(RECORD)))
    assert record.status == "failed" and "unreachable" in (record.error or "")


def wandb_summary(run_dir: Path) -> dict:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "wandb"),
            "leet",
            "inspect",
            "--summary",
            "--json",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_wandb_offline_run_has_config_metrics_and_samples(isolated: Path) -> None:
    record = run_tiny("model=distilgpt2", "tracker=wandb", "study=wandb_check")
    assert record.wandb["mode"] == "offline"
    runs = list(Path(record.wandb["dir"]).parent.glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith(record.config_hash)
    summary = wandb_summary(runs[0])
    text = json.dumps(summary)
    assert '"hub_id": "distilbert/distilgpt2"' in text  # our resolved config
    assert "final/train_loss" in text and "samples" in text
    assert list(runs[0].glob("files/media/table/samples_*.table.json"))


def test_secrets_never_reach_outputs(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinels = {"HF_TOKEN": "hf_SENTINEL_5f3a9", "WANDB_API_KEY": "wandb_SENTINEL_77c1"}
    for key, value in sentinels.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WANDB_MODE", "offline")  # a key is set; stay offline anyway
    run_tiny("model=distilgpt2", "tracker=wandb", "tracker.mode=offline")
    for path in isolated.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in sentinels.values():
                assert value.encode() not in data, f"{value} leaked into {path}"
