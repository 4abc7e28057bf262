"""Compose, validate and hash run configs; expand a study's sweep grid without running it."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ValidationError

from semillero.config.schema import (
    AxolotlMethodConfig,
    ClmMethodConfig,
    CorpusConfig,
    DatasetConfig,
    GrpoMethodConfig,
    RunConfig,
    SftMethodConfig,
)
from semillero.errors import ConfigError, did_you_mean

# Config groups a user picks with `group=choice`.
GROUPS = ("model", "dataset", "adapter", "method", "trainer", "tracker", "experiment")
# Sections that do not change a run's results: excluded from its hash, so that the same
# experiment logged elsewhere or written to another folder is still the same run.
NOT_HASHED = ("tracker", "paths", "report", "study", "model_from")
# Settings added after runs were recorded: hashed only when set to something other than their
# default, so that the runs recorded before them keep their names (tests/test_config.py checks
# these defaults against the schema's).
ADDED_LATER: dict[tuple[str, ...], Any] = {
    ("method", "distributed"): {"strategy": "single", "processes": "auto", "offload": False},
    ("method", "cache_implementation"): None,
    ("trainer", "torch_compile"): False,
    ("model", "twin", "embedding_rows"): None,
}
# The tags of the dataset kinds and of the methods, which pydantic puts in an error's path
# inside their unions.
TAG_FIELDS: dict[type[BaseModel], str] = {
    DatasetConfig: "kind",
    CorpusConfig: "kind",
    ClmMethodConfig: "name",
    SftMethodConfig: "name",
    GrpoMethodConfig: "name",
    AxolotlMethodConfig: "name",
}
TAGS = {m.model_fields[f].default for m, f in TAG_FIELDS.items()}


def conf_dir() -> Path:
    """The config tree: $SEMILLERO_CONF_DIR, else conf/ at the repository root."""
    env = os.environ.get("SEMILLERO_CONF_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "conf"
    if not (path / "config.yaml").is_file():
        raise ConfigError(
            f"no config tree at {path}: run semillero from a checkout of the repository "
            "(pip install -e .), or set SEMILLERO_CONF_DIR to a folder holding config.yaml"
        )
    return path


def group_options(group: str) -> list[str]:
    """Every choice of a config group, found recursively (`experiment/sub/name`)."""
    root = conf_dir() / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def check_choices(overrides: Sequence[str]) -> None:
    """Fails on `group=choice` overrides whose choice does not exist, listing the options.

    Hydra would fail too, but later and without a suggestion; this runs before anything
    is composed or loaded. Sweeps (`model=a,b`) are checked choice by choice.
    """
    for override in _parse(overrides):
        key = override.get_key_element().lstrip("+~")
        if key not in GROUPS or override.is_delete():
            continue
        if override.is_sweep_override():
            try:
                choices = list(override.sweep_string_iterator())
            except Exception:  # glob() and range() sweeps: Hydra checks those itself
                continue
        else:
            choices = [override.get_value_element_as_str()]
        options = group_options(key)
        for choice in choices:
            if choice not in (*options, "null"):
                raise ConfigError(
                    f"{key}={choice}: there is no conf/{key}/{choice}.yaml."
                    f"{did_you_mean(choice, options)} Valid options: {', '.join(options)}"
                )


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return list(OverridesParser.create().parse_overrides(list(overrides)))
    except HydraException as exc:
        raise ConfigError(
            f"cannot parse the overrides ({exc}). Values with brackets, spaces or colons "
            "need quotes: 'dataset.source_split=\"train[:1%]\"'"
        ) from None


def validate(cfg: DictConfig | dict[str, Any]) -> RunConfig:
    """Turns a composed config into a RunConfig, or raises one ConfigError naming each fix."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(data, dict)
    data = {k: v for k, v in data.items() if k != "hydra"}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc)) from None


def explain(exc: ValidationError, root: type[BaseModel] = RunConfig) -> str:
    """One line per problem pydantic found in a config whose schema is `root`."""
    lines = [f"invalid config ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if p not in TAGS)
        if err["type"] == "extra_forbidden":
            lines.append(f"  {_unknown_key(err['loc'], root)}")
        elif err["type"] == "missing":
            lines.append(f"  {where}: required, but missing. Set it in the YAML or as {where}=...")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")  # a whole section (model validators) is not worth echoing
            suffix = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {where or 'config'}: {msg}{suffix}")
    return "\n".join(lines)


def _schema_at(loc: Sequence[int | str], root: type[BaseModel]) -> type[Any] | None:
    """The schema class at a config path, for listing its valid keys. A union (the dataset
    kinds) is resolved by the tag in the path when pydantic gives one."""
    schema: Any = root
    for part in loc:
        members = _models_in(schema)
        tagged = [
            m for m in members if m in TAG_FIELDS and m.model_fields[TAG_FIELDS[m]].default == part
        ]
        if tagged:
            schema = tagged[0]
            continue
        fields = {k: f for m in members for k, f in m.model_fields.items()}
        if part not in fields:
            return None
        schema = fields[part].annotation
    members = _models_in(schema)
    return members[0] if len(members) == 1 else _merged(members) if members else None


def _models_in(annotation: Any) -> list[Any]:
    """The pydantic models inside an annotation (X, X | None, Annotated[A | B, ...])."""
    if hasattr(annotation, "model_fields"):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _merged(members: list[Any]) -> Any:
    """A stand-in whose model_fields are every member's, for listing valid keys."""
    fields = {k: v for m in members for k, v in m.model_fields.items()}
    return type("AnyOf", (), {"model_fields": fields})


def run_hash(run: RunConfig) -> str:
    """A stable hash of everything that changes a run's results (12 hex digits)."""
    data = run.model_dump(mode="json", exclude=set(NOT_HASHED))
    data["method"]["distributed"].pop("main_port")  # where processes meet changes nothing
    for path, default in ADDED_LATER.items():
        *parents, key = path
        node = data
        for name in parents:
            node = node.get(name, {})
        if key in node and node[key] == default:
            del node[key]
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_name(run: RunConfig) -> str:
    """Folder name of a run: readable parts plus the config hash."""
    return f"{run.model.name}__{run.dataset.name}__{run.method.name}__{run_hash(run)}"


def study_dir(run: RunConfig, scale: str | None = None) -> Path:
    """<output_dir>/<scale>/<study>: a study's runs, W&B folder and report."""
    return Path(run.paths.output_dir) / (scale or run.scale) / run.study


def run_dir(run: RunConfig) -> Path:
    return study_dir(run) / run_name(run)


def normalise_args(args: Sequence[str]) -> list[str]:
    """Turns the Makefile-style `EXP=x SCALE=y LAUNCHER=z` into Hydra overrides; keeps the
    rest."""
    out = []
    for arg in args:
        if arg.startswith("EXP="):
            out.append("experiment=" + arg[4:])
        elif arg.startswith("SCALE="):
            out.append("scale=" + arg[6:])
        elif arg.startswith("LAUNCHER="):
            out.append("hydra/launcher=" + arg[9:])
        else:
            out.append(arg)
    return out


def compose(
    overrides: Sequence[str], with_hydra: bool = False, config_name: str = "config"
) -> DictConfig:
    """Composes conf/config.yaml (or conf/<config_name>.yaml) with overrides, as
    `semillero train` would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if config_name == "config":
        check_choices(overrides)
    try:
        # A fresh Hydra context per call: no global state is left for `hydra.main` to trip on.
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            return hydra_compose(
                config_name, overrides=list(overrides), return_hydra_config=with_hydra
            )
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_explain_hydra(str(exc).strip(), schema_of(config_name))) from None


def schema_of(config_name: str) -> type[BaseModel]:
    """The schema a top-level config is validated against."""
    if config_name == "bench":
        from semillero.bench import BenchConfig

        return BenchConfig
    return RunConfig


def _explain_hydra(message: str, root: type[BaseModel]) -> str:
    """Hydra answers an unknown override key with 'use +key=...', which would only move the
    error to validation. Say what the key should be instead."""
    match = re.match(r"Could not override '([\w.]+)'", message)
    return _unknown_key(match.group(1).split("."), root) if match else message


def _unknown_key(loc: Sequence[int | str], root: type[BaseModel] = RunConfig) -> str:
    """`a.b.key: unknown key. Did you mean ...? Valid keys of a.b: ...`, for a key path from
    pydantic (which may hold a union tag) or from a Hydra override."""
    *parent, leaf = loc
    schema = _schema_at(parent, root)
    valid = sorted(schema.model_fields) if schema else []
    visible = [str(p) for p in parent if p not in TAGS]
    where = ".".join(visible) or "the root config"
    dotted = ".".join([*visible, str(leaf)])
    if leaf in valid and where in GROUPS:  # a setting that the chosen option leaves out
        having = [o for o in group_options(where) if leaf in _yaml_keys(where, o)]
        return (
            f"{dotted}: the {where} chosen for this run has no {leaf!r} setting; choose one "
            f"that has it first ({', '.join(f'{where}={o}' for o in having)})"
        )
    return (
        f"{dotted}: unknown key.{did_you_mean(str(leaf), valid)} "
        f"Valid keys of {where}: {', '.join(valid)}"
    )


def _yaml_keys(group: str, option: str) -> set[str]:
    """The top-level keys of conf/<group>/<option>.yaml."""
    data = OmegaConf.load(conf_dir() / group / f"{option}.yaml")
    return {str(k) for k in data} if isinstance(data, DictConfig) else set()


def expand_grid(overrides: Sequence[str]) -> list[list[str]]:
    """Every grid point of a sweep: the study's hydra.sweeper.params crossed with any sweep
    overrides given on the command line. Uses Hydra's own parser and sweeper."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = _parse(overrides)
    plain = [o.input_line for o in parsed if not o.is_sweep_override()]
    params = compose(plain, with_hydra=True).hydra.sweeper.get("params") or {}
    given = {o.get_key_element() for o in parsed}
    extra = [f"{key}={value}" for key, value in params.items() if key not in given]
    batches = BasicSweeper.split_arguments(parsed + _parse(extra), max_batch_size=None)
    return [list(point) for batch in batches for point in batch]
