from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from fairaudit.config import AuditSubsetConfig, ColumnMapping
from fairaudit.corpus import audit_subset_mask, binary_gold, read_corpus
from fairaudit.exceptions import InputError
from tests.cases import case_dir

DAVIDSON = ColumnMapping(id="", text="tweet", gold_label="class", keep=("count", "neither"))


def test_davidson_reads_every_tweet_with_its_own_id(davidson_csv: Path) -> None:
    corpus = read_corpus(davidson_csv, DAVIDSON, positive_labels=[0, 1], negative_labels=[2])
    # Independent reading with the csv module: record boundaries, not line boundaries.
    with davidson_csv.open(newline="", encoding="utf-8") as handle:
        records = list(csv.reader(handle))[1:]
    assert len(corpus) == len(records) == 24_783
    assert corpus.index.tolist() == [r[0] for r in records]
    assert corpus["text"].tolist() == [r[6] for r in records]
    assert corpus.index[-1] == "25296"  # ids have gaps: not the row position
    assert corpus["text"].str.contains("&amp;").any()  # HTML entities kept as in the file
    assert corpus["text"].str.contains("\n").any()
    classes = pd.Series([r[5] for r in records])
    assert int((~corpus["gold_toxic"]).sum()) == int((classes == "2").sum()) == 4_163


def test_sklearn_split_reproduces_the_test_rows(davidson_csv: Path) -> None:
    corpus = read_corpus(davidson_csv, DAVIDSON, positive_labels=[0, 1], negative_labels=[2])
    mask = audit_subset_mask(corpus, AuditSubsetConfig(test_size=0.3, random_state=42))
    frame = pd.read_csv(davidson_csv)
    _, x_test, _, _ = train_test_split(
        frame["tweet"], frame["class"], test_size=0.3, random_state=42
    )
    assert mask.sum() == len(x_test) == 7_435
    assert set(corpus.index[mask]) == {str(i) for i in frame.iloc[x_test.index, 0]}


def test_case_01_text_none_is_a_message_and_empty_group_is_missing() -> None:
    corpus = read_corpus(
        case_dir("01") / "input.csv",
        ColumnMapping(id="id", text="text", gold_label="gold_toxic", group="dialect_group"),
    )
    assert len(corpus) == 14
    assert corpus.loc["m08", "text"] == "None"
    assert corpus["group"].isna().sum() == 2
    assert sorted(corpus.index[corpus["group"].isna()]) == ["m11", "m14"]


CASE_08 = {
    "n01": "good morning y'all",
    "n02": 'she be like\n"who invited him"\nand walk off',
    "n03": "ok, bet. see you at 5",
    "n04": "you a clown\nfr\nlog off",
    "n05": 'he said "ion care", then left',
    "n06": "# not a comment, just a hashtag-looking line",
    "n07": "line one\n\nline three after a blank line",
    "n08": "nobody asked you, loser",
    "n09": "trailing spaces kept   ",
    "n10": "we finna eat 🍗\nwho coming",
}


def test_case_08_embedded_newlines_round_trip(tmp_path: Path) -> None:
    mapping = ColumnMapping(id="id", text="text", gold_label="gold_toxic")
    corpus = read_corpus(case_dir("08") / "input.csv", mapping)
    assert corpus["text"].to_dict() == CASE_08
    assert corpus["gold_toxic"].mean() == pytest.approx(0.2)
    exported = tmp_path / "export.csv"
    corpus.reset_index()[["id", "text", "gold_label"]].rename(
        columns={"gold_label": "gold_toxic"}
    ).to_csv(exported, index=False)
    again = read_corpus(exported, mapping)
    assert again["text"].to_dict() == CASE_08


def test_jsonl_and_parquet_read_the_same(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["x y", "None"], "gold": [0, 1]})
    frame.to_json(tmp_path / "c.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "c.parquet")
    mapping = ColumnMapping(id="id", text="text", gold_label="gold")
    a = read_corpus(tmp_path / "c.jsonl", mapping)
    b = read_corpus(tmp_path / "c.parquet", mapping)
    pd.testing.assert_frame_equal(a[["text", "gold_toxic"]], b[["text", "gold_toxic"]])
    assert a["gold_toxic"].tolist() == [False, True]


@pytest.mark.parametrize(
    ("content", "mapping", "message"),
    [
        ("id,text\n1,a\n1,b\n", ColumnMapping(id="id", text="text"), "duplicate id"),
        ("id,text\n1,a\n2,\n", ColumnMapping(id="id", text="text"), "empty text"),
        ("id,text\n,a\n2,b\n", ColumnMapping(id="id", text="text"), "empty id"),
        ("id,txt\n1,a\n", ColumnMapping(id="id", text="text"), "no column for text"),
    ],
)
def test_bad_input_names_file_row_and_column(
    tmp_path: Path, content: str, mapping: ColumnMapping, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as error:
        read_corpus(path, mapping)
    assert str(path) in str(error.value)


def test_non_string_text_in_jsonl_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": 5}\n')
    with pytest.raises(InputError, match=r"column 'text'.*non-text.*row\(s\) 2"):
        read_corpus(path, ColumnMapping(id="id", text="text"))


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    with pytest.raises(InputError, match="row 2"):
        read_corpus(path, ColumnMapping(id="id", text="text"))


def test_case_04_string_labels_need_an_explicit_positive_label() -> None:
    path = case_dir("04") / "input.csv"
    mapping = ColumnMapping(id="id", text="text", gold_label="gold_label")
    with pytest.raises(InputError, match=r"abusive.*benign"):
        read_corpus(path, mapping)
    corpus = read_corpus(path, mapping, positive_labels=["abusive"])
    expected = pd.read_csv(path)["gold_label"].eq("abusive").to_numpy()
    assert np.array_equal(corpus["gold_toxic"].to_numpy(dtype=bool), expected)


def test_positive_label_that_does_not_occur_is_an_error() -> None:
    values = pd.Series(["abusive", "benign"])
    with pytest.raises(InputError, match="do not occur"):
        binary_gold(values, positive=["toxic"], column="gold")


def test_unknown_label_outside_positive_and_negative_is_an_error() -> None:
    values = pd.Series(["0", "1", "2", "x"])
    with pytest.raises(InputError, match="neither positive"):
        binary_gold(values, positive=[0, 1], negative=[2], column="class")


def test_a_user_column_named_row_does_not_clash(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("id,row,text\na,7,hello\nb,9,there\n")
    corpus = read_corpus(path, ColumnMapping(id="id", text="text"))
    assert corpus["row"].tolist() == [1, 2]  # fairaudit's own 1-based data row numbers


def test_float_labels_from_parquet_are_zero_one(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"id": ["a", "b", "c"], "text": ["x", "y", "z"], "gold": [0.0, 1.0, None]}
    )
    frame.to_parquet(tmp_path / "c.parquet")
    corpus = read_corpus(
        tmp_path / "c.parquet", ColumnMapping(id="id", text="text", gold_label="gold")
    )
    assert corpus["gold_toxic"].tolist() == [False, True, pd.NA]
