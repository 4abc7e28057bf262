"""Runs inside Axolotl's own venv (never imported by semillero): what Axolotl says of a YAML.

    <axolotl venv>/bin/python in_env.py <out.json> <config.yaml>...
    <axolotl venv>/bin/python in_env.py <out.json> --prompts <format> <rows.jsonl>

Writes one JSON object to out.json (stdout belongs to Axolotl and its libraries, which
print on import): Axolotl's version, the option names its schema knows (fields and
aliases), the deprecated ones with Axolotl's own advice, and per YAML whether each dataset
`type` resolves to a prompt strategy and what `validate_config` (schema plus cross-field
rules) says; with --prompts, the prompts Axolotl's prompter builds for the rows.
semillero turns that into errors in its own terms (semillero.axolotl.check).
It imports only the standard library, PyYAML and Axolotl: the two venvs share no code.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import warnings
from importlib import metadata
from typing import Any


def schema_facts() -> dict[str, Any]:
    from axolotl.utils.schemas.config import AxolotlInputConfig
    from axolotl.utils.schemas.deprecated import DeprecatedParameters

    known: set[str] = set()
    deprecated: dict[str, str] = {}
    for name, info in AxolotlInputConfig.model_fields.items():
        known.add(name)
        if info.alias:
            known.add(info.alias)
        if info.deprecated:
            deprecated[info.alias or name] = str(info.deprecated)
    for name in DeprecatedParameters.model_fields:
        deprecated.setdefault(name, "deprecated in Axolotl (axolotl.utils.schemas.deprecated)")
    return {"known": sorted(known), "deprecated": deprecated}


def dataset_type_problem(ds_type: Any) -> str | None:
    """None when Axolotl can build a prompt strategy for this `type`, else why not."""
    from axolotl.utils.data.wrappers import DATASET_HANDLERS

    if not isinstance(ds_type, str):
        return None  # a custom format given as a mapping
    base = ds_type.split(":")[0]
    if base.startswith(("bradley_terry", "stepwise_supervised")) or base in DATASET_HANDLERS:
        return None
    module = ds_type.rsplit(".", 1)[0] if ds_type.split(".")[-1].startswith("load") else ds_type
    name = module if "." in module else f"axolotl.prompt_strategies.{module}"
    try:
        if importlib.util.find_spec(name) is not None:
            return None
    except ModuleNotFoundError:
        pass
    return f"unhandled prompt tokenization strategy: {ds_type}"


def check(path: str) -> dict[str, Any]:
    import yaml
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    result: dict[str, Any] = {"path": path, "dataset_types": {}, "errors": [], "warnings": []}
    for key in ("datasets", "test_datasets"):
        for i, ds in enumerate(cfg.get(key) or []):
            problem = dataset_type_problem(ds.get("type") if isinstance(ds, dict) else None)
            if problem:
                result["dataset_types"][f"{key}[{i}].type"] = problem
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            validate_config(DictDefault(cfg))
        except ValidationError as exc:
            result["errors"] = [
                {"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()
            ]
        except (ValueError, TypeError) as exc:
            result["errors"] = [{"loc": [], "msg": str(exc)}]
    result["warnings"] = sorted({str(w.message) for w in caught if "axolotl" in w.filename})
    return result


def prompts(fmt: str, path: str) -> list[str]:
    """The prompts Axolotl trains on for instruction/input rows (its own prompter), so the
    evaluation asks exactly what training showed, without a copy of Axolotl's template."""
    from axolotl.prompters import AlpacaPrompter

    if fmt != "alpaca":
        raise SystemExit(f"prompts for dataset type {fmt!r} are not supported; use alpaca")
    prompter = AlpacaPrompter()
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [next(prompter.build_prompt(r["instruction"], r.get("input") or None)) for r in rows]


def main(args: list[str]) -> int:
    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    logging.disable(logging.WARNING)  # Axolotl logs its warnings; the JSON carries them
    target, paths = args[0], args[1:]
    out: Any
    if paths[:1] == ["--prompts"]:
        out = prompts(paths[1], paths[2])
    else:
        out = {"axolotl": metadata.version("axolotl"), **schema_facts()}
        out["configs"] = [check(p) for p in paths]
    with open(target, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
