"""Method `clm`: full causal-LM fine-tuning with transformers.Trainer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback

from semillero.config.schema import ClmMethodConfig, RunConfig
from semillero.data.tokenize import tokenize
from semillero.distributed import main_process_first
from semillero.evaluation.generate import generate_samples
from semillero.evaluation.perplexity import perplexity
from semillero.methods import Job, Outcome, timed
from semillero.models.loader import LoadedModel
from semillero.trainer_args import training_arguments

LOSS_FILE = "semillero_loss.json"  # written beside each checkpoint by RunningLoss


class RunningLoss(TrainerCallback):
    """Carries Trainer's running training-loss sum across a resume.

    Trainer restarts that sum at zero when it resumes, so its `train_loss` covers only the
    steps after the checkpoint. This saves the sum with each checkpoint and puts it back
    when the resumed session begins, so that the sum continues in the same order and the
    run's train_loss equals an uninterrupted run's, bitwise when checkpoints fall on
    logging steps. (It reads Trainer's private `_total_loss_scalar` and `_tr_loss`:
    tests/test_resume.py fails if transformers renames them.)
    """

    def __init__(self, trainer: Trainer, start: float) -> None:
        self.trainer, self.start = trainer, start

    @classmethod
    def attach(cls, trainer: Trainer, checkpoint: str | None) -> None:
        """Adds the callback, starting from the checkpoint's saved sum when resuming."""
        start = 0.0
        if checkpoint:
            start = json.loads((Path(checkpoint) / LOSS_FILE).read_text())["sum"]
        trainer.add_callback(cls(trainer, start))

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.trainer._total_loss_scalar = self.start

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:  # one writer per checkpoint in a distributed run
            return
        total = self.trainer._total_loss_scalar + self.trainer._tr_loss.item()
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        (folder / LOSS_FILE).write_text(json.dumps({"step": state.global_step, "sum": total}))


class PerplexityTrainer(Trainer):
    """Adds <prefix>_perplexity = exp(<prefix>_loss) to every evaluation's logs, so that W&B
    and the console see it. (The seed printed it from a callback, which runs after the logs
    are sent; overriding `log` is the one place that reaches every reporter.)"""

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        for key in [k for k in logs if k.endswith("_loss") and not k.startswith("train")]:
            logs[key.removesuffix("_loss") + "_perplexity"] = perplexity(logs[key])
        super().log(logs, start_time)


def train_metrics(trainer: Trainer, result: Any) -> dict[str, Any]:
    """What every method reports of its training: loss, time, steps, throughput."""
    runtime = result.metrics["train_runtime"]
    tokens = trainer.state.num_input_tokens_seen
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        # Trainer's own formula (sum / steps), over the whole run even after a resume.
        "train_loss": trainer._total_loss_scalar / max(trainer.state.global_step, 0.001),
        "final_train_loss": losses[-1] if losses else None,  # the seed's "final" loss
        "train_runtime": runtime,
        "train_steps": result.global_step,
        "train_samples_per_second": result.metrics["train_samples_per_second"],
        "seconds_per_step": runtime / max(result.global_step, 1),
        "train_tokens": tokens or None,
        "useful_tokens_per_second": tokens / runtime if tokens and runtime > 0 else None,
    }


def make_trainer(
    run: RunConfig,
    loaded: LoadedModel,
    splits: datasets.DatasetDict,
    output_dir: Path,
    report_to: list[str],
) -> Trainer:
    """The study's Trainer for tokenised splits (also what `semillero bench` times)."""
    return PerplexityTrainer(
        model=loaded.model,
        args=training_arguments(run, output_dir, report_to),
        # mlm=False: labels are the inputs; pad positions (pad = eos too) get -100.
        data_collator=DataCollatorForLanguageModeling(loaded.tokenizer, mlm=False),
        train_dataset=splits["train"],
        eval_dataset=splits["test"],
        processing_class=loaded.tokenizer,
    )


def train(
    run: RunConfig,
    loaded: LoadedModel,
    splits: datasets.DatasetDict,
    output_dir: Path,
    report_to: list[str],
    resume_from_checkpoint: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Trains, evaluates once more at the end (on the best checkpoint when the recipe keeps
    one), and on every extra split (e.g. `shared`); returns the metrics and the log history.
    """
    trainer = make_trainer(run, loaded, splits, output_dir, report_to)
    RunningLoss.attach(trainer, resume_from_checkpoint)
    # A resumed run restores weights, optimizer, scheduler, RNG and data position from it.
    result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    final = trainer.evaluate()
    metrics = train_metrics(trainer, result) | {
        "eval_loss": final["eval_loss"],
        "eval_runtime": final["eval_runtime"],
        "perplexity": perplexity(final["eval_loss"]),
    }
    for name in sorted(set(splits) - {"train", "test"}):
        extra = trainer.evaluate(eval_dataset=splits[name], metric_key_prefix=name)
        metrics[f"{name}_loss"] = extra[f"{name}_loss"]
        metrics[f"{name}_perplexity"] = perplexity(extra[f"{name}_loss"])
    history = trainer.state.log_history
    if trainer.state.best_model_checkpoint:
        metrics["best_checkpoint"] = trainer.state.best_model_checkpoint
        metrics["best_metric"] = trainer.state.best_metric
    return metrics, history


def run(job: Job) -> Outcome:
    """Tokenise with the model's own tokenizer, train, evaluate, write the samples."""
    method = job.run.method
    assert isinstance(method, ClmMethodConfig)
    loaded = job.loaded
    with timed(job.timings, "tokenise"), main_process_first(job.run):
        tokens = tokenize(
            job.splits,
            loaded.tokenizer,
            str(job.run.dataset.text_column),
            method.max_length,
            method.padding,
        )
    job.record_data["fingerprints"] = {name: ds._fingerprint for name, ds in tokens.items()}
    with timed(job.timings, "train"):
        metrics, history = train(
            job.run, loaded, tokens, job.folder / "trainer", job.report_to, job.checkpoint
        )
    job.timings["eval"] = metrics["eval_runtime"]
    with timed(job.timings, "generate"):
        samples = generate_samples(loaded.model, loaded.tokenizer, method.generation, job.run.seed)
    job.tracker.log_samples(method.generation.prompt, samples)
    return Outcome(metrics, history, samples)
