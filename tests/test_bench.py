"""`semillero bench`: the FLOPs/MFU arithmetic on hand-computed cases, the real shapes it
builds, its targets and outputs, and a tiny run (a smoke, no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel

from semillero.bench.flops import (
    attention_widths,
    count_parameters,
    flops_per_token,
    mfu,
    peak_flops,
)
from semillero.bench.output import markdown, targets, update_readme, write
from semillero.bench.run import bench, load_config
from semillero.config.compose import compose, validate
from semillero.models.twin import twin_class


def tiny_gpt2() -> GPT2LMHeadModel:
    config = GPT2Config(n_layer=2, n_embd=8, n_head=2, vocab_size=16, n_positions=32)
    config.bos_token_id = config.eos_token_id = 0
    return GPT2LMHeadModel(config)


def test_flops_and_mfu_of_a_hand_computed_gpt2() -> None:
    # By hand: wte 16x8 = 128 (tied with the head), wpe 32x8 = 256. Per block:
    # ln_1 16, c_attn 8x24+24 = 216, attn c_proj 8x8+8 = 72, ln_2 16, c_fc 8x32+32 = 288,
    # mlp c_proj 32x8+8 = 264: 872; two blocks 1744; ln_f 16.
    # N = 1744 + 16 + 128 (the tied head, once) = 1888; the tables are 128 + 256 = 384.
    counts = count_parameters(tiny_gpt2())
    assert (counts.trained, counts.frozen, counts.embeddings) == (1888, 0, 384)
    # Attention at T = 32: 12 * (8 * 32) per layer, 2 layers = 6144.
    widths = attention_widths(tiny_gpt2().config, 32)
    assert widths == [(8, 32), (8, 32)]
    per_token = flops_per_token(counts, widths)
    assert per_token == 6 * 1888 + 6144 == 17472
    # 1e6 useful tokens/s on a 100 TFLOP/s... 1e11 FLOP/s device: 17472e6 / 1e11.
    assert mfu(1e6, per_token, 1e11) == pytest.approx(0.17472)
    assert mfu(1e6, per_token, None) is None


def test_a_frozen_base_under_lora_costs_four_flops_per_weight() -> None:
    model = get_peft_model(tiny_gpt2(), LoraConfig(r=1, target_modules=["c_attn"]))
    counts = count_parameters(model)
    # LoRA on c_attn (8 -> 24), r 1: A 1x8 + B 24x1 = 32 per layer, 2 layers.
    assert (counts.trained, counts.frozen) == (64, 1888)
    assert flops_per_token(counts, [(8, 32), (8, 32)]) == 6 * 64 + 4 * 1888 + 6144


def test_sliding_window_layers_attend_over_the_window_only() -> None:
    config = Gemma3TextConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=6,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        vocab_size=20,
        sliding_window=4,
    )
    # Gemma 3: five sliding layers, then a global one; d_attn = 2 heads x 8 = 16.
    assert attention_widths(config, 10) == [(16, 4)] * 5 + [(16, 10)]
    counts = count_parameters(Gemma3ForCausalLM(config))
    assert flops_per_token(counts, attention_widths(config, 10)) == (
        6 * counts.trained + 12 * (5 * 16 * 4 + 16 * 10)
    )


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.4),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.1),
        ("Some Future GPU", None),
    ],
)
def test_peak_flops_by_device_name(name: str, tflops: float | None) -> None:
    peak = peak_flops(name)
    assert peak == (None if tflops is None else pytest.approx(tflops * 1e12))


def test_the_peak_can_be_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMILLERO_PEAK_TFLOPS", "100")
    assert peak_flops("Some Future GPU") == pytest.approx(1e14)


@pytest.mark.parametrize("case", ["clm", "sft", "grpo"])
def test_each_case_builds_the_real_model_shape(case: str) -> None:
    """conf/bench.yaml's shapes give the real models' parameter counts (the model YAML's
    facts, from studies.md), built on the meta device: no memory, no download."""
    from semillero.bench.run import variant_overrides

    cfg = load_config([])
    case_cfg = getattr(cfg, case)
    variant = next(iter(case_cfg.variants.values()))
    run = validate(compose(variant_overrides(cfg, case, case_cfg, variant)))
    model_class = twin_class(run.model)
    config = model_class.config_class(**run.model.twin.config, vocab_size=case_cfg.vocab)
    with torch.device("meta"):
        model = model_class(config)
    total = sum(p.numel() for p in model.parameters())
    assert run.model.facts.parameters_m is not None
    assert total / 1e6 == pytest.approx(run.model.facts.parameters_m, rel=0.01)
    assert run.model.twin.embedding_rows == case_cfg.vocab


def fake(case: str, variant: str, **values: float) -> dict[str, object]:
    return {"case": case, "variant": variant, **values}


def test_targets_are_met_or_not_from_the_measured_ratios() -> None:
    results = [
        fake("clm", "seed", useful_tokens_per_second=100.0),
        fake("clm", "ours", useful_tokens_per_second=240.0, mfu=0.30),
        fake("clm", "ours_compiled", useful_tokens_per_second=260.0, mfu=0.36),
        fake("sft", "lora_padded", useful_tokens_per_second=100.0),
        fake("sft", "lora_packed", useful_tokens_per_second=250.0),
        {"case": "sft", "variant": "qlora_padded", "error": "OutOfMemoryError"},
        fake("sft", "qlora_packed", useful_tokens_per_second=200.0),
        fake("grpo", "dynamic_cache", step_seconds=40.0),
        fake("grpo", "static_cache", step_seconds=30.0),
    ]
    rows = {(t["case"], t["what"]): t for t in targets(results)}
    speed = rows[("clm", "ours_compiled vs seed useful tokens/s")]
    assert (speed["value"], speed["met"]) == ("2.60x", True)
    assert rows[("clm", "ours_compiled MFU")]["met"] is True
    assert rows[("sft", "lora: packed vs padded useful tokens/s")]["met"] is True
    assert not any("qlora" in what for _, what in rows)  # its padded run failed: no ratio
    grpo = [t for t in rows.values() if t["case"] == "grpo"]
    assert grpo[0]["value"] == "30.0 s" and grpo[0]["met"] is None


def doc(scale: str, date: str) -> dict[str, object]:
    return {
        "scale": scale,
        "date": date,
        "machine": {"device": "NVIDIA H100 80GB HBM3", "detail": "cuda"},
        "git": {"commit": "abc", "dirty": False},
        "stack": {"torch": "2.13.0"},
        "results": [fake("clm", "seed", useful_tokens_per_second=1.0, step_seconds=1.0)],
        "targets": [],
    }


def test_the_readme_shows_full_scale_runs_only(tmp_path: Path) -> None:
    (tmp_path / "h100-2026-12-01.json").write_text(json.dumps(doc("full", "2026-12-01")))
    (tmp_path / "cpu-2026-12-02.json").write_text(json.dumps(doc("tiny", "2026-12-02")))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench-results:start -->\nold\n<!-- bench-results:end -->\nend\n")
    assert update_readme(tmp_path, readme) == 1
    text = readme.read_text()
    assert "2026-12-01 (full scale)" in text and "2026-12-02" not in text
    assert text.startswith("intro\n") and text.endswith("end\n") and "old" not in text
    assert "Commit `abc`" in markdown(doc("full", "2026-12-01"))
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="bench-results:start"):
        update_readme(tmp_path, readme)


def test_running_the_cases_one_at_a_time_keeps_each_ones_files(tmp_path: Path) -> None:
    for cases in (["clm", "sft", "grpo"], ["clm"], ["sft"], ["grpo", "clm"]):
        write(doc("full", "2026-12-01") | {"config": {"cases": cases}}, tmp_path)
    stems = sorted(p.stem for p in tmp_path.glob("*.json"))
    day = "nvidia-h100-80gb-hbm3-2026-12-01"
    assert stems == [day, f"{day}-clm", f"{day}-grpo-clm", f"{day}-sft"]
    assert {p.suffix for p in tmp_path.iterdir()} == {".json", ".md", ".png"}
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench-results:start -->\n<!-- bench-results:end -->\n")
    assert update_readme(tmp_path, readme) == 4


def test_full_scale_needs_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    from semillero.errors import SemilleroError

    with pytest.raises(SemilleroError, match="make bench SCALE=tiny"):
        bench([])


def test_the_tiny_bench_runs_every_case(isolated: Path) -> None:
    """A smoke: every variant runs (or says why not) and the outputs are written."""
    assert bench(["scale=tiny"]) == 0
    (result,) = (isolated / "tiny" / "bench").glob("*.json")
    written = json.loads(result.read_text())
    assert written["scale"] == "tiny"
    ran = {(r["case"], r["variant"]) for r in written["results"] if "step_seconds" in r}
    assert (
        ("clm", "seed") in ran
        and ("sft", "qlora_packed") in ran
        and ("grpo", "static_cache") in ran
    )
    for r in written["results"]:
        assert "error" not in r, r
        if r["case"] != "grpo" and "step_seconds" in r:
            assert r["useful_tokens_per_second"] > 0 and r["flops_per_token"] > 0
    assert all(t["met"] is None for t in written["targets"])  # tiny: never a result
    assert result.with_suffix(".png").stat().st_size > 0
    assert "not a result" in result.with_suffix(".md").read_text()


def test_the_attended_length_of_padded_and_padding_free_batches() -> None:
    from semillero.bench.run import attended_length

    padded = {"input_ids": torch.zeros(4, 256, dtype=torch.long)}
    assert attended_length(padded) == 256
    # One padding-free row holding documents of 3, 1 and 4 tokens: (9 + 1 + 16) / 8.
    positions = torch.tensor([[0, 1, 2, 0, 0, 1, 2, 3]])
    free = {"input_ids": torch.zeros(1, 8, dtype=torch.long), "position_ids": positions}
    assert attended_length(free) == pytest.approx(26 / 8)


def test_a_profiled_step_says_where_the_time_goes(isolated: Path) -> None:
    assert bench(["scale=tiny", "cases=[clm]", "profile=true"]) == 0
    (result,) = (isolated / "tiny" / "bench").glob("*.json")
    ran = [r for r in json.loads(result.read_text())["results"] if "step_seconds" in r]
    assert ran and all(r["steps_measured"] == 2 for r in ran)  # the profiled step is extra
    for r in ran:
        ops = r["profile"]
        assert ops and all(op["self_ms"] >= 0 and op["calls"] > 0 for op in ops)
        assert [op["self_ms"] for op in ops] == sorted((op["self_ms"] for op in ops), reverse=True)
    assert "Where a step of clm/seed goes" in result.with_suffix(".md").read_text()


def test_a_bad_bench_setting_is_one_error_naming_the_fix() -> None:
    from semillero.errors import ConfigError

    with pytest.raises(ConfigError, match=r"cases\.0: Input should be 'clm', 'sft' or 'grpo'"):
        load_config(["scale=tiny", "cases=[foo]"])
    with pytest.raises(ConfigError, match="Did you mean 'cases'"):
        load_config(["scale=tiny", "case=[clm]"])
