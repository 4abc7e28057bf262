"""The evaluation the Iberotales card claims and its source never published: on held-out
prompts, before and after training, the format-adherence rate, the mean of each reward,
the rate of completions with a solution to extract, and the perplexity of the reference
answers under the model; broken down by the data set's groups (pais, tema).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from semillero.evaluation.generate import Prompt, complete
from semillero.rewards import ANY_SOLUTION, FORMAT, RewardFunc


def answer_perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[list[dict[str, str]]],
    answers: Sequence[str],
) -> float:
    """exp(mean NLL) of the reference answers' tokens, each after its chat prompt; the
    prompt's tokens are context only."""
    total, count = 0.0, 0
    model.eval()
    for messages, answer in zip(prompts, answers, strict=True):
        prompt = cast(
            str, tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if not answer_ids:
            continue
        ids = torch.tensor([prompt_ids + answer_ids], device=model.device)
        labels = ids.clone()
        labels[0, : len(prompt_ids)] = -100
        with torch.inference_mode():
            loss = cast(Any, model)(input_ids=ids, labels=labels).loss
        total += float(loss) * len(answer_ids)
        count += len(answer_ids)
    return math.exp(total / count) if count else float("nan")


def score(
    completions: list[str],
    answers: Sequence[str],
    rewards: dict[str, RewardFunc],
    extra: dict[str, Sequence[Any]],
) -> list[dict[str, Any]]:
    """Each completion with every reward, whether it follows the format, and its solution."""
    values = {
        name: func(completions=completions, answer=list(answers), **extra)
        for name, func in rewards.items()
    }
    rows = []
    for i, text in enumerate(completions):
        exact = FORMAT.search(text)
        found = exact or ANY_SOLUTION.search(text)
        solution = found.group(1).strip() if found else None
        rows.append(
            {
                "completion": text,
                "format_ok": exact is not None,
                "solution": solution,
                **{name: float(v[i]) for name, v in values.items()},
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]], rewards: Sequence[str]) -> dict[str, float]:
    """Rates and means over scored completions."""
    n = len(rows)
    if not n:
        return {}
    out = {
        "format_adherence": sum(r["format_ok"] for r in rows) / n,
        "solution_rate": sum(bool(r["solution"]) for r in rows) / n,
    }
    for name in rewards:
        out[f"reward_{name}"] = sum(r[name] for r in rows) / n
    return out


def evaluate_prompts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[dict[str, str]]],
    answers: list[str],
    rewards: dict[str, RewardFunc],
    extra: dict[str, list[Any]],
    config: GenerationConfig,
    seed: int,
    batch_size: int,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Generates one completion per prompt, scores it, and measures answer perplexity."""
    completions = complete(
        model, tokenizer, cast(list[Prompt], prompts), config, seed, batch_size=batch_size
    )
    rows = score(completions, answers, rewards, {"prompts": prompts, **extra})
    summary = summarise(rows, list(rewards))
    summary["answer_perplexity"] = answer_perplexity(model, tokenizer, prompts, answers)
    return summary, rows


def by_group(
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    groups: dict[str, list[Any]],
) -> list[dict[str, Any]]:
    """Counts and format-adherence rates, before and after, per value of each group column."""
    table = []
    for column, values in groups.items():
        for value in sorted(set(values), key=str):
            idx = [i for i, v in enumerate(values) if v == value]
            table.append(
                {
                    "group": column,
                    "value": value,
                    "n": len(idx),
                    "format_before": sum(before[i]["format_ok"] for i in idx) / len(idx),
                    "format_after": sum(after[i]["format_ok"] for i in idx) / len(idx),
                }
            )
    return table
