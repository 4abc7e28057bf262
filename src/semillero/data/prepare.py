"""A run's data, from config to train/test (and shared held-out) splits.

Order matters: load and clean each source, mix, split with the run's seed, remove the
shared held-out text from the training split, then cut the study's first-N subsets.
"""

from __future__ import annotations

from typing import Any

import datasets

from semillero.config.schema import (
    CONTENT,
    CorpusConfig,
    DatasetConfig,
    RunConfig,
    SharedEvalConfig,
)
from semillero.data.clean import limit, split
from semillero.data.corpus import as_content, load_clean, load_corpus
from semillero.data.examples import load_examples


def prepare_data(run: RunConfig) -> tuple[datasets.DatasetDict, dict[str, Any]]:
    """Returns the splits (train, test, and shared when the study has one) and what was done
    to them, for the record. Raises DataError on bad input, before any model loads."""
    cfg = run.dataset
    if run.method.name != "clm":
        ds, info = load_examples(cfg, run.method.name, run.scale, run.seed)
    elif isinstance(cfg, CorpusConfig):
        ds, info = load_corpus(cfg, run.scale, run.seed)
    else:
        ds, info = load_clean(cfg, run.scale)
    if isinstance(cfg, DatasetConfig) and cfg.eval_split:
        # The source has its own held-out split (a generated validation set): use it as is.
        held, held_info = load_examples(
            cfg.model_copy(update={"source_split": cfg.eval_split}), run.method.name, run.scale, 0
        )
        parts = datasets.DatasetDict(train=ds, test=held)
        info["eval_split"] = {"split": cfg.eval_split, "rows_dropped": held_info["rows_dropped"]}
    else:
        parts = split(ds, cfg.test_size, run.seed)
    if run.shared_eval is not None:
        shared = shared_split(run.shared_eval, run.scale, run.seed)
        text_column = str(cfg.text_column)
        held_out = set(shared[CONTENT])
        before = len(parts["train"])
        parts["train"] = parts["train"].filter(
            lambda text: text not in held_out,
            input_columns=text_column,
            desc="Removing shared held-out text",
        )
        if text_column != CONTENT:
            shared = shared.rename_column(CONTENT, text_column)
        parts["shared"] = shared
        info["shared_eval"] = {
            "source": run.shared_eval.source.name,
            "rows": len(shared),
            "removed_from_train": before - len(parts["train"]),
        }
    parts["train"] = limit(parts["train"], cfg.max_train_samples, f"{cfg.name} train split")
    parts["test"] = limit(parts["test"], cfg.max_eval_samples, f"{cfg.name} test split")
    info |= {
        "train_rows": len(parts["train"]),
        "eval_rows": len(parts["test"]),
        "split_seed": run.seed,
    }
    return parts, info


def shared_split(cfg: SharedEvalConfig, scale: str, seed: int) -> datasets.Dataset:
    """The held-out split of the shared source, exactly as a run on that source alone
    would split it (same cleaning, test_size and seed): one text for every run."""
    clean, _ = load_clean(cfg.source, scale)
    held_out = split(clean, cfg.test_size, seed)["test"]
    held_out = limit(held_out, cfg.max_samples, f"{cfg.source.name} shared held-out split")
    return as_content(held_out, str(cfg.source.text_column))
