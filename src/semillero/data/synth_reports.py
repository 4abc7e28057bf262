"""Seeded synthetic Spanish project reports for the "free-text report -> exact JSON" study.

The field list, the vocabulary and every phrasing live in a YAML spec (the shipped
`synth_reports.yaml` documents the format); this module only draws values and renders them.
Each example is `{"instruction", "input", "output"}`, `output` being the JSON of the drawn
values in the spec's field order, so the ground truth is known by construction.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from string import Formatter
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Field, ValidationError, model_validator

from semillero.config.base import Schema
from semillero.errors import ConfigError, did_you_mean
from semillero.files import atomic_write_text

_NUMBER_TOKENS = ("int", "int_dots", "dec", "mil")  # see `formats` in synth_reports.yaml


def _templates(*names: str, one: bool = False) -> Callable[[list[str]], list[str]]:
    """A validator: a non-empty list of templates using all of `names` (or exactly one)."""

    def check(items: list[str]) -> list[str]:
        if not items:
            raise ValueError("is empty; list at least one entry")
        for item in items:
            try:
                used = {n for _, n, _, _ in Formatter().parse(item) if n is not None}
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a template ({exc})") from None
            if not (len(used) == 1 and used <= set(names) if one else used == set(names)):
                want = "one of" if one else "exactly"
                raise ValueError(f"{item!r} must use {want} {{{'}, {'.join(names)}}}")
        return items

    return check


_Probability = Annotated[float, Field(ge=0.0, le=1.0)]
_NonEmpty = Annotated[list[str], AfterValidator(_templates())]
_ValueTemplates = Annotated[list[str], AfterValidator(_templates("value"))]
_BlockerTemplates = Annotated[list[str], AfterValidator(_templates("mention", "delay"))]


class _Rendered(Schema):
    templates: _ValueTemplates  # sentences holding the value, as {value}
    opening_templates: _ValueTemplates | None = None  # used instead when the sentence is first


class StrField(_Rendered):
    """Text: a value from `pool`, or a canonical `choices` key written as one of its phrasings."""

    type: Literal["str"]
    pool: _NonEmpty | None = None
    choices: dict[str, _NonEmpty] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> StrField:
        if (self.pool is None) == (self.choices is None) or self.choices == {}:
            raise ValueError("a str field needs a non-empty `pool` or `choices` (not both)")
        return self


class NumberField(_Rendered):
    """A number in [min, max], rounded to one of `steps`, sometimes with cents."""

    type: Literal["number"]
    min: int = Field(ge=0)
    max: int
    steps: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [1], min_length=1)
    fraction_probability: _Probability = 0.0
    formats: Annotated[list[str], AfterValidator(_templates(*_NUMBER_TOKENS, one=True))]

    @model_validator(mode="after")
    def _sane(self) -> NumberField:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        if not any("{dec}" in f for f in self.formats):
            raise ValueError("formats need one with {dec} (fits every value); add '{dec} EUR'")
        return self


class DelaySpec(Schema):
    """Blocker delays in hours; `words` pins how particular values are written."""

    hours: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    formats: Annotated[list[str], AfterValidator(_templates("h", "minutes", one=True))]
    words: dict[float, _NonEmpty] = Field(default_factory=dict)


class BlockersField(Schema):
    """A list of {id_key, delay_key} objects; synth_reports.yaml states the ticket id rule."""

    type: Literal["blockers"]
    id_key: str = "ticket_id"
    delay_key: str = "delay_hours"
    max_items: int = Field(default=3, ge=1)
    empty_probability: _Probability = 0.35
    say_none_probability: _Probability = 0.5
    none_sentences: _NonEmpty
    id_digits: tuple[int, int] = (3, 5)
    id_patterns: Annotated[list[str], AfterValidator(_templates("n"))]
    mentions: Annotated[list[str], AfterValidator(_templates("id"))]
    templates: _BlockerTemplates
    list_probability: _Probability = 0.0
    list_templates: Annotated[list[str], AfterValidator(_templates("items"))] | None = None
    item_templates: _BlockerTemplates | None = None
    delay: DelaySpec

    @model_validator(mode="after")
    def _sane(self) -> BlockersField:
        if not 1 <= self.id_digits[0] <= self.id_digits[1]:
            raise ValueError(f"id_digits {list(self.id_digits)} must be [min, max], 1 <= min")
        if self.list_probability and not (self.list_templates and self.item_templates):
            raise ValueError("list_probability > 0 needs list_templates and item_templates")
        return self


_TYPES: dict[str, Any] = {"str": StrField, "number": NumberField, "blockers": BlockersField}
FieldSpec = Annotated[StrField | NumberField | BlockersField, Field(discriminator="type")]


class SynthSpec(Schema):
    """A report spec: the instruction, the fields in output order, the opening sentence."""

    instruction: str = Field(min_length=1)
    fields: dict[str, FieldSpec] = Field(min_length=1)
    opening_field: str | None = None  # its sentence comes first, with opening_probability
    opening_probability: _Probability = 0.0

    @model_validator(mode="after")
    def _opening_known(self) -> SynthSpec:
        if self.opening_field is not None and self.opening_field not in self.fields:
            hint = did_you_mean(self.opening_field, self.fields)
            raise ValueError(f"opening_field {self.opening_field!r} is not a field.{hint}")
        return self


def spec_path(path: str | Path | None = None) -> Path:
    """The spec file that `load_spec(path)` reads: `path`, or the shipped one when None."""
    return Path(path) if path else Path(__file__).with_name("synth_reports.yaml")


def load_spec(path: str | Path | None = None) -> SynthSpec:
    """Reads and validates a spec; None reads the shipped synth_reports.yaml.

    Raises:
        ConfigError: unreadable YAML or an invalid spec, one line per problem with its fix.
    """
    where = str(spec_path(path))
    try:
        data = yaml.safe_load(spec_path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot read the report spec ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the report spec must be a YAML mapping of keys")
    try:
        return SynthSpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"{where}: invalid report spec ({exc.error_count()} problem(s)):"]
        raise ConfigError("\n  ".join(lines + [_explain(e) for e in exc.errors()])) from None


def _explain(err: Any) -> str:
    """One pydantic error as 'where: what is wrong; how to fix it'."""
    loc = err["loc"]  # e.g. ("fields", "status", "str", "pool"): the union tag is loc[2]
    where = ".".join(str(p) for i, p in enumerate(loc) if not (i == 2 and p in _TYPES))
    where = where or "spec"
    if err["type"] == "extra_forbidden":
        # The sections that forbid keys sit at fixed depths: spec, fields.X, fields.X.delay.
        sections: dict[int, type[Schema]] = {1: SynthSpec, 5: DelaySpec}
        model = _TYPES.get(loc[2]) if len(loc) == 4 else sections.get(len(loc))
        valid = list(model.model_fields) if model else []
        hint = did_you_mean(str(loc[-1]), valid)
        return f"{where}: unknown key.{hint} Remove it; the keys here are {', '.join(valid)}"
    if err["type"] == "missing":
        return f"{where}: required, but missing; add it to the YAML"
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        got = err["input"].get("type") if isinstance(err["input"], dict) else None
        return f"{where}.type: {got!r} is not a field type; use one of {', '.join(_TYPES)}"
    got = err.get("input")
    suffix = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}{suffix}"


def _spanish(value: float, decimals: int, dots: bool = True) -> str:
    """4500.5 -> '4.500,50' (decimals=2): '.' groups thousands, ',' marks decimals."""
    text = f"{value:,.{decimals}f}" if dots else f"{value:.{decimals}f}"
    return text.replace(",", "_").replace(".", ",").replace("_", ".")


def _capital(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _json_number(value: float) -> int | float:
    """An int when whole, else the float: 4500 or 4500.5 in the JSON."""
    return int(value) if float(value).is_integer() else value


def _draw_number(f: NumberField, rng: random.Random) -> tuple[int | float, str]:
    step = rng.choice(f.steps)
    drawn = math.exp(rng.uniform(math.log(max(f.min, 1)), math.log(max(f.max, 1))))  # log-uniform
    units = min(max(round(drawn / step) * step, step, f.min), f.max)
    cents = units * 100 + (rng.randint(1, 99) if rng.random() < f.fraction_probability else 0)
    mil_ok = units >= 1000 and units % 10 == 0  # "4,5 mil": at most two decimals of thousands
    usable = [
        fmt
        for fmt in f.formats
        if "{dec}" in fmt or (cents % 100 == 0 and ("{mil}" not in fmt or mil_ok))
    ]
    text = rng.choice(usable).format(
        int=units,
        int_dots=_spanish(units, 0),
        dec=_spanish(cents / 100, 2),
        mil=f"{units / 1000:.2f}".rstrip("0").rstrip(".").replace(".", ","),
    )
    return _json_number(cents / 100), text


def _draw_blockers(f: BlockersField, rng: random.Random) -> tuple[list[dict[str, Any]], str]:
    if rng.random() < f.empty_probability:
        return [], rng.choice(f.none_sentences) if rng.random() < f.say_none_probability else ""
    ids: list[str] = []
    count = rng.randint(1, f.max_items)
    for _ in range(50 * count):  # distinct ids; the cap guards a tiny id space
        digits = rng.randint(*f.id_digits)
        ticket = rng.choice(f.id_patterns).format(n=rng.randint(10 ** (digits - 1), 10**digits - 1))
        ids += [] if ticket in ids else [ticket]
        if len(ids) == count:
            break
    items, parts = [], []
    for ticket in ids:
        hours = rng.choice(f.delay.hours)
        h = _spanish(hours, 1, dots=False).removesuffix(",0")
        delay = rng.choice(f.delay.words.get(hours) or f.delay.formats)
        delay = delay.format(h=h, minutes=round(hours * 60))
        parts.append({"mention": rng.choice(f.mentions).format(id=ticket), "delay": delay})
        items.append({f.id_key: ticket, f.delay_key: _json_number(hours)})
    if (
        len(parts) > 1
        and f.list_templates
        and f.item_templates
        and rng.random() < f.list_probability  # one list sentence instead of one per blocker
    ):
        listed = [rng.choice(f.item_templates).format(**p) for p in parts]
        joined = ", ".join(listed[:-1]) + " y " + listed[-1]
        return items, rng.choice(f.list_templates).format(items=joined)
    return items, " ".join(_capital(rng.choice(f.templates).format(**p)) for p in parts)


def _draw_example(spec: SynthSpec, rng: random.Random) -> tuple[str, str]:
    """One (input, output) pair: every field drawn and rendered, the sentences shuffled."""
    lead = spec.opening_field if rng.random() < spec.opening_probability else None
    output: dict[str, Any] = {}
    sentences: dict[str, str] = {}
    for name, f in spec.fields.items():
        if isinstance(f, BlockersField):
            output[name], sentences[name] = _draw_blockers(f, rng)
            continue
        if isinstance(f, NumberField):
            output[name], surface = _draw_number(f, rng)
        elif f.choices is not None:
            output[name] = rng.choice(list(f.choices))
            surface = rng.choice(f.choices[output[name]])
        else:
            output[name] = surface = rng.choice(f.pool or [])
        templates = f.opening_templates if name == lead and f.opening_templates else f.templates
        sentences[name] = rng.choice(templates).format(value=surface)
    order = [name for name in sentences if name != lead]
    rng.shuffle(order)
    order = ([lead] if lead else []) + order
    text = " ".join(_capital(sentences[n]) for n in order if sentences[n])
    return text, json.dumps(output, ensure_ascii=False)


def _generate(spec: SynthSpec, n: int, rng: random.Random, seen: set[str]) -> list[dict[str, str]]:
    """`n` examples whose inputs are not in `seen` (which gains them)."""
    rows: list[dict[str, str]] = []
    for _ in range(20 * n + 100):  # a cap, so that a tiny vocabulary cannot loop forever
        if len(rows) == n:
            break
        text, output = _draw_example(spec, rng)
        if text not in seen:
            seen.add(text)
            rows.append({"instruction": spec.instruction, "input": text, "output": output})
    if len(rows) < n:
        raise ConfigError(
            f"the report spec gave only {len(rows)} distinct new inputs of the {n} asked for; "
            "add entries to the pools and templates, or ask for fewer examples"
        )
    return rows


def generate(spec: SynthSpec, n: int, seed: int) -> list[dict[str, str]]:
    """Draws `n` examples with distinct inputs; the same spec and seed give the same list.

    Args:
        spec: the fields, vocabulary and phrasings (see `load_spec`).
        n: how many examples.
        seed: seeds the only random source, `random.Random(seed)`.

    Returns:
        Dicts with "instruction", "input" and "output" (JSON text, keys in the spec's order).
    """
    return _generate(spec, n, random.Random(seed), set())


def write_splits(
    spec: SynthSpec, out_dir: Path, sizes: dict[str, int], seed: int
) -> dict[str, Path]:
    """Writes out_dir/{split}.jsonl for each split, atomically; no input is in two splits.

    Args:
        spec: the fields, vocabulary and phrasings (see `load_spec`).
        out_dir: the folder (created if missing).
        sizes: examples per split, e.g. {"train": 300, "validation": 40, "test": 100}.
        seed: each split draws from `random.Random(f"{seed}:{split}")`; a split redraws any
            input that an earlier split (in `sizes` order) already holds.

    Returns:
        The path of each split's file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()  # all splits are drawn before any is written: all or nothing
    drawn = {s: _generate(spec, n, random.Random(f"{seed}:{s}"), seen) for s, n in sizes.items()}
    paths: dict[str, Path] = {}
    for split, rows in drawn.items():
        # A crash leaves this split's old file (or none), never half a file.
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        paths[split] = atomic_write_text(out_dir / f"{split}.jsonl", text)
    return paths


def _is_number(value: object) -> bool:
    """JSON numbers only: not bool, not numeric strings, not NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)  # a huge int has no float


def _bad(where: str, want: str, value: object) -> str:
    return f"{where}: expected {want}, got {type(value).__name__} {value!r}"[:200]


def check_output(obj: object, spec: SynthSpec) -> list[str]:
    """The schema problems of a parsed output object, driven by the spec's fields.

    Args:
        obj: the parsed output (e.g. `json.loads` of a model's answer).
        spec: gives the keys, their order and their types.

    Returns:
        Human-readable problems, each naming its field; [] when `obj` is valid.

    >>> check_output({"project_name": "X"}, load_spec())[0]
    'status: missing; the output needs every field of the spec'
    """
    if not isinstance(obj, dict):
        return [_bad("output", f"an object with keys {list(spec.fields)}", obj)]
    keys = list(spec.fields)
    problems = [
        f"{k}: missing; the output needs every field of the spec" for k in keys if k not in obj
    ]
    problems += [f"{k}: unexpected key; the spec's keys are {keys}" for k in obj if k not in keys]
    if not problems and list(obj) != keys:
        problems.append(f"keys in order {list(obj)}; the spec's order is {keys}")
    for name, value in obj.items():
        f = spec.fields.get(name)
        if isinstance(f, StrField) and not isinstance(value, str):
            problems.append(_bad(name, "a string", value))
        elif isinstance(f, StrField) and f.choices is not None and value not in f.choices:
            problems.append(f"{name}: {value!r} is not one of {list(f.choices)}")
        elif isinstance(f, NumberField) and not _is_number(value):
            problems.append(_bad(name, "a number", value))
        elif isinstance(f, BlockersField):
            problems += _check_blockers(name, value, f)
    return problems


def _check_blockers(name: str, value: object, f: BlockersField) -> list[str]:
    if not isinstance(value, list):
        return [_bad(name, "a list of objects", value)]
    problems = []
    keys = (f.id_key, f.delay_key)
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            problems.append(_bad(f"{name}[{i}]", f"an object with keys {list(keys)}", item))
            continue
        problems += [f"{name}[{i}]: missing {k!r}" for k in keys if k not in item]
        problems += [f"{name}[{i}]: unexpected key {k!r}" for k in item if k not in keys]
        if f.id_key in item and not isinstance(item[f.id_key], str):
            problems.append(_bad(f"{name}[{i}].{f.id_key}", "a string", item[f.id_key]))
        if f.delay_key in item and not _is_number(item[f.delay_key]):
            problems.append(_bad(f"{name}[{i}].{f.delay_key}", "a number", item[f.delay_key]))
    return problems
