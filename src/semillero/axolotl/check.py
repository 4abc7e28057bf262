"""Is an Axolotl YAML one that Axolotl will run as meant? Errors in our terms.

Axolotl's schema drops unknown keys silently and only warns about deprecated ones, and a
YAML can validate and still fail in preprocessing or silently not do what it says. So
besides Axolotl's own `validate_config` (run in its venv), every key must be an option
Axolotl knows, none may be deprecated, each dataset `type` must resolve to a prompt
strategy, and 4-bit must come with `adapter: qlora`. Each problem names the setting of
ours that wrote the key, when we rendered it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from semillero.axolotl import env as axolotl_env
from semillero.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Problem:
    key: str  # the Axolotl key (or datasets[i].type)
    message: str
    source: str | None = None  # the setting of ours that wrote it; None for a hand-written YAML

    def __str__(self) -> str:
        where = f"{self.key} (from {self.source})" if self.source else self.key
        return f"{where}: {self.message}"


def problems(
    config: dict[str, Any], facts: dict[str, Any], result: dict[str, Any], source: dict[str, str]
) -> list[Problem]:
    """Everything wrong with one YAML, from Axolotl's report on it (env.inspect)."""
    known, deprecated = set(facts["known"]), facts["deprecated"]
    out: list[Problem] = []
    for key in config:
        if key in deprecated:
            out.append(Problem(key, f"deprecated in Axolotl: {deprecated[key]}", source.get(key)))
        elif key not in known:
            hint = did_you_mean(key, known)
            out.append(
                Problem(
                    key,
                    f"not an option of Axolotl {facts['axolotl']}, which would drop it "
                    f"silently.{hint}",
                    source.get(key),
                )
            )
    for loc, message in result["dataset_types"].items():
        out.append(
            Problem(
                loc,
                f"{message}: not an Axolotl dataset type, so preprocessing fails; for "
                "instruction/input/output rows use `type: alpaca`",
                source.get(loc.split("[")[0]),
            )
        )
    if config.get("load_in_4bit") and config.get("adapter") == "lora":
        out.append(
            Problem(
                "adapter",
                "`load_in_4bit: true` with `adapter: lora` does not quantise in Axolotl: "
                "4-bit training needs `adapter: qlora` (ours: adapter=qlora)",
                source.get("load_in_4bit") or source.get("adapter"),
            )
        )
    for error in result["errors"]:
        key = error["loc"][0] if error["loc"] else "(config)"
        out.append(Problem(key, f"Axolotl: {error['msg']}", source.get(key)))
    return out


def check_yamls(
    paths: list[Path], sources: list[dict[str, str]], env: Path
) -> list[tuple[Path, list[Problem]]]:
    """Checks YAML files in one call to Axolotl's venv (its import takes seconds)."""
    report = axolotl_env.inspect(env, paths)
    out = []
    for path, source, result in zip(paths, sources, report["configs"], strict=True):
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        out.append((path, problems(config, report, result, source)))
    return out


# Digests of YAML texts this sweep already checked, inherited by its jobs (in-process, joblib
# workers, Slurm jobs): a run does not ask Axolotl's venv again about the same text.
CHECKED_ENV = "SEMILLERO_AXOLOTL_CHECKED"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def already_checked(path: Path) -> bool:
    return _digest(path) in os.environ.get(CHECKED_ENV, "").split(",")


def raise_if_any(checked: list[tuple[Path, list[Problem]]]) -> None:
    bad = [(path, found) for path, found in checked if found]
    if not bad:
        known = [d for d in os.environ.get(CHECKED_ENV, "").split(",") if d]
        os.environ[CHECKED_ENV] = ",".join(known + [_digest(p) for p, _ in checked])
        return
    lines = ["Axolotl would not run these configs as written:"]
    for path, found in bad:
        lines.append(f"  {path}:")
        lines += [f"    - {p}" for p in found]
    lines.append("Fix the setting named in each line (in conf/ or on the command line).")
    raise ConfigError("\n".join(lines))
