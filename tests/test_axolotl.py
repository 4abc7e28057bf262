"""Method axolotl: the YAML we render, the checks in our terms, the extraction metrics, and
(marked `axolotl`, run by `make test-axolotl`) the checks and training in Axolotl's venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from semillero.axolotl.check import problems
from semillero.axolotl.env import find_env
from semillero.axolotl.render import AxolotlPaths, render
from semillero.config.compose import compose, expand_grid, validate
from semillero.data.prepare import prepare_data
from semillero.data.synth_reports import check_output, load_spec
from semillero.errors import ConfigError
from semillero.evaluation.extraction import score
from semillero.methods.axolotl import rendered_config
from semillero.plan import preflight
from semillero.records import RECORD
from semillero.report import label
from tests.conftest import REPO
from tests.helpers.runs import cheap, run_tiny

STUDY = "experiment=report_extraction"
GOLDEN = REPO / "tests" / "golden" / "report_extraction"
SEED_YAML = REPO / "experiments" / "report_extraction" / "seed_axolotl.yml"
PATHS = AxolotlPaths(  # fixed placeholders: the golden files do not depend on the machine
    base_model="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    base_model_source="model.hub_id",
    train=Path("<run>/axolotl/data/train.jsonl"),
    validation=Path("<run>/axolotl/data/validation.jsonl"),
    prepared=Path("<run>/axolotl/prepared"),
    output=Path("<run>/axolotl/output"),
)
SPEC = load_spec()
FIELDS = {name: f.type for name, f in SPEC.fields.items()}


def grid(scale: str) -> list[list[str]]:
    return expand_grid([STUDY, f"scale={scale}"])


def golden_name(point: list[str], cuda: bool) -> str:
    values = {o.split("=")[0]: o.split("=")[1] for o in point if o.startswith("adapter.")}
    targets = values["adapter.target_modules"].strip("[]").replace(",", "-")
    return f"r{values['adapter.r']}_{targets}_{'cuda' if cuda else 'cpu'}.yaml"


def rendered_text(point: list[str], cuda: bool, tmp_path: Path) -> str:
    run = validate(compose(point))  # the whole YAML the method writes
    return rendered_config(run, PATHS, cuda).write(tmp_path / "axolotl.yaml").read_text()


@pytest.mark.parametrize("cuda", [True, False])
@pytest.mark.parametrize("index", range(4))
def test_rendered_yaml_is_the_golden_file(index: int, cuda: bool, tmp_path: Path) -> None:
    """Each grid point, as a GPU and a CPU render (SEMILLERO_UPDATE_GOLDEN=1 rewrites)."""
    point = grid("full")[index]
    text = rendered_text(point, cuda, tmp_path)
    golden = GOLDEN / golden_name(point, cuda)
    if os.environ.get("SEMILLERO_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"{golden.name} differs: review, then update it"


def test_the_recipe_carries_the_three_fixes() -> None:
    run = validate(compose(grid("full")[0]))
    out = render(run, PATHS, cuda=True)
    assert out.config["datasets"][0]["type"] == "alpaca"  # not the seed's `instruction`
    assert out.config["attn_implementation"] == "flash_attention_2"
    assert "flash_attention" not in out.config
    assert (out.config["adapter"], out.config["load_in_4bit"]) == ("qlora", True)
    assert out.source["lora_r"] == "adapter.r"
    assert set(out.source) == set(out.config)  # every key says where it came from


def test_cpu_render_turns_off_what_axolotl_cannot_do_without_cuda() -> None:
    run = validate(compose(grid("tiny")[0]))
    out = render(run, PATHS, cuda=False)
    for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "bf16", "tf32"):
        assert out.config[key] is False, key
        assert out.source[key].startswith("method.cpu_profile")
    assert out.config["sample_packing"] is False
    assert out.config["attn_implementation"] == "eager"


FACTS = {  # the shape of what Axolotl's venv reports (semillero.axolotl.in_env)
    "axolotl": "0.19.0",
    "known": ["adapter", "load_in_4bit", "lora_r", "lora_alpha", "datasets", "base_model"],
    "deprecated": {"flash_attention": "Use `attn_implementation: flash_attention_2` instead."},
}
CLEAN = {"dataset_types": {}, "errors": []}


def test_unknown_key_is_named_with_the_setting_that_wrote_it() -> None:
    found = problems({"lora_rr": 8}, FACTS, CLEAN, {"lora_rr": "method.extra.lora_rr"})
    assert len(found) == 1
    text = str(found[0])
    assert text.startswith("lora_rr (from method.extra.lora_rr)")
    assert "drop it silently" in text and "Did you mean 'lora_r'" in text


def test_lora_with_4bit_is_an_error_naming_qlora() -> None:
    config = {"adapter": "lora", "load_in_4bit": True}
    found = problems(config, FACTS, CLEAN, {"load_in_4bit": "method.extra.load_in_4bit"})
    assert [p.key for p in found] == ["adapter"]
    assert "adapter: qlora" in found[0].message and found[0].source == "method.extra.load_in_4bit"


def test_axolotl_errors_come_back_in_our_terms() -> None:
    result = {"dataset_types": {}, "errors": [{"loc": ["lora_r"], "msg": "must be > 0"}]}
    (found,) = problems({"lora_r": 0}, FACTS, result, {"lora_r": "adapter.r"})
    assert str(found) == "lora_r (from adapter.r): Axolotl: must be > 0"


def test_missing_axolotl_env_names_make_setup_axolotl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMILLERO_AXOLOTL_ENV", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="make setup-axolotl"):
        find_env()
    run = validate(compose(cheap(STUDY)))
    with pytest.raises(ConfigError, match="make setup-axolotl"):
        preflight(run)  # before any data or model loads


def test_missing_env_stops_the_command_before_any_record(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SEMILLERO_AXOLOTL_ENV": str(tmp_path / "nowhere"),
        "SEMILLERO_OUTPUT_DIR": str(tmp_path / "out"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "semillero.cli", "train", *cheap(STUDY)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "make setup-axolotl" in done.stderr
    assert not list((tmp_path / "out").rglob(RECORD))


def test_generated_data_set_is_made_once_and_split_as_given(isolated: Path) -> None:
    run = validate(compose(cheap(STUDY)))
    splits, info = prepare_data(run)
    assert info["eval_split"]["split"] == "validation"
    assert len(splits["train"]) == 24  # dataset.max_train_samples, from 48 generated
    assert len(splits["test"]) == 8  # the generated validation split, as is
    assert not set(splits["train"]["input"]) & set(splits["test"]["input"])
    folder = Path(info["source"].partition(":")[2])  # synth:<folder>
    stamp = (folder / "train.jsonl").stat().st_mtime_ns
    prepare_data(run)
    assert (folder / "train.jsonl").stat().st_mtime_ns == stamp  # reused, not rewritten
    for row in splits["train"]:
        assert check_output(json.loads(row["output"]), SPEC) == []


REF = {
    "project_name": "Orión",
    "status": "Amarillo",
    "client": "Banco Andino",
    "budget_used_eur": 12300,
    "key_milestone_completed": "Migración de la base de datos",
    "blockers_today": [{"ticket_id": "4471", "delay_hours": 3}],
    "next_step": "Pruebas de carga",
}


def scored(*predictions: str) -> dict[str, float]:
    return score(
        list(predictions), [REF] * len(predictions), FIELDS, lambda o: check_output(o, SPEC)
    )


def test_extraction_metrics_on_a_perfect_answer() -> None:
    m = scored("Aquí está: " + json.dumps(dict(REF, budget_used_eur=12300.0)))
    assert m["json_parse_rate"] == m["exact_schema_rate"] == m["exact_match_rate"] == 1
    assert m["field_accuracy"] == 1 and m["blockers_f1"] == 1  # 12300.0 is 12300


def test_extraction_metrics_on_broken_json() -> None:
    m = scored(json.dumps(REF)[:-1])
    assert m["json_parse_rate"] == 0 and m["exact_schema_rate"] == 0
    assert m["field_accuracy"] == 0
    assert m["blockers_recall"] == 0  # an unparsed answer predicts no blocker


def test_extraction_metrics_on_a_missing_field() -> None:
    m = scored(json.dumps({k: v for k, v in REF.items() if k != "client"}))
    assert m["json_parse_rate"] == 1 and m["exact_schema_rate"] == 0
    assert m["field_client"] == 0 and m["field_status"] == 1
    assert m["field_accuracy"] == pytest.approx(6 / 7)


def test_extraction_metrics_on_a_number_as_a_string() -> None:
    m = scored(json.dumps(dict(REF, budget_used_eur="12300")))
    assert m["exact_schema_rate"] == 0 and m["field_budget_used_eur"] == 0
    assert m["field_project_name"] == 1


def test_extraction_metrics_on_an_extra_blocker() -> None:
    extra = [*REF["blockers_today"], {"ticket_id": "9999", "delay_hours": 1}]
    m = scored(json.dumps(dict(REF, blockers_today=extra)))
    assert m["exact_schema_rate"] == 1  # well-formed, just wrong
    assert m["field_blockers_today"] == 0
    assert (m["blockers_precision"], m["blockers_recall"]) == (0.5, 1.0)
    assert m["blockers_f1"] == pytest.approx(2 / 3)


# --- in Axolotl's venv (make setup-axolotl; make test-axolotl) -----------------------------


@pytest.mark.axolotl
def test_the_seed_yaml_gets_its_three_defects_by_name() -> None:
    from semillero.axolotl.commands import check_files

    ((_, found),) = check_files([SEED_YAML])
    text = "\n".join(map(str, found))
    assert "datasets[0].type" in text and "instruction" in text and "type: alpaca" in text
    assert "flash_attention: deprecated" in text and "attn_implementation" in text
    assert "`adapter: lora` does not quantise" in text and "adapter: qlora" in text
    assert len(found) == 3, text


@pytest.mark.axolotl
def test_render_command_checks_every_grid_point(tmp_path: Path) -> None:
    out = tmp_path / "yamls"
    done = subprocess.run(
        [sys.executable, "-m", "semillero.cli", "axolotl", "render", STUDY, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("checked, ok") == 4
    assert len(list(out.glob("*.yaml"))) == 4


@pytest.mark.axolotl
def test_unknown_key_is_caught_before_training(isolated: Path) -> None:
    with pytest.raises(ConfigError, match=r"lora_rr \(from method.extra.lora_rr\).*'lora_r'"):
        run_tiny(STUDY, "+method.extra.lora_rr=8")
    assert not list(isolated.rglob("adapter_model.safetensors"))


@pytest.mark.axolotl
def test_lora_with_4bit_is_caught_before_training(isolated: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(from method.extra.load_in_4bit\).*adapter: qlora"):
        run_tiny(STUDY, "adapter=lora", "+method.extra.load_in_4bit=true")
    assert not list(isolated.rglob("adapter_model.safetensors"))


@pytest.mark.axolotl
def test_tiny_study_trains_through_axolotl_and_scores_both_rows(isolated: Path) -> None:
    record = run_tiny(STUDY, "adapter=lora")
    assert record.status == "done" and record.metrics["train_steps"] == 3
    rows = record.tables["extraction"]
    assert [r["model"] for r in rows] == ["base, prompted", "fine-tuned (Axolotl)"]
    assert record.metrics["adapter_lora_b_max_abs"] > 0  # training moved the adapter
    assert Path(record.artifacts["adapter"], "adapter_model.safetensors").is_file()
    assert record.history and any("loss" in h for h in record.history)


def test_report_rows_by_adapter_name_the_grid_point() -> None:
    cfg = validate(compose([STUDY])).report
    assert cfg is not None and cfg.rows == "adapter"
    record = SimpleNamespace(
        config={"adapter": {"name": "qlora", "r": 16, "target_modules": ["q_proj", "v_proj"]}}
    )
    assert label(record, cfg) == "qlora r=16 q_proj,v_proj"  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rows=adapter has no published rows"):
        validate(compose([STUDY, "report.reference=experiments/gpt2_screening/reference.csv"]))
