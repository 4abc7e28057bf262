"""Axolotl's own venv: finding it, asking it about a YAML, and running `axolotl train` there.

Axolotl pins its own transformers/trl/peft/datasets and an antlr4 that conflicts with
hydra-core, so it never shares our venv. We only ever talk to it through processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semillero.errors import ConfigError, SemilleroError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
IN_ENV = HERE / "in_env.py"  # runs inside Axolotl's venv
PLUGIN_DIR = HERE / "plugin"  # semillero_axolotl.LogPlugin, on Axolotl's PYTHONPATH
ENV_VAR = "SEMILLERO_AXOLOTL_ENV"


def find_env(configured: str | None = None) -> Path:
    """Axolotl's venv: method.env, else $SEMILLERO_AXOLOTL_ENV, else .venv-axolotl."""
    env = Path(configured or os.environ.get(ENV_VAR) or REPO / ".venv-axolotl").expanduser()
    if not (env / "bin" / "axolotl").is_file():
        raise ConfigError(
            f"Axolotl's environment is not installed at {env}: run `make setup-axolotl` "
            f"(its own venv, since Axolotl's pins conflict with ours), or point {ENV_VAR} "
            "(or method.env) at a venv with axolotl 0.19"
        )
    return env


def _environ(env: Path, offline: bool = False) -> dict[str, str]:
    environ = dict(os.environ)
    if offline:  # a tiny run has nothing to fetch: no hub calls (Axolotl checks the HF token)
        environ |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    environ["PATH"] = f"{env / 'bin'}{os.pathsep}{environ.get('PATH', '')}"  # its accelerate
    environ["PYTHONPATH"] = str(PLUGIN_DIR)  # nothing of ours but the log plugin
    environ["AXOLOTL_DO_NOT_TRACK"] = "1"
    environ.pop("VIRTUAL_ENV", None)
    return environ


def _in_env(env: Path, args: Sequence[str], what: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [str(env / "bin" / "python"), str(IN_ENV), str(result), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, env=_environ(env))
        if done.returncode != 0 or not result.is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise SemilleroError(f"{what} failed to run in Axolotl's venv {env}:\n{tail}")
        return json.loads(result.read_text(encoding="utf-8"))


def inspect(env: Path, yamls: Sequence[Path]) -> dict[str, Any]:
    """What Axolotl's own schema says of each YAML (see in_env.py for the fields)."""
    return _in_env(env, [str(p) for p in yamls], "Axolotl's config check")


def prompts(env: Path, fmt: str, rows: Path) -> list[str]:
    """The prompts Axolotl's own prompter builds for instruction/input rows (JSONL)."""
    return _in_env(env, ["--prompts", fmt, str(rows)], "Axolotl's prompter")


def train(env: Path, yaml_path: Path, log_path: Path, offline: bool = False) -> None:
    """`axolotl train <yaml>` in Axolotl's venv, its output streamed with an [axolotl] prefix
    and kept whole in log_path. Raises with the log's tail when it fails."""
    yaml_path = yaml_path.resolve()
    cmd = [str(env / "bin" / "axolotl"), "train", str(yaml_path)]
    print(f"[semillero] $ {' '.join(cmd)}", flush=True)
    tail: list[str] = []
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_environ(env, offline),
            cwd=yaml_path.parent,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail = [*tail[-29:], line.rstrip()]
            if _worth_showing(line):
                sys.stdout.write(f"[axolotl] {line}")
                sys.stdout.flush()
        code = proc.wait()
    if code != 0:
        raise SemilleroError(
            f"axolotl train exited with {code}; its last lines (whole log: {log_path}):\n"
            + "\n".join(tail[-15:])
        )


def _worth_showing(line: str) -> bool:
    """Progress and results; Axolotl's warnings stay in the log file."""
    text = line.strip()
    return bool(text) and (
        "[INFO]" in text or text.startswith("{") or "%|" in text or "Error" in text
    )
