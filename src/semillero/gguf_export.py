"""GGUF from a merged Llama model, with the `gguf` package (llama.cpp's converter is not on
PyPI): the tensor names, the q/k permutation and the rope factors follow llama.cpp's
convert_hf_to_gguf.py for LLM_ARCH_LLAMA. Other layouts are refused with the way out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semillero.errors import SemilleroError


class UnsupportedArchitecture(SemilleroError):
    """GGUF writing knows only some layouts."""


# HF Llama names -> GGUF names (llama.cpp's tensor map for LLM_ARCH_LLAMA).
LLAMA_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp stores q/k rotary halves interleaved: the converter's permutation."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


def llama3_rope_factors(config: Any) -> np.ndarray | None:
    """Llama 3.1+/3.2 scale long wavelengths; llama.cpp reads the factors from rope_freqs."""
    scaling = getattr(config, "rope_scaling", None) or {}
    if scaling.get("rope_type") != "llama3":
        return None
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    theta = getattr(config, "rope_theta", None) or scaling.get("rope_theta", 10000.0)
    factor = scaling.get("factor", 8.0)
    low, high = scaling.get("low_freq_factor", 1.0), scaling.get("high_freq_factor", 4.0)
    old = scaling.get("original_max_position_embeddings", 8192)
    factors = []
    for i in range(0, head_dim, 2):
        wavelen = 2 * math.pi * theta ** (i / head_dim)
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def write_gguf(merged_dir: Path, path: Path, name: str) -> Path:
    """The merged Llama model as an F16 GGUF file (norms in F32, as llama.cpp writes them)."""
    import gguf
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(merged_dir))
    if config.model_type != "llama":
        raise UnsupportedArchitecture(
            f"GGUF export knows the Llama layout only; this model is {config.model_type}. Convert "
            f"{merged_dir} with llama.cpp's convert_hf_to_gguf.py (from a llama.cpp checkout)"
        )
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(merged_dir.glob("*.safetensors")):
        tensors |= load_file(str(file))
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    theta = getattr(config, "rope_theta", None) or (config.rope_scaling or {}).get(
        "rope_theta", 10000.0
    )

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    _add_tokenizer(writer, merged_dir, config.vocab_size)

    def add(gguf_name: str, t: torch.Tensor, norm: bool = False) -> None:
        array = t.float().numpy()
        writer.add_tensor(gguf_name, array.astype(np.float32 if norm else np.float16))

    add("token_embd.weight", tensors["model.embed_tokens.weight"])
    add("output_norm.weight", tensors["model.norm.weight"], norm=True)
    if "lm_head.weight" in tensors and not config.tie_word_embeddings:
        add("output.weight", tensors["lm_head.weight"])
    factors = llama3_rope_factors(config)
    if factors is not None:
        writer.add_tensor("rope_freqs.weight", factors)
    for i in range(config.num_hidden_layers):
        for hf, short in LLAMA_TENSORS.items():
            t = tensors[f"model.layers.{i}.{hf}.weight"]
            if short == "attn_q":
                t = torch.from_numpy(_permute(t.float().numpy(), heads))
            elif short == "attn_k":
                t = torch.from_numpy(_permute(t.float().numpy(), kv_heads))
            add(f"blk.{i}.{short}.weight", t, norm=short.endswith("norm"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_tokenizer(writer: Any, merged_dir: Path, vocab_size: int) -> None:
    """A byte-level BPE tokenizer (Llama 3's and the twins') as llama.cpp's `gpt2` model."""
    spec = json.loads((merged_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = dict(spec["model"]["vocab"])
    special = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    vocab |= special
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [5] * vocab_size  # 5: unused
    for token, i in vocab.items():
        if i < vocab_size:
            tokens[i] = token
            types[i] = 3 if token in special else 1  # 3: control, 1: normal
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"].get("merges", [])]
    config = json.loads((merged_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe" if vocab_size == 128256 else "default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for role, add in (
        ("bos_token", writer.add_bos_token_id),
        ("eos_token", writer.add_eos_token_id),
    ):
        value = config.get(role)
        name: Any = value.get("content") if isinstance(value, dict) else value
        if name in vocab:
            add(vocab[name])
    template = config.get("chat_template")
    if template:
        writer.add_chat_template(template)


def read_back(path: Path, merged_dir: Path) -> dict[str, Any]:
    """Reads the GGUF file with gguf's reader; checks metadata and the embedding tensor."""
    import gguf
    from safetensors.torch import load_file

    reader = gguf.GGUFReader(str(path))
    names = {t.name for t in reader.tensors}
    arch = reader.fields["general.architecture"]
    architecture = bytes(arch.parts[arch.data[0]]).decode()
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    weights: dict[str, torch.Tensor] = {}
    for file in sorted(merged_dir.glob("*.safetensors")):
        weights |= load_file(str(file))
    original = weights["model.embed_tokens.weight"].float().numpy().astype(np.float16)
    stored = np.asarray(embd.data).reshape(original.shape)
    if architecture != "llama" or not np.array_equal(stored, original):
        raise SemilleroError(f"{path} does not read back as written: delete it and export again")
    return {"tensors": len(names), "architecture": architecture, "token_embd": "identical"}
