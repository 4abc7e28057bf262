"""Pre-flight checks of a run's lengths and training recipe: they need the model's config or
the libraries' own validation, but no weights and no data. `semillero plan`, every sweep and
every run go through them (plan.preflight) before anything is written."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from semillero.config.schema import RunConfig
from semillero.errors import ConfigError, ModelLoadError

if TYPE_CHECKING:
    from transformers import TrainingArguments

# Where a config.json keeps its number of positions (GPT-2's own name first).
POSITION_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")


def position_limit(run: RunConfig) -> tuple[int, str] | None:
    """The most tokens the model that will run can take, and which model and setting say
    so; None when unknown (a hub model without facts.context_length)."""
    model = run.model
    if run.scale == "tiny":
        config, who, where = model.twin.config, f"the twin of {model.name}", "model.twin.config."
    elif model.path:
        path = Path(model.path).expanduser() / "config.json"
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(
                f"{path} is not a model config ({exc}): model.path must be a save_pretrained "
                "directory"
            ) from None
        who, where = str(path.parent), ""
    else:
        limit = model.facts.context_length
        return (limit, f"{model.name} (model.facts.context_length)") if limit else None
    for key in POSITION_KEYS:
        if isinstance(config.get(key), int):
            return config[key], f"{who} ({where}{key})"
    return None


def lengths(run: RunConfig) -> list[tuple[str, int]]:
    """The longest sequences a run asks its model to take, each with the settings it comes
    from (the first one named is the one to lower)."""
    m = run.method
    if m.name == "clm":
        return [
            ("method.max_length", m.max_length),
            ("method.generation.max_length", m.generation.max_length),
        ]
    if m.name == "sft":
        return [("method.max_length", m.max_length)]
    if m.name == "grpo":
        prompt = m.max_prompt_length or 0
        head = "method.max_prompt_length + " if m.max_prompt_length else ""
        return [
            (f"{head}method.max_completion_length", prompt + m.max_completion_length),
            (f"{head}method.evaluation.max_new_tokens", prompt + m.evaluation.max_new_tokens),
        ]
    return [("method.sequence_len", m.sequence_len)]


def check_lengths(run: RunConfig) -> None:
    """A sequence longer than the model's positions fails inside the model (an IndexError on
    GPT-2's position table), after loading and training; here it is a config error."""
    found = position_limit(run)
    if found is None:
        return
    limit, where = found
    for setting, n in lengths(run):
        if n > limit:
            real = run.model.facts.context_length
            tiny = (
                f" (SCALE=tiny runs the twin; the real model takes {real})"
                if run.scale == "tiny" and real
                else ""
            )
            raise ConfigError(
                f"{setting} = {n} tokens does not fit in the {limit} positions of {where}"
                f"{tiny}: lower {setting.split(' + ')[-1]} so that it fits"
            )


def check_recipe(run: RunConfig) -> None:
    """The trainer settings as transformers and TRL see them: the optimizer and scheduler
    names, then the method's TrainingArguments/SFTConfig/GRPOConfig built once, which is
    where those libraries check their combinations (save vs eval strategy, best model,
    batch vs group sizes ...). Axolotl checks its own, and a distributed run's arguments
    are built in its launched processes (DeepSpeed and FSDP set up there)."""
    from semillero.trainer_args import check_names, training_arguments

    if run.method.name == "axolotl":
        return
    check_names(run.trainer)
    if run.method.distributed.strategy != "single":
        return
    build: Callable[[RunConfig, Path, list[str]], TrainingArguments] = training_arguments
    if run.method.name == "sft":
        from semillero.methods import sft

        build = sft.training_config
    elif run.method.name == "grpo":
        from semillero.methods import grpo

        build = grpo.training_config
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the run itself shows the libraries' warnings
        try:
            build(run, Path(tmp) / "trainer", [])
        except (ValueError, ImportError) as exc:
            raise ConfigError(
                f"transformers/TRL refuse these trainer settings: {exc} (fix the trainer.* or "
                "method.* setting it names)"
            ) from None
