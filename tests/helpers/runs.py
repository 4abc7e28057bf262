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
    "method.max_length=64",
]


def cheap(*overrides: str) -> list[str]:
    """CHEAP, with any key given in `overrides` replaced by the caller's value."""
    keys = {o.partition("=")[0] for o in overrides}
    return [o for o in CHEAP if o.partition("=")[0] not in keys] + list(overrides)


def run_tiny(*overrides: str, force: bool = False) -> RunRecord:
    cfg = compose(cheap(*overrides))
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    record = execute(validate(cfg), config, list(overrides), force=force)
    assert record is not None, "the run was locked by another process"
    return record
