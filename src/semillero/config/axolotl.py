"""The schema of method `axolotl`: training delegated to Axolotl's CLI in its own venv.

Our names stay nested and library-named (adapter.r, trainer.learning_rate); the Axolotl YAML
writer (semillero.axolotl.render) translates them to Axolotl's flat keys and remembers which
of our values made each key, so Axolotl's complaints come back in our terms.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from semillero.config.base import Schema
from semillero.config.distributed import DistributedConfig


class ExtractionEvalConfig(Schema):
    """The held-out extraction evaluation: greedy answers, scored as JSON against the schema."""

    split: str = Field("test", description="The data set's split the evaluation reads.")
    max_examples: int | None = Field(None, gt=0, description="Score the first N rows only.")
    max_new_tokens: int = Field(256, gt=0, description="Room for the whole JSON object.")
    batch_size: int = Field(8, gt=0)
    spec: str | None = Field(
        None, description="The field list the JSON is scored against; null = the shipped one."
    )


class AxolotlMethodConfig(Schema):
    """Supervised LoRA/QLoRA fine-tuning run by `axolotl train` on a YAML we render."""

    name: Literal["axolotl"] = "axolotl"
    format: str = Field(
        "alpaca",
        description="Axolotl's dataset type: alpaca reads instruction/input/output columns.",
    )
    sequence_len: int = Field(1024, gt=0, description="Tokens per example (Axolotl's name).")
    sample_packing: bool = Field(False, description="Pack examples into sequence_len blocks.")
    pad_to_sequence_len: bool = Field(False, description="Pad every batch to sequence_len.")
    train_on_inputs: bool = Field(False, description="false: loss on the response only.")
    group_by_length: bool = False
    tf32: bool = Field(False, description="TF32 matmuls (Ampere and newer GPUs).")
    attn_implementation: str | None = Field(
        None,
        description="Axolotl's attention backend: eager, sdpa, flash_attention_2 (null: the "
        "model's own setting, else Axolotl's default).",
    )
    cpu_profile: dict[str, Any] = Field(
        default_factory=dict,
        description="Axolotl keys set when no CUDA device is present: what Axolotl cannot do "
        "on a CPU (its LoRA kernels, bf16/tf32, flash/sdp attention, packing).",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Further Axolotl keys, written as given; each must be an option Axolotl "
        "knows and not a deprecated one (checked before training).",
    )
    env: str | None = Field(
        None,
        description="Axolotl's venv; null = $SEMILLERO_AXOLOTL_ENV, else .venv-axolotl at the "
        "repository root (make setup-axolotl).",
    )
    evaluation: ExtractionEvalConfig = Field(default_factory=ExtractionEvalConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)

    @model_validator(mode="after")
    def _one_process(self) -> AxolotlMethodConfig:
        if self.distributed.strategy != "single":
            raise ValueError(
                f"method=axolotl with method.distributed.strategy={self.distributed.strategy}: "
                "Axolotl launches its own processes, so semillero does not. Give Axolotl its "
                "DeepSpeed config instead (method.extra.deepspeed=<json path>) and leave "
                "strategy at single"
            )
        return self
