"""TrainerConfig -> transformers.TrainingArguments, with the machine's precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from semillero.config.schema import RunConfig, TrainerConfig
from semillero.errors import ConfigError, did_you_mean


def resolve_precision(cfg: TrainerConfig) -> tuple[bool, bool, str]:
    """Returns (fp16, bf16, what ran). Recipes say fp16 for the GPU they were written on;
    on a machine without CUDA that cannot run, so the run trains in fp32 and says so."""
    asked = "bf16" if cfg.bf16 else "fp16" if cfg.fp16 else "fp32"
    if asked != "fp32" and not torch.cuda.is_available():
        return False, False, f"fp32 ({asked} asked; no CUDA device)"
    return cfg.fp16, cfg.bf16, asked


def check_names(cfg: TrainerConfig) -> None:
    """The recipe's free-text names are ones transformers knows (checked before a run starts,
    not when Trainer is built after the model has loaded)."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    for key, value, known in (
        ("optim", cfg.optim, [o.value for o in OptimizerNames]),
        ("lr_scheduler_type", cfg.lr_scheduler_type, [s.value for s in SchedulerType]),
    ):
        if value not in known:
            hint = did_you_mean(value, known)
            raise ConfigError(
                f"trainer.{key}={value!r} is not one transformers knows.{hint} "
                f"Known: {', '.join(known)}"
            )


def training_kwargs(run: RunConfig, output_dir: Path, report_to: list[str]) -> dict[str, Any]:
    """TrainingArguments' keyword arguments of a run; TRL's configs take the same ones."""
    fp16, bf16, _ = resolve_precision(run.trainer)
    recipe = run.trainer.model_dump()
    if run.method.distributed.strategy != "single":
        from semillero.distributed import training_kwargs as distributed_kwargs

        recipe |= distributed_kwargs(run, output_dir.parent)  # DeepSpeed / FSDP settings
    return recipe | {
        "fp16": fp16,
        "bf16": bf16,  # explicit: TRL's configs default to bf16, which fails without CUDA
        "output_dir": str(output_dir),
        "seed": run.seed,
        "data_seed": run.seed,
        "report_to": report_to,
        "run_name": output_dir.parent.name,
        "include_num_input_tokens_seen": "non_padding",  # useful tokens/s, counted by Trainer
        "dataloader_pin_memory": torch.cuda.is_available(),
    }


def training_arguments(run: RunConfig, output_dir: Path, report_to: list[str]) -> TrainingArguments:
    return TrainingArguments(**training_kwargs(run, output_dir, report_to))
