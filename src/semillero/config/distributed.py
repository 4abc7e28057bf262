"""The schema of `method.distributed`: how many processes one run trains on."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from semillero.config.base import Schema

Strategy = Literal["single", "ddp", "zero2", "zero3", "fsdp"]


class DistributedConfig(Schema):
    """How many processes one run trains on, and how they share the model.

    Anything but `single` is launched through `accelerate launch`, on config files written
    from this section into the run's folder (semillero.distributed).
    """

    strategy: Strategy = Field(
        "single",
        description="single: one process | ddp: a model replica per GPU | zero2: DeepSpeed "
        "ZeRO-2 (optimizer state and gradients sharded) | zero3: ZeRO-3 (weights too) | "
        "fsdp: PyTorch FSDP2 (weights, gradients and optimizer state sharded).",
    )
    processes: int | Literal["auto"] = Field(
        "auto",
        description="Processes (one per GPU); auto = every visible GPU. Without CUDA, ddp "
        "runs this many CPU processes over gloo (for tests), and auto is refused.",
    )
    offload: bool = Field(
        False,
        description="zero2/zero3/fsdp: keep optimizer state (and with zero3/fsdp the weights) "
        "in CPU memory.",
    )
    main_port: int | None = Field(
        None, ge=1024, le=65535, description="Rendezvous port; null = a free one."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DistributedConfig:
        if self.strategy == "single" and self.processes not in ("auto", 1):
            raise ValueError(
                f"method.distributed.processes={self.processes} with strategy single: pick how "
                "the processes share the model (method.distributed.strategy=ddp, zero2, zero3 or "
                "fsdp), or leave processes at auto"
            )
        if isinstance(self.processes, int) and self.processes < 1:
            raise ValueError("method.distributed.processes must be at least 1 (or auto)")
        if self.offload and self.strategy in ("single", "ddp"):
            raise ValueError(
                f"method.distributed.offload needs a sharding strategy (zero2, zero3 or fsdp), "
                f"not {self.strategy}"
            )
        return self
