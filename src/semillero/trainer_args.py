"""TrainerConfig -> transformers.TrainingArguments, with the machine's precision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainingArguments

from semillero.config.schema import RunConfig, TrainerConfig


def resolve_precision(cfg: TrainerConfig) -> tuple[bool, bool, str]:
    """Returns (fp16, bf16, what ran). Recipes say fp16 for the GPU they were written on;
    on a machine without CUDA that cannot run, so the run trains in fp32 and says so."""
    asked = "bf16" if cfg.bf16 else "fp16" if cfg.fp16 else "fp32"
    if asked != "fp32" and not torch.cuda.is_available():
        return False, False, f"fp32 ({asked} asked; no CUDA device)"
    return cfg.fp16, cfg.bf16, asked


def training_kwargs(run: RunConfig, output_dir: Path, report_to: list[str]) -> dict[str, Any]:
    """TrainingArguments' keyword arguments of a run; TRL's configs take the same ones."""
    fp16, bf16, _ = resolve_precision(run.trainer)
    return run.trainer.model_dump() | {
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
