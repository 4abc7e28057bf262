"""One run over several processes (DDP, DeepSpeed ZeRO-2/3, FSDP), through `accelerate launch`.

No process group is built here. For a run whose `method.distributed.strategy` is not
`single`, the runner, one process that holds the run's lock and owns its record:
1. writes accelerate's config file (and DeepSpeed's JSON) into `<run>/distributed/`, from
   our config, with accelerate's own ClusterConfig writer;
2. starts `accelerate launch … -m semillero.distributed <payload>` and waits;
3. merges what rank 0 wrote (`<run>/distributed/record.json`) into the run's record.

Every rank loads the data and the model and calls the same method code, so Trainer/TRL do
the sharding; only rank 0 starts W&B and writes. Without CUDA, `ddp` runs N CPU processes
over gloo: the same code path, small enough for a test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from semillero.config.distributed import DistributedConfig
from semillero.config.schema import RunConfig, TrainerConfig
from semillero.errors import ConfigError, SemilleroError

FOLDER = "distributed"  # <run>/distributed/: the config files, rank 0's record, errors
ACCELERATE_FILE = "accelerate.yaml"
DEEPSPEED_FILE = "deepspeed.json"
ZERO_STAGE = {"zero2": 2, "zero3": 3}


class DistributedRunError(SemilleroError):
    """A launched process failed; the message names the rank and where its traceback is."""


@contextmanager
def main_process_first(run: RunConfig) -> Iterator[None]:
    """In a distributed run, rank 0 runs the block (filling the datasets cache) before the
    others, which then read its cache; a single-process run just runs it."""
    if run.method.distributed.strategy == "single":
        yield
        return
    from accelerate import PartialState

    with PartialState().main_process_first():
        yield


def visible_gpu_count() -> int:
    """GPUs this process may use: CUDA_VISIBLE_DEVICES, else nvidia-smi's list (no torch)."""
    from semillero.launchers import visible_gpus

    return len(visible_gpus())


def processes(cfg: DistributedConfig, gpus: int) -> int:
    """How many processes a run launches: the configured number, or one per visible GPU."""
    if cfg.processes != "auto":
        return cfg.processes
    if gpus == 0:
        raise ConfigError(
            f"method.distributed.strategy={cfg.strategy} with processes=auto counts the visible "
            "GPUs, and there are none: run on a GPU machine, or give a number "
            "(method.distributed.processes=2 runs 2 CPU processes over gloo, for testing)"
        )
    return gpus


def check(run: RunConfig, gpus: int) -> None:
    """What a distributed run needs, checked before any data or model is loaded."""
    cfg = run.method.distributed
    if cfg.strategy == "single":
        return
    n = processes(cfg, gpus)
    if gpus == 0 and cfg.strategy != "ddp":
        raise ConfigError(
            f"method.distributed.strategy={cfg.strategy} shards the model across CUDA GPUs, and "
            "none is visible: run on a GPU machine, or use strategy=ddp (CPU processes over "
            "gloo) to try the multi-process path here"
        )
    if gpus and n > gpus:
        raise ConfigError(
            f"method.distributed.processes={n} but {gpus} GPU(s) are visible "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}): lower "
            "processes, or leave it at auto. Under LAUNCHER=gpus each run gets one GPU; a "
            "multi-GPU run wants LAUNCHER=local (or a Slurm job with that many GPUs)"
        )
    if cfg.strategy in ZERO_STAGE:
        import importlib.util

        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(
                f"method.distributed.strategy={cfg.strategy} needs DeepSpeed, which is not "
                "installed: make setup installs it from requirements/cpu.txt (the Docker image "
                "has it), or use strategy=ddp or fsdp"
            )
    quantised = run.adapter.quantization is not None or run.model.prequantized
    if quantised and cfg.strategy in ("zero3", "fsdp"):
        raise ConfigError(
            f"adapter={run.adapter.name} (a 4-bit base) with strategy={cfg.strategy}: sharding "
            "4-bit weights is not supported here; use strategy=ddp or zero2 (each process holds "
            "the 4-bit base), or adapter=lora"
        )


def deepspeed_config(cfg: DistributedConfig) -> dict[str, Any]:
    """DeepSpeed's JSON for zero2/zero3. "auto" values are filled by transformers from the
    TrainingArguments (batch, accumulation, clipping, precision, optimizer settings), so the
    recipe has one home: our trainer config."""
    stage = ZERO_STAGE[cfg.strategy]
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if stage == 2:
        zero["allgather_bucket_size"] = 5e8
    if stage == 3:
        zero |= {
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "stage3_gather_16bit_weights_on_model_save": True,  # save_pretrained gets weights
        }
    config: dict[str, Any] = {
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "fp16": {"enabled": "auto"},
        "bf16": {"enabled": "auto"},
        "zero_optimization": zero,
        "steps_per_print": 10**9,  # Trainer logs; DeepSpeed's own step lines are noise
        "wall_clock_breakdown": False,
    }
    if cfg.offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
        # ZeRO-Offload steps the optimizer on the CPU with DeepSpeed's own CPU Adam.
        config["optimizer"] = {
            "type": "AdamW",
            "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"},
        }
    return config


def fsdp_config(cfg: DistributedConfig, trainer: TrainerConfig) -> dict[str, Any]:
    """TrainingArguments.fsdp_config for FSDP2: one shard unit per decoder layer (the model's
    own _no_split_modules), full state dicts on save so checkpoints load anywhere."""
    return {
        "version": 2,
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "reshard_after_forward": True,
        "cpu_offload": cfg.offload,
        "state_dict_type": "FULL_STATE_DICT",
        # FSDP's own checkpointing instead of the model's (an extra all-gather otherwise).
        "activation_checkpointing": trainer.activation_checkpointing,
    }


def training_kwargs(run: RunConfig, run_folder: Path) -> dict[str, Any]:
    """What a distributed run adds to TrainingArguments (and TRL's configs)."""
    cfg = run.method.distributed
    if cfg.strategy in ZERO_STAGE:
        return {"deepspeed": str(run_folder / FOLDER / DEEPSPEED_FILE)}
    if cfg.strategy == "fsdp":
        return {
            "fsdp": True,  # FSDP2, configured by fsdp_config
            "fsdp_config": fsdp_config(cfg, run.trainer),
            "activation_checkpointing": False,  # done by FSDP (fsdp_config above)
        }
    # Every trainable weight gets a gradient in our methods: DDP's search for unused ones
    # would cost a graph traversal per step.
    return {"ddp_find_unused_parameters": False}


def accelerate_config(
    cfg: DistributedConfig, n: int, port: int, mixed_precision: str, folder: Path
) -> Any:
    """accelerate's ClusterConfig for `accelerate launch`. On CPU, ddp is written as
    MULTI_GPU, which is the torchrun launcher; the processes then join over gloo because
    ACCELERATE_USE_CPU is set (accelerate's MULTI_CPU launcher needs MPI)."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import ComputeEnvironment, DistributedType

    kind = {
        "ddp": DistributedType.MULTI_GPU,
        "zero2": DistributedType.DEEPSPEED,
        "zero3": DistributedType.DEEPSPEED,
        "fsdp": DistributedType.FSDP,
    }[cfg.strategy]
    extra: dict[str, Any] = {}
    if cfg.strategy in ZERO_STAGE:
        extra["deepspeed_config"] = {
            "deepspeed_config_file": str(folder / DEEPSPEED_FILE),
            "zero3_init_flag": cfg.strategy == "zero3",
        }
    if cfg.strategy == "fsdp":
        extra["fsdp_config"] = {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_offload_params": cfg.offload,
            "fsdp_state_dict_type": "FULL_STATE_DICT",
            "fsdp_reshard_after_forward": True,
        }
    return ClusterConfig(
        compute_environment=ComputeEnvironment.LOCAL_MACHINE,
        distributed_type=kind,
        mixed_precision=mixed_precision,
        use_cpu=False,
        debug=False,
        num_processes=n,
        num_machines=1,
        machine_rank=0,
        main_process_port=port,
        rdzv_backend="static",
        same_network=True,
        **extra,
    )


def write_configs(run: RunConfig, run_folder: Path, n: int) -> dict[str, str]:
    """Writes the launch files into <run>/distributed/ and returns their paths by name."""
    from semillero.trainer_args import resolve_precision

    cfg = run.method.distributed
    folder = run_folder / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    files = {"accelerate": str(folder / ACCELERATE_FILE)}
    if cfg.strategy in ZERO_STAGE:
        path = folder / DEEPSPEED_FILE
        path.write_text(json.dumps(deepspeed_config(cfg), indent=2) + "\n", encoding="utf-8")
        files["deepspeed"] = str(path)
    fp16, bf16, _ = resolve_precision(run.trainer)
    precision = "bf16" if bf16 else "fp16" if fp16 else "no"
    port = cfg.main_port or free_port()
    accelerate_config(cfg, n, port, precision, folder).to_yaml_file(files["accelerate"])
    return files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(
    run: RunConfig,
    record: Any,
    run_folder: Path,
    checkpoint: str | None,
    timings: dict[str, float],
) -> None:
    """Trains and evaluates the run on its processes; fills `record` from rank 0's copy.

    The launched processes run in their own session: when this process is interrupted or
    fails, the whole group is stopped (SIGTERM, then SIGKILL), never left behind.
    """
    import torch

    cfg = run.method.distributed
    n = processes(cfg, visible_gpu_count())
    folder = run_folder / FOLDER
    for stale in (*folder.glob("error-rank*.txt"), folder / "record.json"):
        stale.unlink(missing_ok=True)  # a previous attempt's leftovers would mislead the merge
    files = write_configs(run, run_folder, n)
    payload = folder / "payload.json"
    payload.write_text(
        json.dumps({"record": record.model_dump(mode="json"), "checkpoint": checkpoint}, indent=2),
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        files["accelerate"],
        "-m",
        "semillero.distributed",
        str(payload),
    ]
    env = dict(os.environ)
    if not torch.cuda.is_available():
        env["ACCELERATE_USE_CPU"] = "true"  # join over gloo, on the CPU
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    print(
        f"[semillero] {run_folder.name}: {cfg.strategy} over {n} process(es): "
        f"accelerate launch --config_file {files['accelerate']}",
        flush=True,
    )
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        with _terminate_as_interrupt():
            code = process.wait()
    except BaseException:
        _stop(process)
        raise
    finally:
        timings["launch"] = round(time.perf_counter() - start, 3)
        _merge(record, folder, files)
    if code != 0:
        raise DistributedRunError(_failure(folder, code))


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While the processes run, SIGTERM (`kill`) stops them as Ctrl-C does, instead of ending
    this process and leaving them behind. A handler someone else installed (submitit's under
    Slurm) is left alone."""
    import threading

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stops the launcher and every process it started (they share its session): SIGTERM,
    then SIGKILL to whatever of the group is still there after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()  # reaps the launcher, so that only live members keep the group
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _merge(record: Any, folder: Path, files: dict[str, str]) -> None:
    """Copies what rank 0 recorded (model, W&B, metrics, outputs) into the runner's record."""
    from semillero.records import read_record

    path = folder / "record.json"
    if not path.is_file():
        return
    ranked = read_record(path)
    for key in ("model", "wandb", "metrics", "history", "samples", "tables", "artifacts"):
        setattr(record, key, getattr(ranked, key))
    record.timings |= ranked.timings
    record.distributed = ranked.distributed | {"files": files}


def _failure(folder: Path, code: int) -> str:
    errors = sorted(folder.glob("error-rank*.txt"))
    if not errors:
        return (
            f"accelerate launch exited with status {code} before any process reported an "
            "error: its own output above says why"
        )
    first = errors[0]
    lines = first.read_text(encoding="utf-8").strip().splitlines()
    return (
        f"{len(errors)} process(es) failed; {first.stem.removeprefix('error-')}: "
        f"{lines[-1] if lines else '?'} (tracebacks: {folder}/error-rank*.txt)"
    )


def worker(payload_path: Path) -> None:
    """One launched process: the same data, model and method code as a single-process run.
    Rank 0 starts W&B and keeps the record's contents in <run>/distributed/record.json."""
    import torch
    from accelerate import PartialState

    from semillero.config.compose import run_hash, validate
    from semillero.data.prepare import prepare_data
    from semillero.records import RunRecord
    from semillero.runner import Timer, train_and_evaluate

    payload = json.loads(payload_path.read_text(encoding="utf-8"))
    record = RunRecord.model_validate(payload["record"])
    folder = payload_path.parent
    run_folder = folder.parent
    state = PartialState(cpu=not torch.cuda.is_available())
    try:
        run = validate(record.config)
        if run_hash(run) != record.config_hash:
            raise DistributedRunError(
                f"the launched process composed config {run_hash(run)}, not the run's "
                f"{record.config_hash}: the code changed under the run; start it again"
            )
        timer = Timer()
        with main_process_first(run):
            splits, _ = prepare_data(run)
        record.distributed = {
            "strategy": run.method.distributed.strategy,
            "processes": state.num_processes,
            "backend": state.backend,
            "distributed_type": str(state.distributed_type).split(".")[-1],
            "global_batch": run.trainer.per_device_train_batch_size
            * run.trainer.gradient_accumulation_steps
            * state.num_processes,
        }

        def publish() -> None:
            if state.is_main_process:
                record.timings = dict(timer.timings)
                record.write(folder)

        train_and_evaluate(
            run,
            record,
            run_folder,
            payload["checkpoint"],
            splits,
            timer,
            publish,
            main=state.is_main_process,
        )
        record.distributed["distributed_type"] = _ran_as(run.method.distributed.strategy)
        publish()
    except BaseException as exc:
        (folder / f"error-rank{state.process_index}.txt").write_text(
            "".join(traceback.format_exception(exc)), encoding="utf-8"
        )
        raise


EXPECTED_TYPE = {
    "ddp": ("MULTI_GPU", "MULTI_CPU"),
    "zero2": ("DEEPSPEED",),
    "zero3": ("DEEPSPEED",),
    "fsdp": ("FSDP",),
}


def _ran_as(strategy: str) -> str:
    """How accelerate actually ran the training. A strategy that accelerate quietly turned into
    another (e.g. FSDP as plain DDP) is an error, never a record of the wrong strategy."""
    from accelerate.state import AcceleratorState

    ran = str(AcceleratorState().distributed_type).split(".")[-1]
    if ran not in EXPECTED_TYPE[strategy]:
        raise DistributedRunError(
            f"method.distributed.strategy={strategy} was asked, but accelerate trained as {ran}: "
            "check the accelerate/DeepSpeed versions against requirements/cuda.txt"
        )
    return ran


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
