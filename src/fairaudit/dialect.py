"""Dialect layer: marker spans, TwitterAAE proportions, a combined score and a group per utterance.

``annotate_dialect`` takes the corpus texts and returns the per-utterance table (TwitterAAE
proportions, marker counts, ``dialect_score``, ``dialect_group``) and the span table.
``assign_groups`` is the configurable rule alone, on columns that are already there.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from fairaudit.config import GroupRule

__all__ = [
    "DialectLayer",
    "annotate_dialect",
    "assign_groups",
    "describe_rule",
    "function_words",
    "language_screen",
]

logger = logging.getLogger(__name__)

GROUPS = ("aae", "sae", "uncertain")
LANGUAGE_SCREEN = ("english", "non_english", "no_text")
_LATIN_WORD = re.compile(r"[A-Za-z]{2}")


@functools.cache
def function_words() -> dict[str, tuple[str, ...]]:
    """Frequent function words per language (``resources/function_words.yaml``)."""
    path = files("fairaudit") / "resources" / "function_words.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {language: tuple(str(word) for word in words) for language, words in raw.items()}


def language_screen(word_counts: pd.DataFrame, texts: pd.Series) -> pd.Series:
    """Whether each message reads as English, another language, or no text at all.

    Parameters
    ----------
    word_counts
        ``words_<language>`` counts of function words per message (from
        :meth:`fairaudit.twitteraae.TwitterAAEModel.predict` with ``word_sets``).
    texts
        The messages, same index.

    Returns
    -------
    pandas.Series
        ``no_text`` where the message has no run of two Latin letters (emoji, numbers, other
        scripts), ``non_english`` where another language's function words outnumber English
        ones and number at least two, else ``english``.

    Notes
    -----
    A deliberately simple screen: its job is to keep text that is not English out of the
    ``aae`` group (a dialect estimate of Spanish or French is meaningless), not to identify
    languages. Mixed English and other-language messages stay ``english``.
    """
    english = word_counts["words_english"].to_numpy()
    others = [c for c in word_counts.columns if c.startswith("words_") and c != "words_english"]
    foreign = word_counts[others].to_numpy().max(axis=1) if others else np.zeros(len(english))
    has_letters = _has_latin_word(texts)
    screen = np.where((foreign >= 2) & (foreign > english), "non_english", "english")
    screen = np.where(has_letters, screen, "no_text")
    return pd.Series(
        pd.Categorical(screen, categories=LANGUAGE_SCREEN), index=texts.index, name="language"
    )


def _has_latin_word(texts: pd.Series) -> np.ndarray:
    """Whether each text holds two ASCII letters in a row (vectorised; ASCII-only, so RE2 and
    Python ``re`` agree)."""
    values = texts.to_numpy(dtype=object)
    try:
        array = pa.array(values, type=pa.large_string())
        found = pc.match_substring_regex(array, _LATIN_WORD.pattern)
        if found.null_count == 0:
            return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)
    except (pa.ArrowException, TypeError, UnicodeError):
        pass
    return np.fromiter(
        (_LATIN_WORD.search(text) is not None for text in values), dtype=bool, count=len(values)
    )


def assign_groups(
    proportions: pd.DataFrame,
    markers: pd.DataFrame | None,
    *,
    rule: GroupRule,
    language: pd.Series | None = None,
) -> pd.DataFrame:
    """Rule-based, statistical and combined dialect scores, and the group, per utterance.

    Parameters
    ----------
    proportions
        At least ``p_aa`` and ``p_white`` (NaN where TwitterAAE gives no estimate).
    markers
        ``markers_strong`` and ``markers_total`` span counts per utterance, same index; None
        when the marker layer did not run.
    rule
        Weights, thresholds and the language screen (:class:`fairaudit.config.GroupRule`).
    language
        The language screen (:func:`language_screen`); anything but ``english`` is
        ``uncertain`` whatever the other evidence says.

    Returns
    -------
    pandas.DataFrame
        ``twitteraae_score`` = ``p_aa / (p_aa + p_white)`` (NaN without an estimate);
        ``marker_score`` = ``1 - (1 - strong_marker_weight) ** strong * (1 -
        weak_marker_weight) ** weak`` (0 without markers); ``dialect_score``, their noisy-OR
        ``1 - (1 - twitteraae_score) * (1 - marker_score)`` (the marker score alone without a
        TwitterAAE estimate, NaN with neither); ``dialect_group``: ``aae`` at or above
        ``aae_threshold``, ``sae`` at or below ``sae_threshold``, else ``uncertain``.

    Notes
    -----
    Markers only add AAE evidence: their absence in a short message says little, so the
    combined score never falls below the TwitterAAE score. With the defaults, one strong
    grammatical marker moves an utterance in the uncertain band (0.4, 0.6) into ``aae`` and
    an SAE-leaning one (0.2 to 0.4) into the band or above.

    References
    ----------
    Blodgett, Green, O'Connor (2016). Demographic dialectal variation in social media: a case
    study of African-American English. EMNLP. doi:10.18653/v1/D16-1120
    """
    p_aa = proportions["p_aa"].to_numpy(dtype=np.float64)
    p_white = proportions["p_white"].to_numpy(dtype=np.float64)
    total = p_aa + p_white
    with np.errstate(invalid="ignore", divide="ignore"):
        twitteraae_score = np.where(total > 0, p_aa / total, np.nan)
    if markers is None:
        marker_score = np.zeros(len(twitteraae_score))
    else:
        strong = markers["markers_strong"].to_numpy(dtype=np.float64)
        weak = markers["markers_total"].to_numpy(dtype=np.float64) - strong
        marker_score = (
            1.0
            - (1.0 - rule.strong_marker_weight) ** strong * (1.0 - rule.weak_marker_weight) ** weak
        )
    combined = 1.0 - (1.0 - twitteraae_score) * (1.0 - marker_score)
    no_estimate = np.isnan(twitteraae_score)
    combined[no_estimate] = np.where(
        marker_score[no_estimate] > 0, marker_score[no_estimate], np.nan
    )

    group = np.full(len(combined), "uncertain", dtype=object)
    group[combined >= rule.aae_threshold] = "aae"
    group[combined <= rule.sae_threshold] = "sae"
    if language is not None:
        group[language.to_numpy() != "english"] = "uncertain"
    return pd.DataFrame(
        {
            "twitteraae_score": twitteraae_score,
            "marker_score": marker_score,
            "dialect_score": combined,
            "dialect_group": pd.Categorical(group, categories=GROUPS),
        },
        index=proportions.index,
    )


def describe_rule(rule: GroupRule, *, twitteraae: bool, markers: bool) -> str:
    """One plain sentence stating the group rule, for the manifest and the report."""
    parts = []
    if twitteraae:
        parts.append("twitteraae_score = p_aa / (p_aa + p_white) from TwitterAAE")
    if markers:
        parts.append(
            f"marker_score = 1 - {1 - rule.strong_marker_weight:g}^strong x "
            f"{1 - rule.weak_marker_weight:g}^weak (counts of strong grammatical and weak "
            "lexical AAE marker spans)"
        )
    parts.append(
        "dialect_score = 1 - (1 - twitteraae_score)(1 - marker_score); "
        f"aae if dialect_score >= {rule.aae_threshold}, sae if <= {rule.sae_threshold}, "
        "otherwise uncertain (also with no evidence at all)"
    )
    if twitteraae and rule.language_screen:
        parts.append(
            "messages that are not English (other languages' function words outnumber English "
            "ones) or hold no Latin-letter words are uncertain whatever the other evidence"
        )
    return "; ".join(parts)


@dataclass(frozen=True)
class DialectLayer:
    utterances: pd.DataFrame
    spans: pd.DataFrame
    seconds: dict[str, float]
    marker_set_version: str | None


def _twitteraae_frame(
    model: object | None, texts: pd.Series, *, rule: GroupRule
) -> tuple[pd.DataFrame, pd.Series | None]:
    """TwitterAAE proportions and the language screen for texts (NaN/None without a model)."""
    if model is None:
        nan = np.full(len(texts), np.nan)
        frame = pd.DataFrame(
            {"p_aa": nan, "p_hispanic": nan, "p_asian": nan, "p_white": nan}, index=texts.index
        )
        return frame, None
    frame = model.predict(  # type: ignore[attr-defined]
        texts, word_sets=function_words() if rule.language_screen else None
    )
    if not rule.language_screen:
        return frame, None
    language = language_screen(frame, texts)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("words_")])
    return frame, language


def annotate_dialect(
    texts: pd.Series,
    *,
    rule: GroupRule,
    twitteraae_dir: Path | None,
    use_markers: bool,
    marker_file: Path | None = None,
    units: pd.Series | None = None,
    level: str = "utterance",
) -> DialectLayer:
    """Run the dialect layer over texts indexed by id.

    Parameters
    ----------
    texts
        Messages indexed by id.
    rule
        The group rule.
    twitteraae_dir
        Folder of the TwitterAAE model files; None to skip the statistical estimate.
    use_markers, marker_file
        Whether to run the marker rules, and from which definitions file (default: packaged).
    units
        Speaker or conversation id per message (same index), for pooled estimates.
    level
        ``utterance``: each message is grouped on its own evidence. ``speaker`` or
        ``conversation``: all messages of a unit are pooled (TwitterAAE on their tokens
        together, marker counts summed) and every message gets its unit's group; one short
        message is weak evidence of dialect. Messages without a unit keep their own group.

    Returns
    -------
    DialectLayer
        Per-utterance table (``p_aa``, ``p_hispanic``, ``p_asian``, ``p_white``,
        ``language``, ``marker_<id>`` counts, ``markers_total``, ``markers_strong``,
        ``utterance_dialect_score``, ``utterance_dialect_group``, with pooling
        ``unit_dialect_score`` and ``unit_dialect_group``, and ``dialect_score`` and
        ``dialect_group`` at the chosen level) and the spans (``id``, ``marker``, ``start``,
        ``end``, ``text``, ``source``).
    """
    seconds: dict[str, float] = {}
    model = None
    if twitteraae_dir is not None:
        from fairaudit.twitteraae import TwitterAAEModel

        model = TwitterAAEModel.load(twitteraae_dir)
    started = time.perf_counter()
    utterances, language = _twitteraae_frame(model, texts, rule=rule)
    seconds["twitteraae"] = time.perf_counter() - started
    if language is not None:
        utterances["language"] = language
    if model is not None:
        logger.info(
            "TwitterAAE estimated %s of %s utterances in %.1f s",
            f"{int(utterances['p_aa'].notna().sum()):,}",
            f"{len(texts):,}",
            seconds["twitteraae"],
        )

    marker_set_version = None
    counts = None
    if use_markers:
        from fairaudit.markers import annotate, load_marker_set, marker_counts

        started = time.perf_counter()
        marker_set = load_marker_set(marker_file)
        spans = annotate(texts, marker_set)
        counts = marker_counts(spans, texts.index, marker_set)
        seconds["markers"] = time.perf_counter() - started
        marker_set_version = marker_set.version
        logger.info(
            "annotated %s utterances in %.1f s, %d markers, %s spans",
            f"{len(texts):,}",
            seconds["markers"],
            len(marker_set.markers),
            f"{len(spans):,}",
        )
        utterances = utterances.join(counts)
    else:
        spans = pd.DataFrame(
            {
                "id": pd.Series(dtype=object),
                "marker": pd.Series(dtype=object),
                "start": pd.Series(dtype="int64"),
                "end": pd.Series(dtype="int64"),
                "text": pd.Series(dtype=object),
                "source": pd.Series(dtype=object),
            }
        )

    scores = assign_groups(utterances, counts, rule=rule, language=language)
    utterances = utterances.join(scores)
    utterances["utterance_dialect_score"] = scores["dialect_score"]
    utterances["utterance_dialect_group"] = scores["dialect_group"]

    if level != "utterance":
        if units is None:
            raise ValueError(f"level {level!r} needs a {level} column in the corpus")
        started = time.perf_counter()
        has_unit = units.notna()
        pooled_texts = texts[has_unit].groupby(units[has_unit], sort=True).agg("\n".join)
        pooled, pooled_language = _twitteraae_frame(model, pooled_texts, rule=rule)
        pooled_counts = (
            None
            if counts is None
            else counts.loc[has_unit, ["markers_strong", "markers_total"]]
            .groupby(units[has_unit])
            .sum()
        )
        unit_scores = assign_groups(pooled, pooled_counts, rule=rule, language=pooled_language)
        unit_score, unit_group = unit_scores["dialect_score"], unit_scores["dialect_group"]
        unit_of = units[has_unit]
        utterances["unit_dialect_score"] = unit_of.map(unit_score)
        utterances["unit_dialect_group"] = pd.Categorical(
            unit_of.map(unit_group.astype(object)).reindex(texts.index), categories=GROUPS
        )
        utterances.loc[has_unit, "dialect_score"] = utterances.loc[has_unit, "unit_dialect_score"]
        pooled_group = utterances["unit_dialect_group"].astype(object)
        utterances["dialect_group"] = pd.Categorical(
            pooled_group.where(has_unit, utterances["utterance_dialect_group"].astype(object)),
            categories=GROUPS,
        )
        seconds["pooling"] = time.perf_counter() - started
        logger.info(
            "pooled %s utterances into %s %s units for the dialect group",
            f"{int(has_unit.sum()):,}",
            f"{len(pooled_texts):,}",
            level,
        )
    return DialectLayer(utterances, spans, seconds, marker_set_version)
