"""Load a data set from the hub, a local file or directory, or its shipped fixture.

Every route ends in `datasets.load_dataset`, so the Arrow cache and fingerprints of the
library apply to all of them. Local files are checked before loading, so that a broken
file gets one error that names the line and the fix instead of a pandas traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import datasets

from semillero.config.schema import DatasetConfig
from semillero.data.source import BUILDERS, Source, check_source
from semillero.errors import DataError

log = logging.getLogger(__name__)


def load_raw(cfg: DatasetConfig, source: Source) -> datasets.Dataset:
    """Loads the source split and checks its columns against the config."""
    check_source(cfg, source)
    if source.kind == "hub":
        ds = _load_hub(cfg)
    else:
        path = Path(source.location)
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if file.suffix in (".csv", ".json", ".jsonl"):
                check_utf8(file, cfg.name)
        try:
            if path.is_file():
                ds = datasets.load_dataset(
                    BUILDERS[path.suffix], data_files=str(path), split=cfg.source_split
                )
            else:
                ds = datasets.load_dataset(str(path), split=cfg.source_split)
        except datasets.exceptions.DatasetGenerationError as exc:
            cause = exc.__cause__ or exc
            raise DataError(
                f"dataset {cfg.name!r}: {path} could not be parsed ({cause}); "
                "check that it is well-formed (quotes closed, one header row)"
            ) from None
    assert isinstance(ds, datasets.Dataset)
    check_columns(ds, cfg, source)
    return ds


def _load_hub(cfg: DatasetConfig) -> datasets.Dataset:
    assert cfg.hub_id
    try:
        ds = datasets.load_dataset(
            cfg.hub_id, cfg.config_name, split=cfg.source_split, revision=cfg.revision
        )
    except (ConnectionError, OSError, FileNotFoundError, ValueError) as exc:
        raise DataError(
            f"dataset {cfg.name!r}: cannot load {cfg.hub_id} from the hub ({exc}). "
            "Offline (HF_HUB_OFFLINE=1) it must already be in the HF cache; otherwise set "
            "dataset.path to a local copy, or run with SCALE=tiny to use the shipped fixture"
        ) from None
    assert isinstance(ds, datasets.Dataset)
    return ds


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


def check_columns(ds: datasets.Dataset, cfg: DatasetConfig, source: Source) -> None:
    missing = [c for c in cfg.columns if c not in ds.column_names]
    if cfg.text_column not in cfg.columns:
        missing.append(cfg.text_column)
    if missing:
        raise DataError(
            f"dataset {cfg.name!r} ({source}) has no column {', '.join(map(repr, missing))}; "
            f"it has {', '.join(ds.column_names)}. Rename the column in the file, or point "
            f"the config at yours: dataset.text_column=<column> dataset.columns=[...]"
        )
    feature = ds.features[cfg.text_column]
    if getattr(feature, "dtype", None) not in ("string", "large_string"):
        raise DataError(
            f"dataset {cfg.name!r}: column {cfg.text_column!r} holds {feature}, not text; "
            "set dataset.text_column to the column with the text"
        )
