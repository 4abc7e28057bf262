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


# Gemma-3-1B and Llama-3.2-1B shapes (studies.md), on the twin tokenizer: every layer is the
# real one, the vocabulary is the twin's (about a thousand tokens instead of 262,144 / 128,256),
# so the embedding and output head are smaller than the real models'.
GEMMA3_1B = (
    "model.twin.config={hidden_size: 1152, intermediate_size: 6912, num_hidden_layers: 26, "
    "num_attention_heads: 4, num_key_value_heads: 1, head_dim: 256, "
    "max_position_embeddings: 32768, sliding_window: 512, tie_word_embeddings: true}"
)
LLAMA32_1B = (
    "model.twin.config={hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, "
    "num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 131072, "
    "tie_word_embeddings: true}"
)


@pytest.mark.gpu
@requires_cuda
def test_grpo_steps_at_gemma3_1b_shape() -> None:
    """A few GRPO steps of the Iberotales recipe (batch 4 x 4, 4 generations, bf16, LoRA
    r 32): prints seconds per step for the study's README."""
    record = run_tiny(
        "experiment=iberotales_grpo",
        GEMMA3_1B,
        "trainer.max_steps=3",
        "trainer.per_device_train_batch_size=4",
        "trainer.gradient_accumulation_steps=4",
        "method.max_completion_length=256",
        "method.evaluation.max_samples=4",
        "method.evaluation.max_new_tokens=64",
    )
    assert record.precision == "bf16" and record.device.startswith("cuda")
    assert record.model["adapter"]["trainable"] > 20_000_000  # r 32 on every projection
    print(
        f"\nGRPO at Gemma-3-1B shape on {record.device}: "
        f"{record.metrics['seconds_per_step']:.2f} s/step (256-token completions)"
    )


@pytest.mark.gpu
@requires_cuda
def test_qlora_sft_at_llama32_1b_shape() -> None:
    record = run_tiny(
        "experiment=alpaca_qlora",
        LLAMA32_1B,
        "trainer.max_steps=10",
        "method.max_length=512",
    )
    assert record.model["layers"]["Linear4bit"] == 16 * 7
    assert record.model["weights"].startswith("nf4") and "bfloat16" in record.model["weights"]
    assert math.isfinite(record.metrics["eval_loss"])
    print(
        f"\nQLoRA SFT at Llama-3.2-1B shape on {record.device}: "
        f"{record.metrics['useful_tokens_per_second']:.0f} useful tokens/s"
    )


@pytest.mark.gpu
@requires_cuda
def test_ddp_on_one_gpu_runs_over_nccl_and_matches_one_process() -> None:
    """The CUDA path of method.distributed: accelerate launch, one GPU process, NCCL."""
    common = ("trainer.max_steps=4", "trainer.logging_steps=1", "dataset.max_train_samples=32")
    single = run_tiny(*common)
    ddp = run_tiny(*common, "method.distributed.strategy=ddp", "method.distributed.processes=1")
    assert ddp.status == "done"
    assert (ddp.distributed["backend"], ddp.distributed["distributed_type"]) == (
        "nccl",
        "MULTI_GPU",
    )
    assert ddp.device.startswith("cuda")
    assert math.isclose(ddp.metrics["train_loss"], single.metrics["train_loss"], rel_tol=1e-3)
