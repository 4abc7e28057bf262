"""Where a data set comes from, checked without importing `datasets` (plan uses this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from semillero.config.schema import DatasetConfig
from semillero.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# load_dataset builder for each local file type.
BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class Source:
    kind: str  # "hub" | "files" (data_files on the hub or elsewhere) | "local" | "fixture"
    location: str  # hub id, or an absolute path

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


def resolve_source(cfg: DatasetConfig, scale: str) -> Source:
    """Where a data set comes from: generated (synth), the fixture at scale=tiny, else path,
    else hub id."""
    if cfg.synth is not None:  # generated here, once per content hash (under a second)
        from semillero.data.synth import ensure_synth

        return Source("synth", str(ensure_synth(cfg.name, cfg.synth, scale)))
    if scale == "tiny":
        assert cfg.fixture is not None  # the schema requires one without synth
        return Source("fixture", str(FIXTURES / cfg.fixture))
    if cfg.path:
        return Source("local", str(Path(cfg.path).expanduser().resolve()))
    if cfg.data_files is not None:
        return Source("files", str(cfg.data_files))
    if cfg.hub_id:
        return Source("hub", cfg.hub_id)
    raise DataError(
        f"dataset {cfg.name!r} has neither hub_id nor path: set dataset.path=/local/file.csv "
        "or dataset.hub_id=owner/name"
    )


def check_source(cfg: DatasetConfig, source: Source) -> None:
    """Cheap checks that need no library import: the local file or folder exists."""
    if source.kind in ("hub", "files"):
        return
    path = Path(source.location)
    if not path.exists():
        fix = (
            "set dataset.path to an existing file"
            if source.kind == "local"
            else ("reinstall semillero (pip install -e .): the shipped fixture is missing")
        )
        raise DataError(f"dataset {cfg.name!r}: {path} does not exist; {fix}")
    if path.is_file() and path.suffix not in BUILDERS:
        raise DataError(
            f"dataset {cfg.name!r}: cannot read {path.name}: use one of "
            f"{', '.join(sorted(BUILDERS))}, or a directory laid out like the hub repo"
        )
