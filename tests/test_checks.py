"""Settings that cannot run are refused by `semillero plan`, a sweep and a run before anything
is written or loaded: lengths longer than the model's positions, trainer settings that
transformers or TRL refuse, impossible values, broken local model folders, and an uncached
hub model when offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semillero.config.compose import compose, validate
from semillero.errors import ConfigError, ModelLoadError
from semillero.models.source import check_cached
from semillero.plan import plan_grid
from semillero.runner import execute
from tests.conftest import REPO
from tests.helpers.runs import cheap

GRPO = ["experiment=iberotales_grpo", "scale=tiny"]
SEMILLERO = str(Path(sys.executable).parent / "semillero")


def error(*overrides: str) -> str:
    """The one error plan gives for a single grid point ('' when it is valid)."""
    [point] = plan_grid(list(overrides))
    return point.error or ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["scale=tiny", "method=sft", "dataset=alpaca-spanish"],
            "method.max_length = 2048 tokens does not fit in the 256 positions of the twin of "
            "gpt2-small-es (model.twin.config.n_positions) (SCALE=tiny runs the twin; the "
            "real model takes 1024): lower method.max_length",
        ),
        (
            ["method.generation.max_length=1500"],
            "method.generation.max_length = 1500 tokens does not fit in the 1024 positions of "
            "gpt2-small-es (model.facts.context_length)",
        ),
        (
            [*GRPO, "method.max_completion_length=1600"],
            "method.max_prompt_length + method.max_completion_length = 2112 tokens does not fit "
            "in the 2048 positions of the twin of gemma-3-1b-it "
            "(model.twin.config.max_position_embeddings)",
        ),
    ],
)
def test_a_length_longer_than_the_models_positions_is_refused(
    overrides: list[str], message: str
) -> None:
    assert message in error(*overrides)


def test_a_local_models_positions_come_from_its_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"n_positions": 128}))
    for name in ("model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("")
    assert f"does not fit in the 128 positions of {tmp_path} (n_positions)" in error(
        f"model.path={tmp_path}"
    )
    assert (
        error(f"model.path={tmp_path}", "method.max_length=128", "method.generation.max_length=64")
        == ""
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.optim=adamw_torc"], "Did you mean 'adamw_torch'?"),
        (
            ["trainer.load_best_model_at_end=true", "trainer.eval_strategy=steps"],
            "transformers/TRL refuse these trainer settings: --load_best_model_at_end requires "
            "the save and eval strategy to match",
        ),
        (
            ["trainer.lr_scheduler_type=reduce_lr_on_plateau"],
            "reduce_lr_on_plateau requires an eval strategy",
        ),
        (
            [
                *GRPO,
                "trainer.eval_strategy=steps",
                "trainer.eval_steps=5",
                "trainer.per_device_eval_batch_size=3",
            ],
            "must be divisible by the number of generations used for evaluation (4)",
        ),
    ],
)
def test_trainer_settings_the_libraries_refuse_are_plan_errors(
    overrides: list[str], message: str
) -> None:
    assert message in error("scale=tiny", *overrides)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_steps=0", "trainer.max_steps=0 trains nothing"),
        ("trainer.max_steps=-7", "max_steps"),
        ("trainer.learning_rate=inf", "learning_rate"),
        ("trainer.num_train_epochs=inf", "num_train_epochs"),
        ("trainer.save_steps=0", "save_steps"),
        ("trainer.eval_steps=-3", "eval_steps"),
        ("trainer.save_total_limit=-2", "save_total_limit"),
        ("trainer.max_grad_norm=-1", "max_grad_norm"),
        ("seed=-1", "seed"),
        ("study=../../etc", "is not a folder name"),
        ("trainer.save_strategy=best", "trainer.metric_for_best_model names none"),
    ],
)
def test_impossible_values_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose(["scale=tiny", override]))


def test_both_half_precisions_and_an_empty_lora_target_list_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"fp16 and trainer\.bf16 are both true"):
        validate(compose(["trainer.fp16=true", "trainer.bf16=true"]))
    sft = ["experiment=alpaca_qlora", "scale=tiny"]
    with pytest.raises(ConfigError, match="target_modules is empty"):
        validate(compose([*sft, "adapter=lora", "adapter.target_modules=[]"]))


def test_grpo_needs_a_model_with_a_chat_template() -> None:
    with pytest.raises(ConfigError, match=r"has no chat template .* model=gemma-3-1b-it"):
        validate(compose([*GRPO, "model=gpt2-small-es"]))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["config.json", "model.safetensors"], "has no tokenizer files"),
        (["config.json", "tokenizer.json"], "has no weights"),
        (["model.safetensors", "vocab.json"], "has no config.json"),
    ],
)
def test_a_local_model_folder_must_hold_config_weights_and_tokenizer(
    files: list[str], message: str, tmp_path: Path
) -> None:
    for name in files:
        (tmp_path / name).write_text("{}")
    assert message in error(f"model.path={tmp_path}")
    file = tmp_path / "config.json"
    file.write_text("{}")
    assert f"model.path={file} is a file, not a directory" in error(f"model.path={file}")
    for name in ("model.safetensors", "tokenizer.json"):
        (tmp_path / name).write_text("")
    file.write_text("{not json")
    assert "config.json is not a model config" in error(f"model.path={tmp_path}")


def test_an_uncached_hub_model_offline_fails_before_the_record(
    isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests run with HF_HUB_OFFLINE=1; the hub cache here is an empty folder."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    poems = REPO / "src" / "semillero" / "fixtures" / "spanish-poetry" / "poems.csv"
    run = validate(compose(cheap("scale=full", "model=distilgpt2", f"dataset.path={poems}")))
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache, and HF_HUB_OFFLINE"):
        execute(run, {}, [])
    assert not list(isolated.rglob("record.json"))
    # Once its config.json is in the cache, the check lets it through.
    snapshot = tmp_path / "hub" / "models--distilbert--distilgpt2" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc")
    check_cached(run.model, run.scale)


def test_a_sweep_whose_runs_all_fail_says_so_instead_of_reporting(
    isolated: Path, tmp_path: Path
) -> None:
    poems = REPO / "src" / "semillero" / "fixtures" / "spanish-poetry" / "poems.csv"
    env = os.environ | {"HF_HUB_CACHE": str(tmp_path / "hub")}  # empty: nothing cached
    out = subprocess.run(
        [SEMILLERO, "sweep", "EXP=gpt2_screening", f"dataset.path={poems}", "tracker=none"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert out.returncode == 1
    assert out.stderr.count("is not in the Hugging Face cache") == 7
    assert "no run finished, so there is no report" in out.stdout
    assert "0/7 runs done" in out.stdout
    assert not list(isolated.rglob("record.json"))
