"""A corpus: several sources, each mapped to one `content` column, then concatenated or
mixed by probability (the seed's poetry + Wikipedia + MLSUM)."""

from __future__ import annotations

import logging
from typing import Any

import datasets

from semillero.config.schema import CONTENT, CorpusConfig, DatasetConfig
from semillero.data.clean import drop_blank
from semillero.data.load import load_raw
from semillero.data.source import resolve_source

log = logging.getLogger(__name__)


def load_clean(cfg: DatasetConfig, scale: str) -> tuple[datasets.Dataset, dict[str, Any]]:
    """One source, loaded and cleaned, with what cleaning did."""
    source = resolve_source(cfg, scale)
    clean, report = drop_blank(load_raw(cfg, source), cfg)
    info = {
        "source": str(source),
        "split": cfg.source_split,
        "rows_in": report.rows_in,
        "rows_dropped": report.rows_dropped,
        "dropped_rows": report.dropped_rows,
    }
    return clean, info


def as_content(ds: datasets.Dataset, text_column: str) -> datasets.Dataset:
    """Keeps only the text, as a `content` column of plain strings (so sources align)."""
    ds = ds.select_columns([text_column])
    if text_column != CONTENT:
        ds = ds.rename_column(text_column, CONTENT)
    return ds.cast_column(CONTENT, datasets.Value("string"))


def load_corpus(
    cfg: CorpusConfig, scale: str, seed: int
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """Every source mapped to `content`, then concatenated or interleaved."""
    parts, infos = [], {}
    for name, source in cfg.sources.items():
        clean, info = load_clean(source, scale)
        parts.append(as_content(clean, str(source.text_column)))
        infos[name] = info | {"rows": len(clean), "text_column": source.text_column}
    return mix(parts, infos, cfg, seed)


def mix(
    parts: list[datasets.Dataset], infos: dict[str, Any], cfg: CorpusConfig, seed: int
) -> tuple[datasets.Dataset, dict[str, Any]]:
    """The sources (aligned columns) concatenated or interleaved by probability, seeded,
    with what was done for the record."""
    if cfg.mixing == "concatenate":
        mixed = datasets.concatenate_datasets(parts)
    else:
        probabilities = [cfg.probabilities[n] for n in cfg.sources] if cfg.probabilities else None
        mixed = datasets.interleave_datasets(
            parts,
            probabilities=probabilities,
            seed=seed,
            stopping_strategy=cfg.stopping_strategy,
        )
    log.info("corpus %s: %d rows from %s (%s)", cfg.name, len(mixed), list(infos), cfg.mixing)
    return mixed, {
        "source": f"corpus:{cfg.name}",
        "mixing": cfg.mixing,
        "probabilities": cfg.probabilities,
        "sources": infos,
        "rows_in": sum(i["rows_in"] for i in infos.values()),
        "rows_dropped": sum(i["rows_dropped"] for i in infos.values()),
        "rows": len(mixed),
    }
