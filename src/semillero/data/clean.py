"""Cleaning and the seeded train/test split."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import datasets

from semillero.config.schema import DatasetConfig
from semillero.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleaningReport:
    rows_in: int
    rows_dropped: int
    dropped_rows: list[int]  # 0-based row numbers of the source split, first few only

    @property
    def rows_out(self) -> int:
        return self.rows_in - self.rows_dropped


def is_blank(text: str | None) -> bool:
    """The seed's rule: null, empty or whitespace-only text is not a training example.

    >>> [is_blank(t) for t in (None, "", "  \\n ", "verso")]
    [True, True, True, False]
    """
    return text is None or not text.strip()


def drop_blank(
    ds: datasets.Dataset, cfg: DatasetConfig, columns: list[str] | None = None
) -> tuple[datasets.Dataset, CleaningReport]:
    """Drops rows whose text (each of `columns`; default the text column) is blank, and
    reports how many; too many is an error, not cleaning."""
    columns = columns or [str(cfg.text_column)]
    values = [ds[c] for c in columns]
    bad = [i for i, row in enumerate(zip(*values, strict=True)) if any(map(is_blank, row))]
    report = CleaningReport(len(ds), len(bad), bad[:10])
    if not bad:
        return ds, report
    what = " or ".join(map(repr, columns))
    # Data rows counted from 1 (a CSV's header and a quoted poem's extra lines not counted).
    shown = ", ".join(str(i + 1) for i in report.dropped_rows)
    if not cfg.cleaning.drop_blank:
        raise DataError(
            f"dataset {cfg.name!r}: {len(bad)} row(s) with blank {what} "
            f"(rows {shown}...); remove them or set dataset.cleaning.drop_blank=true"
        )
    if len(bad) == len(ds) or len(bad) / len(ds) > cfg.cleaning.max_drop_fraction:
        raise DataError(
            f"dataset {cfg.name!r}: {len(bad)} of {len(ds)} rows have null, empty or "
            f"whitespace-only {what} (rows {shown}...; data rows counted from 1), "
            f"more than dataset.cleaning.max_drop_fraction={cfg.cleaning.max_drop_fraction}. "
            "Fix the file, or raise the limit if that much loss is expected"
        )
    keep = ds.filter(
        lambda *row: not any(map(is_blank, row)), input_columns=columns, desc="Cleaning"
    )
    log.info("dataset %s: dropped %d of %d rows with blank %s", cfg.name, len(bad), len(ds), what)
    return keep, report


def split(ds: datasets.Dataset, test_size: float, seed: int) -> datasets.DatasetDict:
    """The seeded train/test split (the seed's 90/10 with test_size=0.1)."""
    try:
        return ds.train_test_split(test_size=test_size, seed=seed)
    except ValueError as exc:  # too few rows for one side of the split
        raise DataError(
            f"{len(ds)} row(s) are too few to hold out test_size={test_size} and still train "
            f"({exc}); use more rows (dataset.source_split) or another dataset.test_size"
        ) from None


def limit(ds: datasets.Dataset, n: int | None, what: str) -> datasets.Dataset:
    """The first n rows (the screening's `train[:500]`); all of them if there are fewer."""
    if n is None:
        return ds
    if n > len(ds):
        log.warning("%s has %d rows, fewer than the %d asked; using all", what, len(ds), n)
    return ds.select(range(min(n, len(ds))))
