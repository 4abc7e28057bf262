"""The benchmark's outputs: one JSON per run, a markdown table, a bar chart, and the results
section of bench/README.md (rebuilt from every full-scale JSON in bench/results/)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

from semillero.bench import CaseName
from semillero.bench.flops import FORMULA
from semillero.files import atomic_write_text

# The issue's targets (ours vs the sources' recipes) and the source's own GRPO figure.
CLM_SPEEDUP = 2.5
CLM_MFU = 0.35
SFT_SPEEDUP = 2.0
GRPO_SOURCE_SECONDS = 196.0  # per step on an L40S (the Iberotales notebook)
START, END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def _ok(entry: dict[str, Any] | None) -> bool:
    return entry is not None and "skipped" not in entry and "error" not in entry


def _find(results: list[dict[str, Any]], case: str, variant: str) -> dict[str, Any] | None:
    for r in results:
        if r["case"] == case and r["variant"] == variant and _ok(r):
            return r
    return None


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured value and met / not met (None: not measured)."""
    rows: list[dict[str, Any]] = []
    seed = _find(results, "clm", "seed")
    ours = [r for v in ("ours", "ours_compiled") if (r := _find(results, "clm", v))]
    best = max(ours, key=lambda r: r["useful_tokens_per_second"], default=None)
    if seed and best:
        ratio = best["useful_tokens_per_second"] / seed["useful_tokens_per_second"]
        rows.append(
            _row("clm", f"{best['variant']} vs seed useful tokens/s", ratio, CLM_SPEEDUP, "x")
        )
    if best:
        rows.append(_row("clm", f"{best['variant']} MFU", best.get("mfu"), CLM_MFU, "%"))
    for adapter in ("lora", "qlora"):
        padded = _find(results, "sft", f"{adapter}_padded")
        packed = _find(results, "sft", f"{adapter}_packed")
        if padded and packed:
            ratio = packed["useful_tokens_per_second"] / padded["useful_tokens_per_second"]
            rows.append(
                _row("sft", f"{adapter}: packed vs padded useful tokens/s", ratio, SFT_SPEEDUP, "x")
            )
    grpo = [r for r in results if r["case"] == "grpo" and _ok(r)]
    if grpo:
        fastest = min(grpo, key=lambda r: r["step_seconds"])
        rows.append(
            {
                "case": "grpo",
                "what": f"{fastest['variant']} s/step "
                f"(source: {GRPO_SOURCE_SECONDS:.0f} s on an L40S)",
                "value": f"{fastest['step_seconds']:.1f} s",
                "target": "reported, no target",
                "met": None,
            }
        )
    return rows


def _row(case: str, what: str, value: float | None, target: float, unit: str) -> dict[str, Any]:
    shown = "n/a" if value is None else f"{value:.1%}" if unit == "%" else f"{value:.2f}x"
    goal = f">= {target:.0%}" if unit == "%" else f">= {target}x"
    return {
        "case": case,
        "what": what,
        "value": shown,
        "target": goal,
        "met": None if value is None else value >= target,
    }


def markdown(doc: dict[str, Any]) -> str:
    """The run's tables: one per case, then the targets."""
    m = doc["machine"]
    dirty = " (dirty)" if doc["git"].get("dirty") else ""
    lines = [
        f"## {m['device']} — {doc['date']} ({doc['scale']} scale)",
        "",
        f"Commit `{doc['git'].get('commit') or '?'}`{dirty}; "
        + ", ".join(f"{k} {v}" for k, v in doc["stack"].items() if v)
        + ".",
        "",
    ]
    if doc["scale"] == "tiny":
        lines += ["Tiny twins: a check that the benchmark runs, **not a result**.", ""]
    lines += [f"`{FORMULA}`", ""]
    lines += [
        "| case | variant | useful tokens/s | s/step | generation s | training s | peak GiB "
        "| MFU | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in doc["results"]:
        note = r.get("skipped") or r.get("error") or f"{r.get('precision')}, batch {r.get('batch')}"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["case"],
                    r["variant"],
                    _num(r.get("useful_tokens_per_second"), "{:,.0f}"),
                    _num(r.get("step_seconds"), "{:.3f}"),
                    _num(r.get("generation_seconds"), "{:.2f}"),
                    _num(r.get("training_seconds"), "{:.2f}"),
                    _num(r.get("peak_memory_gib"), "{:.1f}"),
                    _num(r.get("mfu"), "{:.1%}"),
                    str(note).replace("|", "/"),
                ]
            )
            + " |"
        )
    for r in doc["results"]:
        if r.get("profile"):
            lines += [
                "",
                f"Where a step of {r['case']}/{r['variant']} goes (one profiled step):",
                "",
            ]
            lines += [
                "| operator | self ms | share of step | calls |",
                "| --- | ---: | ---: | ---: |",
            ]
            for op in r["profile"]:
                share = _num(op["share_of_step"], "{:.1%}")
                lines.append(
                    f"| `{op['operator']}` | {op['self_ms']:.2f} | {share} | {op['calls']} |"
                )
    rows = doc.get("targets") or []
    if rows:
        lines += [
            "",
            "| case | target | measured | goal | met |",
            "| --- | --- | --- | --- | --- |",
        ]
        for t in rows:
            met = "n/a" if t["met"] is None else "**met**" if t["met"] else "**not met**"
            lines.append(f"| {t['case']} | {t['what']} | {t['value']} | {t['target']} | {met} |")
    return "\n".join(lines) + "\n"


def _num(value: Any, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def plot(doc: dict[str, Any], path: Path) -> None:
    """Bars: useful tokens/s per variant (clm, sft); seconds per step split into generation
    and training (grpo)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in ("clm", "sft", "grpo") if any(r["case"] == c for r in doc["results"])]
    fig, axes = plt.subplots(1, max(len(cases), 1), figsize=(5 * max(len(cases), 1), 4))
    axes = axes if len(cases) > 1 else [axes]
    for ax, case in zip(axes, cases, strict=False):
        rows = [r for r in doc["results"] if r["case"] == case and _ok(r)]
        names = [r["variant"] for r in rows]
        if case == "grpo":
            gen = [r["generation_seconds"] for r in rows]
            train = [r["training_seconds"] for r in rows]
            ax.bar(names, gen, label="generation")
            ax.bar(names, train, bottom=gen, label="training")
            ax.set_ylabel("seconds per step")
            ax.legend()
        else:
            ax.bar(names, [r["useful_tokens_per_second"] for r in rows])
            ax.set_ylabel("useful tokens / s")
        ax.set_title(case)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"semillero bench: {doc['machine']['device']}, {doc['date']} ({doc['scale']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(doc: dict[str, Any], folder: Path) -> dict[str, Path]:
    """<device>-<date>.json/.md/.png in `folder`; the JSON is rewritten after every case, so
    a run that stops keeps the cases it finished. A run of some of the cases only
    (`cases=[clm]`) is <device>-<date>-clm.*, so running the cases one at a time, as on a
    machine with a time limit per job, keeps each one's files."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{slug(doc['machine']['device'])}-{doc['date']}"
    cases = doc["config"]["cases"]
    if sorted(cases) != sorted(get_args(CaseName)):
        stem += "-" + "-".join(cases)
    paths = {
        "json": folder / f"{stem}.json",
        "md": folder / f"{stem}.md",
        "png": folder / f"{stem}.png",
    }
    doc["targets"] = targets(doc["results"])
    if doc["scale"] == "tiny":  # tiny twins say nothing about a target
        doc["targets"] = [
            t | {"met": None, "target": f"{t['target']} (tiny)"} for t in doc["targets"]
        ]
    atomic_write_text(paths["json"], json.dumps(doc, indent=2) + "\n")
    paths["md"].write_text(markdown(doc), encoding="utf-8")
    plot(doc, paths["png"])
    return paths


def update_readme(results: Path, readme: Path) -> int:
    """Rebuilds the results section of bench/README.md from every full-scale JSON in
    `results`, newest first. Returns how many runs it shows."""
    docs = []
    for path in sorted(results.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("scale") == "full":
            docs.append((doc["date"], path, doc))
    body = [
        f"{markdown(doc)}\nFiles: `{path.name}`, `{path.with_suffix('.png').name}`.\n"
        for _, path, doc in sorted(docs, key=lambda d: d[0], reverse=True)
    ]
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} section to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    section = "\n".join(body) if body else "No full-scale run has been recorded yet.\n"
    readme.write_text(f"{head}{START}\n{section}{END}{tail}", encoding="utf-8")
    return len(docs)
