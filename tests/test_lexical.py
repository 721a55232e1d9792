"""Tests of fairaudit.lexical on hand-made sentences and lexicon files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fairaudit.exceptions import InputError
from fairaudit.lexical import (
    BIAS_LIST_FILE,
    NGRAM_FILE,
    Lexicons,
    count_terms,
    load_lexicons,
    read_ngram_dict,
)
from tests.conftest import shared_data_dir

LEXICONS = shared_data_dir() / "lexicons"


def write_lexicons(folder: Path, bias: str, ngrams: str) -> Path:
    (folder / BIAS_LIST_FILE).write_text(bias, encoding="utf-8")
    (folder / NGRAM_FILE).write_bytes(ngrams.encode("utf-8"))
    return folder


@pytest.fixture
def small(tmp_path: Path) -> Lexicons:
    bias = (
        "word,in list of Naughty/Bad Words,categorization\n"
        "damn,1,offensive-not-minority\n"
        "son of a bitch,1,offensive-not-minority\n"
        "s&m,1,offensive-not-minority\n"
        "dyke,1,offensive-minority-reference\n"
        "gays?,0,harmless-minority\n"
        "wom[ae]n,0,harmless-minority\n"
    )
    # Bare carriage returns, as in the Davidson file.
    ngrams = "ngram,prophate\rbeat him,0.575\rall niggers,0.859\r"
    return load_lexicons(write_lexicons(tmp_path, bias, ngrams))


def test_bare_carriage_return_file_is_read(small: Lexicons) -> None:
    assert small.profanity == ("damn", "son of a bitch", "s&m", "beat him", "all niggers")
    assert small.identity == ("dyke", "gays?", "wom[ae]n")


@pytest.mark.parametrize(
    ("text", "profanity", "identity"),
    [
        ("Damn, that's DAMN good", 2, 0),  # case-insensitive, punctuation is a boundary
        ("damnation is not a match", 0, 0),  # whole words only
        ("you son of a   bitch", 1, 0),  # multi-word term across any whitespace
        ("son of a bitcher", 0, 0),
        ("they beat him and the women watched", 1, 1),
        ("a woman, a gay man and two gays", 0, 3),  # patterns from the source list
        ("gaystation", 0, 0),
        ("s&m club", 1, 0),  # a term with a symbol
        ("dyke dyke", 0, 2),
        ("", 0, 0),
    ],
)
def test_counts_on_hand_made_sentences(
    small: Lexicons, text: str, profanity: int, identity: int
) -> None:
    counts = count_terms(pd.Series([text], index=["m1"]), small)
    assert counts.loc["m1"].tolist() == [profanity, identity]


def test_counts_keep_the_index_and_treat_missing_text_as_empty(small: Lexicons) -> None:
    counts = count_terms(pd.Series(["damn women", None], index=["a", "b"]), small)
    assert counts.index.tolist() == ["a", "b"]
    assert counts.to_dict("index") == {
        "a": {"profanity": 1, "identity": 1},
        "b": {"profanity": 0, "identity": 0},
    }
    assert list(counts.dtypes) == ["int64", "int64"]


def test_shared_lexicons_load_and_count() -> None:
    lexicons = load_lexicons(LEXICONS)
    bias = pd.read_csv(LEXICONS / BIAS_LIST_FILE)
    ngrams = read_ngram_dict(LEXICONS / NGRAM_FILE)
    assert len(ngrams) == 178
    expected_identity = bias["categorization"].isin(
        ["offensive-minority-reference", "harmless-minority"]
    )
    assert len(lexicons.identity) == bias.loc[expected_identity, "word"].str.lower().nunique()
    counts = count_terms(
        pd.Series(["Muslims and Jews, African Americans too", "what the fuck", "allah akbar"]),
        lexicons,
    )
    assert counts["identity"].tolist() == [3, 0, 0]
    assert counts["profanity"].tolist() == [0, 1, 1]


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=BIAS_LIST_FILE + ".*not found"):
        load_lexicons(tmp_path)


def test_malformed_files_name_the_file_and_row(tmp_path: Path) -> None:
    good_ngrams = "ngram,prophate\rbeat him,0.5\r"
    write_lexicons(tmp_path, "term,categorization\ndamn,offensive-not-minority\n", good_ngrams)
    with pytest.raises(InputError, match=f"{BIAS_LIST_FILE}.*missing column.*'word'"):
        load_lexicons(tmp_path)
    write_lexicons(tmp_path, "word,categorization\ndamn,swearing\n", good_ngrams)
    with pytest.raises(InputError, match=f"{BIAS_LIST_FILE}, row 1, column 'categorization'"):
        load_lexicons(tmp_path)
    write_lexicons(tmp_path, "word,categorization\ngays[,harmless-minority\n", good_ngrams)
    with pytest.raises(InputError, match="invalid pattern 'gays\\['"):
        load_lexicons(tmp_path)
    write_lexicons(
        tmp_path, "word,categorization\ndamn,offensive-not-minority\n", "ngram,prophate\rx,high\r"
    )
    with pytest.raises(InputError, match=f"{NGRAM_FILE}, row 1, column 'prophate'"):
        load_lexicons(tmp_path)
