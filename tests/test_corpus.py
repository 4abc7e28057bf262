"""Corpora (the seed's poetry + Wikipedia + MLSUM), mixing, and the shared held-out split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semillero.config.compose import compose, validate
from semillero.config.schema import CorpusConfig
from semillero.data.corpus import load_corpus
from semillero.data.prepare import prepare_data
from semillero.errors import ConfigError, DataError
from tests.helpers.runs import cheap, run_tiny


def corpus(*overrides: str) -> CorpusConfig:
    cfg = validate(compose(["dataset=combined", *overrides])).dataset
    assert isinstance(cfg, CorpusConfig)
    return cfg


def jsonl(path: Path, rows: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return str(path)


def test_each_source_is_mapped_to_content_and_cleaned() -> None:
    ds, info = load_corpus(corpus(), "tiny", seed=42)
    assert ds.column_names == ["content"]
    sources = info["sources"]
    assert list(sources) == ["poetry", "wikipedia", "news"]
    assert [sources[n]["text_column"] for n in sources] == ["content", "text", "text"]
    assert [sources[n]["rows_dropped"] for n in sources] == [3, 2, 2]  # null, blank, spaces
    assert len(ds) == sum(s["rows"] for s in sources.values())
    assert info["rows_dropped"] == 7
    assert all(t and t.strip() for t in ds["content"])


def test_interleaving_follows_the_probabilities(tmp_path: Path) -> None:
    a = jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}"} for i in range(2000)])
    b = jsonl(tmp_path / "b.jsonl", [{"text": f"b{i}"} for i in range(2000)])
    cfg = corpus(
        f"dataset.sources.wikipedia.path={a}",
        f"dataset.sources.news.path={b}",
        "dataset.sources.wikipedia.source_split=train",
        "dataset.sources.news.source_split=train",
        "dataset.sources.wikipedia.columns=[text]",
        "dataset.sources.news.columns=[text]",
        "~dataset.sources.poetry",
        "dataset.mixing=interleave",
        "dataset.probabilities={wikipedia: 0.7, news: 0.3}",
    )
    ds, _ = load_corpus(cfg, "full", seed=0)
    share = sum(t.startswith("a") for t in ds["content"]) / len(ds)
    assert share == pytest.approx(0.7, abs=0.03)
    again, _ = load_corpus(cfg, "full", seed=0)
    assert again["content"] == ds["content"]  # seeded


def test_probabilities_must_sum_to_one_and_match_the_sources() -> None:
    with pytest.raises(ConfigError, match=r"sum to 0\.9, not 1"):
        corpus(
            "dataset.mixing=interleave",
            "dataset.probabilities={poetry: 0.5, wikipedia: 0.3, news: 0.1}",
        )
    with pytest.raises(ConfigError, match="must name each source once"):
        corpus("dataset.mixing=interleave", "dataset.probabilities={poetry: 1.0}")
    with pytest.raises(ConfigError, match="only apply to mixing=interleave"):
        corpus("dataset.probabilities={poetry: 0.4, wikipedia: 0.3, news: 0.3}")


def test_a_source_without_its_text_column(tmp_path: Path) -> None:
    news = jsonl(tmp_path / "news.jsonl", [{"body": "Una noticia.", "title": "T"}] * 3)
    cfg = corpus(
        f"dataset.sources.news.path={news}",
        "dataset.sources.news.source_split=train",
        "~dataset.sources.poetry",
        "~dataset.sources.wikipedia",
    )
    with pytest.raises(DataError, match=r"'mlsum-es' .* has no column 'text'.*it has body, title"):
        load_corpus(cfg, "full", seed=0)


def test_a_slice_larger_than_the_data_set_is_an_error() -> None:
    run = validate(compose(["scale=tiny", "dataset.source_split='train[:5000]'"]))
    with pytest.raises(DataError, match="asks for row 5000, but 'train' has 1100 rows"):
        prepare_data(run)
    run = validate(compose(["scale=tiny", "dataset.source_split='train[:150%]'"]))
    with pytest.raises(DataError, match="cannot be read"):
        prepare_data(run)


def test_a_slice_within_the_data_set_is_kept() -> None:
    run = validate(compose(["scale=tiny", "dataset.source_split='train[:200]'"]))
    _, info = prepare_data(run)
    assert info["rows_in"] == 200


def test_shared_held_out_split_is_the_same_text_and_never_trained_on() -> None:
    runs = {
        name: validate(compose(cheap("experiment=poetry_vs_combined", f"dataset={name}")))
        for name in ("spanish-poetry", "combined")
    }
    data = {name: prepare_data(run) for name, run in runs.items()}
    shared = {name: splits["shared"]["content"] for name, (splits, _) in data.items()}
    assert shared["spanish-poetry"] == shared["combined"] and len(shared["combined"]) > 50
    for splits, _ in data.values():
        assert not set(splits["train"]["content"]) & set(shared["combined"])
    # The poetry run's own test split is the shared split (same source, seed and size);
    # the combined run had poetry rows of the shared split in its training pool, removed.
    assert data["spanish-poetry"][1]["shared_eval"]["removed_from_train"] == 0
    assert data["combined"][1]["shared_eval"]["removed_from_train"] > 0


def test_both_runs_report_the_shared_split_with_the_same_fingerprint() -> None:
    records = [
        run_tiny("experiment=poetry_vs_combined", f"dataset={name}")
        for name in ("spanish-poetry", "combined")
    ]
    fingerprints = [r.data["fingerprints"]["shared"] for r in records]
    assert fingerprints[0] == fingerprints[1]
    assert records[0].data["fingerprints"]["test"] != records[1].data["fingerprints"]["test"]
    for r in records:
        assert r.metrics["shared_perplexity"] > 1 and r.metrics["perplexity"] > 1
        assert len(r.samples) == 5 and r.samples[0].startswith("Había una vez un poeta")


def test_best_checkpoint_is_selected_by_eval_loss() -> None:
    record = run_tiny(
        "experiment=poetry_vs_combined",
        "dataset=spanish-poetry",
        "trainer.max_steps=8",
        "trainer.eval_strategy=steps",
        "trainer.eval_steps=2",
        "trainer.save_strategy=steps",
        "trainer.save_steps=2",
        "trainer.load_best_model_at_end=true",
        "trainer.learning_rate=0.05",  # large enough that the eval loss moves between saves
    )
    evals = {h["step"]: h["eval_loss"] for h in record.history if "eval_loss" in h}
    best_step = min(evals, key=evals.__getitem__)
    assert record.metrics["best_checkpoint"].endswith(f"checkpoint-{best_step}")
    assert record.metrics["best_metric"] == pytest.approx(evals[best_step])
    # The final evaluation runs on the best checkpoint, not on the last step.
    assert record.metrics["eval_loss"] == pytest.approx(evals[best_step], rel=1e-5)
