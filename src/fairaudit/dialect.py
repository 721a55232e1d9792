"""Dialect layer: marker spans, TwitterAAE proportions, a combined score and a group per utterance.

``annotate_dialect`` takes the corpus texts and returns the per-utterance table (TwitterAAE
proportions, marker counts, ``dialect_score``, ``dialect_group``) and the span table.
``assign_groups`` is the configurable rule alone, on columns that are already there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.config import GroupRule

__all__ = ["DialectLayer", "annotate_dialect", "assign_groups", "describe_rule"]

logger = logging.getLogger(__name__)

GROUPS = ("aae", "sae", "uncertain")


def assign_groups(
    proportions: pd.DataFrame, strong_markers: pd.Series | None, *, rule: GroupRule
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


def annotate_dialect(
    texts: pd.Series,
    *,
    rule: GroupRule,
    twitteraae_dir: Path | None,
    use_markers: bool,
    marker_file: Path | None = None,
) -> DialectLayer:
    """Run the dialect layer over texts indexed by id.

    Returns the per-utterance table (``p_aa``, ``p_hispanic``, ``p_asian``, ``p_white``,
    ``marker_<id>`` counts, ``markers_total``, ``markers_strong``, ``dialect_score``,
    ``dialect_group``) and the spans (``id``, ``marker``, ``start``, ``end``, ``text``,
    ``source``).
    """
    seconds: dict[str, float] = {}
    columns = []
    if twitteraae_dir is not None:
        from fairaudit.twitteraae import TwitterAAEModel

        started = time.perf_counter()
        model = TwitterAAEModel.load(twitteraae_dir)
        proportions = model.predict(texts)
        seconds["twitteraae"] = time.perf_counter() - started
        n_estimated = int(proportions["p_aa"].notna().sum())
        logger.info(
            "TwitterAAE estimated %s of %s utterances in %.1f s",
            f"{n_estimated:,}",
            f"{len(texts):,}",
            seconds["twitteraae"],
        )
        columns.append(proportions)
    else:
        nan = np.full(len(texts), np.nan)
        columns.append(
            pd.DataFrame(
                {"p_aa": nan, "p_hispanic": nan, "p_asian": nan, "p_white": nan},
                index=texts.index,
            )
        )

    marker_set_version = None
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
        columns.append(counts)
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
        strong = None

    utterances = pd.concat(columns, axis=1)
    score, group = assign_groups(utterances, strong, rule=rule)
    utterances["dialect_score"] = score
    utterances["dialect_group"] = group
    return DialectLayer(utterances, spans, seconds, marker_set_version)
