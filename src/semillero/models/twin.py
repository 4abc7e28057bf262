"""Tiny twins: the same transformers class as the real model, random init, a few layers.

The twin's tokenizer is a byte-level BPE trained on the text shipped in
`semillero/fixtures/`, cached under `<cache_dir>/tokenizers/` by a hash of that text.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from semillero.config.schema import ModelConfig
from semillero.data.source import FIXTURES
from semillero.errors import ModelLoadError, did_you_mean

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"  # GPT-2's single special token: bos, eos and unk at once
TEXT_SUFFIXES = (".csv", ".json", ".jsonl", ".txt")
TOKENIZER_RECIPE = "bytelevel-bpe-v1"  # bump when the training recipe changes


def shipped_text_files() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*") if p.suffix in TEXT_SUFFIXES)


def twin_tokenizer(vocab_size: int, cache_dir: str | Path) -> PreTrainedTokenizerFast:
    """Returns the cached twin tokenizer, training it first if needed (well under a second)."""
    files = shipped_text_files()
    digest = hashlib.sha256(f"{TOKENIZER_RECIPE}:{vocab_size}".encode())
    for file in files:
        digest.update(file.name.encode() + hashlib.sha256(file.read_bytes()).digest())
    target = (
        Path(cache_dir).expanduser() / "tokenizers" / f"bpe{vocab_size}-{digest.hexdigest()[:12]}"
    )
    if not (target / "tokenizer.json").is_file():
        log.info(
            "training the twin tokenizer (vocab %d) on %d shipped files", vocab_size, len(files)
        )
        _train(files, vocab_size, target)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(target))
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    return tokenizer


def _train(files: list[Path], vocab_size: int, target: Path) -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = (line for f in files for line in f.read_text(encoding="utf-8").splitlines())
    tokenizer.train_from_iterator(lines, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS
    )
    # Written to a temporary folder and renamed: two processes racing here both succeed.
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent))
    wrapped.save_pretrained(str(tmp))
    try:
        tmp.rename(target)
    except OSError:  # another process got there first
        shutil.rmtree(tmp, ignore_errors=True)


CHAT_TEMPLATES = Path(__file__).resolve().parent / "chat_templates"


def mirror_special_tokens(tokenizer: PreTrainedTokenizerFast, cfg: ModelConfig) -> None:
    """Gives the twin the real tokenizer's special tokens and a chat template of its shape,
    so that prompts, EOS and padding behave as they will with the real model."""
    twin = cfg.twin
    new = [t for t in [*twin.special_tokens.values(), *twin.extra_special_tokens] if t != EOS]
    if new:
        tokenizer.add_tokens(list(dict.fromkeys(new)), special_tokens=True)
    for role, token in twin.special_tokens.items():
        setattr(tokenizer, role, token)
    if twin.chat_template:
        path = CHAT_TEMPLATES / f"{twin.chat_template}.jinja"
        if not path.is_file():
            known = sorted(p.stem for p in CHAT_TEMPLATES.glob("*.jinja"))
            raise ModelLoadError(
                f"conf/model/{cfg.name}.yaml: twin.chat_template {twin.chat_template!r} is not "
                f"a file in {CHAT_TEMPLATES}.{did_you_mean(twin.chat_template, known)} "
                f"Templates: {', '.join(known)}"
            )
        tokenizer.chat_template = path.read_text(encoding="utf-8")


def twin_class(cfg: ModelConfig) -> Any:  # a PreTrainedModel subclass
    """The architecture class, after checking every twin.config key against its config.

    transformers' config classes keep unknown keyword arguments as plain attributes, so a
    typo (n_layers for n_layer) would silently build a full-depth twin: refuse it.
    """
    model_class = getattr(transformers, cfg.architecture, None)
    if model_class is None:
        raise ModelLoadError(
            f"conf/model/{cfg.name}.yaml: transformers has no class {cfg.architecture!r}; "
            "use the class name from the model's config.json `architectures`"
        )
    accepted = inspect.signature(model_class.config_class.__init__).parameters
    for key in cfg.twin.config:
        if key not in accepted:
            valid = [k for k in accepted if k != "self"]
            raise ModelLoadError(
                f"conf/model/{cfg.name}.yaml: twin.config.{key} is not an argument of "
                f"{model_class.config_class.__name__}.{did_you_mean(key, valid)}"
            )
    return model_class


def build_twin(
    cfg: ModelConfig, cache_dir: str | Path
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The twin of `cfg`: its architecture class, random init (seed first!), our tokenizer.

    The tokenizer mirrors the real one's pad token: it has one only if the real one does.
    """
    tokenizer = twin_tokenizer(cfg.twin.vocab_size, cache_dir)
    if cfg.facts.pad_token is not None:
        tokenizer.pad_token = EOS
    mirror_special_tokens(tokenizer, cfg)
    model_class = twin_class(cfg)
    config = model_class.config_class(
        **cfg.twin.config,
        vocab_size=cfg.twin.embedding_rows or len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if cfg.attn_implementation:
        config._attn_implementation = cfg.attn_implementation
    return model_class(config), tokenizer
