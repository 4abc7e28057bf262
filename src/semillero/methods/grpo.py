"""Method `grpo`: TRL's GRPOTrainer over a LoRA adapter, with rewards chosen by name.

Each row becomes a chat prompt (the study's system prompt, then the question) and keeps
its `answer` and other columns for the rewards. Prompts longer than
`method.max_prompt_length` tokens are left out before training (TRL dropped its own
option for this) and counted in the record. Held-out prompts are evaluated before and
after training (semillero.evaluation.rewards).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import datasets
from trl import GRPOConfig, GRPOTrainer

from semillero.config.schema import GrpoMethodConfig, RunConfig
from semillero.errors import DataError
from semillero.evaluation.generate import sampling_config
from semillero.evaluation.rewards import by_group, evaluate_prompts
from semillero.methods import Job, Outcome, timed
from semillero.methods.clm import RunningLoss, train_metrics
from semillero.methods.sft import save_weights
from semillero.models.loader import LoadedModel
from semillero.rewards import RewardFunc, resolve_reward
from semillero.trainer_args import training_kwargs

log = logging.getLogger(__name__)


def to_prompts(ds: datasets.Dataset, system_prompt: str) -> datasets.Dataset:
    """question -> a [system, user] chat prompt; the other columns stay for the rewards."""

    def build(question: str) -> dict[str, Any]:
        return {
            "prompt": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": question},
            ]
        }

    return ds.map(build, input_columns="question", remove_columns="question", desc="Prompts")


def drop_long_prompts(
    ds: datasets.Dataset, tokenizer: Any, limit: int | None, what: str
) -> tuple[datasets.Dataset, int]:
    """Leaves out prompts longer than `limit` tokens under the chat template."""
    if limit is None:
        return ds, 0

    def fits(prompt: list[dict[str, str]]) -> bool:
        ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return len(ids) <= limit

    kept = ds.filter(fits, input_columns="prompt", desc=f"Prompts <= {limit} tokens")
    dropped = len(ds) - len(kept)
    if not len(kept):
        raise DataError(
            f"every {what} prompt is longer than method.max_prompt_length={limit} tokens: "
            "raise it, or shorten the system prompt"
        )
    if dropped:
        log.warning("%s: left out %d prompts longer than %d tokens", what, dropped, limit)
    return kept, dropped


def training_config(run: RunConfig, output_dir: Path, report_to: list[str]) -> GRPOConfig:
    """The run's GRPOConfig (TRL checks the batch and group sizes when it is built)."""
    method = run.method
    assert isinstance(method, GrpoMethodConfig)
    kwargs = training_kwargs(run, output_dir, report_to)
    kwargs["include_num_input_tokens_seen"] = "no"  # GRPO batches are not input_ids batches
    return GRPOConfig(
        **kwargs,
        num_generations=method.num_generations,
        max_completion_length=method.max_completion_length,
        temperature=method.temperature,
        top_k=method.top_k,
        top_p=method.top_p,
        beta=method.beta,
        reward_weights=method.reward_weights,
        use_vllm=method.use_vllm,
        vllm_mode=method.vllm_mode,
        vllm_gpu_memory_utilization=method.vllm_gpu_memory_utilization,
        cache_implementation=method.cache_implementation,
    )


def make_trainer(
    run: RunConfig,
    loaded: LoadedModel,
    train: datasets.Dataset,
    rewards: dict[str, RewardFunc],
    output_dir: Path,
    report_to: list[str],
) -> GRPOTrainer:
    """The study's GRPOTrainer over chat prompts; also what `semillero bench` times."""
    return GRPOTrainer(
        model=loaded.model,
        reward_funcs=cast(Any, list(rewards.values())),
        args=training_config(run, output_dir, report_to),
        train_dataset=train,
        processing_class=loaded.tokenizer,
    )


def run(job: Job) -> Outcome:
    method = job.run.method
    assert isinstance(method, GrpoMethodConfig)
    loaded, run_ = job.loaded, job.run
    rewards: dict[str, RewardFunc] = {name: resolve_reward(name) for name in method.rewards}
    with timed(job.timings, "format"):
        train = to_prompts(job.splits["train"], method.system_prompt)
        train, dropped = drop_long_prompts(
            train, loaded.tokenizer, method.max_prompt_length, "train"
        )
        held_out = to_prompts(job.splits["test"], method.system_prompt)
        held_out = held_out.select(range(min(method.evaluation.max_samples, len(held_out))))
    job.record_data["prompts_too_long"] = dropped
    job.record_data["eval_prompts"] = len(held_out)
    job.record_data["fingerprints"] = {"train": train._fingerprint, "eval": held_out._fingerprint}

    with timed(job.timings, "eval_before"):
        before, before_rows = evaluate(job, method, held_out, rewards)

    trainer = make_trainer(run_, loaded, train, rewards, job.folder / "trainer", job.report_to)
    RunningLoss.attach(trainer, job.checkpoint)
    with timed(job.timings, "train"):
        result = trainer.train(resume_from_checkpoint=job.checkpoint)

    with timed(job.timings, "eval_after"):
        after, after_rows = evaluate(job, method, held_out, rewards)
    artifacts = save_weights(job)

    history = trainer.state.log_history
    metrics = train_metrics(trainer, result)
    last = next((h for h in reversed(history) if "reward" in h), {})
    metrics["final_reward"] = last.get("reward")
    metrics |= {f"before_{k}": v for k, v in before.items()}
    metrics |= {f"after_{k}": v for k, v in after.items()}

    before_after = [
        {"metric": k, "before": before[k], "after": after[k], "change": after[k] - before[k]}
        for k in before
    ]
    groups = {c: list(held_out[c]) for c in method.evaluation.group_by}
    table_samples = [
        {"when": when, "prompt": p[-1]["content"], **row}
        for when, rows in (("before", before_rows), ("after", after_rows))
        for p, row in zip(list(held_out["prompt"]), rows, strict=True)
    ]
    job.tracker.log_table("eval_samples", table_samples)
    samples = [f"{row['prompt']} -> {row['completion']}" for row in table_samples[-3:]]
    tables = {
        "before_after": before_after,
        "groups": by_group(before_rows, after_rows, groups),
        "eval_samples": table_samples,
    }
    return Outcome(metrics, history, samples, tables, artifacts)


def evaluate(
    job: Job,
    method: GrpoMethodConfig,
    held_out: datasets.Dataset,
    rewards: dict[str, RewardFunc],
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    e = method.evaluation
    extra = {c: list(held_out[c]) for c in held_out.column_names if c not in ("prompt", "answer")}
    return evaluate_prompts(
        job.loaded.model,
        job.loaded.tokenizer,
        cast(list[list[dict[str, str]]], list(held_out["prompt"])),
        list(held_out["answer"]),
        rewards,
        extra,
        sampling_config(e),
        job.run.seed,
        e.batch_size,
    )
