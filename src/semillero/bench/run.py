"""Runs the benchmark's cases and variants; each variant is one short training run."""

from __future__ import annotations

import gc
import itertools
import json
import logging
import math
import shutil
import statistics
import time
import traceback
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import TrainerCallback, set_seed

from semillero.bench import BenchConfig, CaseConfig, Lengths
from semillero.bench.flops import (
    attention_widths,
    count_parameters,
    flops_per_token,
    mfu,
    peak_flops,
)
from semillero.config.compose import compose, validate
from semillero.config.schema import RunConfig
from semillero.models.adapter import attach_adapter
from semillero.models.loader import LoadedModel, load_model
from semillero.trainer_args import resolve_precision

log = logging.getLogger(__name__)
GIB = 1024**3
FIRST_ID = 16  # synthetic ids start past the twin tokenizer's special tokens


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepClock(TrainerCallback):
    """Times every optimizer step (CUDA synchronised) and the generation inside it, and
    resets the peak-memory counter when the measured steps begin."""

    def __init__(self, warmup: int, measure: int, profile: bool = False) -> None:
        self.warmup, self.measure = warmup, measure
        self.profile_step = warmup + measure if profile else None  # one more step, profiled
        self.steps: list[dict[str, float]] = []
        self.generation_total = 0.0
        self.lengths: list[float] = []  # attended length of each measured micro-batch
        self.profile: list[dict[str, Any]] = []  # the profiled step's costliest operators
        self._profiler: Any = None
        self._start = self._generation_at_start = 0.0

    @property
    def measuring(self) -> bool:
        return self.warmup <= len(self.steps) < self.warmup + self.measure

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        if len(self.steps) == self.warmup and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if len(self.steps) == self.profile_step:
            from torch.profiler import ProfilerActivity, profile

            kinds = [ProfilerActivity.CPU]
            kinds += [ProfilerActivity.CUDA] if torch.cuda.is_available() else []
            self._profiler = profile(activities=kinds)
            self._profiler.__enter__()
        self._start = time.perf_counter()
        self._generation_at_start = self.generation_total

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _sync()
        if self._profiler is not None:
            self._profiler.__exit__(None, None, None)
            self.profile = top_operators(self._profiler, time.perf_counter() - self._start)
            self._profiler = None
        self.steps.append(
            {
                "seconds": time.perf_counter() - self._start,
                "tokens_seen": float(state.num_input_tokens_seen),
                "generation_seconds": self.generation_total - self._generation_at_start,
            }
        )

    def timed_generate(self, generate: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _sync()
            start = time.perf_counter()
            try:
                return generate(*args, **kwargs)
            finally:
                _sync()
                self.generation_total += time.perf_counter() - start

        return wrapper

    def shape_recorder(self, training_step: Any) -> Any:
        def wrapper(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            if self.measuring and isinstance(inputs, dict) and "input_ids" in inputs:
                self.lengths.append(attended_length(inputs))
            return training_step(model, inputs, *args, **kwargs)

        return wrapper


def top_operators(profiler: Any, step_seconds: float, rows: int = 12) -> list[dict[str, Any]]:
    """The profiled step's operators by their own (self) device time, or CPU time without
    CUDA: where a step's time goes, when a target is missed."""
    device = torch.cuda.is_available()
    key = "self_device_time_total" if device else "self_cpu_time_total"
    events = sorted(profiler.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    total_us = step_seconds * 1e6
    return [
        {
            "operator": e.key,
            "self_ms": round(getattr(e, key) / 1000, 3),
            "share_of_step": round(getattr(e, key) / total_us, 4) if total_us else None,
            "calls": e.count,
        }
        for e in events[:rows]
    ]


def attended_length(inputs: dict[str, Any]) -> float:
    """The T of the attention term for one micro-batch: the row length when rows are padded
    or packed into blocks (every position attends over the row), and Σl²/Σl over the
    documents of a padding-free row (TRL's packing: each document attends over itself)."""
    ids, positions = inputs["input_ids"], inputs.get("position_ids")
    if positions is None or ids.shape[0] != 1:
        return float(ids.shape[-1])
    starts = [*(positions[0] == 0).nonzero().flatten().tolist(), int(positions.shape[-1])]
    docs = [b - a for a, b in itertools.pairwise(starts) if b > a]
    return sum(d * d for d in docs) / max(sum(docs), 1)


def synthetic_lengths(lengths: Lengths, rows: int, rng: np.random.Generator) -> list[int]:
    raw = rng.lognormal(mean=math.log(lengths.median), sigma=lengths.sigma, size=rows)
    return [int(x) for x in np.clip(raw, lengths.min, lengths.max)]


def synthetic_ids(n: int, vocab: int, rng: np.random.Generator) -> list[int]:
    return rng.integers(FIRST_ID, vocab, size=n).tolist()


def shape_override(shape: dict[str, object]) -> str:
    return (
        "model.twin.config={" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in shape.items()) + "}"
    )


def variant_overrides(
    bench: BenchConfig, name: str, case: CaseConfig, variant: list[str]
) -> list[str]:
    steps = _steps(bench, case)
    fixed = [
        "scale=tiny",  # the twin path, at the shape below: random weights, no download
        "tracker=none",
        f"seed={bench.seed}",
        f"trainer.max_steps={sum(steps) + (1 if bench.profile else 0)}",
        "trainer.eval_strategy=no",
        "trainer.save_strategy=no",
        "trainer.load_best_model_at_end=false",
        "trainer.logging_steps=1",
    ]
    if bench.scale == "full":
        shape = [shape_override(case.shape), f"+model.twin.embedding_rows={case.vocab}"]
        return [*case.run, *fixed, *variant, *shape]
    tiny = bench.tiny.grpo_overrides if name == "grpo" else bench.tiny.overrides
    return [*case.run, *fixed, *variant, *tiny]


def _steps(bench: BenchConfig, case: CaseConfig) -> tuple[int, int]:
    if bench.scale == "tiny":
        return bench.tiny.warmup_steps, bench.tiny.measure_steps
    return case.warmup_steps, case.measure_steps


def run_case(bench: BenchConfig, name: str, work: Path) -> list[dict[str, Any]]:
    """Every variant of one case; a variant that fails is reported, and the rest still run."""
    case: CaseConfig = getattr(bench, name)
    results = []
    for variant, overrides in case.variants.items():
        entry: dict[str, Any] = {"case": name, "variant": variant}
        if variant in case.cuda_only and not torch.cuda.is_available():
            results.append(entry | {"skipped": "needs CUDA"})
            print(f"[bench] {name}/{variant}: skipped (needs CUDA)", flush=True)
            continue
        print(f"[bench] {name}/{variant}: building and timing ...", flush=True)
        try:
            run = validate(compose(variant_overrides(bench, name, case, overrides)))
            entry |= measure(bench, name, case, variant, run, work / f"{name}-{variant}")
        except Exception as exc:  # one variant's OOM must not lose the others' numbers
            log.error("%s/%s failed:\n%s", name, variant, traceback.format_exc())
            entry["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            gc.collect()  # the last variant's model and optimizer, before the next one
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        results.append(entry)
        print(f"[bench] {name}/{variant}: {summary(entry)}", flush=True)
    return results


def measure(
    bench: BenchConfig, name: str, case: CaseConfig, variant: str, run: RunConfig, folder: Path
) -> dict[str, Any]:
    warmup, steps = _steps(bench, case)
    shutil.rmtree(folder, ignore_errors=True)
    set_seed(bench.seed)
    loaded = load_model(run.model, "tiny", run.paths.cache_dir, run.adapter, folder / "twin")
    loaded.model, _ = attach_adapter(  # type: ignore[assignment]
        loaded.model, run.adapter, run.model.name, run.trainer.activation_checkpointing
    )
    counts = count_parameters(loaded.model)
    rng = np.random.default_rng(bench.seed)
    rows = bench.tiny.rows if bench.scale == "tiny" else case.rows
    lengths = bench.tiny.lengths if bench.scale == "tiny" else case.lengths
    trainer = _trainer(name, run, loaded, rows, lengths, case, rng, folder / "trainer")
    if variant in case.compiled_decoding:
        trainer.generation_config.disable_compile = False  # TRL turns it off; we measure it on
    clock = StepClock(warmup, steps, profile=bench.profile)
    trainer.add_callback(clock)
    trainer.training_step = clock.shape_recorder(trainer.training_step)
    loaded.model.generate = clock.timed_generate(loaded.model.generate)
    trainer.train()
    measured = clock.steps[warmup : warmup + steps]
    if len(measured) < steps:
        raise RuntimeError(f"{len(measured)} steps measured of {steps}: too few rows")
    seconds = [s["seconds"] for s in measured]
    tokens = measured[-1]["tokens_seen"] - clock.steps[warmup - 1]["tokens_seen"]
    result: dict[str, Any] = {
        "model": f"{run.model.architecture} ({run.model.name} shape)",
        "parameters": {
            "trained": counts.trained,
            "frozen": counts.frozen,
            "embeddings": counts.embeddings,
        },
        "adapter": run.adapter.name,
        "precision": resolve_precision(run.trainer)[2],
        "batch": run.trainer.per_device_train_batch_size * run.trainer.gradient_accumulation_steps,
        "steps_measured": len(measured),
        "step_seconds": statistics.median(seconds),
        "step_seconds_all": [round(s, 4) for s in seconds],
        "peak_memory_gib": torch.cuda.max_memory_allocated() / GIB
        if torch.cuda.is_available()
        else None,
    }
    if clock.profile:
        result["profile"] = clock.profile
    if name == "grpo":
        generation = [s["generation_seconds"] for s in measured]
        result["generation_seconds"] = statistics.median(generation)
        result["training_seconds"] = statistics.median(
            s - g for s, g in zip(seconds, generation, strict=True)
        )
        lengths_logged = [
            h["completions/mean_length"]
            for h in trainer.state.log_history
            if "completions/mean_length" in h
        ]
        result["completion_tokens_mean"] = statistics.mean(lengths_logged[warmup:] or [0])
        return result
    seq = round(statistics.mean(clock.lengths)) if clock.lengths else 0
    per_token = flops_per_token(counts, attention_widths(loaded.model.config, seq))
    rate = tokens / sum(seconds) if sum(seconds) > 0 else 0.0
    result |= {
        "useful_tokens_per_second": rate,
        "sequence_length": seq,
        "flops_per_token": per_token,
    }
    peak = peak_flops(torch.cuda.get_device_name()) if torch.cuda.is_available() else None
    result["mfu"] = mfu(rate, per_token, peak)
    return result


def _trainer(
    name: str,
    run: RunConfig,
    loaded: LoadedModel,
    rows: int,
    lengths: Lengths | None,
    case: CaseConfig,
    rng: np.random.Generator,
    output_dir: Path,
) -> Any:
    vocab = len(loaded.tokenizer)  # ids the twin tokenizer can also pad, count and decode
    if name == "clm":
        from semillero.data.tokenize import layout
        from semillero.methods import clm

        assert lengths is not None and run.method.name == "clm"
        eos = [loaded.tokenizer.eos_token_id] if run.method.padding == "packing" else []
        ids = [
            synthetic_ids(n, vocab, rng)[: run.method.max_length] + eos
            for n in synthetic_lengths(lengths, rows, rng)
        ]
        tokens = datasets.DatasetDict(
            {
                split: datasets.Dataset.from_dict(
                    {"input_ids": part, "attention_mask": [[1] * len(r) for r in part]}
                )
                for split, part in (("train", ids), ("test", ids[:8]))
            }
        )
        laid = layout(tokens, loaded.tokenizer, run.method.max_length, run.method.padding)
        return clm.make_trainer(run, loaded, laid, output_dir, [])
    if name == "sft":
        from semillero.methods import sft

        assert lengths is not None
        rows_ = []
        for n in synthetic_lengths(lengths, rows, rng):
            prompt = max(1, round(n * case.prompt_share))
            rows_.append(
                {
                    "input_ids": synthetic_ids(n, vocab, rng),
                    "completion_mask": [0] * prompt + [1] * (n - prompt),
                }
            )
        data = datasets.Dataset.from_list(rows_)
        pairs = datasets.DatasetDict({"train": data, "test": data.select(range(8))})
        return sft.make_trainer(run, loaded, pairs, output_dir, [])
    from semillero.data.prepare import prepare_data
    from semillero.methods import grpo
    from semillero.rewards import resolve_reward

    assert run.method.name == "grpo"
    splits, _ = prepare_data(run)  # the study's prompts (fixture); completions dominate
    train = grpo.to_prompts(splits["train"], run.method.system_prompt)
    train = train.select(range(min(rows, len(train))))
    rewards = {r: resolve_reward(r) for r in run.method.rewards}
    return grpo.make_trainer(run, loaded, train, rewards, output_dir, [])


def summary(entry: dict[str, Any]) -> str:
    if "skipped" in entry:
        return f"skipped ({entry['skipped']})"
    if "error" in entry:
        return f"FAILED: {entry['error']}"
    if entry["case"] == "grpo":
        return (
            f"{entry['step_seconds']:.2f} s/step (generation {entry['generation_seconds']:.2f} s, "
            f"training {entry['training_seconds']:.2f} s)"
        )
    mfu_ = f", MFU {entry['mfu']:.1%}" if entry.get("mfu") is not None else ""
    return (
        f"{entry['useful_tokens_per_second']:,.0f} useful tokens/s, "
        f"{entry['step_seconds']:.3f} s/step{mfu_}"
    )


def load_config(overrides: list[str]) -> BenchConfig:
    from omegaconf import OmegaConf
    from pydantic import ValidationError

    from semillero.config.compose import explain
    from semillero.errors import ConfigError

    cfg = compose(overrides, config_name="bench")
    data = OmegaConf.to_container(cfg, resolve=True)
    try:
        return BenchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, BenchConfig)) from None


def bench(overrides: list[str]) -> int:
    """`semillero bench`: every case of conf/bench.yaml; writes JSON, markdown and PNG, and at
    full scale rebuilds bench/README.md's results."""
    from datetime import UTC, datetime

    from semillero.bench.output import update_readme, write
    from semillero.config.compose import conf_dir
    from semillero.records import device_name, git_state, stack_versions

    cfg = load_config(overrides)
    repo = conf_dir().parent
    if cfg.scale == "full" and not torch.cuda.is_available():
        from semillero.errors import SemilleroError

        raise SemilleroError(
            "semillero bench at full scale times the real shapes on a CUDA GPU, and there is "
            "none here: run it on a GPU machine (make bench), or check that it runs with "
            "make bench SCALE=tiny"
        )
    folder = Path(cfg.tiny.output_dir) if cfg.scale == "tiny" else repo / cfg.output_dir
    doc: dict[str, Any] = {
        "scale": cfg.scale,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": {
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
            "detail": device_name(),
        },
        "git": git_state(repo),
        "stack": stack_versions(),
        "config": cfg.model_dump(mode="json"),
        "results": [],
    }
    work = folder / "work"
    paths: dict[str, Path] = {}
    for name in cfg.cases:
        doc["results"] += run_case(cfg, name, work)
        paths = write(doc, folder)  # after every case: a stop keeps what finished
    shutil.rmtree(work, ignore_errors=True)
    print((paths["md"]).read_text(encoding="utf-8"))
    print(f"[bench] {paths['json']}\n[bench] {paths['md']}\n[bench] {paths['png']}")
    if cfg.scale == "full":
        shown = update_readme(folder, repo / "bench" / "README.md")
        print(f"[bench] bench/README.md: results section rebuilt from {shown} run(s)")
    failed = [r for r in doc["results"] if "error" in r]
    return 1 if failed else 0
