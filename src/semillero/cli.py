"""The `semillero` command: train, sweep, plan, report, export, axolotl, data, bench.

    semillero train [hydra overrides]            one run (add -m for a Hydra multirun)
    semillero sweep EXP=<study> [SCALE=tiny]     a study's whole grid, then its report
    semillero plan EXP=<study> [SCALE=tiny]      validate and list the grid; no weights loaded
    semillero report EXP=<study> [SCALE=tiny]    report.md / report.csv / report.png
    semillero export <run folder> [--dtype float16]
                                                 merged 16-bit model, GGUF, Ollama Modelfile
    semillero axolotl render EXP=<study> [--out DIR]
                                                 each run's Axolotl YAML, checked, not trained
    semillero axolotl check <config.yml>...      any Axolotl YAML against Axolotl's schema + ours
    semillero data synth-reports --out DIR [--train N --validation N --test N --seed S --spec F]
                                                 the report -> JSON data set, seeded
    semillero bench [SCALE=tiny] [cases=[clm]]   throughput, memory, MFU (conf/bench.yaml)

`EXP=`, `SCALE=` and `LAUNCHER=` are shorthands for `experiment=`, `scale=` and
`hydra/launcher=` (local, gpus, slurm, ray); everything else is a
Hydra override (`trainer.max_steps=100`, `model=distilgpt2`, `tracker=none`, ...).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from semillero.config.compose import (
    compose,
    conf_dir,
    expand_grid,
    normalise_args,
    run_dir,
    study_dir,
    validate,
)
from semillero.config.schema import ReportConfig, RunConfig
from semillero.errors import SemilleroError

log = logging.getLogger("semillero")
FORCE_ENV = "SEMILLERO_FORCE"  # FORCE=1 on the command line: re-run finished runs
_failures: list[str] = []  # runs of this process that did not finish (basic launcher)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help") or args[1:2] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    command, rest = args[0], normalise_args(args[1:])
    if "FORCE=1" in rest:  # not a config value: it changes what runs, not what a run is
        os.environ[FORCE_ENV] = "1"
        rest = [a for a in rest if a != "FORCE=1"]
    commands = {
        "train": train,
        "sweep": sweep,
        "plan": plan,
        "report": report,
        "export": export,
        "axolotl": axolotl,
        "data": data,
        "bench": bench,
    }
    if command not in commands:
        print(f"error: unknown command {command!r}; use one of {', '.join(commands)}")
        return 2
    try:
        if command not in ("report", "export", "data", "bench") and rest[:1] != ["check"]:
            from semillero.selection import resolve_model_from

            rest = resolve_model_from(rest)
        return commands[command](rest)
    except SemilleroError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the run's record says `interrupted`; its traceback is beside it
        print(
            "\n[semillero] interrupted: run the same command again to resume from the last "
            "checkpoint (finished runs are skipped)",
            file=sys.stderr,
        )
        return 130


def bench(args: list[str]) -> int:
    from semillero.bench.run import bench as run_bench

    return run_bench(args)


def export(args: list[str]) -> int:
    """Merges a run's adapter, writes GGUF and a Modelfile (see semillero.export)."""
    args = list(args)
    dtype = _option(args, "--dtype", "bfloat16")
    if dtype not in ("bfloat16", "float16"):
        raise SemilleroError(f"--dtype {dtype!r}: use bfloat16 or float16")
    if len(args) != 1:
        raise SemilleroError(
            "usage: semillero export <run folder> [--dtype bfloat16|float16], e.g. "
            "semillero export outputs/tiny/alpaca_qlora/<run>"
        )
    from semillero.export import export_run

    result = export_run(args[0], dtype)
    print(f"[semillero] export of {result['run']}:")
    for key in ("merge", "merged", "reload_max_abs_diff", "gguf", "gguf_note", "modelfile"):
        if result.get(key) is not None:
            print(f"  {key}: {result[key]}")
    return 0


def _option(args: list[str], name: str, default: str | None = None) -> str | None:
    """The value after `name` in args (removed from args), or default."""
    if name not in args:
        return default
    i = args.index(name)
    if i + 1 >= len(args):
        raise SemilleroError(f"{name} needs a value")
    value = args[i + 1]
    del args[i : i + 2]
    return value


def _count(args: list[str], name: str, default: str) -> int:
    """A whole-number option (removed from args), or one error naming it."""
    value = _option(args, name, default) or default
    if not value.isdigit():
        raise SemilleroError(f"{name} {value!r}: give a whole number, e.g. {name} {default}")
    return int(value)


def axolotl(args: list[str]) -> int:
    """`render EXP=…`: every run's Axolotl YAML, checked in Axolotl's venv, not trained.
    `check <yaml>…`: any Axolotl YAML against Axolotl's schema and our checks."""
    from semillero.axolotl.check import check_yamls
    from semillero.axolotl.commands import check_files, render_runs

    def show(checked: list[tuple[Path, list[Any]]]) -> int:
        for path, problems in checked:
            print(f"{path}: " + ("checked, ok" if not problems else f"{len(problems)} problem(s)"))
            for problem in problems:
                print(f"  - {problem}")
        return 1 if any(problems for _, problems in checked) else 0

    action, rest = (args[0], args[1:]) if args else ("", [])
    if action == "check":
        return show(check_files([Path(a) for a in rest]))
    if action != "render":
        raise SemilleroError(
            "usage: semillero axolotl render EXP=<study> [--out DIR] | "
            "semillero axolotl check <config.yml>..."
        )
    out = _option(rest, "--out")
    runs = [p.run for p in _valid_grid(rest, show=False) if p.run is not None]
    runs = [r for r in runs if r.method.name == "axolotl"]
    if not runs:
        raise SemilleroError("no run of this grid uses method=axolotl: nothing to render")
    written = render_runs(runs, Path(out) if out else None)
    from semillero.axolotl.env import find_env

    return show(check_yamls([p for p, _ in written], [s for _, s in written], find_env()))


def data(args: list[str]) -> int:
    """`synth-reports --out DIR`: the report -> JSON data set, seeded (data/synth_reports)."""
    if args[:1] != ["synth-reports"]:
        raise SemilleroError(
            "usage: semillero data synth-reports --out DIR [--train N] [--validation N] "
            "[--test N] [--seed S] [--spec my_fields.yaml]"
        )
    from semillero.data.synth_reports import load_spec, write_splits

    rest = args[1:]
    out = _option(rest, "--out")
    if out is None:
        raise SemilleroError("semillero data synth-reports needs --out DIR")
    sizes = {
        split: _count(rest, f"--{split}", default)
        for split, default in (("train", "400"), ("validation", "40"), ("test", "100"))
    }
    seed = _count(rest, "--seed", "2025")
    spec = _option(rest, "--spec")
    if rest:
        raise SemilleroError(f"unknown option(s) {rest}: see semillero --help")
    written = write_splits(load_spec(spec), Path(out), sizes, seed)
    for split, path in written.items():
        print(f"[semillero] {split}: {sizes[split]} rows -> {path}")
    return 0


def train(overrides: list[str], multirun: bool = False, checked: bool = False) -> int:
    """Runs Hydra's app over the overrides (one run, or a multirun with -m).

    Every run is composed and validated here first, so that a typo gets semillero's
    error (with its fix) before Hydra starts, and a sweep with one bad point starts none.
    """
    import hydra

    from semillero.launchers import check_launcher
    from semillero.plan import preflight

    check_launcher(overrides)
    if "-m" in overrides or "--multirun" in overrides:
        multirun = True
        overrides = [o for o in overrides if o not in ("-m", "--multirun")]
    if not checked and multirun:
        _valid_grid(overrides, show=False)
    elif not checked:
        preflight(validate(compose(overrides)))
    _failures.clear()
    sys.argv = ["semillero", *(["--multirun"] if multirun else []), *overrides]
    app = hydra.main(config_path=str(conf_dir()), config_name="config", version_base=None)
    app(_task)()
    return 1 if _failures else 0


def _task(cfg: object) -> str:
    """One Hydra job: validate, run, record. Errors are reported and recorded, not raised,
    so that one bad grid point does not hide the others' results."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    from semillero.runner import execute

    assert isinstance(cfg, DictConfig)
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    try:
        if hydra_cfg.runtime.choices.get("hydra/launcher") == "gpus":
            from semillero.launchers import pin_device

            pin_device(Path(str(cfg.paths.output_dir)) / ".gpu-slots")  # once per worker
        run = validate(cfg)
        config = cast(dict[str, Any], OmegaConf.to_container(cfg, resolve=True))
        record = execute(run, config, overrides, force=os.environ.get(FORCE_ENV) == "1")
        return record.status if record else "skipped"
    except SemilleroError as exc:
        print(f"error ({' '.join(overrides) or 'defaults'}): {exc}", file=sys.stderr)
    except Exception:
        log.exception("run failed (%s)", " ".join(overrides))
    _failures.append(" ".join(overrides))
    return "failed"


def _valid_grid(overrides: list[str], show: bool, skip_invalid: bool = False) -> list[Any]:
    """Every point of the grid (plan.GridPoint). An invalid one is an error that starts
    nothing, unless skip_invalid: then it is only listed, and the caller runs the others."""
    from semillero.plan import describe, plan_grid

    points = plan_grid(overrides)
    invalid = any(p.run is None for p in points)
    if show or invalid:
        print(describe(points), flush=True)
    if (invalid and not skip_invalid) or all(p.run is None for p in points):
        raise SemilleroError(
            "the grid has invalid points (above); fix them, or run the others with "
            "--skip-invalid. None was started"
        )
    return points


def sweep(overrides: list[str]) -> int:
    """A study's whole grid: plan it, refuse if any point is invalid, run it, report it."""
    from semillero.plan import run_status

    start = time.perf_counter()
    skip_invalid = "--skip-invalid" in overrides
    overrides = [o for o in overrides if o != "--skip-invalid"]
    from semillero.launchers import check_launcher

    check_launcher(overrides)
    points = _valid_grid(overrides, show=True, skip_invalid=skip_invalid)
    valid = [p for p in points if p.run is not None]
    runs: list[RunConfig] = [p.run for p in valid]
    from semillero.axolotl.commands import check_runs

    check_runs(runs)  # Axolotl's YAMLs, all checked before any run starts
    forced = os.environ.get(FORCE_ENV) == "1"
    before = 0 if forced else sum(run_status(r) == "done" for r in runs)
    print(f"\n[semillero] sweep: {len(runs)} runs", flush=True)
    if len(valid) < len(points):
        # Hydra sweeps a whole cartesian grid; the valid points run one by one instead.
        code = max(train(p.overrides, checked=True) for p in valid)
    else:
        code = train(overrides, multirun=True, checked=True)
    unfinished = [r for r in runs if run_status(r) != "done"]
    if len(unfinished) == len(runs):
        print("\n[semillero] no run finished, so there is no report: see the errors above")
    elif runs[0].report is not None:
        print(_report(runs[0].report, study_dir(runs[0]), runs), flush=True)
    elapsed = time.perf_counter() - start
    earlier = f" ({before} already done: skipped)" if before else ""
    print(
        f"\n[semillero] {len(runs) - len(unfinished)}/{len(runs)} runs done{earlier} "
        f"in {elapsed:.0f}s ({elapsed / 60:.1f} min)",
        flush=True,
    )
    for r in unfinished:
        print(f"  not done: {run_dir(r)}")
    return 1 if unfinished else code


def plan(overrides: list[str]) -> int:
    from semillero.launchers import check_launcher
    from semillero.plan import describe, plan_grid

    check_launcher(overrides)
    points = plan_grid(overrides)
    print(describe(points))
    invalid = sum(p.run is None for p in points)
    print(f"\n{len(points)} runs, {invalid} invalid")
    if "hydra/launcher=slurm" in overrides and points[0].run is not None:
        print(_sbatch(points[0].overrides, len(points)))
    return 2 if invalid else 0


def _sbatch(point: list[str], jobs: int) -> str:
    """What LAUNCHER=slurm would submit for this grid: submitit's sbatch script, not sent."""
    from omegaconf import OmegaConf

    from semillero.launchers import sbatch_preview

    launcher = compose(point, with_hydra=True).hydra.launcher
    params = cast(dict[str, Any], OmegaConf.to_container(launcher, resolve=True))
    folder = str(params.get("submitit_folder", ".submitit/%j"))
    script = sbatch_preview(params, jobs, folder)
    return (
        f"\nLAUNCHER=slurm would submit one job array of {jobs} jobs (not submitted):\n\n"
        f"{script}\nEach job runs one grid point; a preempted or timed-out job is requeued "
        f"up to {params.get('max_num_timeout', 0)} times and resumes from its checkpoint."
    )


def report(overrides: list[str]) -> int:
    run = validate(compose(overrides))
    if run.report is None:
        raise SemilleroError(
            f"study {run.study!r} defines no report: pick one with EXP=<study> "
            f"(conf/experiment/), or add a report: section to its YAML"
        )
    folder = study_dir(run)
    if not folder.is_dir():
        other = "tiny" if run.scale == "full" else "full"
        fix = (
            f"the runs are at SCALE={other}: semillero report EXP={run.study} SCALE={other}"
            if study_dir(run, other).is_dir()
            else f"run the study first: make sweep EXP={run.study} SCALE={run.scale}"
        )
        raise SemilleroError(f"no runs under {folder}; {fix}")
    grid = [validate(compose(point)) for point in expand_grid(overrides)]
    print(_report(run.report, folder, grid))
    return 0


def _report(cfg: ReportConfig, folder: Path, runs: list[RunConfig]) -> str:
    """Writes and prints the report of the grid's runs."""
    from semillero.report import console_table, report_study

    report_study(folder, cfg, conf_dir().parent, {run_dir(r).name for r in runs})
    table = console_table(folder, cfg)
    if runs and runs[0].scale == "tiny":
        table += "\n(tiny scale: twins on fixture text check the pipeline; not results)"
    return f"\n{table}\n\nreport: {folder / 'report.md'} (+ report.csv, report.png)"


if __name__ == "__main__":
    raise SystemExit(main())
