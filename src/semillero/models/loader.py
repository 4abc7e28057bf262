"""One loader for a hub id, a local directory, or the tiny twin."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    PreTrainedModel,
)
from transformers import PreTrainedTokenizerBase as Tokenizer

from semillero.config.schema import AdapterConfig, ModelConfig
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
    base: str | None = None  # where from_pretrained can load the base again (export)
    weights: str = "float32"  # what the base weights are held in: float32, bfloat16, nf4


def load_model(
    cfg: ModelConfig,
    scale: str,
    cache_dir: str | Path,
    adapter: AdapterConfig | None = None,
    twin_dir: Path | None = None,
) -> LoadedModel:
    """Loads the model and tokenizer; call transformers.set_seed first for twins.

    With a LoRA adapter the frozen base is held in 16-bit on a GPU (the Iberotales "16-bit
    LoRA"); with QLoRA it is quantised to 4-bit by bitsandbytes as it loads. A twin that an
    adapter goes on is saved to `twin_dir` first and loaded back through from_pretrained,
    so that quantisation (and export later) take the same path as a hub model.
    """
    source = model_source(cfg, scale)
    lora = adapter is not None and adapter.type == "lora"
    if scale == "tiny" and not lora:
        model, tokenizer = build_twin(cfg, cache_dir)
        pad = ensure_pad_token(model, tokenizer)
        return LoadedModel(model, tokenizer, source, pad, _count(model))
    if scale == "tiny":
        assert twin_dir is not None, "a twin under an adapter is saved to twin_dir first"
        twin, tokenizer = build_twin(cfg, cache_dir)
        twin.save_pretrained(str(twin_dir))
        tokenizer.save_pretrained(str(twin_dir))
        location = str(twin_dir)
    else:
        location = source.split(":", 1)[1]
    kwargs, weights = _precision(adapter)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, revision=cfg.revision)
        model = AutoModelForCausalLM.from_pretrained(
            location,
            revision=cfg.revision,
            attn_implementation=cfg.attn_implementation,
            **kwargs,
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
    return LoadedModel(model, tokenizer, source, pad, _count(model), location, weights)


def _count(model: PreTrainedModel) -> int:
    return sum(p.numel() for p in model.parameters())


def _precision(adapter: AdapterConfig | None) -> tuple[dict[str, Any], str]:
    """from_pretrained's dtype/quantisation arguments for the base, and what they give."""
    cuda = torch.cuda.is_available()
    if adapter is None or adapter.type != "lora":
        return {}, "float32"
    q = adapter.quantization
    if q is None:
        # A frozen base under LoRA is held in bf16 on a GPU; on CPU it stays in fp32.
        return ({"dtype": torch.bfloat16}, "bfloat16") if cuda else ({}, "float32")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ModelLoadError(
            "adapter=qlora loads the base in 4-bit with bitsandbytes, which is not installed: "
            "pip install -e '.[quant]' (the Docker image has it), or use adapter=lora"
        ) from None
    compute = q.bnb_4bit_compute_dtype if cuda else "float32"
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=q.bnb_4bit_use_double_quant,
        bnb_4bit_compute_dtype=getattr(torch, compute),
    )
    device_map: Any = {"": torch.cuda.current_device()} if cuda else "cpu"
    weights = f"{q.bnb_4bit_quant_type} (4-bit, compute {compute})"
    return {"quantization_config": config, "device_map": device_map}, weights


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
