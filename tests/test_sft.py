"""Method sft: the Alpaca template, mixing, LoRA targets, QLoRA, training, merge, export,
and the errors bad input gets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import set_seed

from semillero.config.compose import compose, validate
from semillero.data.examples import load_examples
from semillero.errors import ConfigError, DataError, ModelLoadError, SemilleroError
from semillero.formats import alpaca, chat
from semillero.models.adapter import attach_adapter, check_targets, quantised_layers
from semillero.models.loader import load_model
from semillero.plan import preflight
from tests.helpers.runs import run_tiny

STUDY = ("experiment=alpaca_qlora",)

# studies.md (alpaca_qlora), byte for byte, with {instruction} and {output} filled in.
SOURCE_TEMPLATE = (
    "Debajo hay una instrucción que describe una tarea. \nEscribe una respuesta que complete "
    "adecuadamente lo que se pide.\n\n### Instrucción:\n{instruction}\n\n### Respuesta:\n{output}"
)


def test_alpaca_template_matches_the_source_byte_for_byte() -> None:
    row = {"instruction": "Define célula.", "input": "", "output": "La unidad de la vida."}
    pair = alpaca(row)
    assert (pair["prompt"] + pair["completion"]).encode() == SOURCE_TEMPLATE.format(**row).encode()
    assert pair["completion"] == row["output"]  # EOS is SFTTrainer's to append
    assert alpaca(row | {"input": None}) == pair  # null input = empty input


def test_alpaca_template_uses_a_non_empty_input() -> None:
    row = {"instruction": "Resume.", "input": "El sol sale.", "output": "Amanece."}
    text = "".join(alpaca(row).values())
    assert (
        "### Instrucción:\nResume.\n\n### Entrada:\nEl sol sale.\n\n### Respuesta:\nAmanece."
        in text
    )
    assert text.startswith(SOURCE_TEMPLATE.split("\n\n###")[0])


def test_chat_format_is_conversational() -> None:
    pair = chat({"instruction": "Traduce.", "input": "hello", "output": "hola"})
    assert pair["prompt"] == [{"role": "user", "content": "Traduce.\n\nhello"}]
    assert pair["completion"] == [{"role": "assistant", "content": "hola"}]


def test_mixing_follows_the_probabilities() -> None:
    """interleave_datasets draws each row's source with the given probabilities."""
    for probs in ({"bertin": 0.8, "plncmm": 0.2}, {"bertin": 0.2, "plncmm": 0.8}):
        shares = f"{{bertin: {probs['bertin']}, plncmm: {probs['plncmm']}}}"
        run = validate(compose([*STUDY, "scale=tiny", f"dataset.probabilities={shares}"]))
        mixed, info = load_examples(run.dataset, "sft", "tiny", seed=0)
        assert sorted(mixed.column_names) == ["input", "instruction", "output"]
        bertin = set(_rows(run.dataset.sources["bertin"]))
        share = sum((r["instruction"], r["input"]) in bertin for r in mixed) / len(mixed)
        p = probs["bertin"]
        # within three standard deviations of a binomial share over this many draws
        assert share == pytest.approx(p, abs=3 * (p * (1 - p) / len(mixed)) ** 0.5)
        assert info["mixing"] == "interleave"


def _rows(cfg: object) -> list[tuple[str, str]]:
    from semillero.data.source import FIXTURES

    path = FIXTURES / cfg.fixture  # type: ignore[attr-defined]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(r["instruction"], r["input"]) for r in map(json.loads, lines)]


def _loaded(*overrides: str, adapter: bool = True, tmp: Path) -> object:
    run = validate(compose([*STUDY, "scale=tiny", *overrides]))
    set_seed(run.seed)
    return run, load_model(run.model, run.scale, run.paths.cache_dir, run.adapter, tmp / "twin")


def test_lora_targets_resolve_and_a_missing_one_lists_the_modules(tmp_path: Path) -> None:
    run, loaded = _loaded("adapter=lora", tmp=tmp_path)
    model = loaded.model  # type: ignore[attr-defined]
    names = check_targets(
        model, run.adapter.model_copy(update={"target_modules": "all-linear"}), "x"
    )
    assert names == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    bad = run.adapter.model_copy(update={"target_modules": ["q_proj", "query_key_value"]})
    with pytest.raises(
        ModelLoadError, match=r"\['query_key_value'\] not found.*down_proj, gate_proj"
    ):
        check_targets(model, bad, "llama-3.2-1b")


def test_a_wrong_target_fails_before_the_model_loads() -> None:
    with pytest.raises(ModelLoadError, match="query_key_value"):
        run_tiny(*STUDY, "adapter.target_modules=[query_key_value]")


def test_qlora_really_quantises(tmp_path: Path) -> None:
    _, loaded = _loaded(tmp=tmp_path)
    model = loaded.model  # type: ignore[attr-defined]
    counts = quantised_layers(model)
    # 2 layers x 7 projections in 4-bit; only the output head stays a plain Linear
    assert counts == {"Linear4bit": 14, "Linear": 1}
    q = model.model.layers[0].self_attn.q_proj
    assert q.weight.dtype == torch.uint8 and q.weight.quant_state.quant_type == "nf4"
    assert q.weight.numel() * 2 == q.in_features * q.out_features  # two 4-bit values a byte
    assert loaded.weights.startswith("nf4")  # type: ignore[attr-defined]


def test_qlora_without_bitsandbytes_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a)
    )
    run = validate(compose([*STUDY, "scale=tiny"]))
    with pytest.raises(SemilleroError, match=r"bitsandbytes.*pip install -e '\.\[quant\]'"):
        preflight(run)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # and the loader says the same
    with pytest.raises(ModelLoadError, match="bitsandbytes, which is not installed"):
        load_model(run.model, "tiny", run.paths.cache_dir, run.adapter, Path("/tmp/unused"))


def test_prequantized_model_needs_qlora() -> None:
    with pytest.raises(ConfigError, match=r"already quantised.*adapter=qlora"):
        validate(compose([*STUDY, "model=llama-3.2-1b-bnb-4bit", "adapter=lora"]))


def test_chat_format_needs_a_chat_model() -> None:
    with pytest.raises(ConfigError, match="format=chat needs a chat template"):
        validate(compose([*STUDY, "method.format=chat"]))
    validate(compose([*STUDY, "method.format=chat", "model=llama-3.2-1b-instruct"]))


def test_training_changes_only_the_adapter(tmp_path: Path) -> None:
    run, loaded = _loaded("adapter=lora", tmp=tmp_path)
    model, info = attach_adapter(loaded.model, run.adapter, "llama")  # type: ignore[attr-defined]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.randint(0, 200, (2, 16))
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        optim.step()
        optim.zero_grad()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == changed
    assert info["trainable"] == sum(before[n].numel() for n in changed)


def test_rows_missing_output_are_one_error(tmp_path: Path) -> None:
    rows = [
        {"instruction": f"Pregunta {i}", "input": "", "output": f"Respuesta {i}"} for i in range(20)
    ]
    rows[3].pop("output")
    rows[7]["output"] = None
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"2 of 20 rows have null, empty.*'output'"):
        run_tiny(
            "method=sft", "model=llama-3.2-1b", "dataset=alpaca-spanish", f"dataset.fixture={path}"
        )


def test_an_alpaca_file_may_leave_the_optional_input_out(tmp_path: Path) -> None:
    rows = [{"instruction": f"Pregunta {i}", "output": f"Respuesta {i}"} for i in range(40)]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    record = run_tiny(
        "method=sft", "model=llama-3.2-1b", "dataset=alpaca-spanish", f"dataset.fixture={path}"
    )
    assert record.status == "done" and record.data["rows_in"] == 40


def test_a_missing_column_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"pregunta": "a", "respuesta": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"has no column 'instruction', 'output';"):
        run_tiny(
            "method=sft", "model=llama-3.2-1b", "dataset=alpaca-spanish", f"dataset.fixture={path}"
        )


def test_a_broken_jsonl_line_is_reported_by_number(tmp_path: Path, isolated: Path) -> None:
    good = json.dumps({"instruction": "a", "input": "", "output": "b"})
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([good, good, '{"instruction": "c", "output": ', good]) + "\n")
    with pytest.raises(DataError, match=r"data.jsonl line 3 is not valid JSON"):
        run_tiny(
            "method=sft", "model=llama-3.2-1b", "dataset=alpaca-spanish", f"dataset.fixture={path}"
        )
    assert not list(isolated.rglob("record.json"))  # nothing written


def test_study_runs_then_exports(isolated: Path) -> None:
    """The tiny study end to end: QLoRA record, contrast table, adapter; then export."""
    from semillero.export import export_run

    record = run_tiny(*STUDY)
    assert record.status == "done"
    assert record.model["adapter"]["type"] == "qlora"
    assert record.model["layers"]["Linear4bit"] == 14
    assert record.config["adapter"]["r"] == 32
    contrast = record.tables["contrast"]
    assert [r["question"] for r in contrast] == record.config["method"]["contrast"]["questions"]
    assert all(r["before"] and r["after"] for r in contrast)
    assert Path(record.artifacts["adapter"], "adapter_config.json").is_file()
    assert record.metrics["eval_loss"] > 0 and record.metrics["train_steps"] == 3

    # The record's paths are where the run wrote; export finds them after outputs/ moved
    # (or from another directory, for the relative paths of a run started in the repo).
    moved = isolated.parent / "moved"
    isolated.rename(moved)
    result = export_run(moved / "tiny" / "alpaca_qlora" / record.run_name)
    assert result["merge_max_abs_diff_fp32"] < 1e-4
    assert result["reload_same_next_token"] == 1.0
    assert result["gguf_check"]["token_embd"] == "identical"
    assert Path(result["modelfile"]).read_text().startswith("# Ollama")


def test_merge_is_equivalent_to_the_adapter(tmp_path: Path) -> None:
    """A LoRA with random (non-zero) B: merged logits equal the adapter model's, and both
    differ from the base's, so the check has something to catch."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from semillero.export import PROBE, merge_adapter

    _, loaded = _loaded("adapter=lora", tmp=tmp_path)
    base_dir = tmp_path / "twin"
    peft_model = get_peft_model(
        loaded.model,  # type: ignore[attr-defined]
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    loaded.tokenizer.save_pretrained(str(tmp_path / "adapter"))  # type: ignore[attr-defined]

    done = merge_adapter(str(base_dir), str(tmp_path / "adapter"), {"type": "lora"})
    merged = done.model
    ids = loaded.tokenizer(PROBE, return_tensors="pt")["input_ids"]  # type: ignore[attr-defined]
    base = AutoModelForCausalLM.from_pretrained(str(base_dir))
    with torch.inference_mode():
        merged_logits, base_logits = merged(input_ids=ids).logits, base(input_ids=ids).logits
    assert torch.allclose(merged_logits, done.reference_logits, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-2)
    assert not any("lora" in n for n, _ in merged.named_parameters())


@pytest.mark.parametrize(
    "options",
    [
        ("method.packing=true",),
        ("method.completion_only_loss=false",),
        ("adapter=none",),  # full SFT
        ("model=llama-3.2-1b-instruct", "method.format=chat", "adapter=lora"),
    ],
)
def test_sft_options_train(options: tuple[str, ...]) -> None:
    record = run_tiny(*STUDY, "dataset=alpaca-spanish", *options)
    assert record.status == "done" and record.metrics["train_steps"] == 3
    kind = record.config["adapter"]["name"]
    assert record.model["adapter"]["type"] == {"none": "none", "lora": "lora"}.get(kind, "qlora")
    assert ("model" if kind == "none" else "adapter") in record.artifacts
