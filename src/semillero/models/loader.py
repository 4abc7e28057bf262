"""One loader for a hub id, a local directory, or the tiny twin."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from semillero.config.schema import ModelConfig
from semillero.errors import ModelLoadError
from semillero.models.source import model_source
from semillero.models.twin import build_twin

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: Tokenizer
    source: str  # "hub:<id>", "local:<path>" or "twin:<architecture>"
    pad_token: str  # how padding was resolved, for the record
    parameters: int


def load_model(cfg: ModelConfig, scale: str, cache_dir: str | Path) -> LoadedModel:
    """Loads the model and tokenizer; call transformers.set_seed first for twins."""
    source = model_source(cfg, scale)
    if scale == "tiny":
        model, tokenizer = build_twin(cfg, cache_dir)
    else:
        location = source.split(":", 1)[1]
        try:
            tokenizer = AutoTokenizer.from_pretrained(location, revision=cfg.revision)
            model = AutoModelForCausalLM.from_pretrained(
                location, revision=cfg.revision, attn_implementation=cfg.attn_implementation
            )
        except OSError as exc:
            raise ModelLoadError(
                f"cannot load model {location} ({exc}). Offline (HF_HUB_OFFLINE=1) it must "
                "already be in the HF cache; otherwise set model.path to a local copy, or run "
                "with SCALE=tiny to use the tiny twin"
            ) from None
        loaded = type(model).__name__
        if loaded != cfg.architecture:
            raise ModelLoadError(
                f"{location} is a {loaded}, but conf/model/{cfg.name}.yaml says "
                f"architecture: {cfg.architecture}; fix the YAML so that the twin matches"
            )
    pad = ensure_pad_token(model, tokenizer)
    parameters = sum(p.numel() for p in model.parameters())
    return LoadedModel(model, tokenizer, source, pad, parameters)


def ensure_pad_token(model: PreTrainedModel, tokenizer: Tokenizer) -> str:
    """The seed's rule: a tokenizer without a pad token pads with EOS. Returns what was done."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError(
                "the tokenizer has neither a pad nor an eos token; add one to the tokenizer "
                "(tokenizer.add_special_tokens) before fine-tuning"
            )
        tokenizer.pad_token = tokenizer.eos_token
        how = f"eos ({tokenizer.eos_token!r}): the tokenizer has no pad token, as in the seed"
    else:
        how = f"own ({tokenizer.pad_token!r})"
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return how
