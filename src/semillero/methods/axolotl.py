"""Method `axolotl`: Axolotl trains, in its own venv; we render, check, read back and score.

1. The run's splits are written as JSONL, and Axolotl's YAML is rendered from the composed
   config (semillero.axolotl.render), with the key -> setting map kept for errors.
2. The YAML is checked with Axolotl's own schema in its venv, plus our checks (unknown and
   deprecated keys, dataset types, 4-bit without qlora); problems name our settings.
3. `axolotl train` runs there; its Trainer log comes back through a small Axolotl plugin
   (semillero_log.jsonl), and its adapter from its output_dir. A killed run resumes from
   Axolotl's last checkpoint (auto_resume_from_checkpoints).
4. The held-out split is answered greedily by the base model prompted with the same
   instruction and by the base + Axolotl's adapter, and both are scored as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, GenerationConfig

from semillero.axolotl import env as axolotl_env
from semillero.axolotl.check import already_checked, check_yamls, raise_if_any
from semillero.axolotl.render import AxolotlPaths, Rendered, render
from semillero.config.axolotl import AxolotlMethodConfig
from semillero.config.schema import DatasetConfig, RunConfig
from semillero.data.examples import load_source
from semillero.errors import SemilleroError
from semillero.evaluation.extraction import KEYS, score
from semillero.evaluation.generate import complete
from semillero.methods import Job, Outcome, timed

LOG_FILE = "semillero_log.jsonl"  # written by plugin/semillero_axolotl.py
PLUGIN = "semillero_axolotl.LogPlugin"
SAMPLES = 3  # fine-tuned answers kept in the record, with their reports


def paths_for(run: RunConfig, folder: Path, base: str | None) -> AxolotlPaths:
    """Where the run's Axolotl files live; the base is the twin's folder at scale=tiny."""
    if run.scale == "tiny":
        assert base is not None, "a tiny twin is saved to the run's folder first"
        model, source = str(Path(base).resolve()), "model (its tiny twin, in the run's folder)"
    elif run.model.path:
        model, source = str(Path(run.model.path).expanduser().resolve()), "model.path"
    else:
        model, source = run.model.hub_id, "model.hub_id"
    work = folder / "axolotl"
    return AxolotlPaths(
        base_model=model,
        base_model_source=source,
        train=work / "data" / "train.jsonl",
        validation=work / "data" / "validation.jsonl",
        prepared=work / "prepared",
        output=work / "output",
    )


def rendered_config(run: RunConfig, paths: AxolotlPaths, cuda: bool) -> Rendered:
    """The run's YAML plus what only this method adds: checkpoints (resume, and the final
    state), and the plugin that logs the Trainer's history for us."""
    out = render(run, paths, cuda)
    t = run.trainer
    out.set("save_strategy", "steps", "method axolotl: checkpoints make a killed run resumable")
    out.set("save_steps", t.save_steps, "trainer.save_steps")
    out.set("save_total_limit", t.save_total_limit or 1, "trainer.save_total_limit")
    out.set("auto_resume_from_checkpoints", True, "method axolotl: resume a killed run")
    out.set("plugins", [PLUGIN], "method axolotl: the Trainer log, read back into the record")
    return out


def run(job: Job) -> Outcome:
    run_cfg, folder = job.run, job.folder.resolve()  # Axolotl runs in its own working dir
    method = run_cfg.method
    assert isinstance(method, AxolotlMethodConfig)
    env = axolotl_env.find_env(method.env)
    base = job.loaded.base
    if run_cfg.scale == "tiny" and base is None:  # a twin without an adapter is not on disk yet
        base = str(folder / "twin")
        job.loaded.model.save_pretrained(base)
        job.loaded.tokenizer.save_pretrained(base)
    paths = paths_for(run_cfg, folder, base)
    with timed(job.timings, "format"):
        paths.train.parent.mkdir(parents=True, exist_ok=True)
        job.splits["train"].to_json(str(paths.train), lines=True, force_ascii=False)
        job.splits["test"].to_json(str(paths.validation), lines=True, force_ascii=False)
        rendered = rendered_config(run_cfg, paths, torch.cuda.is_available())
        yaml_path = rendered.write(folder / "axolotl.yaml")
    if not already_checked(yaml_path):  # `semillero sweep` checks its whole grid first
        with timed(job.timings, "check"):
            raise_if_any(check_yamls([yaml_path], [rendered.source], env))
    with timed(job.timings, "train"):
        axolotl_env.train(env, yaml_path, folder / "axolotl.log", offline=run_cfg.scale == "tiny")
    history = read_log(paths.output / LOG_FILE)
    job.tracker.replay(history)
    moved = adapter_change(paths.output) if run_cfg.adapter.type != "none" else None
    with timed(job.timings, "eval"):
        rows, scores, samples = evaluate(job, env, paths)
    for row in rows:
        job.tracker.log_summary({f"{row['model']}/{k}": v for k, v in row.items() if k != "model"})
    job.tracker.log_table("extraction", rows)
    extra = {} if moved is None else {"adapter_lora_b_max_abs": moved}
    return Outcome(
        metrics=train_metrics(history) | scores | extra,
        history=history,
        samples=samples,
        tables={"extraction": rows},
        artifacts={
            "adapter": str(paths.output),
            "axolotl_yaml": str(yaml_path),
            "axolotl_log": str(folder / "axolotl.log"),
        },
    )


def adapter_change(output: Path) -> float:
    """The largest |lora_B| of the saved adapter. LoRA starts with B = 0, so 0 means training
    left the adapter where it started; that is said loudly, never silently."""
    from safetensors.torch import load_file

    weights = output / "adapter_model.safetensors"
    if not weights.is_file():
        raise SemilleroError(f"axolotl train finished but wrote no adapter in {output}")
    b = [t.abs().max().item() for name, t in load_file(str(weights)).items() if "lora_B" in name]
    moved = max(b, default=0.0)
    if moved == 0.0:
        print(
            f"[semillero] WARNING: the adapter in {output} is unchanged by training (every "
            "lora_B is still 0): its scores are the base model's",
            flush=True,
        )
    return moved


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise SemilleroError(
            f"Axolotl left no Trainer log at {path}: was the plugin {PLUGIN} loaded? "
            "(see axolotl.log in the run's folder)"
        )
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def train_metrics(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The final summary Axolotl's Trainer logged, and its last eval loss."""
    summary = next((h for h in reversed(history) if "train_loss" in h), None)
    if summary is None:
        raise SemilleroError("Axolotl's Trainer log has no final summary: did training finish?")
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    return {
        "train_loss": summary["train_loss"],
        "final_train_loss": losses[-1] if losses else summary["train_loss"],
        "train_runtime": summary["train_runtime"],
        "train_steps": summary["step"],
        **({"eval_loss": evals[-1]} if evals else {}),
    }


def evaluate(
    job: Job, env: Path, paths: AxolotlPaths
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """Both rows of the extraction table: the base prompted, and the fine-tuned model."""
    from semillero.data.synth_reports import check_output, load_spec

    run_cfg = job.run
    method = run_cfg.method
    assert isinstance(method, AxolotlMethodConfig) and isinstance(run_cfg.dataset, DatasetConfig)
    settings = method.evaluation
    held, _ = load_source(
        run_cfg.dataset.model_copy(update={"source_split": settings.split}),
        "axolotl",
        run_cfg.scale,
    )
    if settings.max_examples:
        held = held.select(range(min(settings.max_examples, len(held))))
    rows_file = paths.output.parent / "data" / f"{settings.split}.jsonl"
    held.to_json(str(rows_file), lines=True, force_ascii=False)
    prompts = axolotl_env.prompts(env, method.format, rows_file)
    references = [json.loads(text) for text in held["output"]]
    spec = load_spec(
        settings.spec or (run_cfg.dataset.synth.spec if run_cfg.dataset.synth else None)
    )
    fields = {name: f.type for name, f in spec.fields.items()}
    blockers = [f for f in spec.fields.values() if f.type == "blockers"]
    keys = (blockers[0].id_key, blockers[0].delay_key) if blockers else KEYS
    greedy = GenerationConfig(do_sample=False, max_new_tokens=settings.max_new_tokens)

    def answer(model: Any) -> list[str]:
        return complete(
            model, job.loaded.tokenizer, list(prompts), greedy, run_cfg.seed, settings.batch_size
        )

    def check(obj: Any) -> list[str]:
        return check_output(obj, spec)

    base_answers = answer(job.loaded.model)
    tuned: Any
    if run_cfg.adapter.type == "none":  # Axolotl saved the whole fine-tuned model
        tuned = AutoModelForCausalLM.from_pretrained(str(paths.output))
    else:
        tuned = PeftModel.from_pretrained(job.loaded.model, str(paths.output))
    tuned_answers = answer(tuned)
    base_scores = score(base_answers, references, fields, check, keys)
    tuned_scores = score(tuned_answers, references, fields, check, keys)
    rows = [
        {"model": "base, prompted", **base_scores},
        {"model": "fine-tuned (Axolotl)", **tuned_scores},
    ]
    scores = tuned_scores | {f"base_{k}": v for k, v in base_scores.items()}
    scores["eval_examples"] = len(references)
    samples = [
        f"{out.strip()}\n<- {inp}"
        for inp, out in zip(held["input"][:SAMPLES], tuned_answers[:SAMPLES], strict=False)
    ]
    return rows, scores, samples
