"""Schemas of the methods (clm, sft, grpo) and of what they train (the adapter).

Split from schema.py to keep each file short; schema.py re-exports them.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, field_validator, model_validator

from semillero.config.axolotl import AxolotlMethodConfig
from semillero.config.base import Schema
from semillero.config.distributed import DistributedConfig
from semillero.errors import did_you_mean


class GenerationSettings(Schema):
    prompt: str = Field(description="Prompt of the sample written after training.")
    max_length: int = Field(60, gt=0, description="Prompt plus new tokens (the seed's count).")
    num_return_sequences: int = Field(1, gt=0)
    do_sample: bool = True
    top_k: int = Field(50, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    temperature: float = Field(1.0, gt=0)


class ClmMethodConfig(Schema):
    name: Literal["clm"] = "clm"
    max_length: int = Field(256, gt=0, description="Tokens per example (the seed: 256).")
    padding: Literal["max_length", "dynamic", "packing"] = Field(
        "max_length",
        description="max_length pads each example (the seed); dynamic pads per batch; "
        "packing concatenates examples into max_length blocks.",
    )
    generation: GenerationSettings
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)


class QuantizationConfig(Schema):
    """bitsandbytes 4-bit loading (QLoRA), under BitsAndBytesConfig's names."""

    load_in_4bit: Literal[True] = True
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = Field(
        True, description="Quantise the quantisation constants."
    )
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"] = Field(
        "bfloat16", description="dtype of the matmuls; float32 without CUDA."
    )


class AdapterConfig(Schema):
    """What is trained: every weight (none), a LoRA adapter, or LoRA over a 4-bit base (QLoRA)."""

    name: str = Field(description="Short name, the file name in conf/adapter/.")
    type: Literal["none", "lora"] = Field(
        description="none: full fine-tuning; lora: a PEFT LoRA adapter (with `quantization`: "
        "QLoRA)."
    )
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(16, gt=0, description="LoRA alpha (scaling = alpha / r).")
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: Literal["none", "all", "lora_only"] = "none"
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Module names (suffixes, e.g. q_proj) or all-linear (every linear layer "
        "but the output head).",
    )
    quantization: QuantizationConfig | None = Field(
        None, description="Load the base in 4-bit (QLoRA); needs bitsandbytes."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AdapterConfig:
        if self.type == "none" and self.quantization is not None:
            raise ValueError(
                "adapter.quantization needs adapter.type=lora: a 4-bit base cannot be "
                "fully fine-tuned (use adapter=qlora)"
            )
        if self.target_modules == []:
            raise ValueError(
                "adapter.target_modules is empty, so LoRA would train nothing: name the "
                "modules (e.g. [q_proj, v_proj]), or use all-linear"
            )
        return self


class SamplingConfig(Schema):
    """How an evaluation samples its answers (GenerationConfig's names)."""

    max_new_tokens: int = Field(128, gt=0)
    do_sample: bool = True
    temperature: float = Field(0.7, gt=0)
    top_k: int = Field(50, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)


class ContrastConfig(SamplingConfig):
    """The same questions answered by the base model and by the trained one (the source's
    "contrast" test), with the same sampling."""

    questions: list[str] = Field(default_factory=list, description="Asked before and after.")


class SftMethodConfig(Schema):
    name: Literal["sft"] = "sft"
    format: str = Field(
        description="How a row becomes a prompt and a completion: alpaca (the Spanish Alpaca "
        "template) or chat (the model's chat template). See semillero.formats."
    )
    max_length: int = Field(2048, gt=0, description="Tokens per example (SFTConfig.max_length).")
    packing: bool = Field(False, description="Pack examples into max_length blocks.")
    completion_only_loss: bool = Field(
        True, description="Loss on the response only (false: on the prompt too)."
    )
    contrast: ContrastConfig = Field(default_factory=ContrastConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from semillero.formats import FORMATS

        if value not in FORMATS:
            raise ValueError(
                f"unknown format {value!r}.{did_you_mean(value, FORMATS)} "
                f"Formats: {', '.join(sorted(FORMATS))} (add one in semillero/formats.py)"
            )
        return value


class GrpoEvalConfig(SamplingConfig):
    """Before/after evaluation on held-out prompts (the card claims one; the source has none),
    with the card's sampling: temperature 0.7, top_k 50, top_p 0.95."""

    max_samples: int = Field(32, gt=0, description="Held-out prompts evaluated.")
    max_new_tokens: int = Field(512, gt=0, description="The card's 512 new tokens.")
    group_by: list[str] = Field(
        default_factory=list, description="Columns to break the rates down by (pais, tema)."
    )
    batch_size: int = Field(8, gt=0, description="Prompts generated at once.")


class GrpoMethodConfig(Schema):
    name: Literal["grpo"] = "grpo"
    system_prompt: str = Field(description="The system message before each question.")
    rewards: list[str] = Field(
        description="Reward functions by name (semillero.rewards) or as module:function."
    )
    reward_weights: list[float] | None = Field(None, description="One per reward; null = 1.")
    num_generations: int = Field(4, ge=2, description="Completions per prompt (a group).")
    max_prompt_length: int | None = Field(
        512, gt=0, description="Longer prompts are left out before training (counted)."
    )
    max_completion_length: int = Field(1024, gt=0)
    temperature: float = Field(1.0, gt=0, description="Sampling while training (notebook: 1.0).")
    top_k: int = Field(64, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    beta: float = Field(0.0, ge=0, description="KL coefficient (TRL's default 0: no ref model).")
    use_vllm: bool = Field(False, description="Generate with vLLM (GPU, Docker image only).")
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    cache_implementation: Literal["dynamic", "static"] | None = Field(
        None,
        description="The KV cache of generation while training: null/dynamic grows it per "
        "token; static preallocates it (GRPOConfig.cache_implementation).",
    )
    evaluation: GrpoEvalConfig = Field(default_factory=GrpoEvalConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @field_validator("rewards")
    @classmethod
    def _known_rewards(cls, value: list[str]) -> list[str]:
        from semillero.rewards import resolve_reward

        if not value:
            raise ValueError("method.rewards is empty: name at least one reward function")
        for name in value:
            resolve_reward(name)  # raises ValueError naming the known rewards
        return value

    @model_validator(mode="after")
    def _weights(self) -> GrpoMethodConfig:
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ValueError(
                f"method.reward_weights has {len(self.reward_weights)} values for "
                f"{len(self.rewards)} rewards: give one weight per reward, or null"
            )
        return self


AnyMethod = Annotated[
    ClmMethodConfig | SftMethodConfig | GrpoMethodConfig | AxolotlMethodConfig,
    Field(discriminator="name"),
]

# What each method reads from a data set: role -> required. Roles map to columns through
# dataset.fields (clm reads dataset.text_column).
METHOD_ROLES: Final[dict[str, dict[str, bool]]] = {
    "clm": {},
    "sft": {"instruction": True, "input": False, "output": True},
    "grpo": {"question": True, "answer": True},
    "axolotl": {"instruction": True, "input": False, "output": True},
}
