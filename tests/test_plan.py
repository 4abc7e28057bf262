"""`semillero plan` validates the whole grid before anything runs, and says why a point
cannot run and how to fix it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from semillero.config.compose import compose, validate
from semillero.errors import ConfigError
from semillero.memory import estimate_gib
from semillero.plan import describe, plan_grid, train_steps
from tests.conftest import REPO

SEMILLERO = str(Path(sys.executable).parent / "semillero")


def test_an_invalid_point_is_listed_with_its_fix_beside_the_valid_ones() -> None:
    points = plan_grid(["model=distilgpt2,gpt-neo-125m", "model.path=/no/such/dir"])
    assert all(p.run is None for p in points)
    points = plan_grid(["model=distilgpt2,gtp2-small-es"])
    text = describe(points)
    assert "#1 distilgpt2__" in text and "[new]" in text
    assert "#2 INVALID  model=gtp2-small-es" in text and "Did you mean 'gpt2-small-es'" in text


def test_a_model_too_large_for_the_device_is_invalid() -> None:
    points = plan_grid(["model=gpt2-small-es", "model.facts.parameters_m=1000000"])
    assert points[0].run is None
    assert "more than the" in (points[0].error or "")
    assert "per_device_train_batch_size" in (points[0].error or "")


def test_flash_attention_without_cuda_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("semillero.plan.visible_device", lambda: ("cpu RAM", 24.0))
    points = plan_grid(["model=gpt2-small-es", "model.attn_implementation=flash_attention_2"])
    assert points[0].run is None and "needs a CUDA GPU" in (points[0].error or "")
    monkeypatch.setattr("semillero.plan.visible_device", lambda: ("NVIDIA H100", 80.0))
    if importlib.util.find_spec("flash_attn") is None:  # this venv: the package is missing
        [point] = plan_grid(["model=gpt2-small-es", "model.attn_implementation=flash_attention_2"])
        assert "needs the flash-attn package" in (point.error or "")
        real = importlib.util.find_spec
        monkeypatch.setattr(
            "importlib.util.find_spec",
            lambda name: object() if name == "flash_attn" else real(name),
        )
    assert plan_grid(["model=gpt2-small-es", "model.attn_implementation=flash_attention_2"])[0].run


def test_memory_grows_with_batch_and_shrinks_with_checkpointing() -> None:
    base = estimate_gib(validate(compose(["experiment=gpt2_screening"])))
    bigger = estimate_gib(
        validate(compose(["experiment=gpt2_screening", "trainer.per_device_train_batch_size=32"]))
    )
    saved = estimate_gib(
        validate(
            compose(
                [
                    "experiment=gpt2_screening",
                    "trainer.per_device_train_batch_size=32",
                    "trainer.activation_checkpointing=true",
                ]
            )
        )
    )
    assert base and bigger and saved and base < bigger and saved < bigger
    assert 1.0 < base < 4.0  # gpt2-small, batch 4, fp16: a couple of GiB


def test_steps_follow_the_seed() -> None:
    screening = validate(compose(["experiment=gpt2_screening"]))
    assert train_steps(screening) == 125  # 500 poems, batch 4
    long_run = validate(compose(["experiment=poetry_vs_combined", "dataset=spanish-poetry"]))
    assert train_steps(long_run) == 1460  # ~4614 poems, batch 32 x accum 2, 20 epochs


def test_a_hub_id_must_be_owner_slash_name() -> None:
    with pytest.raises(ConfigError, match="use the form owner/name"):
        validate(compose(["model.hub_id=gpt2small"]))


def test_text_column_must_be_one_of_the_columns() -> None:
    with pytest.raises(ConfigError, match="text_column 'poem' is not one of its columns"):
        validate(compose(["dataset.text_column=poem"]))


def test_sweep_refuses_an_invalid_grid_unless_told_to_skip(isolated: Path) -> None:
    args = [
        "sweep",
        "scale=tiny",
        "tracker=none",
        "model=distilgpt2,gtp2-small-es",
        "trainer.max_steps=2",
        "dataset.max_train_samples=8",
        "dataset.max_eval_samples=4",
        "method.max_length=32",
    ]
    refused = subprocess.run([SEMILLERO, *args], capture_output=True, text=True, cwd=REPO)
    assert refused.returncode == 2 and "None was started" in refused.stderr
    assert not isolated.exists()
    skipped = subprocess.run(
        [SEMILLERO, *args, "--skip-invalid"], capture_output=True, text=True, cwd=REPO
    )
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert "1/1 runs done in" in skipped.stdout
    again = subprocess.run(
        [SEMILLERO, *args, "--skip-invalid"], capture_output=True, text=True, cwd=REPO
    )
    assert "1/1 runs done (1 already done: skipped)" in again.stdout


def test_a_single_run_checks_flash_attention_as_plan_does(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from semillero.cli import main

    monkeypatch.setattr("semillero.plan.visible_device", lambda: ("cpu RAM", 24.0))
    assert main(["train", "SCALE=tiny", "model.attn_implementation=flash_attention_2"]) == 2
    assert "flash_attention_2 needs a CUDA GPU" in capsys.readouterr().err
    assert not isolated.exists()


def test_an_interrupted_run_without_a_checkpoint_is_not_called_resumable(isolated: Path) -> None:
    from semillero.config.compose import run_dir
    from semillero.records import RunRecord

    [point] = plan_grid(["scale=tiny"])
    assert point.run is not None and point.status == "new"
    folder = run_dir(point.run)
    record = RunRecord(
        run_name=folder.name, config_hash="x", study="adhoc", scale="tiny", seed=0, config={}
    )
    record.status = "interrupted"
    record.write(folder)
    assert point.status == "interrupted; no checkpoint: starts over"
    (folder / "trainer" / "checkpoint-5").mkdir(parents=True)
    (folder / "trainer" / "checkpoint-5" / "trainer_state.json").write_text("{}")
    (folder / "trainer" / "checkpoint-5" / "semillero_loss.json").write_text("{}")
    assert point.status == "resumable (interrupted)"


def test_a_setting_the_chosen_option_leaves_out_names_the_options_that_have_it() -> None:
    with pytest.raises(
        ConfigError, match=r"adapter\.r: the adapter chosen for this run has no 'r'"
    ):
        compose(["adapter=none", "adapter.r=8"])
    with pytest.raises(ConfigError, match="adapter=lora, adapter=qlora"):
        compose(["adapter=none", "adapter.r=8"])
