"""Sweeps on Hydra's launchers: gpus (joblib, one device per worker), slurm (the sbatch script
submitit would submit), ray (its plugin lives apart)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from semillero.cli import main
from semillero.errors import ConfigError
from semillero.launchers import check_launcher
from semillero.records import RECORD, read_record
from tests.conftest import REPO
from tests.helpers.runs import cheap

PIN = "from pathlib import Path; from semillero.launchers import pin_device; "


def pin_in_subprocess(lock_dir: Path, devices: str) -> subprocess.CompletedProcess[str]:
    listed = [d for d in devices.split(",") if d]
    code = PIN + f"print(pin_device(Path({str(lock_dir)!r}), {listed!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)


def test_each_worker_takes_a_gpu_no_other_worker_holds(tmp_path: Path) -> None:
    held = FileLock(str(tmp_path / "gpu-0.lock"))  # another worker holds GPU 0
    with held:
        done = pin_in_subprocess(tmp_path, "0,1")
        assert done.stdout.strip() == "1", done.stderr
        with FileLock(str(tmp_path / "gpu-1.lock")):  # and now GPU 1 too
            full = pin_in_subprocess(tmp_path, "0,1")
    assert full.returncode != 0
    assert "every visible GPU (0,1) is taken" in full.stderr and "JOBS=" in full.stderr


def test_no_gpus_means_no_pinning(tmp_path: Path) -> None:
    done = pin_in_subprocess(tmp_path, "")
    assert done.stdout.strip() == "None"


def test_gpus_launcher_runs_the_tiny_screening_in_two_jobs_once_each(tmp_path: Path) -> None:
    env = {**os.environ, "SEMILLERO_OUTPUT_DIR": str(tmp_path), "SEMILLERO_JOBS": "2"}
    args = ["sweep", "EXP=gpt2_screening", "LAUNCHER=gpus", *cheap("scale=tiny")]
    done = subprocess.run(
        [sys.executable, "-m", "semillero.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr  # Hydra's joblib launcher
    records = [read_record(p) for p in tmp_path.rglob(RECORD)]
    assert len(records) == 7
    assert all(r.status == "done" and r.attempt == 1 for r in records)  # none ran twice


def test_plan_prints_the_sbatch_script_without_submitting(capsys: pytest.CaptureFixture) -> None:
    assert main(["plan", "EXP=gpt2_screening", "LAUNCHER=slurm"]) == 0
    out = capsys.readouterr().out
    assert "would submit one job array of 7 jobs (not submitted)" in out
    for line in (
        "#SBATCH --array=0-6%7",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --time=240",
        "#SBATCH --signal=USR2@120",
        "#SBATCH --job-name=semillero-gpt2_screening",
    ):
        assert line in out, line
    assert "requeued up to 3 times" in out


def test_slurm_settings_reach_the_script(capsys: pytest.CaptureFixture) -> None:
    overrides = ["hydra.launcher.partition=gpu-a100", "hydra.launcher.timeout_min=30"]
    assert main(["plan", "EXP=gpt2_screening", "LAUNCHER=slurm", *overrides]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --partition=gpu-a100" in out and "#SBATCH --time=30" in out


def test_ray_without_its_plugin_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="venv of its own"):
        check_launcher(["experiment=gpt2_screening", "hydra/launcher=ray"])


def test_a_single_run_with_ray_without_its_plugin_names_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "SCALE=tiny", "LAUNCHER=ray"]) == 2
    assert "venv of its own" in capsys.readouterr().err
