"""The synthetic report generator: determinism, exact ground truth, variation, the schema check
and the spec's errors. The ground-truth checks parse the text with their own rules, not the
generator's code, so that a rendering bug cannot agree with itself."""

from __future__ import annotations

import copy
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from semillero.data import synth_reports
from semillero.data.synth_reports import (
    SynthSpec,
    check_output,
    generate,
    load_spec,
    write_splits,
)
from semillero.errors import ConfigError

SHIPPED = Path(synth_reports.__file__).with_name("synth_reports.yaml")
SIZES = {"train": 300, "validation": 40, "test": 100}

# Money as the shipped spec writes it: "EUR 4500", "4.500 €", "4.500,50 EUR", "4,5 mil euros".
MONEY = re.compile(
    r"EUR (?P<pre>\d[\d.]*(?:,\d+)?)|(?P<num>\d[\d.]*(?:,\d+)?) ?(?P<unit>mil euros|€|EUR|euros)"
)
# A ticket named by one of the shipped mention words: the id is the token after them.
TICKET = re.compile(r"(?:ticket|incidencia|bug|caso|petición|ID:) #?([A-Z]+-\d+|\d+)\b")
DELAY_WORDS = {"media hora": 0.5, "una hora": 1, "hora y media": 1.5}
DELAY = re.compile(r"(\d+(?:,\d+)?) ?(horas|h|minutos)\b")


@pytest.fixture(scope="module")
def spec() -> SynthSpec:
    return load_spec()


@pytest.fixture(scope="module")
def examples(spec: SynthSpec) -> list[dict[str, Any]]:
    """300 examples, each with its parsed output under "obj"."""
    return [{**ex, "obj": json.loads(ex["output"])} for ex in generate(spec, 300, seed=11)]


def _money(text: str) -> list[tuple[float, tuple[object, ...]]]:
    """Each amount of euros in `text`, with the shape it was written in."""
    found: list[tuple[float, tuple[object, ...]]] = []
    for m in MONEY.finditer(text):
        raw = m["pre"] or m["num"]
        value = float(raw.replace(".", "").replace(",", "."))
        value = round(value * 1000, 2) if m["unit"] == "mil euros" else value
        shape = ("prefix" if m["pre"] else m["unit"], "." in raw, "," in raw)
        found.append((value, shape))
    return found


def _delays(sentence: str) -> set[float]:
    hours = {v for words, v in DELAY_WORDS.items() if words in sentence}
    for number, unit in DELAY.findall(sentence):
        value = float(number.replace(",", "."))
        hours.add(value / 60 if unit == "minutos" else value)
    return hours


def _status_groups(text: str, spec: SynthSpec) -> dict[str, set[str]]:
    """Canonical status -> the phrasings of it found in `text`."""
    field = spec.fields["status"]
    assert isinstance(field, synth_reports.StrField) and field.choices
    low = text.lower()
    found = {c: {p for p in ps if p.lower() in low} for c, ps in field.choices.items()}
    return {c: ps for c, ps in found.items() if ps}


def test_same_seed_same_bytes_and_other_seed_differs(spec: SynthSpec, tmp_path: Path) -> None:
    first = write_splits(spec, tmp_path / "a", SIZES, seed=5)
    again = write_splits(spec, tmp_path / "b", SIZES, seed=5)
    other = write_splits(spec, tmp_path / "c", SIZES, seed=6)
    for split in SIZES:
        assert first[split].read_bytes() == again[split].read_bytes(), split
        assert first[split].read_bytes() != other[split].read_bytes(), split
    assert generate(spec, 50, seed=1) == generate(spec, 50, seed=1)
    assert generate(spec, 50, seed=1) != generate(spec, 50, seed=2)


def test_outputs_are_valid_json_in_the_spec_order(spec: SynthSpec, examples: list) -> None:
    assert len({ex["input"] for ex in examples}) == len(examples) == 300
    for ex in examples:
        assert set(ex) == {"instruction", "input", "output", "obj"}
        assert ex["instruction"] == spec.instruction
        assert list(ex["obj"]) == list(spec.fields)
        assert check_output(ex["obj"], spec) == [], ex["output"]
        budget = ex["obj"]["budget_used_eur"]
        # int when whole, else a float of at most two decimals
        assert isinstance(budget, int) or (not budget.is_integer() and round(budget, 2) == budget)
        assert ex["output"] == json.dumps(ex["obj"], ensure_ascii=False)


def test_ground_truth_matches_the_text(spec: SynthSpec, examples: list) -> None:
    for ex in examples:
        text, obj = ex["input"], ex["obj"]
        for key in ("project_name", "client", "key_milestone_completed", "next_step"):
            assert obj[key] in text, (key, text)
        amounts = [value for value, _ in _money(text)]
        assert amounts == [pytest.approx(obj["budget_used_eur"])], text
        assert set(_status_groups(text, spec)) == {obj["status"]}, text
        blockers = obj["blockers_today"]
        assert TICKET.findall(text) == [b["ticket_id"] for b in blockers], text
        sentences = re.split(r"(?<=\.) +|(?<=\.\)) +", text)  # after "." or ".)"
        for b in blockers:
            said = [
                s for s in sentences if re.search(rf"(?<![\w-]){re.escape(b['ticket_id'])}\b", s)
            ]
            assert len(said) == 1, (b, text)
            assert b["delay_hours"] in _delays(said[0]), (b, said[0])


def test_inputs_vary(spec: SynthSpec, examples: list) -> None:
    phrasings: dict[str, set[str]] = defaultdict(set)
    shapes, orders, firsts = set(), set(), []
    blockers = {"some": 0, "none, said": 0, "none, unsaid": 0}
    none_sentences = spec.fields["blockers_today"].none_sentences  # type: ignore[union-attr]
    for ex in examples:
        text, obj = ex["input"], ex["obj"]
        for canonical, found in _status_groups(text, spec).items():
            phrasings[canonical] |= found
        shapes.add(_money(text)[0][1])
        if obj["blockers_today"]:
            blockers["some"] += 1
        else:
            said = any(s in text for s in none_sentences)
            blockers["none, said" if said else "none, unsaid"] += 1
        where = {k: text.index(obj[k]) for k in ("project_name", "client", "next_step")}
        where["budget"] = MONEY.search(text).start()  # type: ignore[union-attr]
        order = tuple(sorted(where, key=where.__getitem__))
        orders.add(order)
        firsts.append(order[0] == "project_name")
    assert set(phrasings) == {"Verde", "Amarillo", "Rojo"}
    assert all(len(found) >= 3 for found in phrasings.values()), phrasings
    assert len(shapes) >= 4, shapes
    # (unit or prefix, "." thousands, "," decimals): 4500€, 4.500 €, 4.500,50 EUR, EUR 4500,
    # 4,5 mil euros, 12.300 euros
    wanted = {("€", False, False), ("€", True, False), ("EUR", True, True)}
    wanted |= {("prefix", False, False), ("mil euros", False, True), ("euros", True, False)}
    assert wanted <= shapes, shapes
    assert all(count >= 10 for count in blockers.values()), blockers
    assert len(orders) >= 15, len(orders)
    assert 0.5 < sum(firsts) / len(firsts) < 0.95  # the project opens the report often, not always


def test_splits_share_no_input_and_leave_no_temp_file(spec: SynthSpec, tmp_path: Path) -> None:
    paths = write_splits(spec, tmp_path, SIZES, seed=0)
    inputs = {}
    for split, path in paths.items():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert len(rows) == SIZES[split]
        inputs[split] = {row["input"] for row in rows}
        assert len(inputs[split]) == SIZES[split]
    assert not inputs["train"] & inputs["validation"]
    assert not inputs["train"] & inputs["test"]
    assert not inputs["validation"] & inputs["test"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.jsonl" for s in SIZES)


def test_a_failed_write_keeps_the_old_file(
    spec: SynthSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = write_splits(spec, tmp_path, {"train": 20}, seed=0)["train"].read_bytes()

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("semillero.files.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_splits(spec, tmp_path, {"train": 20}, seed=1)
    assert (tmp_path / "train.jsonl").read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]


GOOD = {
    "project_name": "Nebulosa",
    "status": "Verde",
    "client": "Hortalizas Ruiz",
    "budget_used_eur": 4500.5,
    "key_milestone_completed": "Inventario cerrado",
    "blockers_today": [{"ticket_id": "77", "delay_hours": 1}],
    "next_step": "Revisión final",
}


def _bad(**changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
    return obj


@pytest.mark.parametrize(
    ("obj", "names"),
    [
        (_bad(next_step=...), ["next_step", "missing"]),
        (_bad(priority="alta"), ["priority", "unexpected"]),
        (_bad(budget_used_eur="4500"), ["budget_used_eur", "number", "str"]),
        (_bad(budget_used_eur=True), ["budget_used_eur", "number", "bool"]),
        (_bad(blockers_today=[{"ticket_id": "77"}]), ["blockers_today[0]", "delay_hours"]),
        (_bad(blockers_today=[{"ticket_id": 77, "delay_hours": 1}]), ["blockers_today[0]"]),
        (_bad(blockers_today=[{"ticket_id": "7", "delay_hours": "1"}]), ["delay_hours"]),
        (_bad(blockers_today={"ticket_id": "77"}), ["blockers_today", "list"]),
        (_bad(status="Azul"), ["status", "Azul"]),
        (_bad(client=None), ["client", "string"]),
        ({k: GOOD[k] for k in reversed(GOOD)}, ["order"]),
        (["not", "an", "object"], ["output", "object"]),
    ],
)
def test_check_output_names_the_field(spec: SynthSpec, obj: object, names: list[str]) -> None:
    assert check_output(GOOD, spec) == []
    problems = check_output(obj, spec)
    assert len(problems) == 1, problems
    for name in names:
        assert name in problems[0], problems


def test_a_users_own_fields_drive_generation_and_check(tmp_path: Path) -> None:
    own = {
        "instruction": "Devuelve el JSON del parte de obra.",
        "fields": {
            "obra": {"type": "str", "templates": ["Obra: {value}."], "pool": ["Puente", "Dique"]},
            "importe": {
                "type": "number",
                "templates": ["Coste: {value}."],
                "min": 10,
                "max": 99,
                "formats": ["{dec} EUR"],
            },
            "paros": {
                "type": "blockers",
                "id_key": "orden",
                "delay_key": "horas",
                "none_sentences": ["Sin paros."],
                "id_patterns": ["OT-{n}"],
                "mentions": ["la orden {id}"],
                "templates": ["{mention} paró {delay}."],
                "delay": {"hours": [1, 2], "formats": ["{h} h"]},
            },
        },
    }
    path = tmp_path / "obra.yaml"
    path.write_text(yaml.safe_dump(own, allow_unicode=True, sort_keys=False), encoding="utf-8")
    spec = load_spec(path)
    for ex in generate(spec, 40, seed=0):
        obj = json.loads(ex["output"])
        assert list(obj) == ["obra", "importe", "paros"]
        assert check_output(obj, spec) == []
        assert all(set(b) == {"orden", "horas"} for b in obj["paros"])
    assert check_output({"obra": "Dique", "importe": 1, "paros": [{"orden": "OT-1"}]}, spec) == [
        "paros[0]: missing 'horas'"
    ]


def _edit_shipped(edit: Any) -> dict[str, Any]:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    edit(data)
    return data


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.update(seed_words=["x"]), ["seed_words", "unknown key", "Remove it"]),
        (lambda d: d["fields"]["client"].update(pools=["x"]), ["fields.client.pools", "'pool'"]),
        (
            lambda d: d["fields"].update(due_date={"type": "date", "templates": ["{value}."]}),
            ["fields.due_date.type", "'date'", "str, number, blockers"],
        ),
        (lambda d: d["fields"]["client"].update(pool=[]), ["fields.client.pool", "empty"]),
        (
            lambda d: d["fields"]["status"]["choices"].update(Rojo=[]),
            ["fields.status.choices.Rojo", "empty"],
        ),
        (
            lambda d: d["fields"]["blockers_today"]["delay"].update(minutos=[30]),
            ["fields.blockers_today.delay.minutos", "unknown key"],
        ),
        (
            lambda d: d["fields"]["client"].update(templates=["Cliente: {valor}."]),
            ["fields.client.templates", "{value}"],
        ),
        (lambda d: d.update(opening_field="project"), ["opening_field", "'project_name'"]),
    ],
)
def test_a_broken_spec_is_a_config_error(tmp_path: Path, edit: Any, expected: list[str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(_edit_shipped(edit), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    for part in expected:
        assert part in str(info.value)


def test_unreadable_spec_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("fields: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"spec\.yaml"):
        load_spec(path)
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_spec(tmp_path / "missing.yaml")


def _tiny_spec(tmp_path: Path) -> SynthSpec:
    """A spec with 5 x 4 values in a fixed two-sentence text: 20 distinct inputs in all."""
    tiny = {
        "instruction": "JSON, por favor.",
        "fields": {
            "ciudad": {"type": "str", "templates": ["En {value}."], "pool": list("ABCDE")},
            "turno": {"type": "str", "templates": ["Turno {value}."], "pool": list("wxyz")},
        },
        "opening_field": "ciudad",
        "opening_probability": 1.0,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny, sort_keys=False), encoding="utf-8")
    return load_spec(path)


def test_splits_are_deduplicated_across_splits(tmp_path: Path) -> None:
    spec = _tiny_spec(tmp_path)
    paths = write_splits(spec, tmp_path / "out", {"a": 8, "b": 6, "c": 5}, seed=3)
    inputs = [
        json.loads(line)["input"] for p in paths.values() for line in p.read_text().split("\n")[:-1]
    ]
    assert len(inputs) == len(set(inputs)) == 19  # 19 of the 20 possible: collisions were redrawn
    with pytest.raises(ConfigError, match="distinct new inputs"):
        write_splits(spec, tmp_path / "more", {"a": 15, "b": 6}, seed=3)


@pytest.mark.parametrize("option", [["--train", "abc"], ["--seed", "-3"]])
def test_a_bad_count_on_the_command_line_is_one_error(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semillero.cli import main

    assert main(["data", "synth-reports", "--out", str(tmp_path / "out"), *option]) == 2
    assert f"{option[0]} {option[1]!r}: give a whole number" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
