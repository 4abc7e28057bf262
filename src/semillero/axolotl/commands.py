"""`semillero axolotl render|check`: Axolotl's YAML for each point of a study, without
training; and any Axolotl YAML (the seed's, say) checked with Axolotl's schema and ours."""

from __future__ import annotations

from pathlib import Path

import torch

from semillero.axolotl import env as axolotl_env
from semillero.axolotl.check import Problem, check_yamls, raise_if_any
from semillero.config.compose import run_dir
from semillero.config.schema import RunConfig
from semillero.errors import SemilleroError


def render_runs(runs: list[RunConfig], out_dir: Path | None = None) -> list[tuple[Path, dict]]:
    """Each run's YAML, as its run would write it (same paths), into out_dir or the run's
    folder; returns (path, key -> setting) per run."""
    from semillero.methods.axolotl import paths_for, rendered_config

    written = []
    for run in runs:
        folder = run_dir(run).resolve()
        paths = paths_for(run, folder, str(folder / "twin"))
        rendered = rendered_config(run, paths, torch.cuda.is_available())
        target = (out_dir / f"{folder.name}.yaml") if out_dir else folder / "axolotl.yaml"
        written.append((rendered.write(target), rendered.source))
    return written


def check_runs(runs: list[RunConfig]) -> None:
    """Renders every axolotl run of a grid and checks them in one call to Axolotl's venv;
    raises before anything trains when one would not run as meant."""
    runs = [r for r in runs if r.method.name == "axolotl"]
    if not runs:
        return
    env = axolotl_env.find_env(getattr(runs[0].method, "env", None))
    out = runs[0].paths.output_dir
    tmp = Path(out) / runs[0].scale / runs[0].study / ".axolotl-check"
    written = render_runs(runs, tmp)
    print(
        f"[semillero] checking {len(written)} Axolotl config(s) with Axolotl's schema", flush=True
    )
    raise_if_any(check_yamls([p for p, _ in written], [s for _, s in written], env))


def check_files(paths: list[Path], env_dir: str | None = None) -> list[tuple[Path, list[Problem]]]:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SemilleroError(f"no such file: {missing[0]}")
    return check_yamls(paths, [{} for _ in paths], axolotl_env.find_env(env_dir))
