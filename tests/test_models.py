"""Twins, the one loader (hub id, local path, twin), and pad handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from semillero.config.compose import compose, group_options, validate
from semillero.config.schema import ModelConfig
from semillero.errors import ModelLoadError
from semillero.models.loader import load_model
from semillero.models.twin import twin_tokenizer
from tests.test_config import trainable_with


def model_cfg(name: str, **changes: object) -> ModelConfig:
    cfg = validate(compose(trainable_with(name))).model
    return ModelConfig.model_validate(cfg.model_dump() | changes)


@pytest.mark.parametrize("name", group_options("model"))
def test_twin_is_the_same_class_and_tiny(name: str, tmp_path: Path) -> None:
    cfg = model_cfg(name)
    loaded = load_model(cfg, "tiny", tmp_path)
    assert type(loaded.model).__name__ == cfg.architecture
    assert loaded.parameters < 2_000_000
    assert loaded.source == f"twin:{cfg.architecture}"
    assert loaded.model.config.vocab_size == len(loaded.tokenizer)


def test_twin_shape_typo_is_an_error(tmp_path: Path) -> None:
    cfg = model_cfg("distilgpt2")
    bad = cfg.model_copy(update={"twin": cfg.twin.model_copy(update={"config": {"n_layers": 2}})})
    with pytest.raises(ModelLoadError, match=r"twin\.config\.n_layers .* Did you mean 'n_layer'"):
        load_model(bad, "tiny", tmp_path)
    unknown = cfg.model_copy(update={"architecture": "GPT3LMHeadModel"})
    with pytest.raises(ModelLoadError, match="no class 'GPT3LMHeadModel'"):
        load_model(unknown, "tiny", tmp_path)


def test_attention_kernel_reaches_the_twin(tmp_path: Path) -> None:
    cfg = model_cfg("gpt2-small-es", attn_implementation="eager")
    assert load_model(cfg, "tiny", tmp_path).model.config._attn_implementation == "eager"
    neo = model_cfg("gpt-neo-125m", attn_implementation="sdpa")
    with pytest.raises(ValueError, match="does not support"):  # as the real GPT-Neo would
        load_model(neo, "tiny", tmp_path)


def test_gpt_neo_twin_keeps_local_attention(tmp_path: Path) -> None:
    model = load_model(model_cfg("gpt-neo-125m"), "tiny", tmp_path).model
    assert model.config.attention_layers == ["global", "local"]
    assert model.config.window_size == 32


def test_missing_pad_token_becomes_eos_and_is_recorded(tmp_path: Path) -> None:
    no_pad = load_model(model_cfg("distilgpt2"), "tiny", tmp_path)
    assert no_pad.tokenizer.pad_token == no_pad.tokenizer.eos_token
    assert no_pad.pad_token.startswith("eos")
    assert no_pad.model.config.pad_token_id == no_pad.tokenizer.eos_token_id
    own = load_model(model_cfg("gpt2-small-es"), "tiny", tmp_path)
    assert own.pad_token.startswith("own")


def test_twin_tokenizer_is_cached_and_deterministic(tmp_path: Path) -> None:
    a = twin_tokenizer(512, tmp_path / "a")
    files = list((tmp_path / "a" / "tokenizers").iterdir())
    twin_tokenizer(512, tmp_path / "a")
    assert list((tmp_path / "a" / "tokenizers").iterdir()) == files  # not trained twice
    b = twin_tokenizer(512, tmp_path / "b")
    text = "¿Dónde duerme la luna cuando llueve sobre el río?"
    assert a(text)["input_ids"] == b(text)["input_ids"]
    assert a.decode(a(text)["input_ids"]) == text


def save_twin(name: str, folder: Path, cache: Path) -> None:
    loaded = load_model(model_cfg(name), "tiny", cache)
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)


def test_local_path_loads_with_the_real_loading_code(tmp_path: Path) -> None:
    save_twin("gpt-neo-125m", tmp_path / "neo", tmp_path)
    loaded = load_model(model_cfg("gpt-neo-125m", path=str(tmp_path / "neo")), "full", tmp_path)
    assert loaded.source == f"local:{(tmp_path / 'neo').resolve()}"
    assert type(loaded.model).__name__ == "GPTNeoForCausalLM"


def test_hub_id_loads_offline_from_the_hub_cache(tmp_path: Path) -> None:
    """A hub-style load: the files sit in an HF cache as a download leaves them, and the
    hub id resolves with HF_HUB_OFFLINE=1 (a fresh process, since huggingface_hub reads
    its cache location at import)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--datificate--gpt2-small-spanish"
    save_twin("gpt2-small-es", repo / "snapshots" / commit, tmp_path)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    code = (
        "from semillero.config.compose import compose, validate\n"
        "from semillero.models.loader import load_model\n"
        "cfg = validate(compose(['model=gpt2-small-es'])).model\n"
        "m = load_model(cfg, 'full', '/unused')\n"
        "print(m.source, type(m.model).__name__, m.pad_token)\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "hub:datificate/gpt2-small-spanish GPT2LMHeadModel own" in out.stdout


def test_missing_local_path_fails_before_loading(tmp_path: Path) -> None:
    cfg = model_cfg("distilgpt2", path=str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match="does not exist: point it at a directory"):
        load_model(cfg, "full", tmp_path)


def test_wrong_architecture_in_yaml_is_an_error(tmp_path: Path) -> None:
    save_twin("distilgpt2", tmp_path / "gpt2", tmp_path)
    cfg = model_cfg("gpt-neo-125m", path=str(tmp_path / "gpt2"))
    with pytest.raises(ModelLoadError, match="is a GPT2LMHeadModel, but conf/model/gpt-neo-125m"):
        load_model(cfg, "full", tmp_path)


def test_hub_model_not_cached_offline_names_the_fixes(tmp_path: Path) -> None:
    code = (
        "from semillero.config.compose import compose, validate\n"
        "from semillero.models.loader import load_model\n"
        "load_model(validate(compose(['model=distilgpt2'])).model, 'full', '/unused')\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "ModelLoadError" in out.stderr and "SCALE=tiny" in out.stderr
