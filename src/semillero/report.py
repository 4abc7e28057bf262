"""`semillero report`: a study's records -> report.md, report.csv and a PNG plot.

It reads the run records only (never W&B), and puts the source's published numbers
beside ours.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from semillero.config.schema import ReportConfig
from semillero.errors import SemilleroError
from semillero.records import RunRecord, find_records

SAMPLE_CHARS = 120


def records_table(records: list[RunRecord], cfg: ReportConfig) -> pd.DataFrame:
    """One row per finished run (each run folder holds one record)."""
    rows = []
    for r in (r for r in records if r.status == "done"):
        row = {"model": r.config["model"]["name"], "hub_id": r.config["model"]["hub_id"]}
        row |= {m: r.metrics.get(m) for m in cfg.metrics}
        row["sample"] = (r.samples[0] if r.samples else "").replace("\n", " ")[:SAMPLE_CHARS]
        row["run"] = r.run_name
        rows.append(row)
    return pd.DataFrame(rows)


def with_reference(table: pd.DataFrame, cfg: ReportConfig, root: Path) -> pd.DataFrame:
    """Adds `published_<metric>` columns from the reference CSV, matched by hub id."""
    if not cfg.reference:
        return table
    ref = pd.read_csv(root / cfg.reference)
    ref = ref.rename(columns={c: f"published_{c}" for c in ref.columns if c != "hub_id"})
    return table.merge(ref, on="hub_id", how="left")


def build(records: list[RunRecord], cfg: ReportConfig, folder: Path, root: Path) -> str:
    """Writes report.md, report.csv and report.png into `folder`; returns the markdown."""
    table = records_table(records, cfg)
    if table.empty:
        raise SemilleroError(
            f"no finished runs under {folder}: run the study first (make sweep EXP=...)"
        )
    # Ties (identical twins) keep a stable, alphabetical order.
    table = with_reference(table, cfg, root).sort_values([cfg.rank_by, "model"], kind="stable")
    table = table.reset_index(drop=True)
    table.to_csv(folder / "report.csv", index=False)
    plot(table, cfg, folder / "report.png", device=records[-1].device)

    scale = {r.scale for r in records}
    cols = ["model"]
    for m in cfg.metrics:
        cols += [m] + ([f"published_{m}"] if f"published_{m}" in table else [])
    cols.append("sample")
    winner = table.iloc[0]
    lines = [f"# {cfg.title}", ""]
    if "tiny" in scale:
        lines += [
            "> **Tiny scale.** These runs use tiny random-init twins and our own fixture "
            "text: they check the pipeline end to end; they do not reproduce the published "
            "numbers, which are shown for the layout only. Twins of models with the same "
            "class and shape are the same network under the same seed, so their numbers "
            "coincide.",
            "",
        ]
    lines += [
        _markdown(table[cols]),
        "",
        f"**Winner by {cfg.rank_by}:** {winner['model']} ({winner[cfg.rank_by]:.4f})",
    ]
    if f"published_{cfg.rank_by}" in table:
        pub = table.dropna(subset=[f"published_{cfg.rank_by}"])
        if not pub.empty:
            best = pub.sort_values(f"published_{cfg.rank_by}").iloc[0]
            lines.append(
                f"**Published winner:** {best['model']} ({best[f'published_{cfg.rank_by}']:.4f})"
            )
    if cfg.reference_note:
        lines += ["", f"Published numbers: {cfg.reference_note} (`{cfg.reference}`)."]
        lines += [f"Our numbers: {records[-1].device}, {records[-1].precision}."]
    failed = [r for r in records if r.status != "done"]
    if failed:
        lines += ["", "## Runs not finished", ""]
        lines += [f"- {r.run_name}: {r.status} {r.error or ''}".rstrip() for r in failed]
    last = records[-1]
    lines += [
        "",
        "## Environment",
        "",
        f"- device: {last.device}; precision: {last.precision}",
        f"- git: {last.git.get('commit')} (dirty: {last.git.get('dirty')})",
        "- stack: " + ", ".join(f"{k} {v}" for k, v in last.stack.items() if v),
        "",
        "![metrics per model](report.png)",
        "",
    ]
    text = "\n".join(lines)
    (folder / "report.md").write_text(text, encoding="utf-8")
    return text


def plot(table: pd.DataFrame, cfg: ReportConfig, path: Path, device: str) -> None:
    """One bar chart per metric: ours beside the published value, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = cfg.plot or cfg.metrics[:2]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.5), squeeze=False)
    x = range(len(table))
    for ax, metric in zip(axes[0], metrics, strict=True):
        published = f"published_{metric}"
        width = 0.4 if published in table else 0.8
        ax.bar(
            [i - width / 2 * (published in table) for i in x], table[metric], width, label="ours"
        )
        if published in table:
            ax.bar([i + width / 2 for i in x], table[published], width, label="published")
            ax.legend()
        ax.set_title(metric)
        ax.set_xticks(list(x))
        ax.set_xticklabels(table["model"], rotation=35, ha="right", fontsize=8)
    fig.suptitle(
        f"{cfg.title}\nours: {device}"
        + (f"; published: {cfg.reference_note}" if cfg.reference_note else ""),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(df: pd.DataFrame) -> str:
    return tabulate(df.to_dict("list"), headers="keys", tablefmt="github", floatfmt=".4f")


def console_table(folder: Path, cfg: ReportConfig) -> str:
    """The report's table for the terminal (no samples), winner last."""
    table = pd.read_csv(folder / "report.csv")
    cols = ["model"] + [c for m in cfg.metrics for c in (m, f"published_{m}") if c in table]
    text = tabulate(table[cols].to_dict("list"), headers="keys", floatfmt=".4f")
    best = table.iloc[0]
    return f"{text}\n\nwinner by {cfg.rank_by}: {best['model']} ({best[cfg.rank_by]:.4f})"


def report_study(folder: Path, cfg: ReportConfig, root: Path) -> str:
    if not folder.is_dir():
        raise SemilleroError(f"no runs under {folder}: run the study first (make sweep EXP=...)")
    return build(find_records(folder), cfg, folder, root)
