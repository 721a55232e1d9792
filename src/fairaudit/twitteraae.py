"""TwitterAAE demographic dialect model: estimate dialect proportions for short texts.

Takes texts (a sequence of strings or a pandas Series) and the two files of the published
TwitterAAE model, ``model_vocab.txt`` and ``model_count_table.txt``; returns one row per text
with the estimated proportions of African-American, Hispanic, Asian and White dialect-associated
words (``p_aa``, ``p_hispanic``, ``p_asian``, ``p_white``), NaN where the model gives no estimate,
and the token counts behind each estimate.

The proportions describe the words of a message, not the race of its author, and only the
African-American and White proportions were validated by the model's authors.

Inference follows the description of the authors' reference implementation: per topic ``k`` and
word ``w`` the word probability is ``(count[w, k] + 1) / sum(count[., k])``; tokens are
lower-cased and only those in the vocabulary are used; a message gets no estimate when it has no
such token or when under 20% of its tokens are in the vocabulary; the proportions are inferred
by collapsed variational Bayes (CVB0) with a symmetric Dirichlet prior. The sequential pass over
the tokens of a message is kept exactly; :meth:`TwitterAAEModel.predict` runs it in lockstep,
position by position, for all messages with the same number of in-vocabulary tokens.

Tokenizer
---------
:func:`tokenize` is a regular-expression tokenizer for tweets, applied to the lower-cased raw
text (HTML entities are not unescaped). It yields, in order of precedence:

* hashtags (``#word``), which the model's vocabulary contains;
* emoticons such as ``:)``, ``:-(``, ``;p``, ``(:``, ``<3`` and ``^_^``;
* words: runs of letters, digits and underscores, joined by inner apostrophes (``don't``,
  ``y’all``) or asterisks (``b*tch``);
* runs of ``.``, ``!`` and ``?`` (``...``, ``!!!``, ``?!``) and runs of two or more hyphens;
* runs of emoji and other non-ASCII symbols (``😂😂😂`` is one vocabulary entry), with the
  typographic quotes ``“ ” ‘ ’`` and ``…`` as tokens of their own;
* any other single non-space character.

It drops, so that they count neither as tokens nor against the 20% rule: URLs (``http://``,
``https://``, ``www.``), @-mentions (with a colon right after them, as in ``RT @user:``), the
retweet marker ``rt``, and HTML character references
(``&amp;``, ``&#128514;``). None of these is in the model's vocabulary (the model was trained on
text with them removed), and keeping them would withhold estimates from short replies and
retweets for a reason unrelated to their language. Emoji written as character references (as in
the Davidson et al. 2017 corpus) are therefore not seen by the model.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.exceptions import InputError

__all__ = ["COLUMNS", "TwitterAAEModel", "tokenize"]

logger = logging.getLogger(__name__)

COLUMNS = ("p_aa", "p_hispanic", "p_asian", "p_white")
"""Output columns of the topic proportions, in the column order of the count table."""

VOCABULARY_FILE = "model_vocab.txt"
COUNT_TABLE_FILE = "model_count_table.txt"

# Texts are tokenised in bulk: joined with this separator, which every token pattern excludes,
# so that one regular-expression scan covers many texts and yields the same tokens as one scan
# per text.
_SEPARATOR = "\x00"

_DROPPED = r"""
    (?:https?://|www\.)[^\s\x00]+              # URL
  | @\w+:?                                      # @-mention, with the colon of "RT @user:"
  | &(?:\#[0-9]+|\#x[0-9a-f]+|[a-z][a-z0-9]*);  # HTML character reference
  | (?<!\w)rt(?!\w)                             # retweet marker
"""

_KEPT = r"""
    \x00                                        # separator between texts (bulk mode only)
  | \#\w+                                       # hashtag
  | (?<!\w)(?:[:;=][-o^']?[)(\]\[dpo/\\|*3]     # emoticon, eyes first
             |[)(\]\[][-o']?[:;=]               # emoticon, mouth first
             |<3|\^_\^)(?!\w)
  | \w+(?:['’*]+\w+)*                           # word
  | [.!?]+                                      # ellipsis, repeated ! and ?
  | -{2,}                                       # dashes
  | [“”‘’…]                                     # typographic punctuation
  | [^\w\s\x00-\x7f“”‘’…]+                      # run of emoji and other non-ASCII symbols
  | [^\w\s\x00]                                 # any other character
"""

# Dropped matches yield an empty group, kept matches the token itself.
_TOKEN_PATTERN = re.compile(rf"(?:{_DROPPED})|({_KEPT})", flags=re.VERBOSE | re.UNICODE)

# Texts per regular-expression scan in predict: bounds the memory of the token list.
_TOKENIZE_CHUNK = 20_000

# Texts are inferred once per distinct text when at most this share of the rows is distinct.
_DEDUPLICATE_MAX_SHARE = 0.9

# Messages updated in lockstep: small enough for the (4, M) working arrays to stay in cache.
_INFERENCE_CHUNK = 8_192
# Upper bound of tokens x messages held at once for one length bucket.
_INFERENCE_CELLS = 1 << 21


def tokenize(text: str) -> list[str]:
    """Split a text into lower-cased tokens, as :meth:`TwitterAAEModel.predict` does.

    Parameters
    ----------
    text
        The raw text; HTML character references are not unescaped.

    Returns
    -------
    list of str
        The tokens, lower-cased, without URLs, @-mentions, the retweet marker ``rt`` and HTML
        character references (see the module documentation for the rules).

    References
    ----------
    .. [1] Blodgett, S. L., Green, L., and O'Connor, B. (2016). Demographic Dialectal Variation
       in Social Media: A Case Study of African-American English. Proceedings of EMNLP 2016,
       1119-1130. https://doi.org/10.18653/v1/D16-1120

    Examples
    --------
    >>> tokenize("RT @user: He be workin af &#128514; http://t.co/x")
    ['he', 'be', 'workin', 'af']
    """
    lowered = text.replace(_SEPARATOR, " ").lower()
    return [token for token in _TOKEN_PATTERN.findall(lowered) if token]


@dataclass(frozen=True)
class _EncodedTexts:
    """Texts as vocabulary rows: the in-vocabulary tokens of all texts, concatenated in order."""

    word_rows: np.ndarray  # (T,) int64 vocabulary row of each in-vocabulary token
    n_tokens: np.ndarray  # (n,) int64 tokens per text
    n_in_vocabulary: np.ndarray  # (n,) int64 in-vocabulary tokens per text


@dataclass(frozen=True, eq=False)
class TwitterAAEModel:
    """The TwitterAAE demographic dialect model of Blodgett, Green and O'Connor (2016).

    Parameters
    ----------
    vocabulary
        The model's words, in the row order of the count table (unique).
    word_probabilities
        ``(V, 4)`` array: per word and topic (African-American, Hispanic, Asian, White), the
        probability ``(count[w, k] + 1) / sum(count[., k])``.

    References
    ----------
    .. [1] Blodgett, S. L., Green, L., and O'Connor, B. (2016). Demographic Dialectal Variation
       in Social Media: A Case Study of African-American English. Proceedings of EMNLP 2016,
       1119-1130. https://doi.org/10.18653/v1/D16-1120
    .. [2] Asuncion, A., Welling, M., Smyth, P., and Teh, Y. W. (2009). On Smoothing and
       Inference for Topic Models. Proceedings of UAI 2009, 27-34 (CVB0).
    .. [3] slanglab/twitteraae, model/ and its README, commit
       db4d6d126ca26b9bb9a70d7ce18bdd5833077523. https://github.com/slanglab/twitteraae
    """

    vocabulary: pd.Index
    word_probabilities: np.ndarray
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.word_probabilities.shape != (len(self.vocabulary), len(COLUMNS)):
            raise ValueError(
                f"word_probabilities has shape {self.word_probabilities.shape}, expected "
                f"({len(self.vocabulary)}, {len(COLUMNS)})"
            )
        if not self.vocabulary.is_unique:
            raise ValueError("vocabulary has duplicate words")
        if _SEPARATOR in self.vocabulary or "" in self.vocabulary:
            raise ValueError("vocabulary has an empty word or a NUL character")
        # Row of each word, plus rows past the vocabulary for the bulk tokeniser's separator
        # and for dropped matches (the empty string). A dict is several times faster than
        # pandas.Index.get_indexer on millions of short strings.
        lookup = dict(zip(self.vocabulary, range(len(self.vocabulary)), strict=True))
        lookup[_SEPARATOR] = len(self.vocabulary)
        lookup[""] = len(self.vocabulary) + 1
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def load(cls, folder: str | Path) -> TwitterAAEModel:
        """Read the model from ``model_vocab.txt`` and ``model_count_table.txt`` in a folder.

        Parameters
        ----------
        folder
            The folder holding the two files of the published model (``model/`` in the
            source repository).

        Returns
        -------
        TwitterAAEModel
            The model, with word probabilities computed from the counts.

        Raises
        ------
        InputError
            If a file is missing or unreadable, a line is malformed (with its 1-based row),
            a word is repeated, a count is negative or not finite, or the two files do not
            have the same number of rows.
        """
        started = time.perf_counter()
        folder = Path(folder)
        vocabulary_path = folder / VOCABULARY_FILE
        count_path = folder / COUNT_TABLE_FILE

        words = _read_vocabulary(vocabulary_path)
        counts = _read_count_table(count_path)
        if counts.shape[0] != len(words):
            raise InputError(
                f"has {counts.shape[0]:,} rows but {vocabulary_path.name} has {len(words):,}; "
                "the two files must have one row per word, in the same order",
                file=count_path,
            )

        totals = counts.sum(axis=0)
        if np.any(totals <= 0):
            raise InputError("a topic column sums to zero", file=count_path)
        word_probabilities = (counts + 1.0) / totals
        word_probabilities.setflags(write=False)

        model = cls(
            vocabulary=pd.Index(words, dtype=object), word_probabilities=word_probabilities
        )
        logger.info(
            "loaded TwitterAAE model from %s: %s words in %.2f s",
            folder,
            f"{len(words):,}",
            time.perf_counter() - started,
        )
        return model

    def proportions_from_tokens(
        self, tokens: Sequence[str], *, alpha: float = 1.0, passes: int = 4
    ) -> np.ndarray | None:
        """Infer the dialect proportions of one tokenised message (the reference inference).

        Parameters
        ----------
        tokens
            The message's tokens; they are lower-cased before the vocabulary look-up.
        alpha
            Symmetric Dirichlet prior on the topic proportions.
        passes
            CVB0 passes over the tokens after the initialisation.
        word_sets
            Named word lists; for each, a column ``words_<name>`` counts the text's
            in-vocabulary tokens that are in the list (lower-cased). Costs one look-up per
            token, reusing the tokenisation (used for the language screen).

        Returns
        -------
        numpy.ndarray or None
            The proportions in the order of :data:`COLUMNS`, or None when no token is in the
            vocabulary or under 20% of the tokens are.

        Notes
        -----
        Each in-vocabulary token's topic distribution starts as its word probabilities,
        normalised; the topic totals are the sum of the distributions. Each pass then visits
        the tokens in order: the token is removed from the totals, its distribution set
        proportional to ``word_probability * (totals + alpha)`` and normalised, and the token
        added back. The proportions are the normalised totals.

        References
        ----------
        .. [1] Blodgett, S. L., Green, L., and O'Connor, B. (2016). Demographic Dialectal
           Variation in Social Media: A Case Study of African-American English. Proceedings of
           EMNLP 2016, 1119-1130. https://doi.org/10.18653/v1/D16-1120
        .. [2] Asuncion, A., Welling, M., Smyth, P., and Teh, Y. W. (2009). On Smoothing and
           Inference for Topic Models. Proceedings of UAI 2009, 27-34.
        """
        _check_options(alpha=alpha, passes=passes)
        n_words = len(self.vocabulary)
        rows = np.array(
            [
                row
                for token in tokens
                if 0 <= (row := self._lookup.get(token.lower(), -1)) < n_words
            ],
            dtype=np.int64,
        )
        if not _has_estimate(len(rows), len(tokens)):
            return None

        probabilities = self.word_probabilities[rows]
        distributions = probabilities / probabilities.sum(axis=1, keepdims=True)
        totals = distributions.sum(axis=0)
        for _ in range(passes):
            for position in range(len(rows)):
                totals -= distributions[position]
                updated = probabilities[position] * (totals + alpha)
                updated /= updated.sum()
                distributions[position] = updated
                totals += updated
        return totals / totals.sum()

    def predict(
        self,
        texts: Sequence[str] | pd.Series,
        *,
        alpha: float = 1.0,
        passes: int = 4,
        word_sets: Mapping[str, Collection[str]] | None = None,
    ) -> pd.DataFrame:
        """Estimate the dialect proportions of many texts.

        Parameters
        ----------
        texts
            Raw texts. A Series keeps its index in the result; other sequences get a
            ``RangeIndex``.
        alpha
            Symmetric Dirichlet prior on the topic proportions.
        passes
            CVB0 passes over the tokens after the initialisation.
        word_sets
            Named word lists; for each, a column ``words_<name>`` counts the text's
            in-vocabulary tokens that are in the list (lower-cased). Costs one look-up per
            token, reusing the tokenisation (used for the language screen).

        Returns
        -------
        pandas.DataFrame
            One row per text, same index as ``texts``, with columns ``p_aa``, ``p_hispanic``,
            ``p_asian``, ``p_white`` (float64, NaN where there is no estimate: no token in the
            vocabulary or under 20% of the tokens in it), ``n_tokens`` (tokens from
            :func:`tokenize`) and ``n_in_vocabulary`` (int64).

        Raises
        ------
        InputError
            If a text is not a string (the row is the text's index label).

        Notes
        -----
        The result equals :meth:`proportions_from_tokens` applied to :func:`tokenize` of each
        text, up to floating-point rounding. Messages with the same number of in-vocabulary
        tokens are updated together, token position by token position, so the sequential
        CVB0 pass of each message is unchanged.

        References
        ----------
        .. [1] Blodgett, S. L., Green, L., and O'Connor, B. (2016). Demographic Dialectal
           Variation in Social Media: A Case Study of African-American English. Proceedings of
           EMNLP 2016, 1119-1130. https://doi.org/10.18653/v1/D16-1120
        """
        _check_options(alpha=alpha, passes=passes)
        if isinstance(texts, pd.Series):
            index = texts.index
            # Iterating a pyarrow-backed Series is slow; one conversion to objects is not.
            values = texts.to_numpy(dtype=object).tolist()
        else:
            index = pd.RangeIndex(len(texts))
            values = list(texts)
        for position, text in enumerate(values):
            if not isinstance(text, str):
                raise InputError(
                    f"text is {type(text).__name__} {text!r}, expected a string",
                    row=index[position],
                )

        started = time.perf_counter()
        # The estimate depends on the text alone: infer each distinct text once (retweets and
        # copies are common) and copy the result to every row holding it.
        codes = None
        distinct = values
        if len(values) >= 2 and _DEDUPLICATE_MAX_SHARE > 0:
            factorized, uniques = pd.factorize(np.asarray(values, dtype=object))
            if len(uniques) <= _DEDUPLICATE_MAX_SHARE * len(values):
                codes, distinct = factorized, list(uniques)
        encoded = self._encode(distinct)
        tokenized = time.perf_counter()
        proportions = self._infer(encoded, alpha=alpha, passes=passes)
        inferred = time.perf_counter()

        def per_row(column: np.ndarray) -> np.ndarray:
            return column if codes is None else column[codes]

        result = pd.DataFrame(per_row(proportions), index=index, columns=list(COLUMNS))
        result["n_tokens"] = per_row(encoded.n_tokens)
        result["n_in_vocabulary"] = per_row(encoded.n_in_vocabulary)
        if word_sets:
            text_of_word = np.repeat(np.arange(len(distinct)), encoded.n_in_vocabulary)
            for name, words in word_sets.items():
                member = np.zeros(len(self.word_probabilities), dtype=bool)
                rows = [self._lookup.get(word.lower(), -1) for word in words]
                member[[row for row in rows if row >= 0]] = True
                result[f"words_{name}"] = per_row(
                    np.bincount(text_of_word[member[encoded.word_rows]], minlength=len(distinct))
                )
        logger.info(
            "estimated dialect proportions for %s of %s distinct texts (%s rows; %s tokens, %s "
            "in vocabulary) in %.2f s: tokenising %.2f s, inference %.2f s",
            f"{int(np.isfinite(proportions[:, 0]).sum()):,}",
            f"{len(distinct):,}",
            f"{len(values):,}",
            f"{int(encoded.n_tokens.sum()):,}",
            f"{int(encoded.n_in_vocabulary.sum()):,}",
            inferred - started,
            tokenized - started,
            inferred - tokenized,
        )
        return result

    def _encode(self, texts: list[str]) -> _EncodedTexts:
        """Tokenise texts in bulk and look the tokens up in the vocabulary."""
        separator_row, dropped_row = self._lookup[_SEPARATOR], self._lookup[""]
        row_of = self._lookup.get

        word_rows: list[np.ndarray] = []
        n_tokens = np.zeros(len(texts), dtype=np.int64)
        n_in_vocabulary = np.zeros(len(texts), dtype=np.int64)
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            chunk = texts[start : start + _TOKENIZE_CHUNK]
            joined = _SEPARATOR.join(chunk)
            if joined.count(_SEPARATOR) != len(chunk) - 1:
                joined = _SEPARATOR.join(text.replace(_SEPARATOR, " ") for text in chunk)
            tokens = _TOKEN_PATTERN.findall(joined.lower())

            rows = np.fromiter(map(row_of, tokens, repeat(-1)), dtype=np.int64, count=len(tokens))
            text_of_token = np.cumsum(rows == separator_row)
            is_token = (rows != separator_row) & (rows != dropped_row)
            in_vocabulary = is_token & (rows >= 0)
            n_tokens[start : start + len(chunk)] = np.bincount(
                text_of_token[is_token], minlength=len(chunk)
            )
            n_in_vocabulary[start : start + len(chunk)] = np.bincount(
                text_of_token[in_vocabulary], minlength=len(chunk)
            )
            word_rows.append(rows[in_vocabulary])

        return _EncodedTexts(
            word_rows=np.concatenate(word_rows) if word_rows else np.zeros(0, dtype=np.int64),
            n_tokens=n_tokens,
            n_in_vocabulary=n_in_vocabulary,
        )

    def _infer(self, encoded: _EncodedTexts, *, alpha: float, passes: int) -> np.ndarray:
        """Run CVB0 for all texts with an estimate, in lockstep per in-vocabulary length."""
        n_texts = len(encoded.n_tokens)
        proportions = np.full((n_texts, len(COLUMNS)), np.nan)
        lengths = encoded.n_in_vocabulary
        first_token = np.concatenate(([0], np.cumsum(lengths)[:-1])) if n_texts else lengths
        # The 20% rule, exact in integers: 5 * n_in_vocabulary >= n_tokens.
        with_estimate = (lengths >= 1) & (5 * lengths >= encoded.n_tokens)

        texts_with_estimate = np.flatnonzero(with_estimate)
        if len(texts_with_estimate) == 0:
            return proportions
        order = texts_with_estimate[np.argsort(lengths[texts_with_estimate], kind="stable")]
        bucket_lengths, bucket_starts = np.unique(lengths[order], return_index=True)
        bucket_ends = np.append(bucket_starts[1:], len(order))
        for length, bucket_start, bucket_end in zip(
            bucket_lengths, bucket_starts, bucket_ends, strict=True
        ):
            bucket = order[bucket_start:bucket_end]
            step = max(1, min(_INFERENCE_CHUNK, _INFERENCE_CELLS // int(length)))
            for chunk_start in range(0, len(bucket), step):
                texts = bucket[chunk_start : chunk_start + step]
                # (L, M): vocabulary row of token position i of message m.
                rows = encoded.word_rows[first_token[texts][None, :] + np.arange(length)[:, None]]
                proportions[texts] = _cvb0_lockstep(
                    self.word_probabilities, rows, alpha=alpha, passes=passes
                ).T
        return proportions


def _cvb0_lockstep(
    word_probabilities: np.ndarray, rows: np.ndarray, *, alpha: float, passes: int
) -> np.ndarray:
    """CVB0 for M messages of L tokens each, given their ``(L, M)`` vocabulary rows.

    Returns the ``(4, M)`` proportions. Arrays are laid out topic-major, ``(L, 4, M)``, so
    that the update of one token position for all messages works on contiguous rows.
    """
    n_positions, n_messages = rows.shape
    probabilities = np.ascontiguousarray(word_probabilities[rows].transpose(0, 2, 1))
    distributions = probabilities / probabilities.sum(axis=1, keepdims=True)
    totals = distributions.sum(axis=0)

    shifted = np.empty_like(totals)
    norm = np.empty(n_messages)
    for _ in range(passes):
        for position in range(n_positions):
            current = distributions[position]
            totals -= current
            np.add(totals, alpha, out=shifted)
            np.multiply(probabilities[position], shifted, out=current)
            np.sum(current, axis=0, out=norm)
            current /= norm
            totals += current
    return totals / totals.sum(axis=0)


def _has_estimate(n_in_vocabulary: int, n_tokens: int) -> bool:
    """Whether a message with these counts gets an estimate (in integers, so exact)."""
    return n_in_vocabulary >= 1 and 5 * n_in_vocabulary >= n_tokens


def _check_options(*, alpha: float, passes: int) -> None:
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    if isinstance(passes, bool) or not isinstance(passes, int | np.integer) or passes < 0:
        raise ValueError(f"passes must be a non-negative integer, got {passes!r}")


def _read_vocabulary(path: Path) -> list[str]:
    """Read ``count<TAB>word`` lines; return the words in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("TwitterAAE vocabulary file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read TwitterAAE vocabulary file: {error}", file=path) from None

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise InputError("TwitterAAE vocabulary file is empty", file=path)

    words: list[str] = []
    seen: dict[str, int] = {}
    for row, line in enumerate(lines, start=1):
        count, tab, word = line.rstrip("\r").partition("\t")
        if not tab or not word or _SEPARATOR in word:
            raise InputError(f"expected 'count<TAB>word', got {line[:40]!r}", file=path, row=row)
        try:
            int(count)
        except ValueError:
            raise InputError(
                f"count is not an integer: {count[:40]!r}", file=path, row=row, column="count"
            ) from None
        if word in seen:
            raise InputError(
                f"word {word!r} repeats row {seen[word]}", file=path, row=row, column="word"
            )
        seen[word] = row
        words.append(word)
    return words


def _read_count_table(path: Path) -> np.ndarray:
    """Read the tab-separated ``(V, 4)`` count table."""
    if not path.is_file():
        raise InputError("TwitterAAE count table file not found", file=path)
    try:
        table = pd.read_csv(
            path, sep="\t", header=None, dtype=np.float64, engine="c", na_filter=False
        )
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(
            f"cannot read TwitterAAE count table: {str(error).strip()}", file=path
        ) from None

    if table.shape[1] != len(COLUMNS):
        raise InputError(
            f"has {table.shape[1]} columns, expected {len(COLUMNS)} ({', '.join(COLUMNS)})",
            file=path,
        )
    counts = table.to_numpy(dtype=np.float64)
    bad_rows, bad_columns = np.nonzero(~np.isfinite(counts) | (counts < 0))
    if len(bad_rows):
        raise InputError(
            f"count is negative or not finite: {counts[bad_rows[0], bad_columns[0]]!r}",
            file=path,
            row=int(bad_rows[0]) + 1,
            column=COLUMNS[bad_columns[0]],
        )
    return counts
