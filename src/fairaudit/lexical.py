"""Profanity and identity-term counts per message, the lexical confounds of a dialect audit.

This module reads two public word lists and counts, per text, how many profanity terms and how
many identity terms occur. The counts are controls for :func:`fairaudit.regression.flag_regression`
(Harris et al., 2022): a dialect effect that vanishes once profanity is held fixed is a word
choice effect, not a grammar effect.

- :func:`read_bias_list` reads ``toxic_debias_word_based_bias_list.csv`` (Zhou et al., 2021):
  a ``word`` and its ``categorization``, one of ``offensive-not-minority``,
  ``offensive-minority-reference`` or ``harmless-minority``.
- :func:`read_ngram_dict` reads ``davidson_refined_ngram_dict.csv`` (Davidson et al., 2017):
  ``ngram`` and ``prophate``, lines ending in a bare carriage return.
- :func:`load_lexicons` reads both from a folder into a :class:`Lexicons`.
- :func:`count_terms` returns one row per text with the ``profanity`` and ``identity`` counts.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fairaudit.exceptions import InputError

__all__ = [
    "BIAS_LIST_FILE",
    "NGRAM_FILE",
    "PROFANITY_CATEGORIES",
    "IDENTITY_CATEGORIES",
    "Lexicons",
    "read_bias_list",
    "read_ngram_dict",
    "load_lexicons",
    "count_terms",
]

logger = logging.getLogger(__name__)

BIAS_LIST_FILE = "toxic_debias_word_based_bias_list.csv"
NGRAM_FILE = "davidson_refined_ngram_dict.csv"
PROFANITY_CATEGORIES = ("offensive-not-minority",)
"""Bias-list categories counted as profanity (with every Davidson n-gram)."""
IDENTITY_CATEGORIES = ("offensive-minority-reference", "harmless-minority")
"""Bias-list categories counted as identity terms."""

_CATEGORIES = (*PROFANITY_CATEGORIES, *IDENTITY_CATEGORIES)
# An entry with one of these characters is a regular expression in the source list (for
# example "gays?" or "jew\w*"); every other entry is matched literally.
_REGEX_CHARACTERS = re.compile(r"[\\\[\]?*+(){}|^$]")


@dataclass(frozen=True)
class Lexicons:
    """Terms counted as ``profanity`` and as ``identity``, lower-case, as in the sources.

    Entries with regular-expression characters (``?*+[]\\(){}|^$``) are patterns; the others
    are literal words or phrases.
    """

    profanity: tuple[str, ...]
    identity: tuple[str, ...]


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError("lexicon file not found", file=path)
    try:
        # Universal newlines read bare carriage returns, CRLF and LF alike.
        with path.open(encoding="utf-8", newline=None) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read lexicon: {error}", file=path) from error


def _read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    text = _read_text(path)
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as error:
        raise InputError(f"malformed lexicon: {error}", file=path) from error
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(
            f"malformed lexicon: missing column(s) {missing}; columns found: "
            f"{list(table.columns)}",
            file=path,
        )
    if table.empty:
        raise InputError("malformed lexicon: no entries", file=path)
    return table


def _check_terms(terms: pd.Series, path: Path, column: str) -> None:
    for position, term in enumerate(terms, start=1):
        if not term.strip():
            raise InputError("empty term", file=path, row=position, column=column)
        if _REGEX_CHARACTERS.search(term):
            try:
                re.compile(term)
            except re.error as error:
                raise InputError(
                    f"invalid pattern {term!r}: {error}", file=path, row=position, column=column
                ) from error


def read_bias_list(path: str | Path) -> pd.DataFrame:
    """Read the word-based bias list: columns ``word`` and ``categorization``.

    Raises
    ------
    fairaudit.exceptions.InputError
        Naming the file (and the row) when it is missing, unreadable, lacks a column, has an
        empty word, an invalid pattern or an unknown categorization.
    """
    path = Path(path)
    table = _read_table(path, ("word", "categorization"))
    words = table["word"].str.strip().str.lower()
    categories = table["categorization"].str.strip()
    unknown = ~categories.isin(_CATEGORIES)
    if unknown.any():
        position = int(unknown.to_numpy().argmax()) + 1
        raise InputError(
            f"unknown categorization {categories[unknown].iloc[0]!r}; expected one of "
            f"{list(_CATEGORIES)}",
            file=path,
            row=position,
            column="categorization",
        )
    _check_terms(words, path, "word")
    return pd.DataFrame({"word": words, "categorization": categories})


def read_ngram_dict(path: str | Path) -> pd.DataFrame:
    """Read the refined hate-speech n-gram dictionary: columns ``ngram`` and ``prophate``.

    Lines may end in a bare carriage return, as in the source file.

    Raises
    ------
    fairaudit.exceptions.InputError
        Naming the file (and the row) when it is missing, unreadable, lacks a column, has an
        empty n-gram or a ``prophate`` that is not a number.
    """
    path = Path(path)
    table = _read_table(path, ("ngram", "prophate"))
    ngrams = table["ngram"].str.strip().str.lower()
    _check_terms(ngrams, path, "ngram")
    scores = pd.to_numeric(table["prophate"], errors="coerce")
    if scores.isna().any():
        position = int(scores.isna().to_numpy().argmax()) + 1
        raise InputError("prophate is not a number", file=path, row=position, column="prophate")
    return pd.DataFrame({"ngram": ngrams, "prophate": scores.astype(float)})


def load_lexicons(
    folder: str | Path,
    *,
    bias_list: str = BIAS_LIST_FILE,
    ngram_dict: str = NGRAM_FILE,
) -> Lexicons:
    """Read both lexicons from ``folder`` into profanity and identity terms.

    ``profanity`` is the bias list's ``offensive-not-minority`` words plus every Davidson
    n-gram; ``identity`` is its ``offensive-minority-reference`` and ``harmless-minority``
    words. Some Davidson n-grams name groups (``"blacks"``, ``"whites"``); they are counted as
    profanity, as the n-gram list is a hate-speech lexicon, and an identity word in both lists
    is counted in both columns.

    References
    ----------
    .. [1] Zhou, X., Sap, M., Swayamdipta, S., Choi, Y. and Smith, N. A. (2021). Challenges in
       automated debiasing for toxic language detection. Proc. EACL, 3143-3155.
       doi:10.18653/v1/2021.eacl-main.274
    .. [2] Davidson, T., Warmsley, D., Macy, M. and Weber, I. (2017). Automated hate speech
       detection and the problem of offensive language. Proc. ICWSM 11(1), 512-515.
       doi:10.1609/icwsm.v11i1.14955
    """
    folder = Path(folder)
    words = read_bias_list(folder / bias_list)
    ngrams = read_ngram_dict(folder / ngram_dict)
    profanity = words.loc[words["categorization"].isin(PROFANITY_CATEGORIES), "word"].tolist()
    identity = words.loc[words["categorization"].isin(IDENTITY_CATEGORIES), "word"].tolist()
    lexicons = Lexicons(
        profanity=tuple(dict.fromkeys([*profanity, *ngrams["ngram"]])),
        identity=tuple(dict.fromkeys(identity)),
    )
    logger.info(
        "loaded %d profanity and %d identity terms from %s",
        len(lexicons.profanity),
        len(lexicons.identity),
        folder,
    )
    return lexicons


def _term_pattern(term: str) -> str:
    if _REGEX_CHARACTERS.search(term):
        return term
    return r"\s+".join(re.escape(part) for part in term.split())


def _pattern(terms: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so a phrase wins over a word it starts with; the look-arounds are word
    # boundaries that also work for terms that begin or end with a symbol ("s&m", an emoji).
    ordered = sorted(set(terms), key=len, reverse=True)
    body = "|".join(f"(?:{_term_pattern(t)})" for t in ordered)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", flags=re.IGNORECASE)


def count_terms(texts: pd.Series | Iterable[str], lexicons: Lexicons) -> pd.DataFrame:
    """Count profanity and identity terms in each text.

    Matching is case-insensitive, on whole words (a term matches only where it is not preceded
    or followed by a letter, digit or underscore), multi-word terms across any whitespace;
    non-overlapping matches are counted, longer terms first.

    Parameters
    ----------
    texts
        The texts; a Series keeps its index. Missing texts count 0.
    lexicons
        From :func:`load_lexicons`.

    Returns
    -------
    pandas.DataFrame
        Integer columns ``profanity`` and ``identity``, one row per text.
    """
    series = texts if isinstance(texts, pd.Series) else pd.Series(list(texts), dtype=object)
    strings = series.fillna("").astype(str)
    result = pd.DataFrame(index=series.index)
    for name, terms in (("profanity", lexicons.profanity), ("identity", lexicons.identity)):
        if terms:
            result[name] = strings.str.count(_pattern(terms)).astype("int64")
        else:
            result[name] = 0
    return result
