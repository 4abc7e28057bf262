"""Shared test set-up: offline, isolated outputs, and tiny runs made cheap by override.

Tests compose the real config (conf/) and shrink it, as `make smoke` does, so that what
is tested is what users run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Never reach the network, whatever the caller's environment says.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.pop("WANDB_API_KEY", None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
# The seed's screening grid, in its order (shared/reference/studies.md).
SCREENED_HUB_IDS = (
    "distilbert/distilgpt2",
    "flax-community/gpt-2-spanish",
    "mrm8488/spanish-gpt2",
    "datificate/gpt2-small-spanish",
    "ITG/DialoGPT-medium-spanish-chitchat",
    "ostorc/Conversational_Spanish_GPT",
    "EleutherAI/gpt-neo-125M",
)


@pytest.fixture(autouse=True)
def isolated(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test writes its records under its own tmp folder; the twin tokenizer cache is
    shared by the session (it is keyed by content, so sharing cannot leak state)."""
    monkeypatch.setenv("SEMILLERO_OUTPUT_DIR", str(tmp_path / "outputs"))
    cache = tmp_path_factory.getbasetemp() / "semillero-cache"
    monkeypatch.setenv("SEMILLERO_CACHE_DIR", str(cache))
    return tmp_path / "outputs"
