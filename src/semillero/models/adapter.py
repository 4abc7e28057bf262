"""PEFT adapters: LoRA over a 16-bit base, or over a 4-bit one (QLoRA).

The adapter is built here, after transformers.set_seed and after the model, so that its
random init is seeded (TRL's GRPO seeding trap: a trainer that builds the adapter from a
peft_config may do so before the seed is set). Trainers receive the PeftModel itself.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel

from semillero.config.schema import AdapterConfig, ModelConfig
from semillero.errors import ModelLoadError

log = logging.getLogger(__name__)

# Layer types LoRA can wrap: nn.Linear (and bitsandbytes' Linear4bit, a subclass) and
# GPT-2's Conv1D.
LINEAR_TYPES = ("Linear", "Linear4bit", "Linear8bitLt", "Conv1D")


def linear_names(model: torch.nn.Module) -> list[str]:
    """The names (last part) of the model's linear layers, output head excluded."""
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if type(module).__name__ in LINEAR_TYPES and name
    }
    output = model.get_output_embeddings() if isinstance(model, PreTrainedModel) else None
    head = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if m is output and n}
    return sorted(names - head)


def check_targets(model: torch.nn.Module, cfg: AdapterConfig, model_name: str) -> list[str]:
    """The layer names LoRA will wrap; a target the model lacks is an error listing them."""
    available = linear_names(model)
    if cfg.target_modules == "all-linear":
        return available
    missing = [t for t in cfg.target_modules if t not in available]
    if missing:
        raise ModelLoadError(
            f"adapter.target_modules {missing} not found in {model_name} "
            f"({type(model).__name__}); its linear layers are: {', '.join(available)}. "
            "Use some of these, or adapter.target_modules=all-linear"
        )
    return list(cfg.target_modules)


def meta_model(cfg: ModelConfig, scale: str) -> torch.nn.Module | None:
    """The model's skeleton on the meta device (no weights, no memory), for checks before
    loading; None when its config cannot be read here (e.g. offline, not cached)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from semillero.models.twin import twin_class

    try:
        if scale == "tiny":
            model_class = twin_class(cfg)
            config = model_class.config_class(**cfg.twin.config, vocab_size=256)
        else:
            config = AutoConfig.from_pretrained(cfg.path or cfg.hub_id, revision=cfg.revision)
            model_class = AutoModelForCausalLM
        with torch.device("meta"):
            if model_class is AutoModelForCausalLM:
                return AutoModelForCausalLM.from_config(config)
            return cast(torch.nn.Module, model_class(config))
    except (OSError, ValueError) as exc:
        log.info("cannot check adapter targets before loading %s: %s", cfg.name, exc)
        return None


def attach_adapter(
    model: PreTrainedModel,
    cfg: AdapterConfig,
    model_name: str,
    activation_checkpointing: bool = False,
) -> tuple[PreTrainedModel | PeftModel, dict[str, Any]]:
    """Wraps the model in its adapter (or returns it as is for adapter=none), with what was
    done for the record: trainable and total parameters, targets, quantisation."""
    total = sum(p.numel() for p in model.parameters())
    if cfg.type == "none":
        return model, {"type": "none", "trainable": total, "total": total}
    targets = check_targets(model, cfg, model_name)
    if cfg.quantization is not None:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=activation_checkpointing
        )
    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        bias=cfg.bias,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    trainable, total = peft_model.get_nb_trainable_parameters()
    info = {
        "type": "qlora" if cfg.quantization else "lora",
        "trainable": trainable,
        "total": total,
        "targets": targets,
        "r": cfg.r,
        "alpha": cfg.alpha,
    }
    log.info("adapter %s: %d of %d parameters trainable", info["type"], trainable, total)
    return peft_model, info


def quantised_layers(model: torch.nn.Module) -> dict[str, int]:
    """Counts of the base model's linear layers by type (the adapter's own are left out):
    Linear4bit means 4-bit really ran; the output head stays a Linear."""
    counts: dict[str, int] = {}
    for name, module in model.named_modules():
        kind = type(module).__name__
        wrapper = type(module).__module__.startswith("peft")  # PEFT's own LoRA layers
        if kind in LINEAR_TYPES and not wrapper and ".lora_" not in name:
            counts[kind] = counts.get(kind, 0) + 1
    return counts
