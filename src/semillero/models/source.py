"""Where a model comes from, checked without importing transformers (plan uses this)."""

from __future__ import annotations

from pathlib import Path

from semillero.config.schema import ModelConfig
from semillero.errors import ModelLoadError

# A save_pretrained tokenizer: the fast tokenizer's file, or a slow one's config and vocabulary.
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"]


def model_source(cfg: ModelConfig, scale: str) -> str:
    """Where the model will come from; checks local paths without loading anything."""
    if scale == "tiny":
        return f"twin:{cfg.architecture}"
    if cfg.path:
        path = Path(cfg.path).expanduser()
        if not path.is_dir():
            what = "is a file, not a directory" if path.is_file() else "does not exist"
            raise ModelLoadError(
                f"model.path={cfg.path} {what}: point it at a directory written by "
                f"save_pretrained (with config.json), or drop model.path to load {cfg.hub_id}"
            )
        missing = [
            what
            for what, names in (
                ("config.json", ["config.json"]),
                ("weights (*.safetensors or *.bin)", ["*.safetensors", "*.bin"]),
                ("tokenizer files (tokenizer.json or tokenizer_config.json)", TOKENIZER_FILES),
            )
            if not any(any(path.glob(name)) for name in names)
        ]
        if missing:
            raise ModelLoadError(
                f"model.path={cfg.path} has no {' and no '.join(missing)}: it must be a "
                "save_pretrained directory holding the model's config, weights and tokenizer "
                "(model.save_pretrained(dir) and tokenizer.save_pretrained(dir))"
            )
        return f"local:{path.resolve()}"
    return f"hub:{cfg.hub_id}"


def check_cached(cfg: ModelConfig, scale: str) -> None:
    """With HF_HUB_OFFLINE set, a hub model must already be in the cache: loading reads its
    config.json first, so that is what is looked for."""
    from huggingface_hub import constants, try_to_load_from_cache

    if scale == "tiny" or cfg.path or not constants.HF_HUB_OFFLINE:
        return
    found = try_to_load_from_cache(cfg.hub_id, "config.json", revision=cfg.revision)
    if not isinstance(found, str):
        raise ModelLoadError(
            f"model {cfg.hub_id} is not in the Hugging Face cache, and HF_HUB_OFFLINE is set: "
            f"download it once where the hub is reachable (hf download {cfg.hub_id}), set "
            "model.path to a local copy, or use SCALE=tiny"
        )
