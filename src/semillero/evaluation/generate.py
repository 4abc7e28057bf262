"""Samples written by a trained model, with the study's sampling settings."""

from __future__ import annotations

from typing import Any, cast

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase, set_seed

from semillero.config.schema import GenerationSettings, SamplingConfig


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


def sampling_config(settings: SamplingConfig) -> GenerationConfig:
    """A study's sampling settings as transformers' GenerationConfig (same names)."""
    return GenerationConfig(**settings.model_dump(include=set(SamplingConfig.model_fields)))


Prompt = str | list[dict[str, str]]  # plain text, or chat messages for the chat template


def complete(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[Prompt],
    config: GenerationConfig,
    seed: int,
    batch_size: int = 8,
) -> list[str]:
    """The new text each prompt gets (prompt not included), generated in left-padded batches
    from one seeded random stream, so that the same model and prompts give the same text."""
    texts = [
        p
        if isinstance(p, str)
        else cast(str, tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True))
        for p in prompts
    ]
    config.pad_token_id = tokenizer.pad_token_id
    if config.eos_token_id is None:
        # The tokenizer's EOS and the model's own stop tokens, as TRL's GRPO generates: an
        # instruct model ends a turn with a token of its chat template (Gemma's
        # <end_of_turn>), which may not be the tokenizer's EOS.
        own = getattr(model.generation_config, "eos_token_id", None)
        own = [] if own is None else [own] if isinstance(own, int) else list(own)
        ids = [t for t in [tokenizer.eos_token_id, *own] if t is not None]
        config.eos_token_id = list(dict.fromkeys(ids)) or None
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    set_seed(seed)
    out: list[str] = []
    model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not any(isinstance(p, list) for p in prompts),
            ).to(model.device)
            with torch.inference_mode():
                generate = cast(Any, model).generate
                ids = generate(**batch, generation_config=config)
            new = ids[:, batch["input_ids"].shape[1] :]
            out += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return out
