"""Generated data sets (dataset.synth): made once per content hash, then read as files.

The folder name carries the data set, the scale and a hash of everything that shapes the
rows (the generator's spec file, sizes, seed), so a changed spec makes a new folder and a
finished one is never rewritten. Writing goes to a temporary folder renamed into place, so
a crash leaves no half-written data set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from semillero.config.schema import SynthDataConfig


def _sizes(cfg: SynthDataConfig, scale: str) -> dict[str, int]:
    return cfg.tiny_sizes if scale == "tiny" else cfg.sizes


def synth_folder(name: str, cfg: SynthDataConfig, scale: str) -> Path:
    """<out_dir>/<name>-<hash>-<scale>: the hash covers spec text, sizes, seed, generator."""
    from semillero.data.synth_reports import spec_path

    key = {
        "generator": cfg.generator,
        "spec": spec_path(cfg.spec).read_text(encoding="utf-8"),
        "sizes": _sizes(cfg, scale),
        "seed": cfg.seed,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return Path(cfg.out_dir).expanduser().resolve() / f"{name}-{digest}-{scale}"


def ensure_synth(name: str, cfg: SynthDataConfig, scale: str) -> Path:
    """The data set's folder (synth_folder), its splits generated unless already there."""
    folder = synth_folder(name, cfg, scale)
    sizes = _sizes(cfg, scale)
    if all((folder / f"{split}.jsonl").is_file() for split in sizes):
        return folder
    from semillero.data.synth_reports import load_spec, write_splits

    print(f"[semillero] generating {sum(sizes.values())} rows {sizes} -> {folder}", flush=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        write_splits(load_spec(cfg.spec), tmp, sizes, cfg.seed)
        if folder.exists():  # another process finished first: keep its copy
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
