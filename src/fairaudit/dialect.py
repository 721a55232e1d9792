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
    has_letters = texts.map(lambda text: _LATIN_WORD.search(text) is not None).to_numpy()
    screen = np.where((foreign >= 2) & (foreign > english), "non_english", "english")
    screen = np.where(has_letters, screen, "no_text")
    return pd.Series(
        pd.Categorical(screen, categories=LANGUAGE_SCREEN), index=texts.index, name="language"
    )


def assign_groups(
    proportions: pd.DataFrame,
    strong_markers: pd.Series | None,
    *,
    rule: GroupRule,
    language: pd.Series | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Dialect score and group per utterance.

    Parameters
    ----------
    proportions
        At least ``p_aa`` and ``p_white`` (NaN where TwitterAAE gives no estimate).
    strong_markers
        Count of strong grammatical marker spans per utterance, same index; None to ignore.
    rule
        Thresholds and marker evidence (see :class:`fairaudit.config.GroupRule`).
    language
        The language screen (:func:`language_screen`); anything but ``english`` is
        ``uncertain`` whatever the other evidence says.

    Returns
    -------
    dialect_score, dialect_group
        ``p_aa / (p_aa + p_white)`` (NaN without an estimate) and one of ``aae``, ``sae``,
        ``uncertain``.

    References
    ----------
    Blodgett, Green, O'Connor (2016). Demographic dialectal variation in social media: a case
    study of African-American English. EMNLP. doi:10.18653/v1/D16-1120
    """
    p_aa = proportions["p_aa"].to_numpy(dtype=np.float64)
    p_white = proportions["p_white"].to_numpy(dtype=np.float64)
    total = p_aa + p_white
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(total > 0, p_aa / total, np.nan)
    group = np.full(len(score), "uncertain", dtype=object)
    group[score >= rule.aae_threshold] = "aae"
    group[score <= rule.sae_threshold] = "sae"
    if rule.strong_marker_evidence and strong_markers is not None:
        has_markers = strong_markers.to_numpy() >= rule.min_strong_markers
        group[has_markers & (group == "uncertain")] = "aae"
        group[has_markers & (score <= rule.sae_threshold)] = "uncertain"
    if language is not None:
        group[language.to_numpy() != "english"] = "uncertain"
    index = proportions.index
    return (
        pd.Series(score, index=index, name="dialect_score"),
        pd.Series(pd.Categorical(group, categories=GROUPS), index=index, name="dialect_group"),
    )


def describe_rule(rule: GroupRule, *, twitteraae: bool, markers: bool) -> str:
    """One plain sentence stating the group rule, for the manifest and the report."""
    parts = [
        f"dialect_score = p_aa / (p_aa + p_white) from TwitterAAE; aae if score >= "
        f"{rule.aae_threshold}, sae if score <= {rule.sae_threshold}, otherwise uncertain "
        "(also when TwitterAAE gives no estimate)"
    ]
    if twitteraae and rule.language_screen:
        parts.append(
            "messages that are not English (other languages' function words outnumber English "
            "ones) or hold no Latin-letter words are uncertain whatever the other evidence"
        )
    if markers and rule.strong_marker_evidence:
        parts.append(
            f"an utterance with at least {rule.min_strong_markers} strong grammatical AAE "
            "marker(s) moves from uncertain to aae and from sae to uncertain"
        )
    if not twitteraae:
        parts.append("TwitterAAE disabled: every utterance without markers is uncertain")
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
    strong = None
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
        strong = counts["markers_strong"]
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

    score, group = assign_groups(utterances, strong, rule=rule, language=language)
    utterances["utterance_dialect_score"] = score
    utterances["utterance_dialect_group"] = group
    utterances["dialect_score"] = score
    utterances["dialect_group"] = group

    if level != "utterance":
        if units is None:
            raise ValueError(f"level {level!r} needs a {level} column in the corpus")
        started = time.perf_counter()
        has_unit = units.notna()
        pooled_texts = texts[has_unit].groupby(units[has_unit], sort=True).agg("\n".join)
        pooled, pooled_language = _twitteraae_frame(model, pooled_texts, rule=rule)
        pooled_strong = (
            None if strong is None else strong[has_unit].groupby(units[has_unit]).sum()
        )
        unit_score, unit_group = assign_groups(
            pooled, pooled_strong, rule=rule, language=pooled_language
        )
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
