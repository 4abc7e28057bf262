"""Rough training-memory estimates, for `semillero plan` to catch a run that cannot fit
before it spends GPU time. Nothing here imports torch: the visible device is read from
nvidia-smi, or from the machine's RAM when there is no GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from semillero.config.schema import RunConfig

GIB = 1024**3
# Bytes per parameter for full fine-tuning with AdamW: fp32 weights (4) + gradients (4) +
# two Adam moments (8), plus a 16-bit copy of the weights under mixed precision (2).
FULL_FINETUNE_BYTES = 16
MIXED_PRECISION_EXTRA = 2
# Under an adapter the frozen base is held in bf16 (2 bytes) or NF4 (about 0.55 with its
# constants), and only the adapter has gradients and Adam moments. Its size depends on the
# targets; 2% of the base is a generous guess for r <= 64 on every linear layer.
FROZEN_BYTES = {"lora": 2.0, "qlora": 0.55}
ADAPTER_SHARE = 0.02


def sequence_length(run: RunConfig) -> int:
    """Tokens per training sequence: max_length, or prompt + completion for GRPO."""
    m = run.method
    if m.name == "grpo":
        return (m.max_prompt_length or 512) + m.max_completion_length
    if m.name == "axolotl":
        return m.sequence_len
    return m.max_length


def estimate_gib(run: RunConfig) -> float | None:
    """Peak training memory in GiB, or None when the model's size is unknown. Full
    fine-tuning, LoRA and QLoRA differ in the weights' bytes; GRPO's generation cache and
    vLLM's memory are not counted.

    Activations follow Korthikanti et al. (2022) for one transformer layer in 16-bit:
    s*b*h*(34 + 5*a*s/h) bytes, with a = h/64 heads; checkpointing keeps ~1 layer's worth.
    """
    facts = run.model.facts
    if run.scale == "tiny" or not facts.parameters_m:
        return None
    params = facts.parameters_m * 1e6
    t = run.trainer
    mixed = t.fp16 or t.bf16
    if run.adapter.type == "none":
        states = params * (FULL_FINETUNE_BYTES + (MIXED_PRECISION_EXTRA if mixed else 0))
    else:
        frozen = FROZEN_BYTES["qlora" if run.adapter.quantization else "lora"]
        states = params * (frozen + ADAPTER_SHARE * FULL_FINETUNE_BYTES)
    activations = 0.0
    if facts.hidden_size and facts.layers:
        s, b, h = sequence_length(run), t.per_device_train_batch_size, facts.hidden_size
        per_layer = s * b * h * (34 + 5 * (h / 64) * s / h) * (1 if mixed else 2)
        activations = per_layer * (1 if t.activation_checkpointing else facts.layers)
    return (states + activations) / GIB


def nvidia_smi(*fields: str) -> list[str]:
    """Lines of `nvidia-smi --query-gpu=<fields>`, one per visible GPU; [] without one."""
    if not shutil.which("nvidia-smi") or os.environ.get("CUDA_VISIBLE_DEVICES", "0") == "":
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def visible_device() -> tuple[str, float]:
    """(name, memory in GiB) of the first visible GPU, else of this machine's RAM."""
    lines = nvidia_smi("name", "memory.total")
    if lines:
        try:
            name, mib = lines[0].rsplit(",", 1)
            return name.strip(), float(mib) / 1024
        except ValueError:
            pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    return "cpu RAM", ram
