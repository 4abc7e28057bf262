"""GPU checks at real model shapes with random weights (the FLOPs are those of the real
model). They skip without CUDA; a GPU runner runs them with `make test-all`."""

from __future__ import annotations

import math

import pytest

from tests.helpers.run_if import requires_cuda
from tests.helpers.runs import run_tiny

# GPT-2 small (124M) shape on the twin tokenizer: the real model's compute, no download.
GPT2_SMALL = "model.twin.config={n_layer: 12, n_embd: 768, n_head: 12, n_positions: 1024}"


@pytest.mark.gpu
@requires_cuda
def test_screening_recipe_trains_in_fp16_at_gpt2_small_shape() -> None:
    record = run_tiny(
        "model=gpt2-small-es",
        GPT2_SMALL,
        "trainer=screening",
        "trainer.max_steps=10",
        "trainer.eval_strategy=no",
        "method.max_length=256",
        "dataset.max_train_samples=64",
    )
    assert record.precision == "fp16"
    assert record.device.startswith("cuda")
    assert record.model["parameters"] > 80_000_000
    assert math.isfinite(record.metrics["train_loss"])
    assert record.metrics["useful_tokens_per_second"] > 0
