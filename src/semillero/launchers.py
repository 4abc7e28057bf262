"""Sweeps across devices and nodes, on Hydra's launchers (conf/hydra/launcher/).

The launchers do the scheduling; this module only adds what they lack for our runs:
- `gpus` (joblib): each worker process takes one visible GPU for its whole life, through a
  lock file per device, so two runs never share a device however joblib hands out jobs;
- `slurm` (submitit): the sbatch script a sweep would submit, rendered by submitit itself
  without submitting (`semillero plan … LAUNCHER=slurm`);
- `ray`: its plugin lives outside our stack, and selecting it without the plugin names the fix.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from pathlib import Path
from typing import Any, cast

from semillero.errors import ConfigError

_held: Any = None  # the FileLock of this process's device, held until the process exits


def check_launcher(overrides: list[str]) -> None:
    """The launcher a sweep asks for can be loaded here, or an error says how to get it."""
    if "hydra/launcher=ray" in overrides and (
        importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None
    ):
        raise ConfigError(
            "hydra/launcher=ray needs hydra-ray-launcher, which is not in this venv: it "
            "downgrades cloudpickle and python-dateutil, so install it in a venv of its own "
            "(conf/hydra/launcher/ray.yaml shows how), or use LAUNCHER=gpus or LAUNCHER=slurm"
        )


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES, else every device NVML sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d for d in listed.split(",") if d.strip()]
    from semillero.memory import nvidia_smi

    return nvidia_smi("index")  # no torch: `semillero plan` loads nothing


def pin_device(lock_dir: Path, devices: list[str] | None = None) -> str | None:
    """Takes one free GPU for this worker process (first call only) and makes it the only one
    CUDA sees. Returns its id, or None without GPUs (the CPU form of LAUNCHER=gpus).

    Must run before CUDA is initialised in the process; a joblib worker runs several jobs in
    turn and keeps the device it took for its first one.
    """
    global _held
    from filelock import FileLock, Timeout

    if _held is not None:
        return os.environ["CUDA_VISIBLE_DEVICES"]
    devices = visible_gpus() if devices is None else devices
    if not devices:
        return None
    lock_dir.mkdir(parents=True, exist_ok=True)
    for device in devices:
        lock = FileLock(str(lock_dir / f"gpu-{device}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        _held = lock
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        return device
    raise ConfigError(
        f"LAUNCHER=gpus: every visible GPU ({','.join(devices)}) is taken by another worker: "
        "run no more parallel jobs than GPUs (JOBS=<count>)"
    )


def sbatch_preview(hydra_launcher: dict[str, Any], jobs: int, folder: str) -> str:
    """The sbatch script Hydra's submitit launcher would submit for `jobs` array jobs,
    rendered by submitit's own sbatch writer, without Slurm and without submitting.

    The launcher's generic names become Slurm's through submitit's own equivalence table
    (timeout_min -> time, mem_gb -> mem, tasks_per_node -> ntasks_per_node, name -> job_name);
    max_num_timeout is a requeue count of submitit's, not an sbatch option.
    """
    from submitit.slurm.slurm import SlurmExecutor, _convert_mem, _make_sbatch_string

    skip = {"_target_", "submitit_folder", "max_num_timeout"}
    rename = cast(dict[str, str], SlurmExecutor._equivalence_dict())
    params: dict[str, Any] = {
        str(rename.get(k, k)): v
        for k, v in hydra_launcher.items()
        if k not in skip and v is not None
    }
    if "mem" in params:
        params["mem"] = _convert_mem(params["mem"])
    # The command submitit's SlurmExecutor runs in each job: it unpickles Hydra's job (one
    # grid point) and runs it (SlurmExecutor._submitit_command_str).
    command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", folder])
    return str(_make_sbatch_string(command=command, folder=folder, map_count=jobs, **params))
