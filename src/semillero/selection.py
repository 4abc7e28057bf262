"""`model=from:<study>`: take the model that won another study, from that study's records.

The poetry-vs-combined study trains the screening's winner; this makes that a link
instead of a copied name. The choice is written to `model_from`, and so into the record.
"""

from __future__ import annotations

from semillero.config.compose import compose, study_dir, validate
from semillero.errors import ConfigError
from semillero.records import find_records

PREFIX = "from:"
# Overrides that say where a study's records are (and at which scale) rather than what it is.
LOCATION = ("scale=", "paths.")


def resolve_model_from(overrides: list[str]) -> list[str]:
    """Replaces `model=from:<study>` by `model=<winner>` and a `model_from=...` note."""
    out = []
    for override in overrides:
        key, _, value = override.partition("=")
        if key != "model" or not value.startswith(PREFIX):
            out.append(override)
            continue
        study = value.removeprefix(PREFIX)
        location = [o for o in overrides if o.startswith(LOCATION)]
        source = validate(compose([f"experiment={study}", *location]))
        rank_by = source.report.rank_by if source.report else None
        if rank_by is None:
            raise ConfigError(
                f"model=from:{study}: study {study!r} names no winner (report.rank_by); "
                "pick the model by name instead, e.g. model=gpt2-small-es"
            )
        folder = study_dir(source)
        done = [r for r in find_records(folder) if r.status == "done"] if folder.is_dir() else []
        ranked = [r for r in done if r.metrics.get(rank_by) is not None]
        if not ranked:
            raise ConfigError(
                f"model=from:{study}: no finished runs of {study!r} under {folder}; run it "
                f"first (make sweep EXP={study} SCALE={source.scale}) or name the model"
            )
        best = min(ranked, key=lambda r: r.metrics[rank_by])
        name = best.config["model"]["name"]
        note = f"{study} winner by {rank_by} = {best.metrics[rank_by]:.4f} ({best.run_name})"
        print(f"[semillero] model=from:{study} -> model={name}: {note}", flush=True)
        out += [f"model={name}", f"model_from='{note}'"]
    return out
