"""`semillero export RUN`: a trained run -> merged 16-bit weights, a GGUF file and an
Ollama Modelfile, under <run>/export/.

1. The adapter is merged into the base held in 16-bit (`merge_and_unload`), saved with
   `save_pretrained`, and loaded back with `from_pretrained`; its logits are checked
   against the adapter model's. A QLoRA adapter is merged into the 16-bit base it was
   quantised from (the usual practice): the check compares with the adapter over that
   same 16-bit base.
2. The merged model is written as GGUF with the `gguf` package (the llama.cpp converter is
   not on PyPI). The writer knows the Llama layout (LlamaForCausalLM: Llama-3.2-1B and its
   twins); another architecture gets a clear statement and no file. The file is read
   back with gguf's reader and compared tensor by tensor.
3. A Modelfile for Ollama points at the GGUF file, with the study's prompt template.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from semillero.errors import SemilleroError
from semillero.formats import ALPACA_PROMPT
from semillero.records import RECORD, RunRecord, read_record

log = logging.getLogger(__name__)

PROBE = "La fotosíntesis convierte la luz del sol en energía química para la planta."


def find_run(target: str | Path) -> tuple[Path, RunRecord]:
    """A run folder (or its record.json) and its record; errors name what to pass."""
    path = Path(target)
    folder = path.parent if path.name == RECORD else path
    if not (folder / RECORD).is_file():
        raise SemilleroError(
            f"{target} is not a run folder (no {RECORD} in it): pass the folder a run wrote, "
            "e.g. outputs/tiny/alpaca_qlora/<run>"
        )
    record = read_record(folder / RECORD)
    if record.status != "done":
        raise SemilleroError(
            f"run {record.run_name} is {record.status}, not done: finish it first "
            "(make sweep resumes it)"
        )
    return folder, record


def export_run(target: str | Path, dtype: str = "bfloat16") -> dict[str, Any]:
    """Merges, checks, writes GGUF and a Modelfile; returns what was done (export.json)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, record = find_run(target)
    out = folder / "export"
    out.mkdir(exist_ok=True)
    torch_dtype = getattr(torch, dtype)
    result: dict[str, Any] = {"run": record.run_name, "dtype": dtype}

    if "adapter" in record.artifacts:
        adapter_dir = record.artifacts["adapter"]
        base = record.model.get("base")
        if not base:
            raise SemilleroError(
                f"the record of {record.run_name} names no base model to merge into"
            )
        merged, probe = merge_adapter(base, adapter_dir, record.model.get("adapter", {}))
        result |= probe
        tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    elif "model" in record.artifacts:
        merged = AutoModelForCausalLM.from_pretrained(record.artifacts["model"])
        tokenizer = AutoTokenizer.from_pretrained(record.artifacts["model"])
        result["merge"] = "no adapter: the fully fine-tuned model is exported as it is"
    else:
        raise SemilleroError(
            f"run {record.run_name} saved no weights (its method keeps none, e.g. clm): "
            "export works on sft and grpo runs"
        )

    merged_dir = out / "merged"
    cast(Any, merged).to(torch_dtype).save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    result["merged"] = str(merged_dir)
    result |= check_reload(merged_dir, tokenizer, result.get("reference_logits"))
    result.pop("reference_logits", None)

    fmt = record.config.get("method", {}).get("format")
    try:
        gguf_path = write_gguf(merged_dir, out / "model-f16.gguf", record.run_name)
        result["gguf"] = str(gguf_path)
        result["gguf_check"] = read_back(gguf_path, merged_dir)
        modelfile = write_modelfile(out / "Modelfile", gguf_path, fmt, tokenizer)
        result["modelfile"] = str(modelfile)
    except UnsupportedArchitecture as exc:
        result["gguf"] = None
        result["gguf_note"] = str(exc)
        log.warning("%s", exc)
    (out / "export.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    record.artifacts |= {
        k: v for k, v in result.items() if k in ("merged", "gguf", "modelfile") and v
    }
    record.write(folder)
    return result


def merge_adapter(
    base: str, adapter_dir: str, adapter_info: dict[str, Any]
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The base in fp32 with the adapter, merged; checks the merge on a probe sentence."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(model, adapter_dir)
    peft_model.eval()
    ids = tokenizer(PROBE, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        before = peft_model(input_ids=ids).logits
    merged = cast(Any, peft_model.merge_and_unload())
    with torch.inference_mode():
        after = merged(input_ids=ids).logits
    diff = float((before - after).abs().max())
    scale = float(before.abs().max())
    if not torch.allclose(before, after, atol=1e-4 * max(scale, 1.0), rtol=1e-4):
        raise SemilleroError(
            f"the merged model's logits differ from the adapter model's by {diff:.2e} "
            "(fp32); the merge is wrong: report this with the run's record"
        )
    note = (
        "QLoRA adapter merged into the 16-bit base it was quantised from"
        if adapter_info.get("type") == "qlora"
        else "LoRA adapter merged into the base"
    )
    return merged, {
        "merge": note,
        "merge_max_abs_diff_fp32": diff,
        "reference_logits": before,
    }


def check_reload(
    merged_dir: Path, tokenizer: Any, reference: torch.Tensor | None
) -> dict[str, Any]:
    """Loads the saved merged model back with from_pretrained and compares its logits with
    the adapter model's (within the 16-bit rounding of the saved weights)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32)
    model.eval()
    ids = tokenizer(PROBE, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits
    if reference is None:
        return {"reload": "loads with from_pretrained"}
    diff = float((logits - reference).abs().max())
    same_top = float((logits.argmax(-1) == reference.argmax(-1)).float().mean())
    return {
        "reload": "loads with from_pretrained",
        "reload_max_abs_diff": diff,
        "reload_same_next_token": same_top,
    }


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


def write_modelfile(path: Path, gguf_path: Path, fmt: str | None, tokenizer: Any) -> Path:
    """An Ollama Modelfile: the GGUF file, the study's prompt template, the stop token."""
    lines = [
        f"# Ollama: ollama create <name> -f {path.name}   (written by semillero export)",
        f"FROM ./{gguf_path.name}",
    ]
    if fmt == "alpaca":
        # Ollama has one prompt slot: the template without an input section.
        template = ALPACA_PROMPT.format(instruction="{{ .Prompt }}") + "{{ .Response }}"
        lines.append(f'TEMPLATE """{template}"""')
    else:
        lines.append("# TEMPLATE: the chat template stored in the GGUF file is used")
    if tokenizer.eos_token:
        lines.append(f'PARAMETER stop "{tokenizer.eos_token}"')
    lines += ["PARAMETER temperature 0.7", "PARAMETER top_k 50", "PARAMETER top_p 0.95", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
