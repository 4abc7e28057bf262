"""Where a model comes from, checked without importing transformers (plan uses this)."""

from __future__ import annotations

from pathlib import Path

from semillero.config.schema import ModelConfig
from semillero.errors import ModelLoadError


def model_source(cfg: ModelConfig, scale: str) -> str:
    """Where the model will come from; checks local paths without loading anything."""
    if scale == "tiny":
        return f"twin:{cfg.architecture}"
    if cfg.path:
        path = Path(cfg.path).expanduser()
        if not path.is_dir():
            raise ModelLoadError(
                f"model.path={cfg.path} does not exist: point it at a directory written by "
                f"save_pretrained (with config.json), or drop model.path to load {cfg.hub_id}"
            )
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"model.path={cfg.path} has no config.json: it must be a save_pretrained "
                "directory (config.json, weights and tokenizer files)"
            )
        return f"local:{path.resolve()}"
    return f"hub:{cfg.hub_id}"
