"""Tokenisation for causal-LM training, cached by the `datasets` fingerprint.

Each model is tokenised with its own tokenizer. (The seed tokenised the corpus once with
gpt2-small-spanish's tokenizer and fed those ids to all seven models, which favours that
model in its screening; we do not copy that.)
"""

from __future__ import annotations

from typing import Any, Literal

import datasets
from transformers import PreTrainedTokenizerBase

Padding = Literal["max_length", "dynamic", "packing"]


def tokenize(
    splits: datasets.DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    text_column: str,
    max_length: int,
    padding: Padding,
) -> datasets.DatasetDict:
    """Returns splits with input_ids and attention_mask only.

    Args:
        splits: the cleaned train/test splits.
        tokenizer: the model's own tokenizer (pad token already set).
        text_column: column holding the text.
        max_length: tokens per example, or per block when packing.
        padding: "max_length" pads every example (the seed), "dynamic" leaves padding to
            the collator, "packing" joins examples (each ended by EOS) into blocks.
    """

    def encode(batch: dict[str, list[Any]]) -> Any:
        texts = batch[text_column]
        if padding == "packing":
            eos = tokenizer.eos_token or ""
            return tokenizer([t + eos for t in texts])
        return tokenizer(texts, max_length=max_length, truncation=True)

    encoded = datasets.DatasetDict(
        {
            name: ds.map(
                encode, batched=True, remove_columns=ds.column_names, desc=f"Tokenising {name}"
            )
            for name, ds in splits.items()
        }
    )
    return layout(encoded, tokenizer, max_length, padding)


def layout(
    tokens: datasets.DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    padding: Padding,
) -> datasets.DatasetDict:
    """Token rows (input_ids, attention_mask) as the study trains on them: each padded to
    max_length, left for the collator to pad per batch, or packed into max_length blocks.
    `semillero bench` lays out its synthetic token streams through this too."""
    if padding == "dynamic":
        return tokens
    if padding == "packing":
        from trl.data_utils import pack_dataset

        return datasets.DatasetDict(
            {name: pack_dataset(ds, max_length, strategy="wrapped") for name, ds in tokens.items()}
        )

    def pad(batch: dict[str, list[Any]]) -> Any:
        return tokenizer.pad(batch, padding="max_length", max_length=max_length)

    return datasets.DatasetDict(
        {
            name: ds.map(pad, batched=True, desc=f"Padding {name} to {max_length}")
            for name, ds in tokens.items()
        }
    )
