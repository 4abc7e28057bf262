"""Loading, cleaning, splitting and tokenising; bad files fail with one clear error."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import pytest

from semillero.config.compose import compose, validate
from semillero.config.schema import DatasetConfig
from semillero.data.clean import drop_blank, limit, split
from semillero.data.load import load_raw
from semillero.data.source import FIXTURES, Source, resolve_source
from semillero.data.tokenize import tokenize
from semillero.errors import DataError
from semillero.models.twin import build_twin


def poetry(**changes: object) -> DatasetConfig:
    cfg = validate(compose(["dataset=spanish-poetry"])).dataset
    return DatasetConfig.model_validate(cfg.model_dump() | changes)


def write_csv(path: Path, rows: list[str], header: str = "author,content,title") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def good_rows(n: int) -> list[str]:
    return [f'Autora {i},"Verso {i} de la orilla\ny su sombra",Poema {i}' for i in range(n)]


def test_fixture_has_the_schema_and_the_seed_cleaning() -> None:
    cfg = poetry()
    raw = load_raw(cfg, resolve_source(cfg, "tiny"))
    assert raw.column_names == ["author", "content", "title"]
    assert len(raw) >= 300
    clean, report = drop_blank(raw, cfg)
    assert report.rows_dropped == 3  # an empty cell, spaces, and newlines-and-spaces
    assert len(clean) == len(raw) - 3
    assert all(t and t.strip() for t in clean["content"])


def test_a_few_blank_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = [*good_rows(200), "X,,vacío", 'Y,"   ",espacios', 'Z,"\n\t",saltos']
    cfg = poetry(
        path=str(write_csv(tmp_path / "p.csv", rows)), cleaning={"max_drop_fraction": 0.05}
    )
    clean, report = drop_blank(load_raw(cfg, resolve_source(cfg, "full")), cfg)
    assert (report.rows_in, report.rows_dropped, len(clean)) == (203, 3, 200)


@pytest.mark.parametrize(
    "bad",
    [["X,,vacío"] * 10, ['Y,"   ",espacios'] * 10, ['Z,"\n  \n",saltos'] * 10],
    ids=["null", "blank", "whitespace"],
)
def test_too_many_blank_rows_is_an_error(tmp_path: Path, bad: list[str]) -> None:
    cfg = poetry(path=str(write_csv(tmp_path / "p.csv", good_rows(20) + bad)))
    with pytest.raises(DataError, match="max_drop_fraction") as err:
        drop_blank(load_raw(cfg, resolve_source(cfg, "full")), cfg)
    assert "10 of 30 rows" in str(err.value)


def test_all_blank_is_an_error_even_with_no_limit(tmp_path: Path) -> None:
    cfg = poetry(
        path=str(write_csv(tmp_path / "p.csv", ["X,,a", 'Y," ",b'])),
        cleaning={"max_drop_fraction": 1.0},
    )
    with pytest.raises(DataError, match="2 of 2 rows"):
        drop_blank(load_raw(cfg, resolve_source(cfg, "full")), cfg)


def test_blank_rows_are_named_by_their_data_row(tmp_path: Path) -> None:
    cfg = poetry(
        path=str(write_csv(tmp_path / "p.csv", ["A,uno,T", "X,,vacío", "B,dos,U"])),
        cleaning={"drop_blank": False},
    )
    with pytest.raises(DataError, match=r"\(rows 2\.\.\.\)"):
        drop_blank(load_raw(cfg, resolve_source(cfg, "full")), cfg)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.csv", "author,content,title\n", "holds a header and no rows"),
        ("p.jsonl", "\n\n", "holds no rows (it is empty)"),
        ("p.jsonl", "", "holds no rows (it is empty)"),
    ],
)
def test_a_file_without_rows_says_so(name: str, text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    cfg = poetry(path=str(path))
    with pytest.raises(DataError, match=re.escape(message)):
        load_raw(cfg, resolve_source(cfg, "full"))


def test_too_few_rows_to_split_names_the_settings() -> None:
    ds = datasets.Dataset.from_dict({"content": ["solo uno"]})
    with pytest.raises(DataError, match=r"too few to hold out test_size=0\.1.*dataset\.test_size"):
        split(ds, 0.1, seed=0)


def test_non_utf8_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("author,content,title\nA,canción,T\nB,corazón,U\n".encode("latin-1"))
    cfg = poetry(path=str(path))
    with pytest.raises(DataError, match=r"not UTF-8 \(byte 0xf3 on line 2\).*iconv"):
        load_raw(cfg, resolve_source(cfg, "full"))


def test_missing_column_lists_what_is_there(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ["A,verso,T"], header="author,poem,title")
    cfg = poetry(path=str(path))
    with pytest.raises(DataError, match="no column 'content'; it has author, poem, title") as err:
        load_raw(cfg, resolve_source(cfg, "full"))
    assert "dataset.text_column" in str(err.value)


def test_missing_local_file(tmp_path: Path) -> None:
    cfg = poetry(path=str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match="does not exist"):
        load_raw(cfg, resolve_source(cfg, "full"))


def test_hub_style_directory_loads(tmp_path: Path) -> None:
    """A local folder laid out like the hub repo (one poems.csv) loads like the hub id."""
    (tmp_path / "repo").mkdir()
    write_csv(tmp_path / "repo" / "poems.csv", good_rows(12))
    cfg = poetry(path=str(tmp_path / "repo"))
    assert len(load_raw(cfg, resolve_source(cfg, "full"))) == 12


def test_split_is_seeded_and_limited() -> None:
    cfg = poetry(max_train_samples=50, max_eval_samples=10)
    raw = load_raw(cfg, Source("fixture", str(FIXTURES / cfg.fixture)))
    a, b, c = (split(raw, cfg.test_size, seed) for seed in (42, 42, 7))
    assert a["train"]["content"] == b["train"]["content"]
    assert a["train"]["content"] != c["train"]["content"]
    assert len(a["test"]) == round(len(raw) * 0.1)
    assert len(limit(a["train"], 50, "train")) == 50
    assert limit(a["train"], 50, "train")["content"] == a["train"]["content"][:50]
    assert len(limit(a["test"], 10**6, "test")) == len(a["test"])  # fewer rows: all of them


def small_splits() -> datasets.DatasetDict:
    """40 train / 8 test rows of the cleaned poetry fixture."""
    cfg = poetry()
    clean, _ = drop_blank(load_raw(cfg, resolve_source(cfg, "tiny")), cfg)
    parts = split(clean, cfg.test_size, 0)
    return datasets.DatasetDict(
        train=limit(parts["train"], 40, "train"), test=limit(parts["test"], 8, "test")
    )


@pytest.mark.parametrize(
    ("padding", "length"), [("max_length", 256), ("dynamic", 256), ("packing", 32)]
)
def test_tokenisation_modes(padding: str, length: int, tmp_path: Path) -> None:
    run = validate(compose(["scale=tiny", "model=distilgpt2", f"paths.cache_dir={tmp_path}"]))
    _, tokenizer = build_twin(run.model, tmp_path)
    tokenizer.pad_token = tokenizer.eos_token
    splits = small_splits()
    out = tokenize(splits, tokenizer, "content", length, padding)  # type: ignore[arg-type]
    assert out["train"].column_names == ["input_ids", "attention_mask"]
    lengths = {len(ids) for ids in out["train"]["input_ids"]}
    if padding == "max_length":
        assert lengths == {256}
    elif padding == "dynamic":
        assert max(lengths) <= 256 and len(lengths) > 10  # poems differ in length
    else:  # packing: full blocks, but for the last one
        assert sorted(len(x) for x in out["train"]["input_ids"])[1:] == [32] * (
            len(out["train"]) - 1
        )
        assert len(out["train"]) > 40  # 40 poems of ~90 tokens fill more than 40 blocks


def test_tokenisation_is_cached_by_fingerprint(tmp_path: Path) -> None:
    run = validate(compose(["scale=tiny", "model=distilgpt2"]))
    _, tokenizer = build_twin(run.model, tmp_path)
    tokenizer.pad_token = tokenizer.eos_token
    splits = small_splits()
    first = tokenize(splits, tokenizer, "content", 64, "max_length")
    second = tokenize(splits, tokenizer, "content", 64, "max_length")
    assert first["train"]._fingerprint == second["train"]._fingerprint
    assert first["train"].cache_files == second["train"].cache_files  # read back, not redone
    assert first["train"].cache_files
