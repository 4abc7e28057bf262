"""Load a data set from the hub, a local file or directory, or its shipped fixture.

Every route ends in `datasets.load_dataset`, so the Arrow cache and fingerprints of the
library apply to all of them. Local files are checked before loading, so that a broken
file gets one error that names the line and the fix instead of a pandas traceback.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from pathlib import Path

import datasets

from semillero.config.schema import METHOD_ROLES, DatasetConfig
from semillero.data.source import BUILDERS, Source, check_source
from semillero.errors import DataError

log = logging.getLogger(__name__)


def load_raw(cfg: DatasetConfig, source: Source) -> datasets.Dataset:
    """Loads the source split and checks its slice and columns against the config."""
    check_source(cfg, source)
    if source.kind in ("local", "fixture", "synth"):
        path = Path(source.location)
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if file.suffix in (".csv", ".json", ".jsonl"):
                check_utf8(file, cfg.name)
                check_has_rows(file, cfg.name)
            if file.suffix == ".jsonl":
                check_jsonl(file, cfg.name)
    fixture = source.kind == "fixture"
    split = (cfg.fixture_split or cfg.source_split) if fixture else cfg.source_split
    ds = _load(cfg, source, split)
    if len(ds) == 0:
        raise DataError(
            f"dataset {cfg.name!r}: split {split!r} of {source.location} has no rows; use a "
            "split (or slice) that holds some"
        )
    check_slice(cfg, source, split, ds)
    check_columns(ds, cfg, source)
    return ds


def _load(cfg: DatasetConfig, source: Source, split: str) -> datasets.Dataset:
    """One `datasets.load_dataset` call for any kind of source; errors name the fix."""
    try:
        if source.kind == "hub":
            ds = datasets.load_dataset(
                source.location, cfg.config_name, split=split, revision=cfg.revision
            )
        elif source.kind == "files":
            ds = datasets.load_dataset(str(cfg.builder), data_files=cfg.data_files, split=split)
        elif Path(source.location).is_file():
            path = Path(source.location)
            ds = datasets.load_dataset(BUILDERS[path.suffix], data_files=str(path), split=split)
        else:
            ds = datasets.load_dataset(source.location, split=split)
    except datasets.exceptions.DatasetGenerationError as exc:
        raise DataError(
            f"dataset {cfg.name!r}: {source.location} could not be parsed "
            f"({exc.__cause__ or exc}); check that it is well-formed (quotes closed, one header)"
        ) from None
    except ValueError as exc:
        if (
            "slice" in str(exc)
            or "corresponds to no data" in str(exc)
            or "Unknown split" in str(exc)
        ):
            raise DataError(
                f"dataset {cfg.name!r}: split {split!r} cannot be read ({exc}); use a "
                "split the data set has, sliced like train[:1000] or train[:1%]"
            ) from None
        raise
    except (ConnectionError, OSError) as exc:
        raise DataError(
            f"dataset {cfg.name!r}: cannot load {source.location} ({exc}). Offline "
            "(HF_HUB_OFFLINE=1) it must already be in the HF cache; otherwise set "
            "dataset.path to a local copy, or run with SCALE=tiny to use the shipped fixture"
        ) from None
    assert isinstance(ds, datasets.Dataset)
    return ds


# `train[:500]`, `train[100:]`: absolute bounds, which datasets silently clamps.
ABSOLUTE_SLICE = re.compile(r"^(?P<split>[\w.-]+)\[(?P<start>-?\d+)?:(?P<stop>-?\d+)?\]$")


def check_slice(cfg: DatasetConfig, source: Source, split: str, ds: datasets.Dataset) -> None:
    """A slice larger than the split is an error, not a quietly shorter data set."""
    match = ABSOLUTE_SLICE.match(split.replace(" ", ""))
    if not match:
        return
    bounds = [abs(int(b)) for b in (match["start"], match["stop"]) if b]
    if not bounds or len(ds) >= max(bounds):
        return
    total = len(_load(cfg, source, match["split"]))  # prepared already: read from the cache
    if max(bounds) > total:
        raise DataError(
            f"dataset {cfg.name!r}: split {split!r} asks for row "
            f"{max(bounds)}, but {match['split']!r} has {total} rows; use a smaller slice "
            f"or a percentage such as {match['split']}[:10%]"
        )


def check_utf8(path: Path, name: str) -> None:
    """Fails on the first non-UTF-8 byte, naming its line and the fix."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"dataset {name!r}: {path} is not UTF-8 (byte 0x{data[exc.start]:02x} on line "
            f"{line}); re-encode it, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed.csv"
        ) from None


def check_has_rows(path: Path, name: str) -> None:
    """A file with nothing but blank lines (or a CSV with its header only) is an error that
    says so, not a parser's StopIteration or a complaint about the split."""
    header = 1 if path.suffix == ".csv" else 0
    with path.open(encoding="utf-8") as f:  # reads only as far as the first row
        lines = list(itertools.islice((line for line in f if line.strip()), header + 1))
    if len(lines) <= header:
        what = "a header and no rows" if lines else "no rows (it is empty)"
        raise DataError(
            f"dataset {name!r}: {path} holds {what}; fill it, or point the config at the right file"
        )


def check_jsonl(path: Path, name: str) -> None:
    """Every non-empty line of a JSON Lines file must be one JSON object: the first that is
    not gets an error with its line number (pyarrow's own error names no line)."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line.rstrip("\r\n"))  # a column in this line, not the next
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"dataset {name!r}: {path} line {number} is not valid JSON ({exc.msg} at "
                    f"column {exc.colno}); each line must be one JSON object: fix or remove it"
                ) from None
            if not isinstance(row, dict):
                raise DataError(
                    f"dataset {name!r}: {path} line {number} is a JSON "
                    f"{type(row).__name__}, not an object; each line must be one "
                    '{"column": value, ...} object'
                )


def optional_columns(cfg: DatasetConfig) -> set[str]:
    """Columns of roles that no method requires (Alpaca's `input`): a file may leave them
    out, and each row then has an empty one."""
    roles = [(r, needed) for method in METHOD_ROLES.values() for r, needed in method.items()]
    optional = {r for r, needed in roles if not needed} - {r for r, needed in roles if needed}
    return {column for role, column in cfg.fields.items() if role in optional}


def check_columns(ds: datasets.Dataset, cfg: DatasetConfig, source: Source) -> None:
    optional = optional_columns(cfg)
    missing = [c for c in cfg.columns if c not in ds.column_names and c not in optional]
    if missing:
        raise DataError(
            f"dataset {cfg.name!r} ({source}) has no column {', '.join(map(repr, missing))}; "
            f"it has {', '.join(ds.column_names)}. Rename the column in the file, or point "
            f"the config at yours: dataset.columns=[...] and dataset.text_column / "
            f"dataset.fields.<role>=<column>"
        )
    text = [cfg.text_column] if cfg.text_column else []
    for column in text + list(cfg.fields.values()):
        if column not in ds.column_names:  # an optional column left out
            continue
        feature = ds.features[column]
        if getattr(feature, "dtype", None) not in ("string", "large_string", "null"):
            raise DataError(
                f"dataset {cfg.name!r}: column {column!r} holds {feature}, not text; "
                "point dataset.text_column / dataset.fields at the columns with the text"
            )
