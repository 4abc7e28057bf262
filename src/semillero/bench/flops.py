"""Training FLOPs per token and MFU (model FLOPs utilisation), by the formula the output prints.

    FLOPs/token = 6·N_train + 4·N_frozen + 12·Σ_layers d_attn·T_layer

- N counts the weights every token multiplies by: all parameters but the input embedding
  tables (token and position), with a tied output head counted once (it is a matmul).
- A trained weight costs 6 FLOPs per token (forward 2, backward 4); a frozen one under an
  adapter 4 (forward 2, and the backward still carries activation gradients through it).
- Attention scores and the weighted sum cost 12·d_attn·T per layer and token (forward and
  backward; d_attn = heads × head_dim; causal masking not subtracted, as PaLM and llm.c
  count it). T_layer = min(T, window) on sliding-window layers (Gemma 3).

MFU = useful tokens/s × FLOPs/token ÷ the device's dense bf16 peak.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from torch import nn

FORMULA = (
    "FLOPs/token = 6*N_train + 4*N_frozen + 12*sum_layers(d_attn*T_layer); "
    "N = parameters less the input embedding tables (tied head counted once); "
    "MFU = useful tokens/s * FLOPs/token / peak dense bf16 FLOP/s"
)

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, in TFLOP/s.
# Matched against torch.cuda.get_device_name() in this order (the first substring wins).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM (the "80GB HBM3" part)
    ("H200", 989.4),
    ("GH200", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
)


@dataclass(frozen=True)
class ParameterCount:
    trained: int  # in matmuls, with gradients
    frozen: int  # in matmuls, frozen (the base under LoRA/QLoRA)
    embeddings: int  # input embedding tables, not in any per-token matmul

    @property
    def matmul(self) -> int:
        return self.trained + self.frozen


def count_parameters(model: nn.Module) -> ParameterCount:
    """Splits a model's parameters as the FLOPs formula needs them.

    Every nn.Embedding is an input table (token or position embeddings); a tied output head
    shares the token table's tensor and is counted back once, as the matmul it is. 4-bit
    weights (bitsandbytes Params4bit) are counted by their logical size, not their bytes.
    """
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    head_weight = getattr(head, "weight", None)
    tables = {
        id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding) and m is not head
    }
    trained = frozen = embeddings = 0
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if p is head_weight and id(p) in tables:
            continue  # tied: counted below, once as a table and once as the head
        n = _logical_numel(p)
        if id(p) in tables:
            embeddings += n
        elif p.requires_grad:
            trained += n
        else:
            frozen += n
    if head_weight is not None and id(head_weight) in tables:  # tied: a table and the head
        n = _logical_numel(head_weight)
        embeddings += n
        if head_weight.requires_grad:
            trained += n
        else:
            frozen += n
    return ParameterCount(trained, frozen, embeddings)


def _logical_numel(p: Any) -> int:
    shape = getattr(getattr(p, "quant_state", None), "shape", None)
    if shape is not None:  # bitsandbytes Params4bit: the packed tensor is half the bytes
        n = 1
        for d in shape:
            n *= int(d)
        return n
    return int(p.numel())


def attention_widths(config: Any, seq_len: int) -> list[tuple[int, int]]:
    """(d_attn, T_layer) per layer, from a transformers config."""
    layers = int(getattr(config, "num_hidden_layers", None) or config.n_layer)
    heads = int(getattr(config, "num_attention_heads", None) or config.n_head)
    hidden = int(getattr(config, "hidden_size", None) or config.n_embd)
    head_dim = int(getattr(config, "head_dim", None) or hidden // heads)
    window = getattr(config, "sliding_window", None)
    kinds = getattr(config, "layer_types", None) or ["full_attention"] * layers
    widths = []
    for kind in kinds[:layers]:
        t = min(seq_len, int(window)) if window and kind == "sliding_attention" else seq_len
        widths.append((heads * head_dim, t))
    return widths


def flops_per_token(counts: ParameterCount, widths: list[tuple[int, int]]) -> int:
    """Training FLOPs per token (see the module's formula)."""
    attention = 12 * sum(d * t for d, t in widths)
    return 6 * counts.trained + 4 * counts.frozen + attention


def peak_flops(device_name: str) -> float | None:
    """The device's dense bf16 peak in FLOP/s: $SEMILLERO_PEAK_TFLOPS, else the table above,
    else None (MFU is then not reported)."""
    override = os.environ.get("SEMILLERO_PEAK_TFLOPS")
    if override:
        return float(override) * 1e12
    for name, tflops in PEAK_BF16_TFLOPS:
        if name in device_name:
            return tflops * 1e12
    return None


def mfu(tokens_per_second: float, per_token: int, peak: float | None) -> float | None:
    """Model FLOPs utilisation, a fraction of the peak (None without a known peak)."""
    if peak is None or peak <= 0:
        return None
    return tokens_per_second * per_token / peak
