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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from semillero.errors import SemilleroError
from semillero.formats import ALPACA_PROMPT
from semillero.gguf_export import UnsupportedArchitecture, read_back, write_gguf
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


def located(folder: Path, saved: str) -> str:
    """A path a record holds, found from the run folder. Records keep paths as the run
    wrote them, relative to where it was started; from another directory, or after
    outputs/ has moved, the part below the run's own folder still finds them. A hub id or a
    path outside the run is returned as it is."""
    path = Path(saved)
    if path.is_absolute() and path.exists():
        return saved
    parts = path.parts
    if folder.name in parts:
        inside = folder.joinpath(*parts[parts.index(folder.name) + 1 :])
        if inside.exists():
            return str(inside)
    return saved


def export_run(target: str | Path, dtype: str = "bfloat16") -> dict[str, Any]:
    """Merges, checks, writes GGUF and a Modelfile; returns what was done (export.json)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, record = find_run(target)
    if "adapter" not in record.artifacts and "model" not in record.artifacts:
        raise SemilleroError(
            f"run {record.run_name} saved no weights (its method keeps none, e.g. clm): "
            "export works on sft and grpo runs"
        )
    out = folder / "export"
    out.mkdir(exist_ok=True)
    torch_dtype = getattr(torch, dtype)
    result: dict[str, Any] = {"run": record.run_name, "dtype": dtype}

    if "adapter" in record.artifacts:
        adapter_dir = located(folder, record.artifacts["adapter"])
        base = record.model.get("base")
        if not base:
            raise SemilleroError(
                f"the record of {record.run_name} names no base model to merge into"
            )
        done = merge_adapter(located(folder, base), adapter_dir, record.model.get("adapter", {}))
        merged, tokenizer, reference = done.model, done.tokenizer, done.reference_logits
        result |= done.info
    else:
        model_dir = located(folder, record.artifacts["model"])
        merged = AutoModelForCausalLM.from_pretrained(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        reference = None
        result["merge"] = "no adapter: the fully fine-tuned model is exported as it is"

    merged_dir = out / "merged"
    cast(Any, merged).to(torch_dtype).save_pretrained(str(merged_dir))
    tokenizer.save_pretrained(str(merged_dir))
    result["merged"] = str(merged_dir)
    result |= check_reload(merged_dir, tokenizer, reference)

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


@dataclass
class Merge:
    model: Any  # the merged PreTrainedModel (fp32)
    tokenizer: Any
    info: dict[str, Any]  # what was done, for export.json
    reference_logits: torch.Tensor  # the adapter model's logits on PROBE (fp32)


def merge_adapter(base: str, adapter_dir: str, adapter_info: dict[str, Any]) -> Merge:
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
    return Merge(merged, tokenizer, {"merge": note, "merge_max_abs_diff_fp32": diff}, before)


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
