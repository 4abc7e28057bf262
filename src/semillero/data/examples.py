"""Data for methods that read named fields (sft: instruction/input/output; grpo:
question/answer) instead of one text column.

Each source's columns are renamed to the roles its `fields` map, blank required fields
are dropped (within `cleaning.max_drop_fraction`), an optional field that is null becomes
"". Sources of a corpus keep only the roles, so that they line up, and are concatenated
or mixed by probability with `datasets.interleave_datasets`.
"""

from __future__ import annotations

import logging
from typing import Any

import datasets

from semillero.config.schema import METHOD_ROLES, CorpusConfig, DatasetConfig
from semillero.data.clean import drop_blank
from semillero.data.corpus import mix
from semillero.data.load import load_raw
from semillero.data.source import resolve_source
from semillero.errors import DataError

log = logging.getLogger(__name__)


def load_source(
    cfg: DatasetConfig, method: str, scale: str, keep_other: bool = True
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """One source with its fields renamed to roles; with keep_other=False, roles only."""
    roles = {role: col for role, col in cfg.fields.items() if role in METHOD_ROLES[method]}
    required = [col for role, col in roles.items() if METHOD_ROLES[method][role]]
    source = resolve_source(cfg, scale)
    raw = load_raw(cfg, source)
    clean, report = drop_blank(raw, cfg, required)
    optional = [role for role in METHOD_ROLES[method] if not METHOD_ROLES[method][role]]
    if not keep_other:
        clean = clean.select_columns(list(roles.values()))
    others = [c for c in clean.column_names if c not in roles.values()]
    clash = [role for role, col in roles.items() if col != role and role in others]
    if clash:
        raise DataError(
            f"dataset {cfg.name!r}: it has a column named {clash[0]!r} that fields.{clash[0]} "
            f"does not point at ({roles[clash[0]]!r}): map fields.{clash[0]}={clash[0]}, or "
            "rename one of the columns"
        )
    clean = clean.rename_columns({col: role for role, col in roles.items() if col != role})
    for role in optional:
        if role not in clean.column_names:
            clean = clean.add_column(role, [""] * len(clean))
        else:
            clean = clean.map(
                lambda v, r=role: {r: v or ""}, input_columns=role, desc=f"{role}: null -> ''"
            )
    for role in roles:
        clean = clean.cast_column(role, datasets.Value("string"))
    info = {
        "source": str(source),
        "split": cfg.source_split,
        "fields": roles,
        "rows_in": report.rows_in,
        "rows_dropped": report.rows_dropped,
        "dropped_rows": report.dropped_rows,
    }
    return clean, info


def load_examples(
    cfg: DatasetConfig | CorpusConfig, method: str, scale: str, seed: int
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """The method's examples from a source or a corpus, with what was done to them."""
    if isinstance(cfg, DatasetConfig):
        return load_source(cfg, method, scale)
    parts, infos = [], {}
    for name, member in cfg.sources.items():
        clean, info = load_source(member, method, scale, keep_other=False)
        parts.append(clean.select_columns(sorted(clean.column_names)))
        infos[name] = info | {"rows": len(clean)}
    return mix(parts, infos, cfg, seed)
