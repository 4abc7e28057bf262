"""Our composed config -> Axolotl's flat YAML, with where each key came from.

Our names stay nested and library-named (adapter.r, trainer.learning_rate); Axolotl's are
flat (lora_r, learning_rate). Every key written remembers the config value that made it,
so that a complaint about `lora_target_modules` comes back as one about
`adapter.target_modules` (semillero.axolotl.check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from semillero.config.axolotl import AxolotlMethodConfig
from semillero.config.schema import RunConfig


@dataclass
class Rendered:
    """Axolotl's config and, per key, the setting of ours that produced it."""

    config: dict[str, Any] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)

    def set(self, key: str, value: Any, source: str) -> None:
        self.config[key] = value
        self.source[key] = source

    def write(self, path: Path) -> Path:
        """The YAML, each key preceded by the setting of ours that made it."""
        lines = [
            "# Written by semillero from the composed run config: edit the config, not this",
            "# file. Each key's comment names the setting it comes from.",
        ]
        for key, value in self.config.items():
            lines.append(f"# {key} <- {self.source[key]}")
            lines.append(yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True).strip())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


@dataclass(frozen=True)
class AxolotlPaths:
    """Where the rendered run reads and writes (in the run's folder)."""

    base_model: str  # a hub id, a local model folder, or the saved tiny twin
    base_model_source: str  # which of our settings named it
    train: Path
    validation: Path
    prepared: Path
    output: Path


def render(run: RunConfig, paths: AxolotlPaths, cuda: bool) -> Rendered:
    """Axolotl's YAML for one run. Without CUDA, method.cpu_profile overrides what Axolotl
    cannot do on a CPU (the keys it sets say so)."""
    method = run.method
    assert isinstance(method, AxolotlMethodConfig)
    out = Rendered()
    out.set("base_model", paths.base_model, paths.base_model_source)
    if run.model.revision and paths.base_model_source == "model.hub_id":
        out.set("revision_of_model", run.model.revision, "model.revision")
    dataset = {"path": str(paths.train), "ds_type": "json", "type": method.format}
    out.set("datasets", [dataset], f"dataset ({run.dataset.name}) train split + method.format")
    held = {"path": str(paths.validation), "ds_type": "json", "type": method.format}
    out.set("test_datasets", [held | {"split": "train"}], "dataset held-out split + method.format")
    out.set("dataset_prepared_path", str(paths.prepared), "the run's folder")
    out.set("output_dir", str(paths.output), "the run's folder")
    _adapter(run, out)
    _trainer(run, out)
    out.set("sequence_len", method.sequence_len, "method.sequence_len")
    out.set("sample_packing", method.sample_packing, "method.sample_packing")
    out.set("pad_to_sequence_len", method.pad_to_sequence_len, "method.pad_to_sequence_len")
    out.set("train_on_inputs", method.train_on_inputs, "method.train_on_inputs")
    out.set("group_by_length", method.group_by_length, "method.group_by_length")
    out.set("tf32", method.tf32, "method.tf32")
    attn = method.attn_implementation or run.model.attn_implementation
    if attn:
        where = "method.attn_implementation" if method.attn_implementation else "model"
        out.set("attn_implementation", attn, where)
    out.set("seed", run.seed, "seed")
    for key, value in method.extra.items():
        out.set(key, value, f"method.extra.{key}")
    if not cuda:
        for key, value in method.cpu_profile.items():
            out.set(key, value, f"method.cpu_profile.{key} (no CUDA device)")
    return out


def _adapter(run: RunConfig, out: Rendered) -> None:
    a = run.adapter
    if a.type == "none":
        return  # full fine-tuning: Axolotl's default when `adapter` is absent
    quantized = a.quantization is not None
    out.set("adapter", "qlora" if quantized else "lora", f"adapter={a.name}")
    if quantized:
        out.set("load_in_4bit", True, f"adapter={a.name} (adapter.quantization)")
    out.set("lora_r", a.r, "adapter.r")
    out.set("lora_alpha", a.alpha, "adapter.alpha")
    out.set("lora_dropout", a.dropout, "adapter.dropout")
    if a.target_modules == "all-linear":
        out.set("lora_target_linear", True, "adapter.target_modules=all-linear")
    else:
        out.set("lora_target_modules", list(a.target_modules), "adapter.target_modules")


def _trainer(run: RunConfig, out: Rendered) -> None:
    t = run.trainer
    out.set(
        "micro_batch_size", t.per_device_train_batch_size, "trainer.per_device_train_batch_size"
    )
    out.set("eval_batch_size", t.per_device_eval_batch_size, "trainer.per_device_eval_batch_size")
    out.set(
        "gradient_accumulation_steps",
        t.gradient_accumulation_steps,
        "trainer.gradient_accumulation_steps",
    )
    out.set("num_epochs", t.num_train_epochs, "trainer.num_train_epochs")
    if t.max_steps > 0:
        out.set("max_steps", t.max_steps, "trainer.max_steps")
    out.set("learning_rate", t.learning_rate, "trainer.learning_rate")
    out.set("lr_scheduler", t.lr_scheduler_type, "trainer.lr_scheduler_type")
    out.set("optimizer", t.optim, "trainer.optim")
    out.set("weight_decay", t.weight_decay, "trainer.weight_decay")
    if t.warmup_steps >= 1 or t.warmup_steps == 0:
        out.set("warmup_steps", int(t.warmup_steps), "trainer.warmup_steps")
    else:
        out.set("warmup_ratio", t.warmup_steps, "trainer.warmup_steps (< 1: a ratio)")
    out.set("max_grad_norm", t.max_grad_norm, "trainer.max_grad_norm")
    out.set("logging_steps", t.logging_steps, "trainer.logging_steps")
    out.set("eval_strategy", t.eval_strategy, "trainer.eval_strategy")
    if t.eval_steps:
        out.set("eval_steps", t.eval_steps, "trainer.eval_steps")
    out.set(
        "gradient_checkpointing", t.activation_checkpointing, "trainer.activation_checkpointing"
    )
    out.set("bf16", t.bf16, "trainer.bf16")
    out.set("fp16", t.fp16, "trainer.fp16")
