"""Scoring report -> JSON extraction: parse rate, exact-schema rate, per-field exact match,
and blockers precision/recall/F1, with numbers compared as numbers.

The field list (name -> str | number | blockers) comes from the generator's spec, so a
user's own schema is scored the same way. A prediction is the model's raw text: its first
JSON object is taken (text before it, or after it, does not count against parsing, but
makes nothing else right).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Checker = Callable[[Any], list[str]]  # schema problems of a parsed object; [] = exact schema
BlockerKeys = tuple[str, str]  # the id and delay keys of a blocker item
KEYS: BlockerKeys = ("ticket_id", "delay_hours")


def first_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in the text, or None when there is none that parses.

    >>> first_object('Respuesta: {"a": 1} fin')
    {'a': 1}
    >>> first_object('{"a": 1') is None
    True
    """
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(kind: str, predicted: Any, expected: Any, keys: BlockerKeys = KEYS) -> bool:
    """Exact match by field type: numbers as numbers (4500 == 4500.0, "4500" is not)."""
    if kind == "number":
        return is_number(predicted) and math.isclose(predicted, expected, abs_tol=1e-6)
    if kind == "blockers":
        return sorted(_blockers(predicted, keys)) == sorted(_blockers(expected, keys))
    return isinstance(predicted, str) and predicted.strip() == expected.strip()


def _blockers(value: Any, keys: BlockerKeys) -> list[tuple[str, float]]:
    """(id, delay) pairs of a blockers list; items without a numeric delay are skipped."""
    id_key, delay_key = keys
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, dict) and is_number(item.get(delay_key)):
            out.append((str(item.get(id_key, "")).strip(), round(item[delay_key], 6)))
    return out


def score(
    predictions: Sequence[str],
    references: Sequence[dict[str, Any]],
    fields: Mapping[str, str],
    check: Checker,
    keys: BlockerKeys = KEYS,
) -> dict[str, float]:
    """Rates over the examples (0..1) and blockers P/R/F1 (micro-averaged over blockers).

    Args:
        predictions: the model's raw outputs.
        references: the expected objects, parsed.
        fields: field name -> type (str, number, blockers), in the schema's order.
        check: the schema check of a parsed object (the generator's check_output).
        keys: the id and delay keys of a blocker item.
    """
    n = len(references)
    assert n == len(predictions) and n > 0, "one prediction per reference, at least one"
    parsed = [first_object(p) for p in predictions]
    metrics: dict[str, float] = {
        "json_parse_rate": sum(p is not None for p in parsed) / n,
        "exact_schema_rate": sum(p is not None and not check(p) for p in parsed) / n,
    }
    per_field = []
    for name, kind in fields.items():
        hits = sum(
            p is not None and name in p and same(kind, p[name], ref[name], keys)
            for p, ref in zip(parsed, references, strict=True)
        )
        metrics[f"field_{name}"] = hits / n
        per_field.append(hits / n)
    metrics["field_accuracy"] = sum(per_field) / len(per_field)
    metrics["exact_match_rate"] = (
        sum(
            p is not None
            and all(name in p and same(k, p[name], r[name], keys) for name, k in fields.items())
            for p, r in zip(parsed, references, strict=True)
        )
        / n
    )
    blocker_fields = [name for name, kind in fields.items() if kind == "blockers"]
    if blocker_fields:
        metrics |= blocker_scores(parsed, references, blocker_fields[0], keys)
    return metrics


def blocker_scores(
    parsed: Sequence[dict[str, Any] | None],
    references: Sequence[dict[str, Any]],
    name: str,
    keys: BlockerKeys = KEYS,
) -> dict[str, float]:
    """Micro P/R/F1 over (ticket_id, delay_hours) pairs; an unparsed answer predicts none."""
    true_pos = predicted = expected = 0
    for p, ref in zip(parsed, references, strict=True):
        guess = _blockers(p.get(name), keys) if p is not None else []
        truth = _blockers(ref[name], keys)
        expected += len(truth)
        predicted += len(guess)
        remaining = list(truth)
        for pair in guess:
            if pair in remaining:
                remaining.remove(pair)
                true_pos += 1
    precision = true_pos / predicted if predicted else float(expected == 0)
    recall = true_pos / expected if expected else float(predicted == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"blockers_precision": precision, "blockers_recall": recall, "blockers_f1": f1}
