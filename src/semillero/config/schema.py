"""Typed schemas for the composed Hydra config.

Hydra composes `conf/`; these pydantic models validate the result. Every model forbids
unknown keys, so a typo is an error instead of a silently ignored value (Axolotl's schema
drops unknown keys; we do not copy that). Field names follow the libraries they feed
(`learning_rate`, `per_device_train_batch_size`, ...), so a TrainingArguments knob has the
same name here as in the transformers docs.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from semillero.config.base import Schema
from semillero.config.methods import (  # noqa: F401 - re-exported: the schemas live here
    METHOD_ROLES,
    AdapterConfig,
    AnyMethod,
    AxolotlMethodConfig,
    ClmMethodConfig,
    ContrastConfig,
    GenerationSettings,
    GrpoEvalConfig,
    GrpoMethodConfig,
    QuantizationConfig,
    SamplingConfig,
    SftMethodConfig,
)

# A hub id is `owner/name` (legacy bare names like `distilgpt2` now redirect to one).
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelFacts(Schema):
    parameters_m: float | None = Field(None, description="Parameters of the real model, millions.")
    layers: int | None = Field(None, description="Transformer blocks of the real model.")
    hidden_size: int | None = Field(None, description="Width of the real model.")
    vocab_size: int | None = Field(None, description="Vocabulary size of the real tokenizer.")
    context_length: int | None = Field(None, description="Maximum positions of the real model.")
    pad_token: str | None = Field(
        None, description="The real tokenizer's pad token; null when it has none (pad = eos)."
    )


class TwinConfig(Schema):
    config: dict[str, Any] = Field(
        description="Keyword arguments of the architecture's config class for the tiny twin "
        "(e.g. n_layer: 2, n_embd: 64). vocab_size and special token ids come from the "
        "twin tokenizer."
    )
    vocab_size: int = Field(1024, description="Vocabulary of the BPE tokenizer trained locally.")
    embedding_rows: int | None = Field(
        None,
        gt=0,
        description="Rows of the twin's embedding and output head; null = the tokenizer's "
        "size. The benchmark sets the real model's vocabulary, so that its FLOPs are real.",
    )
    special_tokens: dict[str, str] = Field(
        default_factory=dict,
        description="The real tokenizer's special tokens, mirrored on the twin's: bos_token, "
        "eos_token, pad_token, unk_token (a new token is added to the vocabulary).",
    )
    extra_special_tokens: list[str] = Field(
        default_factory=list,
        description="Further tokens the chat template uses (e.g. <start_of_turn>), added whole.",
    )
    chat_template: str | None = Field(
        None,
        description="A chat template for the twin: the name of a file in "
        "src/semillero/models/chat_templates/ (without .jinja). Real models bring their own.",
    )

    @field_validator("special_tokens")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        roles = {"bos_token", "eos_token", "pad_token", "unk_token"}
        unknown = sorted(set(value) - roles)
        if unknown:
            raise ValueError(
                f"twin.special_tokens has {unknown}; use {sorted(roles)} "
                "(other tokens go in twin.extra_special_tokens)"
            )
        return value


class ModelConfig(Schema):
    name: str = Field(description="Short name, the file name in conf/model/.")
    hub_id: str = Field(description="Hugging Face hub id, `owner/name` (or a bare legacy name).")
    revision: str | None = Field(None, description="Hub branch, tag or commit; null = main.")
    path: str | None = Field(
        None, description="Local directory in save_pretrained layout; loaded instead of hub_id."
    )
    architecture: str = Field(
        description="transformers class of the model, e.g. GPT2LMHeadModel; the twin uses it too."
    )
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(
        None,
        description="Attention kernel (from_pretrained's attn_implementation); null = the "
        "library's default. flash_attention_2 needs CUDA and the flash-attn package (images).",
    )
    prequantized: Literal["bnb-4bit"] | None = Field(
        None,
        description="The hub weights are already quantised (e.g. unsloth's *-bnb-4bit): "
        "they need bitsandbytes and can only be trained through an adapter (adapter=qlora).",
    )
    chat: bool = Field(
        False, description="An instruct model with a chat template (format=chat uses it)."
    )
    facts: ModelFacts = Field(default_factory=ModelFacts)
    twin: TwinConfig

    @field_validator("hub_id")
    @classmethod
    def _hub_id_form(cls, value: str) -> str:
        if not HUB_ID.match(value):
            raise ValueError(
                f"{value!r} is not a hub id: use the form owner/name "
                "(e.g. datificate/gpt2-small-spanish), or set model.path to a local directory"
            )
        return value

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, value: str) -> str:
        if not re.match(r"^[A-Z]\w+For\w+$|^\w+LMHeadModel$", value):
            raise ValueError(
                f"{value!r} does not look like a transformers model class "
                "(e.g. GPT2LMHeadModel, GPTNeoForCausalLM)"
            )
        return value


class CleaningConfig(Schema):
    drop_blank: bool = Field(
        True, description="Drop rows whose text is null, empty or whitespace-only (the seed)."
    )
    max_drop_fraction: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Above this fraction of dropped rows the file is broken, not dirty: error.",
    )


class SynthDataConfig(Schema):
    """A data set we generate (seeded): written once per content hash, then read like files."""

    generator: Literal["reports"] = Field(
        "reports", description="reports: Spanish project reports -> JSON (data/synth_reports)."
    )
    spec: str | None = Field(
        None, description="The generator's field list and phrasings (YAML); null = shipped."
    )
    seed: int = Field(0, description="Generation seed (separate from the run's seed).")
    sizes: dict[str, int] = Field(description="Rows per split at scale=full.")
    tiny_sizes: dict[str, int] = Field(description="Rows per split at scale=tiny.")
    out_dir: str = Field(description="Where generated splits are written (a cache).")


class DatasetConfig(Schema):
    """One data source: a hub data set, hub-hosted files, a local file or folder."""

    kind: Literal["source"] = "source"
    name: str = Field(description="Short name, the file name in conf/dataset/.")
    hub_id: str | None = Field(None, description="Hugging Face hub data set id.")
    config_name: str | None = Field(None, description="The hub data set's configuration.")
    revision: str | None = Field(None, description="Hub branch, tag or commit.")
    builder: Literal["csv", "json", "parquet"] | None = Field(
        None, description="Packaged loader for data_files (e.g. parquet for a parquet copy)."
    )
    data_files: str | list[str] | dict[str, str | list[str]] | None = Field(
        None,
        description="Files to read with `builder` instead of the hub repo's own layout; "
        "hf://datasets/<repo>@<revision>/<glob> reaches files on the hub.",
    )
    path: str | None = Field(
        None, description="Local file (.csv/.json/.jsonl/.parquet) or hub-style directory."
    )
    source_split: str = Field("train", description="Split to read; may be a slice: train[:1%].")
    fixture: str | None = Field(
        None,
        description="Shipped fixture (relative to src/semillero/fixtures/) used at scale=tiny; "
        "a generated data set (synth) needs none.",
    )
    synth: SynthDataConfig | None = Field(
        None, description="Generate the data (at tiny scale too, with tiny_sizes)."
    )
    eval_split: str | None = Field(
        None,
        description="A split of the source held out as is (e.g. validation); null = carve "
        "test_size out of source_split.",
    )
    fixture_split: str | None = Field(
        None,
        description="Split read from the fixture; null = source_split. A fixture that stands "
        "for a slice (Wikipedia's train[:1%]) is read whole: fixture_split: train.",
    )
    licence: str = Field("unspecified", description="The data set's licence, as published.")
    columns: list[str] = Field(description="Columns the source must have.")
    text_column: str | None = Field(
        None, description="Column holding the training text (method clm)."
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="What each column is to a method, role -> column: sft reads instruction, "
        "input (optional) and output; grpo reads question and answer.",
    )
    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    test_size: float = Field(0.1, gt=0, lt=1, description="Held-out fraction (the seed: 0.1).")
    max_train_samples: int | None = Field(None, gt=0, description="Keep the first N train rows.")
    max_eval_samples: int | None = Field(None, gt=0, description="Keep the first N test rows.")
    rows: int | None = Field(
        None, description="Rows of the source split as published, for plan's step count."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        for role, column in self.fields.items():
            if column not in self.columns:
                raise ValueError(
                    f"dataset {self.name!r}: fields.{role} names column {column!r}, which is "
                    f"not one of its columns {self.columns}: fix dataset.fields.{role}"
                )
        if self.text_column is not None and self.text_column not in self.columns:
            raise ValueError(
                f"dataset {self.name!r}: text_column {self.text_column!r} is not one of its "
                f"columns {self.columns}: set dataset.text_column to the column with the text"
            )
        if self.fixture is None and self.synth is None:
            raise ValueError(
                f"dataset {self.name!r} has no fixture for scale=tiny: set dataset.fixture to a "
                "file under src/semillero/fixtures/ (or give it a synth block)"
            )
        if self.data_files is not None and self.builder is None:
            raise ValueError(
                f"dataset {self.name!r} sets data_files but no builder: add builder: parquet "
                "(or csv/json) to say how to read them"
            )
        return self


CONTENT: Final = "content"  # the one text column of a corpus (the seed normalises to `content`)


class CorpusConfig(Schema):
    """Several sources, each mapped to one `content` column, concatenated or mixed."""

    kind: Literal["corpus"] = "corpus"
    name: str = Field(description="Short name, the file name in conf/dataset/.")
    sources: dict[str, DatasetConfig] = Field(
        description="The sources by name; each one's text_column becomes `content`."
    )
    mixing: Literal["concatenate", "interleave"] = Field(
        "concatenate",
        description="concatenate: all rows of every source (the seed); interleave: sample "
        "sources by `probabilities` (datasets.interleave_datasets).",
    )
    probabilities: dict[str, float] | None = Field(
        None, description="interleave only: the share of each source, summing to 1."
    )
    stopping_strategy: Literal["first_exhausted", "all_exhausted"] = Field(
        "first_exhausted", description="interleave only: stop when one or every source ends."
    )
    text_column: Literal["content"] = CONTENT
    test_size: float = Field(0.1, gt=0, lt=1, description="Held-out fraction (the seed: 0.1).")
    max_train_samples: int | None = Field(None, gt=0, description="Keep the first N train rows.")
    max_eval_samples: int | None = Field(None, gt=0, description="Keep the first N test rows.")

    @model_validator(mode="after")
    def _mixing_is_consistent(self) -> CorpusConfig:
        if not self.sources:
            raise ValueError(f"corpus {self.name!r} has no sources")
        if self.probabilities is None:
            return self
        if self.mixing != "interleave":
            raise ValueError(
                f"dataset.probabilities only apply to mixing=interleave (corpus {self.name!r} "
                f"uses mixing={self.mixing}): set dataset.mixing=interleave or drop them"
            )
        if set(self.probabilities) != set(self.sources):
            raise ValueError(
                f"dataset.probabilities must name each source once: sources are "
                f"{sorted(self.sources)}, probabilities name {sorted(self.probabilities)}"
            )
        total = sum(self.probabilities.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6) or min(self.probabilities.values()) < 0:
            raise ValueError(
                f"dataset.probabilities {self.probabilities} sum to {total:g}, not 1: "
                "give each source its share so that they add up to 1"
            )
        return self


def _dataset_kind(value: Any) -> str:
    data = value if isinstance(value, dict) else getattr(value, "__dict__", {})
    return "corpus" if "sources" in data else "source"


AnyDataset = Annotated[
    Annotated[DatasetConfig, Tag("source")] | Annotated[CorpusConfig, Tag("corpus")],
    Discriminator(_dataset_kind),
]


class SharedEvalConfig(Schema):
    """One held-out split that every run of a study is evaluated on, and trains on none of.

    A run's own test split depends on its training corpus; comparing perplexities across
    corpora needs the same text. Its rows are removed from every run's training split.
    """

    source: DatasetConfig
    test_size: float = Field(0.1, gt=0, lt=1, description="Split like the source's own.")
    max_samples: int | None = Field(None, gt=0, description="Keep the first N held-out rows.")


class TrainerConfig(Schema):
    """A subset of transformers.TrainingArguments, under the same names."""

    num_train_epochs: float = Field(1, gt=0, allow_inf_nan=False)
    max_steps: int = Field(-1, ge=-1, description="> 0 overrides num_train_epochs; -1: epochs.")
    per_device_train_batch_size: int = Field(8, gt=0)
    per_device_eval_batch_size: int = Field(8, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    learning_rate: float = Field(5e-5, gt=0, allow_inf_nan=False)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    warmup_steps: float = Field(
        0, ge=0, description=">= 1: steps; < 1: a fraction of the run (the old warmup_ratio)."
    )
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    lr_scheduler_type: str = "linear"
    max_grad_norm: float = Field(1.0, ge=0, allow_inf_nan=False, description="0: no clipping.")
    eval_strategy: Literal["no", "steps", "epoch"] = "no"
    eval_steps: int | None = Field(None, gt=0)
    logging_steps: int = Field(50, gt=0)
    logging_first_step: bool = False
    save_strategy: Literal["no", "steps", "epoch", "best"] = "no"
    save_steps: int = Field(500, gt=0)
    save_total_limit: int | None = Field(None, gt=0)
    load_best_model_at_end: bool = False
    metric_for_best_model: str | None = Field(None, description="e.g. eval_loss.")
    greater_is_better: bool | None = None
    fp16: bool = Field(False, description="Mixed precision; falls back to fp32 without CUDA.")
    bf16: bool = Field(False, description="bf16 mixed precision; falls back without CUDA.")
    activation_checkpointing: bool = Field(False, description="Recompute activations in backward.")
    optim: str = "adamw_torch"
    torch_compile: bool = Field(False, description="Compile the model (torch.compile).")
    dataloader_num_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> TrainerConfig:
        if self.max_steps == 0:
            raise ValueError(
                "trainer.max_steps=0 trains nothing: set a number of steps, or -1 to train "
                "for num_train_epochs"
            )
        if self.fp16 and self.bf16:
            raise ValueError("trainer.fp16 and trainer.bf16 are both true: pick one")
        if self.save_strategy == "best" and not self.metric_for_best_model:
            raise ValueError(
                "trainer.save_strategy=best saves when a metric improves, and "
                "trainer.metric_for_best_model names none: set it (e.g. eval_loss)"
            )
        return self


class TrackerConfig(Schema):
    name: Literal["wandb", "none"]
    project: str = "semillero"
    entity: str | None = None
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        "auto", description="auto: online when WANDB_API_KEY is set, else offline."
    )


class PathsConfig(Schema):
    output_dir: str = Field(description="Records live in <output_dir>/<scale>/<study>/<run>/.")
    cache_dir: str = Field(description="Twin tokenizers are cached here.")


class ReportConfig(Schema):
    title: str
    reference: str | None = Field(None, description="CSV of the published numbers, by hub_id.")
    reference_note: str | None = Field(None, description="Where the published numbers come from.")
    rank_by: str | None = Field(None, description="Metric that picks the winner (lowest wins).")
    metrics: list[str] = Field(description="Metrics shown in the main table, in order.")
    table_title: str | None = Field(None, description="Heading of the main table.")
    tables: dict[str, list[str]] = Field(
        default_factory=dict, description="Further tables after the main one: title -> metrics."
    )
    plot: list[str] = Field(default_factory=list, description="Metrics drawn as bar plots.")
    rows: Literal["model", "dataset", "adapter"] = Field(
        "model",
        description="One row per model (matched to the reference by hub_id), per dataset "
        "(matched by dataset name), or per adapter setting (name, r, targets; no reference).",
    )
    curves: list[str] = Field(
        default_factory=list, description="Logged metrics drawn against steps (curves.png)."
    )
    samples: bool = Field(False, description="List every run's samples in the report.")
    sections: list[str] = Field(
        default_factory=list,
        description="Tables a method writes into each record (record.tables), shown per run: "
        "e.g. before_after and groups (grpo), contrast (sft), extraction (axolotl).",
    )

    @model_validator(mode="after")
    def _reference_rows(self) -> ReportConfig:
        if self.reference and self.rows == "adapter":
            raise ValueError(
                "report.rows=adapter has no published rows to match a reference to: set "
                "report.reference: null, or rows: model"
            )
        return self


class RunConfig(Schema):
    """One fully composed run."""

    study: str
    scale: Literal["full", "tiny"] = Field(
        description="full: hub ids / local paths; tiny: offline twins and fixtures."
    )
    seed: int = Field(ge=0, lt=2**32, description="numpy's seeds are 0 .. 2**32-1.")
    paths: PathsConfig
    model: ModelConfig
    dataset: AnyDataset
    shared_eval: SharedEvalConfig | None = None
    model_from: str | None = Field(
        None, description="Set by model=from:<study>: which study's winner this model is."
    )
    adapter: AdapterConfig
    method: AnyMethod
    trainer: TrainerConfig
    tracker: TrackerConfig
    report: ReportConfig | None = None

    @field_validator("study")
    @classmethod
    def _study_name(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", value) or ".." in value.split("/"):
            raise ValueError(
                f"study {value!r} is not a folder name: records go in "
                "<output_dir>/<scale>/<study>/, so use letters, digits, '.', '_', '-' "
                "(and '/' between names)"
            )
        return value

    @model_validator(mode="after")
    def _combination(self) -> RunConfig:
        """The checks that need two sections at once: method vs data, adapter vs model."""
        method, data, adapter = self.method, self.dataset, self.adapter
        members = list(data.sources.values()) if isinstance(data, CorpusConfig) else [data]
        if method.name == "clm":
            if adapter.type != "none":
                raise ValueError(
                    f"method clm trains every weight, but adapter={adapter.name}: use "
                    "method=sft for LoRA/QLoRA, or adapter=none"
                )
            if isinstance(data, DatasetConfig) and data.text_column is None:
                raise ValueError(
                    f"method clm reads one text column, and dataset {data.name!r} sets no "
                    "text_column: set dataset.text_column=<column>, or use a method that "
                    f"reads its fields {sorted(data.fields)}"
                )
        else:
            if self.shared_eval is not None:
                raise ValueError(f"shared_eval is for method clm, not {method.name}")
            for member in members:
                missing = [
                    role
                    for role, required in METHOD_ROLES[method.name].items()
                    if required and role not in member.fields
                ]
                if missing:
                    sets = " ".join(f"dataset.fields.{r}=<column>" for r in missing)
                    raise ValueError(
                        f"method {method.name} needs a {' and an '.join(missing)} column, "
                        f"and dataset {member.name!r} (columns {member.columns}) maps none to "
                        f"{'/'.join(missing)}: set {sets}, or pick a data set made for "
                        f"{method.name}"
                    )
        if self.model.prequantized and adapter.quantization is None:
            raise ValueError(
                f"model {self.model.name} is already quantised ({self.model.prequantized}): "
                f"it can only be trained through an adapter over the 4-bit base: adapter=qlora "
                f"(not {adapter.name})"
            )
        has_template = self.model.chat if self.scale == "full" else self.model.twin.chat_template
        if isinstance(method, SftMethodConfig) and method.format == "chat" and not has_template:
            raise ValueError(
                f"method.format=chat needs a chat template, and model {self.model.name} has "
                "none (a base model): use method.format=alpaca, or an instruct model"
            )
        if isinstance(method, GrpoMethodConfig):
            from semillero.rewards import check_signature, resolve_reward

            columns = {c for m in members for c in [*m.columns, *m.fields]}
            for name in method.rewards:  # known names: checked by the method's schema
                check_signature(name, resolve_reward(name), columns)
            if not has_template:
                raise ValueError(
                    f"method grpo writes its prompts as chat messages (system + question), and "
                    f"model {self.model.name} has no chat template (a base model): use an "
                    "instruct model (e.g. model=gemma-3-1b-it)"
                )
            t = self.trainer
            batch = t.per_device_train_batch_size * t.gradient_accumulation_steps
            if batch % method.num_generations:
                raise ValueError(
                    f"method.num_generations={method.num_generations} does not divide the "
                    f"effective batch (per_device_train_batch_size {t.per_device_train_batch_size}"
                    f" x gradient_accumulation_steps {t.gradient_accumulation_steps} = {batch}): "
                    "every prompt's group of completions must fit in one batch; pick a "
                    f"divisor of {batch} or change the batch"
                )
        return self
