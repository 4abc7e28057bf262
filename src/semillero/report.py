"""`semillero report`: a study's records -> report.md, report.csv and PNG plots.

It reads the run records only (never W&B), and puts the source's published numbers
beside ours. A study's `report:` config says what a row is (a model or a data set), which
metrics to show, which one picks the winner, and whether to draw curves and list samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from semillero.config.compose import GROUPS
from semillero.config.schema import ReportConfig
from semillero.errors import SemilleroError
from semillero.records import RunRecord, find_records

SAMPLE_CHARS = 120
# Five significant digits: 4.4004 as the seed prints it, and GRPO's 0.00013613 not as 0.0001.
FLOAT = ".5g"
# How a row is matched to the reference CSV: models by hub id, data sets by name.
JOIN_ON = {"model": "hub_id", "dataset": "dataset"}


def label(record: RunRecord, cfg: ReportConfig) -> str:
    if cfg.rows == "adapter":  # a grid over adapter settings: name, rank and targets
        a = record.config["adapter"]
        targets = a["target_modules"]
        targets = targets if isinstance(targets, str) else ",".join(targets)
        return f"{a['name']} r={a['r']} {targets}"
    return str(record.config[cfg.rows]["name"])


def all_metrics(cfg: ReportConfig) -> list[str]:
    """Every metric the report shows, main table first, without repeats."""
    extra = [m for ms in cfg.tables.values() for m in ms]
    ranked = [cfg.rank_by] if cfg.rank_by else []
    return list(dict.fromkeys([*cfg.metrics, *extra, *ranked]))


def records_table(records: list[RunRecord], cfg: ReportConfig) -> pd.DataFrame:
    """One row per finished run (each run folder holds one record)."""
    rows = []
    for r in (r for r in records if r.status == "done"):
        row: dict[str, Any] = {
            cfg.rows: label(r, cfg),
            "hub_id": r.config["model"]["hub_id"],
            "dataset": r.config["dataset"]["name"],
        }
        row |= {m: r.metrics.get(m) for m in all_metrics(cfg)}
        row["sample"] = (r.samples[0] if r.samples else "").replace("\n", " ")[:SAMPLE_CHARS]
        row["run"] = r.run_name
        rows.append(row)
    return pd.DataFrame(rows)


def with_reference(table: pd.DataFrame, cfg: ReportConfig, root: Path) -> pd.DataFrame:
    """Adds `published_<metric>` columns from the reference CSV."""
    if not cfg.reference:
        return table
    key = JOIN_ON[cfg.rows]
    ref = pd.read_csv(root / cfg.reference)
    if key not in ref.columns:
        raise SemilleroError(
            f"{cfg.reference} has no {key!r} column: a report with one row per {cfg.rows} "
            f"matches the published numbers by {key}"
        )
    ref = ref.rename(columns={c: f"published_{c}" for c in ref.columns if c != key})
    return table.merge(ref, on=key, how="left")


def build(records: list[RunRecord], cfg: ReportConfig, folder: Path, root: Path) -> str:
    """Writes report.md, report.csv and the plots into `folder`; returns the markdown."""
    table = records_table(records, cfg)
    if table.empty:
        raise SemilleroError(
            f"no finished runs under {folder}: run the study first (make sweep EXP=...)"
        )
    # Ties (identical twins) keep a stable, alphabetical order.
    order = [cfg.rank_by, cfg.rows] if cfg.rank_by else [cfg.rows]
    table = with_reference(table, cfg, root).sort_values(order, kind="stable")
    table = table.reset_index(drop=True)
    table.to_csv(folder / "report.csv", index=False)
    done = [r for r in records if r.status == "done"]
    last = records[-1]
    tiny = any(r.scale == "tiny" for r in records)
    plot(table, cfg, folder / "report.png", device=last.device, tiny=tiny)
    if cfg.curves:
        plot_curves(done, cfg, folder / "curves.png")

    lines = [f"# {cfg.title}", ""]
    if tiny:
        lines += [
            "> **Tiny scale.** These runs use tiny random-init twins and our own fixture "
            "text: they check the pipeline end to end; they do not reproduce the published "
            "numbers, which are shown for the layout only. Twins of models with the same "
            "class and shape are the same network under the same seed, so their numbers "
            "coincide.",
            "",
        ]
    given = common_overrides(done)
    if given:
        lines += [
            "> **Settings given on the command line**, on top of the study's: "
            + ", ".join(f"`{o}`" for o in given)
            + ". The published numbers were not made with them.",
            "",
        ]
    sample = [] if cfg.samples else ["sample"]
    if cfg.table_title:
        lines += [f"### {cfg.table_title}", ""]
    lines += [_markdown(table[_columns(table, cfg, cfg.metrics) + sample]), ""]
    for title, metrics in cfg.tables.items():
        lines += [f"### {title}", "", _markdown(table[_columns(table, cfg, metrics)]), ""]
    lines += _winner_lines(table, cfg)
    if cfg.reference_note:
        lines += ["", f"Published numbers: {cfg.reference_note} (`{cfg.reference}`)."]
        lines += [f"Our numbers: {last.device}, {last.precision}."]
    lines += ["", f"![{', '.join(cfg.plot or cfg.metrics[:2])}](report.png)"]
    if cfg.curves:
        lines += ["", f"![{', '.join(cfg.curves)} by step](curves.png)"]
    for section in cfg.sections:
        lines += section_lines(done, cfg, section)
    if cfg.samples:
        lines += ["", "## Samples", ""]
        for r in done:
            lines += [f"### {label(r, cfg)}", ""]
            lines += [f"{i}. {s.strip()}".replace("\n", " / ") for i, s in enumerate(r.samples, 1)]
            lines.append("")
    failed = [r for r in records if r.status != "done"]
    if failed:
        lines += ["", "## Runs not finished", ""]
        lines += [f"- {r.run_name}: {r.status} {r.error or ''}".rstrip() for r in failed]
    lines += [
        "",
        "## Environment",
        "",
        f"- device: {last.device}; precision: {last.precision}",
        f"- git: {last.git.get('commit')} (dirty: {last.git.get('dirty')})",
        "- stack: " + ", ".join(f"{k} {v}" for k, v in last.stack.items() if v),
    ]
    if last.image:
        lines.append(
            f"- image: {last.image.get('image')} (commit {last.image.get('commit')}, "
            f"{last.image.get('lock')} sha256 {last.image.get('lock_sha256')})"
        )
    lines.append("")
    text = "\n".join(lines)
    (folder / "report.md").write_text(text, encoding="utf-8")
    return text


def common_overrides(records: list[RunRecord]) -> list[str]:
    """The settings every run was given besides its study, scale and config-group choices
    (`trainer.max_steps=3` ...; a choice such as model=... is a row of the table already):
    a report made with them says so, beside numbers published without them."""
    if not records:
        return []
    shared = set.intersection(*(set(r.overrides) for r in records))
    skip = {*GROUPS, "scale"}
    return sorted(o for o in shared if o.partition("=")[0].lstrip("+~") not in skip)


# Units of the metrics that have one, for the charts' titles.
UNITS = {"train_runtime": "s", "eval_runtime": "s", "train_samples_per_second": "rows/s"}

SECTION_TITLES = {
    "before_after": "Held-out evaluation, before and after training",
    "groups": "Format adherence by group, before and after",
    "contrast": "Contrast: the same questions before and after training",
}
CELL_CHARS = 300  # long generations are cut in the tables (the record keeps them whole)


def section_lines(records: list[RunRecord], cfg: ReportConfig, section: str) -> list[str]:
    """A table each run's method wrote into its record (record.tables[section])."""
    lines = ["", f"## {SECTION_TITLES.get(section, section)}", ""]
    for r in records:
        rows = r.tables.get(section)
        if not rows:
            lines += [f"- {label(r, cfg)}: no `{section}` table in its record", ""]
            continue
        if len(records) > 1:
            lines += [f"### {label(r, cfg)}", ""]
        cells = [{k: _cell(v) for k, v in row.items()} for row in rows]
        lines += [_markdown(pd.DataFrame(cells)), ""]
    return lines


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        text = " / ".join(line.strip() for line in value.strip().splitlines())
        text = text.replace("|", "\\|")
        return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
    return value


def _columns(table: pd.DataFrame, cfg: ReportConfig, metrics: list[str]) -> list[str]:
    """The row label, then each metric with its published value beside it when there is one."""
    cols: list[str] = [cfg.rows]
    for m in metrics:
        cols += [m] + ([f"published_{m}"] if f"published_{m}" in table else [])
    return cols


def _winner_lines(table: pd.DataFrame, cfg: ReportConfig) -> list[str]:
    if not cfg.rank_by:
        return []
    best = table.iloc[0]
    lines = [f"**Winner by {cfg.rank_by}:** {best[cfg.rows]} ({best[cfg.rank_by]:.4f})"]
    published = f"published_{cfg.rank_by}"
    if published in table and table[published].notna().any():
        pub = table.dropna(subset=[published]).sort_values(published).iloc[0]
        lines.append(f"**Published winner:** {pub[cfg.rows]} ({pub[published]:.4f})")
    return lines


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(
    table: pd.DataFrame, cfg: ReportConfig, path: Path, device: str, tiny: bool = False
) -> None:
    """One bar chart per metric: ours beside the published value, per row. A tiny-scale
    chart says on itself that its bars are not results."""
    plt = _pyplot()
    metrics = cfg.plot or cfg.metrics[:2]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.5), squeeze=False)
    x = range(len(table))
    for ax, metric in zip(axes[0], metrics, strict=True):
        published = f"published_{metric}"
        has_published = published in table and table[published].notna().any()
        width = 0.4 if has_published else 0.8
        ax.bar([i - width / 2 * has_published for i in x], table[metric], width, label="ours")
        if has_published:
            ax.bar([i + width / 2 for i in x], table[published], width, label="published")
            ax.margins(y=0.18)  # headroom above the bars: the legend sits there
            ax.legend(fontsize=8, loc="upper center", ncol=2, framealpha=0.8)
        ax.set_title(f"{metric} ({UNITS[metric]})" if metric in UNITS else metric)
        ax.set_xticks(list(x))
        ax.set_xticklabels(table[cfg.rows], rotation=35, ha="right", fontsize=8)
    note = f"; published: {cfg.reference_note}" if cfg.reference_note else ""
    caveat = "\nTINY SCALE: random-init twins on fixture text; a pipeline check, not results"
    fig.suptitle(f"{cfg.title}\nours: {device}{note}{caveat if tiny else ''}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(records: list[RunRecord], cfg: ReportConfig, path: Path) -> None:
    """Each logged metric against the training step, one line per run."""
    plt = _pyplot()
    cols = min(3, len(cfg.curves))
    rows = -(-len(cfg.curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(cfg.curves) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, cfg.curves, strict=False):
        for r in records:
            points = [(h["step"], h[metric]) for h in r.history if metric in h]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="o", markersize=3, label=label(r, cfg))
        if "perplexity" in metric:
            ax.set_yscale("log")
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.suptitle(cfg.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(df: pd.DataFrame) -> str:
    return tabulate(df.to_dict("list"), headers="keys", tablefmt="github", floatfmt=FLOAT)


def console_table(folder: Path, cfg: ReportConfig) -> str:
    """The report's table for the terminal (no samples), with the winner if there is one."""
    table = pd.read_csv(folder / "report.csv")
    cols = _columns(table, cfg, all_metrics(cfg))
    text = tabulate(table[cols].to_dict("list"), headers="keys", floatfmt=FLOAT)
    if cfg.rank_by:
        best = table.iloc[0]
        text += f"\n\nwinner by {cfg.rank_by}: {best[cfg.rows]} ({best[cfg.rank_by]:.4f})"
    return text


def report_study(folder: Path, cfg: ReportConfig, root: Path, names: set[str]) -> str:
    """The report of the runs named (the study's current grid; older configs' runs in the
    same folder are left out)."""
    records = find_records(folder, names) if folder.is_dir() else []
    if not records:
        raise SemilleroError(f"no runs under {folder}: run the study first (make sweep EXP=...)")
    return build(records, cfg, folder, root)
