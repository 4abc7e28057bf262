"""Method grpo: prompts, checks before any model loads, a seeded tiny study, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from semillero.config.compose import compose, validate
from semillero.errors import ConfigError, DataError, SemilleroError
from semillero.evaluation.rewards import by_group, score, summarise
from semillero.methods.grpo import to_prompts
from semillero.plan import preflight
from semillero.rewards import REWARDS
from tests.helpers.runs import run_tiny

STUDY = ("experiment=iberotales_grpo",)
# studies.md (iberotales_grpo), exact.
SYSTEM_PROMPT = (
    "Resuelve el siguiente problema.  \nPrimero, piensa en voz alta qué debes hacer, paso por "
    "paso y de forma resumida, entre <think> y </think>.  \nLuego, da la respuesta final entre "
    "<SOLUTION> y </SOLUTION>.  \nNo escribas nada fuera de ese formato."
)
OWN_REWARD = "tests.helpers.rewards:vowel_share"


def test_study_uses_the_exact_system_prompt_and_rewards() -> None:
    run = validate(compose([*STUDY, "scale=tiny"]))
    assert run.method.system_prompt == SYSTEM_PROMPT  # type: ignore[union-attr]
    assert run.method.rewards == list(REWARDS)  # type: ignore[union-attr]
    assert run.adapter.r == 32 and run.adapter.alpha == 32 and run.adapter.quantization is None


def test_rows_become_chat_prompts() -> None:
    import datasets

    ds = datasets.Dataset.from_dict({"question": ["¿Quién?"], "answer": ["x"], "pais": ["Perú"]})
    out = to_prompts(ds, SYSTEM_PROMPT)
    assert out.column_names == ["answer", "pais", "prompt"]
    assert out[0]["prompt"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "¿Quién?"},
    ]


def test_a_dataset_without_question_and_answer_fails_before_loading() -> None:
    with pytest.raises(ConfigError, match=r"needs a question and an answer column.*spanish-poetry"):
        validate(compose([*STUDY, "dataset=spanish-poetry"]))


def test_a_file_without_the_mapped_columns_fails_before_the_model(
    tmp_path: Path, isolated: Path
) -> None:
    path = tmp_path / "tales.jsonl"
    path.write_text('{"id": 1, "nombre": "a", "pais": "b", "tema": "c", "trama": "d"}\n')
    with pytest.raises(DataError, match=r"no column 'pregunta', 'respuesta'"):
        run_tiny(*STUDY, f"dataset.fixture={path}")
    assert not list(isolated.rglob("record.json"))


def test_num_generations_must_divide_the_batch() -> None:
    with pytest.raises(ConfigError, match=r"num_generations=3 does not divide.*= 16"):
        validate(compose([*STUDY, "method.num_generations=3"]))
    validate(compose([*STUDY, "method.num_generations=8"]))


def test_evaluation_scores_rates_and_groups() -> None:
    good = "<think>a</think><SOLUTION>un perro negro</SOLUTION>"
    loose = "texto <SOLUTION>un gato</SOLUTION> más texto"
    rows = score([good, loose, "nada"], ["un perro negro"] * 3, dict(REWARDS), {})
    assert [r["format_ok"] for r in rows] == [True, False, False]
    assert [r["solution"] for r in rows] == ["un perro negro", "un gato", None]
    summary = summarise(rows, list(REWARDS))
    assert summary["format_adherence"] == pytest.approx(1 / 3)
    assert summary["solution_rate"] == pytest.approx(2 / 3)
    assert summary["reward_match_format_exactly"] == pytest.approx(1.0)
    assert summary["reward_check_text_similarity"] == pytest.approx(1.0)
    groups = by_group(rows, rows, {"pais": ["Chile", "Perú", "Chile"]})
    assert groups[0] == {
        "group": "pais",
        "value": "Chile",
        "n": 2,
        "format_before": 0.5,
        "format_after": 0.5,
    }


def _tiny_grpo(force: bool = False) -> object:
    return run_tiny(*STUDY, f"method.rewards=[match_format_exactly,{OWN_REWARD}]", force=force)


def test_tiny_study_is_seeded_lora_included(isolated: Path) -> None:
    """The same tiny config twice: the same rewards, loss and adapter weights."""
    first = _tiny_grpo()
    folder = isolated / "tiny" / "iberotales_grpo" / first.run_name  # type: ignore[attr-defined]
    weights = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
    second = _tiny_grpo(force=True)

    def steps(record: object) -> list[tuple[float, float]]:
        return [
            (h["loss"], h["rewards/vowel_share/mean"])
            for h in record.history  # type: ignore[attr-defined]
            if "loss" in h
        ]

    assert steps(first) == steps(second)
    assert any(r != steps(first)[0][1] for _, r in steps(first)[1:])  # rewards do vary
    again = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
    assert weights.keys() == again.keys()
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert any(k.endswith("lora_B.weight") and weights[k].abs().sum() > 0 for k in weights)


def test_tiny_study_records_the_evaluation(isolated: Path) -> None:
    record = run_tiny(*STUDY)
    assert record.status == "done"
    history = record.history
    assert all("rewards/check_text_similarity/mean" in h for h in history if "loss" in h)
    assert len([h for h in history if "loss" in h]) == 3  # a log every step
    metrics = {row["metric"] for row in record.tables["before_after"]}
    assert {"format_adherence", "solution_rate", "answer_perplexity"} <= metrics
    assert {"reward_" + name for name in REWARDS} <= metrics
    groups = {row["group"] for row in record.tables["groups"]}
    assert groups == {"pais", "tema"}
    samples = record.tables["eval_samples"]
    assert {"prompt", "completion", "solution", *REWARDS} <= set(samples[0])
    assert record.model["adapter"]["type"] == "lora"
    assert record.metrics["before_answer_perplexity"] > 1
    assert json.dumps(record.config).count("WANDB_API_KEY") == 0


def test_vllm_is_refused_before_loading_with_the_reason() -> None:
    """vLLM cannot join this stack (docker/README.md); the plan says so and names the fix."""
    run = validate(compose([*STUDY, "scale=tiny", "method.use_vllm=true"]))
    with pytest.raises(SemilleroError, match=r"transformers<5\.18.*method\.use_vllm=false"):
        preflight(run)
