"""Run tiny configs in-process through the same code path as `semillero train`."""

from __future__ import annotations

from omegaconf import OmegaConf

from semillero.config.compose import compose, validate
from semillero.records import RunRecord
from semillero.runner import execute

# Overrides that make any run of any study take a second or two on a CPU.
CHEAP = [
    "scale=tiny",
    "tracker=none",
    "trainer.max_steps=3",
    "trainer.eval_strategy=no",
    "trainer.save_strategy=no",
    "trainer.load_best_model_at_end=false",
    "trainer.logging_steps=1",
    "dataset.max_train_samples=24",
    "dataset.max_eval_samples=8",
]
# And per method (each has its own lengths).
CHEAP_METHOD = {
    "clm": ["method.max_length=64"],
    "sft": ["method.max_length=256", "method.contrast.max_new_tokens=8"],
    "grpo": [
        "trainer.per_device_train_batch_size=4",
        "trainer.gradient_accumulation_steps=1",
        "method.max_completion_length=12",
        "method.evaluation.max_new_tokens=12",
        "method.evaluation.max_samples=4",
    ],
    "axolotl": [  # sequence_len stays 1024: the twin's small vocabulary makes long reports
        "method.evaluation.max_new_tokens=16",
        "method.evaluation.max_examples=4",
    ],
}
STUDY_METHOD = {"iberotales_grpo": "grpo", "alpaca_qlora": "sft", "report_extraction": "axolotl"}


def method_of(overrides: tuple[str, ...] | list[str]) -> str:
    """The method a list of overrides selects (method=..., or the study's)."""
    for o in overrides:
        key, _, value = o.partition("=")
        if key == "method":
            return value
        if key == "experiment" and value in STUDY_METHOD:
            return STUDY_METHOD[value]
    return "clm"


def cheap(*overrides: str) -> list[str]:
    """CHEAP, with any key given in `overrides` replaced by the caller's value."""
    keys = {o.partition("=")[0] for o in overrides}
    base = CHEAP + CHEAP_METHOD[method_of(overrides)]
    return [o for o in base if o.partition("=")[0] not in keys] + list(overrides)


def run_tiny(*overrides: str, force: bool = False) -> RunRecord:
    cfg = compose(cheap(*overrides))
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    record = execute(validate(cfg), config, list(overrides), force=force)
    assert record is not None, "the run was locked by another process"
    return record
