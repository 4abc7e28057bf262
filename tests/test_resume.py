"""Sweeps that survive: finished runs are skipped, killed ones resume from their last
complete checkpoint, and two processes never run the same run at once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from omegaconf import OmegaConf

from semillero.config.compose import compose, expand_grid, run_dir, validate
from semillero.errors import SemilleroError
from semillero.methods.clm import LOSS_FILE
from semillero.records import RECORD, read_record
from semillero.runner import execute, last_complete_checkpoint
from tests.conftest import REPO
from tests.helpers.runs import cheap, run_tiny

SEMILLERO = str(Path(sys.executable).parent / "semillero")
KILL_HOOK = Path(__file__).parent / "helpers" / "kill_after_save"  # its sitecustomize.py


def test_a_finished_run_is_skipped() -> None:
    first = run_tiny("model=distilgpt2")
    again = run_tiny("model=distilgpt2")
    assert again == first  # the record read back, nothing re-run


def test_force_sets_the_earlier_attempt_aside(isolated: Path) -> None:
    first = run_tiny("model=distilgpt2")
    forced = run_tiny("model=distilgpt2", force=True)
    assert forced.status == "done" and forced.started_at >= first.started_at
    aside = list(isolated.rglob("*.replaced-*"))
    assert len(aside) == 1 and read_record(aside[0] / RECORD) == first


def test_force_with_bad_input_leaves_the_finished_run_in_place(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_tiny("model=distilgpt2")

    def broken(run: object) -> None:
        raise SemilleroError("the data file is broken")

    monkeypatch.setattr("semillero.runner.prepare_data", broken)
    with pytest.raises(SemilleroError, match="broken"):
        run_tiny("model=distilgpt2", force=True)
    assert not list(isolated.rglob("*.replaced-*"))
    assert read_record(next(isolated.rglob(RECORD))) == first


def test_a_run_locked_by_another_process_is_skipped(isolated: Path) -> None:
    cfg = compose(cheap("model=distilgpt2"))
    run = validate(cfg)
    folder = run_dir(run)
    folder.parent.mkdir(parents=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    with FileLock(str(folder.parent / f".{folder.name}.lock")):
        assert execute(run, config, []) is None
    assert not folder.exists()


def test_ctrl_c_is_recorded_as_interrupted(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("semillero.methods.clm.train", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_tiny("model=distilgpt2")
    record = read_record(next(isolated.rglob(RECORD)))
    assert record.status == "interrupted"


def test_an_unfinished_checkpoint_is_not_resumed_from(tmp_path: Path) -> None:
    for step, complete in ((10, True), (20, True), (30, False)):
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        if complete:
            (path / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
            (path / LOSS_FILE).write_text(f'{{"step": {step}, "sum": 1.5}}')
    (tmp_path / "checkpoint-30" / "trainer_state.json").write_text('{"global_st')  # cut short
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-20")
    assert last_complete_checkpoint(tmp_path / "none") is None


SWEEP = [
    "scale=tiny",
    "tracker=wandb",  # offline (tests never go online)
    "model=distilgpt2",
    "seed=1,2,3",
    "trainer.max_steps=40",
    "trainer.save_strategy=steps",
    "trainer.save_steps=10",
    "trainer.logging_steps=5",
    "dataset.max_train_samples=64",
    "dataset.max_eval_samples=8",
    "method.max_length=64",
]


def sweep(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEMILLERO, "train", "-m", *SWEEP], capture_output=True, text=True, cwd=REPO, env=env
    )


def weights(folder: Path) -> str:
    data = (folder / "trainer" / "checkpoint-40" / "model.safetensors").read_bytes()
    return hashlib.sha256(data).hexdigest()


def test_a_killed_sweep_resumes_where_it_stopped(isolated: Path, tmp_path: Path) -> None:
    folders = [run_dir(validate(compose(p))) for p in expand_grid(SWEEP)]
    # The sweep SIGKILLs itself once run 2 has written its first checkpoint (the hook below).
    env = os.environ.copy()
    killed = env | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(KILL_HOOK), env.get("PYTHONPATH")])),
        "SEMILLERO_TEST_KILL_AFTER_SAVE": str(folders[1] / "trainer"),
    }
    proc = subprocess.run(
        [SEMILLERO, "train", "-m", *SWEEP],
        cwd=REPO,
        env=killed,
        start_new_session=True,  # its own process group: the kill takes the sweep alone
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert last_complete_checkpoint(folders[1] / "trainer") == str(
        folders[1] / "trainer" / "checkpoint-10"
    )
    assert read_record(folders[0] / RECORD).status == "done"
    assert read_record(folders[1] / RECORD).status == "running"  # killed: never closed
    assert not (folders[2] / RECORD).exists()

    again = sweep(env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{folders[0].name}: done on" in again.stdout
    assert f"{folders[1].name}: was running; resuming from" in again.stdout
    records = [read_record(f / RECORD) for f in folders]
    assert [r.status for r in records] == ["done"] * 3
    assert records[1].attempt == 2 and records[1].resumed_from

    # The same run, never interrupted, elsewhere: the same numbers and weights, bitwise.
    env["SEMILLERO_OUTPUT_DIR"] = str(tmp_path / "uninterrupted")
    assert sweep(env).returncode == 0
    twin = tmp_path / "uninterrupted" / folders[1].relative_to(isolated)
    clean = read_record(twin / RECORD)
    for key in ("train_loss", "eval_loss", "final_train_loss", "train_steps", "perplexity"):
        assert records[1].metrics[key] == clean.metrics[key], key
    assert records[1].samples == clean.samples
    assert weights(folders[1]) == weights(twin)

    # W&B: the resumed run is one offline run with each step once; the killed attempt's
    # folder is set aside where `wandb sync offline-run-*` does not see it.
    wandb_dir = folders[1].parent / "wandb"
    live = list(wandb_dir.glob(f"offline-run-*-{records[1].config_hash}"))
    assert len(live) == 1
    assert len(list(wandb_dir.glob(f"superseded-offline-run-*-{records[1].config_hash}"))) == 1
    assert logged_steps(live[0]) == list(range(5, 45, 5))  # logging every 5 of 40 steps


def logged_steps(run_folder: Path) -> list[int]:
    """The global steps of the training-loss points in an offline W&B run."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "wandb"), "leet", "inspect", "--json", str(run_folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    steps = []
    for line in out.stdout.splitlines():
        item = json.loads(line).get("history", {}).get("item", {})
        if "train/loss" in item:
            steps.append(int(item["train/global_step"]))
    return steps
