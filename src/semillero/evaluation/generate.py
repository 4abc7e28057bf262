"""Samples written by a trained model, with the study's sampling settings."""

from __future__ import annotations

from typing import Any, cast

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase, set_seed

from semillero.config.schema import GenerationSettings


def generate_samples(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    settings: GenerationSettings,
    seed: int,
) -> list[str]:
    """Returns `num_return_sequences` decoded samples (prompt included, as the seed prints)."""
    set_seed(seed)  # sampling is part of the result: the same run writes the same sample
    config = GenerationConfig(
        max_length=settings.max_length,
        num_return_sequences=settings.num_return_sequences,
        do_sample=settings.do_sample,
        top_k=settings.top_k,
        top_p=settings.top_p,
        temperature=settings.temperature,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    inputs = tokenizer(settings.prompt, return_tensors="pt").to(model.device)
    model.eval()
    with torch.inference_mode():
        generate = cast(Any, model).generate  # typed loosely by transformers
        out = generate(**inputs, generation_config=config)  # (num_return_sequences, T)
    return list(tokenizer.batch_decode(out, skip_special_tokens=True))
