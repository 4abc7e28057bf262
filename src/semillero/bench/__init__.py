"""`semillero bench`: measured throughput, step time, peak memory and MFU of each method.

Each case builds its model at the real shape with random weights (the FLOPs are the real
model's), feeds it synthetic token streams with the length distribution of the study's
data, and times steady-state steps after a warm-up through the study's own trainer
(`make_trainer` of semillero.methods.clm/sft/grpo). The variants of a case run one after the
other in the same process, so they are compared on the same machine and stack.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from semillero.config.base import Schema

CaseName = Literal["clm", "sft", "grpo"]


class Lengths(Schema):
    """Tokens per row: lognormal around a median, clipped."""

    median: int = Field(gt=0)
    sigma: float = Field(ge=0)
    min: int = Field(gt=0)
    max: int = Field(gt=0)


class CaseConfig(Schema):
    run: list[str] = Field(description="Overrides of the semillero run the case times.")
    shape: dict[str, object] = Field(description="The real model's config (twin.config).")
    vocab: int = Field(gt=0, description="The real vocabulary: rows of embedding and head.")
    lengths: Lengths | None = Field(None, description="Synthetic rows (clm, sft).")
    prompt_share: float = Field(0.33, gt=0, lt=1, description="sft: the prompt's share.")
    rows: int = Field(gt=0)
    warmup_steps: int = Field(ge=1)
    measure_steps: int = Field(ge=1)
    variants: dict[str, list[str]]
    cuda_only: list[str] = Field(default_factory=list)
    compiled_decoding: list[str] = Field(default_factory=list)


class TinyConfig(Schema):
    output_dir: str = Field(description="Where SCALE=tiny writes (not results).")
    rows: int
    lengths: Lengths
    overrides: list[str]
    grpo_overrides: list[str]
    warmup_steps: int = Field(ge=1)
    measure_steps: int = Field(ge=1)


class BenchConfig(Schema):
    scale: Literal["full", "tiny"]
    seed: int
    output_dir: str
    profile: bool = Field(
        False, description="Profile one more step per variant: its costliest operators."
    )
    cases: list[CaseName]
    clm: CaseConfig
    sft: CaseConfig
    grpo: CaseConfig
    tiny: TinyConfig
