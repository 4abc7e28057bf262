"""Method `sft`: supervised fine-tuning with TRL's SFTTrainer, with or without a PEFT
adapter (LoRA, or QLoRA over a 4-bit base; the runner attaches it).

Rows become prompt/completion pairs in the study's format (semillero.formats), so that
SFTTrainer can put the loss on the completion only. Before training and after it, the
study's contrast questions are answered with the same sampling (the source's "contrast"
test), and the side-by-side table goes in the record, the report and W&B.
"""

from __future__ import annotations

import logging
from collections.abc import Sized
from pathlib import Path
from typing import cast

import datasets
from trl import SFTConfig, SFTTrainer

from semillero.config.schema import RunConfig, SftMethodConfig
from semillero.errors import DataError
from semillero.evaluation.generate import Prompt, complete, sampling_config
from semillero.evaluation.perplexity import perplexity
from semillero.formats import FORMATS, question_prompt
from semillero.methods import Job, Outcome, timed
from semillero.methods.clm import RunningLoss, train_metrics
from semillero.models.loader import LoadedModel
from semillero.trainer_args import training_kwargs

log = logging.getLogger(__name__)


def format_splits(splits: datasets.DatasetDict, fmt: str) -> datasets.DatasetDict:
    """Every split as prompt/completion rows in the format (other columns dropped)."""
    to_pair = FORMATS[fmt]
    return datasets.DatasetDict(
        {
            name: ds.map(to_pair, remove_columns=ds.column_names, desc=f"Formatting {name} ({fmt})")
            for name, ds in splits.items()
        }
    )


def contrast_answers(job: Job, method: SftMethodConfig) -> list[str]:
    """The model's answers to the contrast questions, sampled from one seeded stream."""
    c = method.contrast
    if not c.questions:
        return []
    prompts: list[Prompt] = [question_prompt(method.format, q)["prompt"] for q in c.questions]
    loaded = job.loaded
    return complete(loaded.model, loaded.tokenizer, prompts, sampling_config(c), job.run.seed)


def training_config(run: RunConfig, output_dir: Path, report_to: list[str]) -> SFTConfig:
    """The run's SFTConfig (TRL checks the combination when it is built)."""
    method = run.method
    assert isinstance(method, SftMethodConfig)
    return SFTConfig(
        **training_kwargs(run, output_dir, report_to),
        max_length=method.max_length,
        packing=method.packing,
        completion_only_loss=method.completion_only_loss,
    )


def make_trainer(
    run: RunConfig,
    loaded: LoadedModel,
    pairs: datasets.DatasetDict,
    output_dir: Path,
    report_to: list[str],
) -> SFTTrainer:
    """The study's SFTTrainer for prompt/completion (or already tokenised) splits; also what
    `semillero bench` times."""
    return SFTTrainer(
        model=loaded.model,
        args=training_config(run, output_dir, report_to),
        train_dataset=pairs["train"],
        eval_dataset=pairs["test"],
        processing_class=loaded.tokenizer,
    )


def run(job: Job) -> Outcome:
    method = job.run.method
    assert isinstance(method, SftMethodConfig)
    loaded, run_ = job.loaded, job.run
    with timed(job.timings, "format"):
        pairs = format_splits(job.splits, method.format)
    with timed(job.timings, "contrast"):
        before = contrast_answers(job, method)

    trainer = make_trainer(run_, loaded, pairs, job.folder / "trainer", job.report_to)
    if len(cast(Sized, trainer.train_dataset)) == 0:  # TRL dropped every row it tokenised
        raise DataError(
            f"every training row lost its response to truncation at method.max_length="
            f"{method.max_length} (TRL drops rows with no response token): raise "
            "method.max_length, or check the format"
        )
    job.record_data["fingerprints"] = {
        name: getattr(ds, "_fingerprint", None)
        for name, ds in (("train", trainer.train_dataset), ("test", trainer.eval_dataset))
    }
    RunningLoss.attach(trainer, job.checkpoint)
    with timed(job.timings, "train"):
        result = trainer.train(resume_from_checkpoint=job.checkpoint)
    with timed(job.timings, "eval"):
        final = trainer.evaluate()
    if "eval_loss" not in final:  # every held-out row lost its response to truncation
        raise DataError(
            f"no held-out row has a response token within method.max_length="
            f"{method.max_length}: raise method.max_length, or check the format"
        )
    with timed(job.timings, "contrast"):
        after = contrast_answers(job, method)

    artifacts = save_weights(job)
    history = trainer.state.log_history
    metrics = train_metrics(trainer, result) | {
        "eval_loss": final["eval_loss"],
        "eval_runtime": final["eval_runtime"],
        "perplexity": perplexity(final["eval_loss"]),
    }
    contrast = [
        {"question": q, "before": b, "after": a}
        for q, b, a in zip(method.contrast.questions, before, after, strict=True)
    ]
    job.tracker.log_table("contrast", contrast)
    samples = [f"{row['question']} -> {row['after']}" for row in contrast]
    return Outcome(metrics, history, samples, {"contrast": contrast}, artifacts)


def save_weights(job: Job) -> dict[str, str]:
    """The trained adapter (adapter/) or, without one, the whole model (model/), each with
    the tokenizer: what `semillero export` starts from."""
    model = job.loaded.model
    is_adapter = hasattr(model, "peft_config")
    target = job.folder / ("adapter" if is_adapter else "model")
    model.save_pretrained(str(target))
    job.loaded.tokenizer.save_pretrained(str(target))
    log.info("saved %s to %s", target.name, target)
    return {target.name: str(target)}
