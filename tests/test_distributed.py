"""One run over several processes (method.distributed), through `accelerate launch`.

On this CPU machine the multi-process path is DDP over gloo, which runs the same launcher,
worker and method code a multi-GPU run does; ZeRO and FSDP are checked as far as their
config files, by DeepSpeed's and accelerate's own parsers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from accelerate.commands.config.config_args import load_config_from_file

from semillero.config.compose import compose, run_dir, run_hash, validate
from semillero.distributed import check, write_configs
from semillero.errors import ConfigError, SemilleroError
from semillero.methods.clm import LOSS_FILE
from semillero.records import RunRecord, read_record
from semillero.trainer_args import training_arguments
from tests.helpers.runs import cheap, run_tiny

NO_DROPOUT = [  # dropout masks differ with the batch split; without it the math is the same
    "+model.twin.config.resid_pdrop=0.0",
    "+model.twin.config.embd_pdrop=0.0",
    "+model.twin.config.attn_pdrop=0.0",
]
STEPS = ["trainer.max_steps=4", "trainer.logging_steps=1", "dataset.max_train_samples=32"]


def losses(history: list[dict[str, float]]) -> list[float]:
    return [h["loss"] for h in history if "loss" in h]


def test_ddp_over_two_cpu_processes_matches_one_process_with_the_same_global_batch() -> None:
    single = run_tiny(*NO_DROPOUT, *STEPS, "trainer.per_device_train_batch_size=4")
    ddp = run_tiny(
        *NO_DROPOUT,
        *STEPS,
        "trainer.per_device_train_batch_size=2",
        "method.distributed.strategy=ddp",
        "method.distributed.processes=2",
        "tracker=wandb",
    )
    assert ddp.status == "done"
    # One W&B run, started by rank 0 (offline in tests).
    assert ddp.wandb["mode"] == "offline"
    assert len(list(Path(ddp.wandb["dir"]).parent.glob("offline-run-*"))) == 1
    assert single.distributed == {"strategy": "single", "processes": 1}
    spread = ddp.distributed
    assert (spread["strategy"], spread["processes"], spread["backend"]) == ("ddp", 2, "gloo")
    assert spread["distributed_type"] == "MULTI_CPU"
    assert spread["global_batch"] == 4
    assert Path(spread["files"]["accelerate"]).is_file()
    # Rank 0 recorded the same things a single-process run records.
    assert ddp.model["source"] == single.model["source"]
    assert ddp.samples and "load_model" in ddp.timings and "launch" in ddp.timings
    assert len(losses(ddp.history)) == len(losses(single.history)) == 4
    torch.testing.assert_close(losses(ddp.history), losses(single.history), rtol=1e-4, atol=0)
    torch.testing.assert_close(
        ddp.metrics["eval_loss"], single.metrics["eval_loss"], rtol=1e-4, atol=0
    )
    # Both saw the same examples: 4 steps x global batch 4 of 64 tokens.
    assert ddp.metrics["train_tokens"] == single.metrics["train_tokens"]


def test_a_distributed_run_resumes_from_its_checkpoint_on_every_process() -> None:
    """The skip/resume path of a re-run, as after a kill or a Slurm requeue: the last
    checkpoint is taken up by both processes, and the run ends as an uninterrupted one."""
    overrides = [
        *NO_DROPOUT,
        *STEPS,
        "trainer.per_device_train_batch_size=2",
        "trainer.save_strategy=steps",
        "trainer.save_steps=2",
        "method.distributed.strategy=ddp",
        "method.distributed.processes=2",
    ]
    whole = run_tiny(*overrides)
    folder = run_dir(validate(compose(cheap(*overrides))))
    # As if killed after step 3: the checkpoint of step 4 was never written.
    for path in sorted((folder / "trainer" / "checkpoint-4").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (folder / "trainer" / "checkpoint-4").rmdir()
    whole.model_copy(update={"status": "failed"}).write(folder)
    resumed = run_tiny(*overrides)
    assert (resumed.status, resumed.attempt) == ("done", 2)
    assert resumed.resumed_from == str(folder / "trainer" / "checkpoint-2")
    assert resumed.distributed["processes"] == 2
    torch.testing.assert_close(
        resumed.metrics["train_loss"], whole.metrics["train_loss"], rtol=1e-5, atol=0
    )
    torch.testing.assert_close(
        resumed.metrics["eval_loss"], whole.metrics["eval_loss"], rtol=1e-5, atol=0
    )


def test_a_failing_process_fails_the_run_with_its_rank_and_traceback() -> None:
    """A run left with a checkpoint that holds no weights: the runner resumes from it, and
    the launched processes fail when Trainer cannot load it."""
    overrides = ["method.distributed.strategy=ddp", "method.distributed.processes=2"]
    run = validate(compose(cheap(*overrides)))
    folder = run_dir(run)
    RunRecord(
        run_name=folder.name,
        config_hash=run_hash(run),
        study=run.study,
        scale=run.scale,
        seed=run.seed,
        config={},
        status="failed",
    ).write(folder)
    checkpoint = folder / "trainer" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text('{"log_history": []}')
    (checkpoint / LOSS_FILE).write_text('{"step": 2, "sum": 0.0}')
    with pytest.raises(SemilleroError, match=r"2 process\(es\) failed; rank[01]: "):
        run_tiny(*overrides)
    record = read_record(folder / "record.json")
    assert (record.status, record.attempt, record.resumed_from) == ("failed", 2, str(checkpoint))
    assert "checkpoint" in (record.error or "")
    assert {p.name for p in (folder / "distributed").glob("error-rank*.txt")} == {
        "error-rank0.txt",
        "error-rank1.txt",
    }


def test_a_typo_in_the_recipe_fails_before_the_run_starts() -> None:
    with pytest.raises(
        ConfigError, match=r"trainer.optim='adamw_torhc'.*Did you mean 'adamw_torch'"
    ):
        run_tiny("trainer.optim=adamw_torhc")
    assert not list(Path(validate(compose(["scale=tiny"])).paths.output_dir).rglob("record.json"))


@pytest.mark.parametrize("strategy", ["zero2", "zero3"])
def test_the_deepspeed_config_passes_deepspeeds_own_parsing(strategy: str, tmp_path: Path) -> None:
    from deepspeed.runtime.config import DeepSpeedConfig
    from transformers import GPT2Config, GPT2LMHeadModel

    run = validate(
        compose(
            [
                f"method.distributed.strategy={strategy}",
                "method.distributed.processes=2",
                "trainer.per_device_train_batch_size=4",
                "trainer.gradient_accumulation_steps=2",
                "trainer.max_grad_norm=0.5",
            ]
        )
    )
    files = write_configs(run, tmp_path, 2)
    assert set(files) == {"accelerate", "deepspeed"}
    # transformers fills the "auto" values from our trainer config, as Trainer does ...
    args = training_arguments(run, tmp_path / "trainer", [])
    assert args.deepspeed == files["deepspeed"]
    hf = args.hf_deepspeed_config
    hf.trainer_config_finalize(
        args, GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2)), 100
    )
    # ... and DeepSpeed parses the result (world size 1 here: no process group).
    ds = DeepSpeedConfig(hf.config)
    assert ds.zero_optimization_stage == int(strategy[-1])
    assert (ds.train_micro_batch_size_per_gpu, ds.gradient_accumulation_steps) == (4, 2)
    assert ds.train_batch_size == 8
    assert ds.gradient_clipping == 0.5
    launcher = load_config_from_file(files["accelerate"])
    assert launcher.distributed_type.value == "DEEPSPEED"
    assert launcher.num_processes == 2
    assert launcher.deepspeed_config["deepspeed_config_file"] == files["deepspeed"]


def test_deepspeed_rejects_what_it_cannot_run(tmp_path: Path) -> None:
    """The parse above is a real check: DeepSpeed refuses an inconsistent batch."""
    from deepspeed.runtime.config import DeepSpeedConfig

    bad = {"train_batch_size": 7, "train_micro_batch_size_per_gpu": 2}
    bad |= {"gradient_accumulation_steps": 2, "zero_optimization": {"stage": 2}}
    with pytest.raises(AssertionError, match="Check batch related parameters"):
        DeepSpeedConfig(bad)


def test_fsdp_and_ddp_launch_files(tmp_path: Path) -> None:
    fsdp = validate(compose(["method.distributed.strategy=fsdp", "trainer.bf16=true"]))
    files = write_configs(fsdp, tmp_path / "fsdp", 4)
    launcher = load_config_from_file(files["accelerate"])
    assert (launcher.distributed_type.value, launcher.num_processes) == ("FSDP", 4)
    assert launcher.fsdp_config["fsdp_version"] == 2
    args = training_arguments(fsdp, tmp_path / "fsdp" / "trainer", [])
    assert args.fsdp_plugin_args["fsdp_version"] == 2
    assert args.fsdp_plugin_args["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"

    ddp = validate(
        compose(["method.distributed.strategy=ddp", "method.distributed.main_port=29555"])
    )
    files = write_configs(ddp, tmp_path / "ddp", 2)
    launcher = load_config_from_file(files["accelerate"])
    assert (launcher.distributed_type.value, launcher.main_process_port) == ("MULTI_GPU", 29555)
    assert "deepspeed" not in files


def test_a_single_process_run_keeps_its_name() -> None:
    """Runs recorded before method.distributed existed are found again: the default block
    is left out of the hash (and the port never counts)."""
    default = run_hash(validate(compose([])))
    assert run_hash(validate(compose(["method.distributed.main_port=3000"]))) == default
    assert run_hash(validate(compose(["method.distributed.strategy=ddp"]))) != default


@pytest.mark.parametrize(
    ("overrides", "gpus", "message"),
    [
        (["method.distributed.strategy=ddp"], 0, "processes=auto counts the visible GPUs"),
        (
            ["method.distributed.strategy=zero2", "method.distributed.processes=2"],
            0,
            "none is visible",
        ),
        (["method.distributed.strategy=fsdp", "method.distributed.processes=2"], 0, "strategy=ddp"),
        (
            ["method.distributed.strategy=ddp", "method.distributed.processes=4"],
            2,
            "LAUNCHER=local",
        ),
        (
            ["experiment=alpaca_qlora", "method.distributed.strategy=fsdp"],
            2,
            "sharding 4-bit weights",
        ),
    ],
)
def test_impossible_spreads_are_refused_before_anything_loads(
    overrides: list[str], gpus: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check(validate(compose(overrides)), gpus)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method.distributed.processes=2"], "pick how the processes share the model"),
        (["method.distributed.strategy=ddp", "method.distributed.offload=true"], "offload needs"),
        (
            ["experiment=report_extraction", "method.distributed.strategy=ddp"],
            "method.extra.deepspeed",
        ),
    ],
)
def test_inconsistent_distributed_settings_are_config_errors(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(compose(overrides))


def processes_reading(path: Path) -> list[int]:
    """Live processes whose command line names `path` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(path).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_kill_stops_every_launched_process_and_marks_the_run_interrupted(
    sig: str,
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    overrides = [
        *cheap("method.distributed.strategy=ddp", "method.distributed.processes=2"),
        "trainer.max_steps=100000",  # runs until it is stopped
        "dataset.max_train_samples=1000",
    ]
    folder = run_dir(validate(compose(overrides)))
    parent = subprocess.Popen(
        [sys.executable, "-m", "semillero.cli", "train", *overrides],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ranked = folder / "distributed" / "record.json"  # rank 0 writes it once the model is built
    deadline = time.monotonic() + 120
    while not ranked.is_file():
        assert parent.poll() is None, "the run ended before its processes started"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    payload = folder / "distributed" / "payload.json"
    assert processes_reading(payload), "the launched processes are not running"
    parent.send_signal(getattr(signal, sig))  # to the runner only: it has its own session
    assert parent.wait(timeout=90) != 0
    record = read_record(folder / "record.json")
    assert record.status == "interrupted"
    assert record.model["source"].startswith("twin:")  # what rank 0 had recorded is kept
    deadline = time.monotonic() + 10
    while processes_reading(payload) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_reading(payload)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"
