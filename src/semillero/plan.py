"""`semillero plan`: validate and list every run of a study before it spends GPU time.

Composing, validating and checking paths catches most typos; the trainer settings are then
checked by building the method's TrainingArguments (semillero.checks), which imports
transformers once. Nothing loads weights or data.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass

from semillero.checks import check_lengths, check_recipe
from semillero.config.compose import compose, expand_grid, run_dir, validate
from semillero.config.schema import CorpusConfig, DatasetConfig, RunConfig
from semillero.data.source import check_source, resolve_source
from semillero.errors import SemilleroError
from semillero.memory import estimate_gib, visible_device
from semillero.models.source import model_source
from semillero.records import RECORD, read_record


@dataclass
class GridPoint:
    overrides: list[str]
    run: RunConfig | None = None
    error: str | None = None
    memory_gib: float | None = None  # estimated peak training memory

    @property
    def status(self) -> str:
        if self.run is None:
            return "invalid"
        status = run_status(self.run)
        if status in (None, "done"):
            return status or "new"
        from semillero.runner import last_complete_checkpoint

        if last_complete_checkpoint(run_dir(self.run) / "trainer") is None:
            return f"{status}; no checkpoint: starts over"
        return f"resumable ({status})"


def run_status(run: RunConfig) -> str | None:
    """The status in a run's record, or None when it has none yet."""
    path = run_dir(run) / RECORD
    return read_record(path).status if path.is_file() else None


def preflight(run: RunConfig) -> None:
    """Checks that need no data and no weights: local paths exist, the lengths fit the
    model, transformers/TRL accept the trainer settings, sources resolve, the libraries the
    run needs are installed."""
    model_source(run.model, run.scale)
    check_lengths(run)
    check_recipe(run)
    for source in data_sources(run):
        check_source(source, resolve_source(source, run.scale))
    quantised = run.adapter.quantization is not None or run.model.prequantized
    if quantised and importlib.util.find_spec("bitsandbytes") is None:
        raise SemilleroError(
            f"adapter={run.adapter.name} (model {run.model.name}) loads the base in 4-bit with "
            "bitsandbytes, which is not installed: pip install -e '.[quant]' (the Docker image "
            "has it), or use adapter=lora"
        )
    if run.model.attn_implementation == "flash_attention_2":
        if visible_device()[0] == "cpu RAM":
            raise SemilleroError(
                "model.attn_implementation=flash_attention_2 needs a CUDA GPU (and the "
                "flash-attn package, which the Docker image has): use sdpa here, or run on a GPU"
            )
        if importlib.util.find_spec("flash_attn") is None:
            raise SemilleroError(
                "model.attn_implementation=flash_attention_2 needs the flash-attn package, "
                "which is not installed: use the Docker image (make docker-build), or "
                "model.attn_implementation=sdpa"
            )
    if run.method.distributed.strategy != "single":
        from semillero.distributed import check, visible_gpu_count

        check(run, visible_gpu_count())
    if run.method.name == "axolotl":
        from semillero.axolotl.env import find_env

        find_env(getattr(run.method, "env", None))  # names `make setup-axolotl` when missing
    if getattr(run.method, "use_vllm", False) and importlib.util.find_spec("vllm") is None:
        raise SemilleroError(
            "method.use_vllm=true needs vLLM, which is not in this stack: every vLLM that TRL "
            "1.16 accepts (<=0.31) pins transformers<5.18 and numpy<2.4, and ours is transformers "
            "5.23 (docker/README.md). Set method.use_vllm=false: generation then uses "
            "transformers' generate"
        )


def data_sources(run: RunConfig) -> list[DatasetConfig]:
    """Every data source a run reads: its data set or corpus members, and the shared split."""
    sources = (
        list(run.dataset.sources.values())
        if isinstance(run.dataset, CorpusConfig)
        else [run.dataset]
    )
    return sources + ([run.shared_eval.source] if run.shared_eval else [])


def plan_grid(overrides: Sequence[str]) -> list[GridPoint]:
    """Composes and validates every grid point; errors are kept, not raised."""
    device, device_gib = visible_device()
    points = []
    for point in expand_grid(overrides):
        try:
            run = validate(compose(point))
            preflight(run)
        except SemilleroError as exc:
            points.append(GridPoint(point, error=str(exc)))
            continue
        need = estimate_gib(run)
        if need is not None and need > device_gib:
            error = (
                f"needs about {need:.1f} GiB to train ({run.model.name}, batch "
                f"{run.trainer.per_device_train_batch_size}), more than the {device_gib:.1f} "
                f"GiB of {device}: lower trainer.per_device_train_batch_size, set "
                "trainer.activation_checkpointing=true, or use a larger GPU"
            )
            points.append(GridPoint(point, error=error, memory_gib=need))
        else:
            points.append(GridPoint(point, run, memory_gib=need))
    return points


def train_steps(run: RunConfig) -> int | None:
    """Optimizer steps of a run, when its training rows are known without loading data."""
    t, d = run.trainer, run.dataset
    if t.max_steps > 0:
        return t.max_steps
    rows = d.max_train_samples
    if isinstance(d, DatasetConfig) and d.rows and run.scale == "full":  # rows: the real data
        held_out = math.ceil(d.rows * d.test_size)
        rows = min(rows or d.rows, d.rows - held_out)
    if rows is None:
        return None
    per_epoch = math.ceil(rows / t.per_device_train_batch_size / t.gradient_accumulation_steps)
    return math.ceil(per_epoch * t.num_train_epochs)


def describe(points: list[GridPoint]) -> str:
    """One block per run: what it trains, on which data, with which recipe."""
    blocks = []
    for i, p in enumerate(points, 1):
        if p.run is None:
            blocks.append(f"#{i} INVALID  {' '.join(p.overrides)}\n   error    {p.error}")
            continue
        r = p.run
        lines = [
            f"#{i} {run_dir(r).name}  [{p.status}]",
            f"   model    {_model(r)}",
            f"   data     {_data(r)}",
            f"   method   {_method(r)}",
            f"   trainer  {_trainer(r)}",
        ]
        steps = train_steps(r)
        memory = f"~{p.memory_gib:.1f} GiB to train" if p.memory_gib else "memory: n/a (tiny)"
        lines.append(f"   budget   {steps if steps else '?'} steps; {memory}")
        spread = r.method.distributed
        if spread.strategy != "single":
            t = r.trainer
            per_process = t.per_device_train_batch_size * t.gradient_accumulation_steps
            count = "one per visible GPU" if spread.processes == "auto" else spread.processes
            lines.append(
                f"   spread   {spread.strategy} x {count} processes (accelerate launch); global "
                f"batch = {per_process} x processes"
            )
        if r.model_from:
            lines.append(f"   from     {r.model_from}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _model(r: RunConfig) -> str:
    m = r.model
    size = f"{m.facts.parameters_m}M" if m.facts.parameters_m else "size unknown"
    where = f"twin of {m.hub_id}" if r.scale == "tiny" else m.path or m.hub_id
    return f"{where} ({m.architecture}, {size})"


def _source(d: DatasetConfig, scale: str) -> str:
    if d.synth is not None:
        sizes = d.synth.tiny_sizes if scale == "tiny" else d.synth.sizes
        return f"{d.name} generated ({d.synth.generator}, seed {d.synth.seed}, {sizes})"
    if scale == "tiny":
        return f"{d.name} fixture [{d.fixture_split or d.source_split}]"
    where = d.path or " ".join(x for x in (d.hub_id, d.config_name) if x)
    if not d.path and d.revision:
        where += f"@{d.revision}"
    return f"{where} [{d.source_split}]"


def _data(r: RunConfig) -> str:
    d = r.dataset
    if isinstance(d, CorpusConfig):
        parts = " + ".join(_source(s, r.scale) for s in d.sources.values())
        text = f"{d.name} ({d.mixing}): {parts}"
    else:
        text = _source(d, r.scale)
    eval_split = d.eval_split if isinstance(d, DatasetConfig) else None
    held = (
        f"held-out split {eval_split!r}"
        if eval_split
        else f"split {1 - d.test_size:.0%}/{d.test_size:.0%}"
    )
    text += (
        f", {held}, first "
        f"{d.max_train_samples or 'all'} train / {d.max_eval_samples or 'all'} eval rows"
    )
    if r.shared_eval:
        text += f"; shared held-out: {r.shared_eval.source.name} {r.shared_eval.test_size:.0%}"
    return text


def _method(r: RunConfig) -> str:
    m, a = r.method, r.adapter
    if m.name == "clm":
        text = f"clm, {m.max_length} tokens, padding {m.padding}"
    elif m.name == "sft":
        loss = "completion-only loss" if m.completion_only_loss else "loss on all tokens"
        text = f"sft, format {m.format}, {m.max_length} tokens, {loss}" + (
            ", packing" if m.packing else ""
        )
    elif m.name == "axolotl":
        text = (
            f"axolotl train (its venv), type {m.format}, {m.sequence_len} tokens"
            + (", packing" if m.sample_packing else "")
            + (", loss on inputs too" if m.train_on_inputs else "")
        )
    else:
        text = (
            f"grpo, {m.num_generations} generations, rewards {', '.join(m.rewards)}, "
            f"prompt <= {m.max_prompt_length}, completion <= {m.max_completion_length}"
            + (f", vLLM {m.vllm_mode}" if m.use_vllm else "")
        )
    if a.type == "none":
        return text + "; every weight trained"
    targets = a.target_modules if isinstance(a.target_modules, str) else ",".join(a.target_modules)
    kind = "QLoRA (4-bit NF4 base)" if a.quantization else "LoRA"
    return text + f"; {kind} r={a.r} alpha={a.alpha} dropout={a.dropout:g} on {targets}"


def _trainer(r: RunConfig) -> str:
    t = r.trainer
    epochs = f"{t.num_train_epochs:g} epoch{'' if t.num_train_epochs == 1 else 's'}"
    length = f"{t.max_steps} steps" if t.max_steps > 0 else epochs
    text = (
        f"{length}, batch {t.per_device_train_batch_size}x{t.gradient_accumulation_steps}, "
        f"lr={t.learning_rate:g}, wd {t.weight_decay:g}, warmup {t.warmup_steps}, "
        f"{'bf16' if t.bf16 else 'fp16' if t.fp16 else 'fp32'}"
    )
    if t.eval_strategy != "no":
        text += (
            f", eval every {t.eval_steps or 1} {'steps' if t.eval_strategy == 'steps' else 'epoch'}"
        )
    if t.save_strategy != "no":
        text += f", save every {t.save_steps} (keep {t.save_total_limit or 'all'})"
    if t.load_best_model_at_end:
        text += f", best by {t.metric_for_best_model or 'eval_loss'} at end"
    return text
