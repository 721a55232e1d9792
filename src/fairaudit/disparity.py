"""Per-group error rates of a toxicity model, their intervals, and tests of group differences.

This module takes plain arrays and data frames (one row per message, with a group column, a
binary gold label where ``True`` means harmful, a binary ``flagged`` decision and optionally a
score) and returns tidy tables. It knows nothing of files, models or dialect markers.

- :func:`binarize_labels` turns gold or model labels into booleans with an explicit positive
  (harmful) label.
- :func:`group_metrics` returns one row per (group, metric) with an interval, the denominator, the
  numerator and the reason when a metric is undefined.
- :func:`compare_groups` returns one row per (group, metric) comparison against a reference group:
  difference with a Newcombe interval, ratio, a 2x2 test and Holm-adjusted p-values.
- :func:`headline` summarises one metric over the groups large enough to judge.
- :func:`roc_auc` is the ROC AUC that is NaN with a reason when only one class is present.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import expected_freq
from sklearn.exceptions import UndefinedMetricWarning as UndefinedMetricWarningSklearn
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from fairaudit._common import (
    GROUP_SEPARATOR,
    check_alpha,
    format_ids,
    holm,
    numeric_scores,
    warn_small_groups,
    warn_undefined,
)
from fairaudit.exceptions import (
    DegenerateDataWarning,
    InputError,
)

__all__ = [
    "METRICS",
    "RATE_METRICS",
    "OVERALL",
    "MISSING_GROUP",
    "GROUP_METRIC_COLUMNS",
    "COMPARISON_COLUMNS",
    "RocAuc",
    "binarize_labels",
    "group_metrics",
    "compare_groups",
    "headline",
    "roc_auc",
]

logger = logging.getLogger(__name__)

METRICS = ("false_positive_rate", "false_negative_rate", "flag_rate", "mean_score", "precision")
"""Metrics reported by :func:`group_metrics`, in table order."""

RATE_METRICS = ("false_positive_rate", "false_negative_rate", "flag_rate", "precision")
"""Metrics that are proportions, compared with 2x2 tables in :func:`compare_groups`."""

OVERALL = "overall"
"""Label of the row computed on every row that some group uses."""

MISSING_GROUP = "<missing>"
"""Label of the explicit group of rows with no group value (``missing_group="keep"``)."""

GROUP_METRIC_COLUMNS = (
    "group",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "count",
    "interval_method",
    "alpha",
    "undefined_reason",
    "small_group",
)
"""Columns of the table :func:`group_metrics` returns."""

COMPARISON_COLUMNS = (
    "group",
    "reference",
    "metric",
    "estimate",
    "reference_estimate",
    "difference",
    "ci_low",
    "ci_high",
    "interval_method",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "ratio_interval_method",
    "odds_ratio",
    "odds_ratio_ci_low",
    "odds_ratio_ci_high",
    "odds_ratio_method",
    "four_fifths_ratio",
    "four_fifths_violated",
    "four_fifths_note",
    "n",
    "n_reference",
    "count",
    "count_reference",
    "method",
    "statistic",
    "p_value",
    "p_adjusted",
    "correction",
    "significant",
    "p_adjusted_bh",
    "significant_bh",
    "family",
    "alpha",
    "undefined_reason",
    "ratio_undefined_reason",
    "small_group",
)
"""Columns of the table :func:`compare_groups` returns."""

_INTERVAL_METHODS = {"wilson": "wilson", "clopper_pearson": "beta"}
_MEAN_INTERVAL_METHOD = "student_t"


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def _format_values(values: Sequence[object]) -> str:
    return ", ".join(repr(v) for v in values)


def _is_binary_value(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return True
    if isinstance(value, int | float | np.integer | np.floating):
        return value in (0, 1)
    return False


def binarize_labels(
    values: pd.Series,
    *,
    positive: object | Sequence[object] | None,
    column: str,
    file: str | None = None,
) -> pd.Series:
    """Turn labels into booleans, ``True`` for the positive (harmful) class.

    In a toxicity audit the positive class is the harmful one, and only the caller knows which
    label that is. The positive label is therefore never inferred from sort order or from a
    "favourable outcome" flag.

    Parameters
    ----------
    values
        The labels, one per message; the index holds the message ids.
    positive
        The label, or labels, of the harmful class, for example ``"abusive"``. ``None`` is
        allowed only when every label is 0/1 or boolean, and then 1/``True`` is positive.
    column
        Name of the column the labels come from, for error messages.
    file
        Input file the labels come from, for error messages.

    Returns
    -------
    pandas.Series
        Boolean series with the index of ``values``.

    Raises
    ------
    fairaudit.exceptions.InputError
        If a label is missing, if ``positive`` is ``None`` and the labels are not 0/1/boolean
        (the message lists the labels found), or if no positive label occurs in ``values``.
    """
    missing = values.isna().to_numpy()
    if missing.any():
        ids = list(values.index[missing])
        raise InputError(
            f"{len(ids)} missing label(s) (ids: {format_ids(ids)})", file=file, column=column
        )

    found = sorted({str(v) for v in values.unique()})
    if positive is None:
        if not all(_is_binary_value(v) for v in values.unique()):
            raise InputError(
                "labels are not 0/1 or boolean, so the positive (harmful) label must be given "
                f"explicitly; labels found: {_format_values(found)}",
                file=file,
                column=column,
            )
        return values.astype(float).eq(1.0).astype(bool)

    if isinstance(positive, str) or not isinstance(positive, Sequence):
        positives: list[object] = [positive]
    else:
        positives = list(positive)
    is_positive = values.isin(positives)
    if not is_positive.any():
        raise InputError(
            f"positive label {_format_values(positives)} does not occur; labels found: "
            f"{_format_values(found)}",
            file=file,
            column=column,
        )
    return is_positive.astype(bool)


# --------------------------------------------------------------------------------------------
# Preparing the frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """Validated columns of the rows the groups use."""

    group: pd.Series
    gold: pd.Series
    flagged: pd.Series
    score: pd.Series | None
    groups: tuple[str, ...]
    excluded_ids: tuple[Hashable, ...]


def _group_labels(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.Series, list[str]]:
    """Return string group labels (NaN where missing) and the group order."""
    missing = frame[columns].isna().any(axis=1)
    order: list[str] = []
    if len(columns) == 1:
        column = frame[columns[0]]
        if isinstance(column.dtype, pd.CategoricalDtype):
            order = [str(c) for c in column.cat.categories]
        labels = column.astype(object).map(str)
    else:
        labels = frame[columns].astype(object).map(str).agg(GROUP_SEPARATOR.join, axis=1)
    labels = labels.where(~missing, other=np.nan)
    present = sorted(set(labels[~missing]))
    order += [g for g in present if g not in order]
    return labels, order


def _prepare(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    flagged: str,
    score: str | None,
    missing_group: Literal["error", "keep", "drop"],
    threshold: float | None,
) -> _Prepared:
    group_columns = [group] if isinstance(group, str) else list(group)
    needed = [*group_columns, gold, flagged] + ([score] if score is not None else [])
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise InputError(
            f"missing column(s) {_format_values(absent)}; columns present: "
            f"{_format_values(list(frame.columns))}"
        )
    if missing_group not in ("error", "keep", "drop"):
        raise ValueError(f"missing_group must be 'error', 'keep' or 'drop', not {missing_group!r}")

    labels, order = _group_labels(frame, group_columns)
    group_name = ", ".join(group_columns)
    for reserved in (OVERALL, MISSING_GROUP):
        if reserved in order:
            raise InputError(
                f"group value {reserved!r} is reserved for fairaudit's own rows; rename it",
                column=group_name,
            )

    missing = labels.isna().to_numpy()
    excluded: tuple[Hashable, ...] = ()
    if missing.any():
        ids = list(frame.index[missing])
        if missing_group == "error":
            raise InputError(
                f"{len(ids)} row(s) have no group value (ids: {format_ids(ids)}); "
                "set missing_group to 'keep' or 'drop' to audit them as a group or leave them out",
                column=group_name,
            )
        if missing_group == "keep":
            labels = labels.where(~missing, other=MISSING_GROUP)
            order = [*order, MISSING_GROUP]
            logger.info(
                "kept %d row(s) with no %s as group %r", len(ids), group_name, MISSING_GROUP
            )
        else:
            excluded = tuple(ids)
            logger.warning(
                "left out %d row(s) with no %s from every group and from %r (ids: %s)",
                len(ids),
                group_name,
                OVERALL,
                format_ids(ids),
            )
            frame = frame.loc[~missing]
            labels = labels.loc[~missing]

    gold_values = binarize_labels(frame[gold], positive=None, column=gold)
    flagged_values = binarize_labels(frame[flagged], positive=None, column=flagged)
    score_values: pd.Series | None = None
    if score is not None:
        score_values = numeric_scores(frame, score)

    n_flagged = int(flagged_values.sum())
    n_rows = len(flagged_values)
    if n_rows and n_flagged in (0, n_rows):
        where = f" at threshold {threshold:g}" if threshold is not None else ""
        warnings.warn(
            f"{n_flagged} of {n_rows} messages flagged{where}; threshold-based disparities are "
            "degenerate",
            DegenerateDataWarning,
            stacklevel=3,
        )

    return _Prepared(
        group=labels.astype(str),
        gold=gold_values,
        flagged=flagged_values,
        score=score_values,
        groups=tuple(order),
        excluded_ids=excluded,
    )


# --------------------------------------------------------------------------------------------
# Per-group metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Counts:
    """Confusion counts of one group."""

    n: int
    negatives: int
    positives: int
    false_positives: int
    false_negatives: int
    true_positives: int
    flagged: int

    @classmethod
    def of(cls, gold: np.ndarray, flagged: np.ndarray) -> _Counts:
        return cls(
            n=int(gold.size),
            negatives=int((~gold).sum()),
            positives=int(gold.sum()),
            false_positives=int((flagged & ~gold).sum()),
            false_negatives=int((~flagged & gold).sum()),
            true_positives=int((flagged & gold).sum()),
            flagged=int(flagged.sum()),
        )

    def rate(self, metric: str) -> tuple[int, int, str | None]:
        """Numerator, denominator and undefined reason of a rate metric."""
        if metric == "false_positive_rate":
            count, n, reason = self.false_positives, self.negatives, "no_negatives"
        elif metric == "false_negative_rate":
            count, n, reason = self.false_negatives, self.positives, "no_positives"
        elif metric == "flag_rate":
            count, n, reason = self.flagged, self.n, "empty_group"
        elif metric == "precision":
            count, n, reason = self.true_positives, self.flagged, "no_predicted_positives"
        else:
            raise ValueError(f"not a rate metric: {metric!r}")
        if self.n == 0:
            reason = "empty_group"
        return count, n, (reason if n == 0 else None)


def _proportion_row(
    count: int, n: int, reason: str | None, *, alpha: float, interval: str
) -> dict[str, Any]:
    if reason is not None:
        estimate = low = high = math.nan
    else:
        estimate = count / n
        low, high = proportion_confint(count, n, alpha=alpha, method=_INTERVAL_METHODS[interval])
    return {
        "estimate": float(estimate),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": n,
        "count": count,
        "interval_method": interval,
        "undefined_reason": reason,
    }


def _mean_row(scores: np.ndarray, *, alpha: float) -> dict[str, Any]:
    n = int(scores.size)
    reason = "empty_group" if n == 0 else None
    estimate = low = high = math.nan
    if n:
        estimate = float(scores.mean())
    if n >= 2:
        low, high = DescrStatsW(scores).tconfint_mean(alpha=alpha)
    return {
        "estimate": float(estimate),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": n,
        "count": pd.NA,
        "interval_method": _MEAN_INTERVAL_METHOD,
        "undefined_reason": reason,
    }


def _reasons(rows: list[dict[str, Any]]) -> pd.Series:
    # Object dtype keeps None for "defined" instead of pandas' inferred string NaN.
    return pd.Series([row["undefined_reason"] for row in rows], dtype=object)


def group_metrics(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    flagged: str,
    score: str | None = None,
    alpha: float = 0.05,
    min_negatives: int = 30,
    interval: Literal["wilson", "clopper_pearson"] = "wilson",
    missing_group: Literal["error", "keep", "drop"] = "error",
    threshold: float | None = None,
) -> pd.DataFrame:
    """Error rates, flag rate, mean score and precision per group, with confidence intervals.

    Parameters
    ----------
    frame
        One row per message; the index holds the message ids.
    group
        Group column, or several columns for intersectional cells (labels joined with ``"×"``,
        for example ``"aae×f"``). A missing value in any of them makes the group missing.
    gold
        Gold label column, 0/1 or boolean, ``True`` meaning harmful. Use
        :func:`binarize_labels` first for string labels.
    flagged
        The model's decision, 0/1 or boolean, ``True`` meaning flagged as harmful.
    score
        Optional model score column; adds the ``mean_score`` rows.
    alpha
        Every interval has confidence ``1 - alpha``.
    min_negatives
        Groups with fewer gold non-harmful messages than this are marked ``small_group`` and
        named in a :class:`~fairaudit.exceptions.SmallGroupWarning`.
    interval
        Interval for the proportions: ``"wilson"`` score or exact ``"clopper_pearson"``. The
        mean score always has a Student t interval (``interval_method="student_t"``).
    missing_group
        Rows with no group value: ``"error"`` raises, ``"keep"`` audits them as the group
        ``"<missing>"``, ``"drop"`` leaves them out of every group and of the overall row and
        lists their ids in ``result.attrs["excluded_ids"]``.
    threshold
        The score threshold that produced ``flagged``; only used in messages.

    Returns
    -------
    pandas.DataFrame
        One row per (group, metric), groups first in category or sorted order, then
        ``"overall"``, computed on exactly the rows the groups use. Columns: ``group``,
        ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``n`` (the denominator: negatives for
        the false positive rate, positives for the false negative rate, flagged messages for
        precision, all messages otherwise), ``count`` (the numerator; missing for the mean
        score), ``interval_method``, ``alpha``, ``undefined_reason`` (``None``, or
        ``"no_negatives"``, ``"no_positives"``, ``"no_predicted_positives"``, ``"empty_group"``;
        the estimate is then NaN) and ``small_group``.

    Raises
    ------
    fairaudit.exceptions.InputError
        If a column is absent, a label or score is missing or not binary, a group value is
        missing in ``"error"`` mode (the message names the column, the count and the ids), or a
        group is called ``"overall"`` or ``"<missing>"``.

    Warns
    -----
    fairaudit.exceptions.SmallGroupWarning
        Naming the groups with fewer than ``min_negatives`` negatives.
    fairaudit.exceptions.UndefinedMetricWarning
        Naming the (group, metric) pairs that are undefined.
    fairaudit.exceptions.DegenerateDataWarning
        When no message, or every message, is flagged.

    Notes
    -----
    Intersectional cells (``group`` naming two columns, such as dialect × speaker gender) are
    often tiny. Every cell is listed, none is dropped; cells with fewer than ``min_negatives``
    gold non-harmful messages are marked ``small_group``, and :func:`headline` leaves them out
    of the worst group and the gap and lists them in ``groups_left_out``. Use
    ``interval="clopper_pearson"`` for such cells: its interval never collapses to a point.

    The false positive rate among gold non-harmful messages is the quantity behind the dialect
    bias found by Sap et al. (2019); its equality across groups is one half of equalized odds
    (Hardt et al., 2016). The Wilson (1927) interval keeps good coverage at small n; the
    Clopper and Pearson (1934) interval is exact (conservative) and never collapses to a point
    at 0 or n.

    References
    ----------
    .. [1] Sap, M., Card, D., Gabriel, S., Choi, Y. and Smith, N. A. (2019). The risk of racial
       bias in hate speech detection. Proc. ACL, 1668-1678. doi:10.18653/v1/P19-1163
    .. [2] Hardt, M., Price, E. and Srebro, N. (2016). Equality of opportunity in supervised
       learning. NeurIPS 29. arXiv:1610.02413
    .. [3] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212. doi:10.1080/01621459.1927.10502953
    .. [4] Clopper, C. J. and Pearson, E. S. (1934). The use of confidence or fiducial limits
       illustrated in the case of the binomial. Biometrika 26(4), 404-413.
       doi:10.1093/biomet/26.4.404
    .. [5] Student (1908). The probable error of a mean. Biometrika 6(1), 1-25.
       doi:10.1093/biomet/6.1.1
    """
    check_alpha(alpha)
    if interval not in _INTERVAL_METHODS:
        raise ValueError(f"interval must be one of {sorted(_INTERVAL_METHODS)}, not {interval!r}")
    prepared = _prepare(
        frame,
        group=group,
        gold=gold,
        flagged=flagged,
        score=score,
        missing_group=missing_group,
        threshold=threshold,
    )

    gold_all = prepared.gold.to_numpy(dtype=bool)
    flagged_all = prepared.flagged.to_numpy(dtype=bool)
    score_all = None if prepared.score is None else prepared.score.to_numpy(dtype=float)
    labels = prepared.group.to_numpy()
    metrics = [m for m in METRICS if m != "mean_score" or score_all is not None]

    rows: list[dict[str, Any]] = []
    small: list[str] = []
    undefined: list[str] = []
    for name in (*prepared.groups, OVERALL):
        mask = np.ones(labels.size, dtype=bool) if name == OVERALL else labels == name
        counts = _Counts.of(gold_all[mask], flagged_all[mask])
        is_small = counts.negatives < min_negatives
        if is_small and name != OVERALL:
            small.append(f"{name!r} ({counts.negatives})")
        for metric in metrics:
            if metric == "mean_score" and score_all is not None:
                row = _mean_row(score_all[mask], alpha=alpha)
            else:
                row = _proportion_row(*counts.rate(metric), alpha=alpha, interval=interval)
            if row["undefined_reason"] is not None:
                undefined.append(f"{name}/{metric} ({row['undefined_reason']})")
            rows.append(
                {
                    "group": name,
                    "metric": metric,
                    **row,
                    "alpha": alpha,
                    "small_group": bool(is_small),
                }
            )

    result = pd.DataFrame(rows, columns=list(GROUP_METRIC_COLUMNS))
    result["n"] = result["n"].astype("int64")
    result["count"] = result["count"].astype("Int64")
    result["small_group"] = result["small_group"].astype(bool)
    result["undefined_reason"] = _reasons(rows)
    result.attrs["excluded_ids"] = list(prepared.excluded_ids)
    result.attrs["missing_group"] = missing_group

    warn_small_groups(small, min_negatives)
    warn_undefined(undefined, "metric")
    logger.info(
        "computed %d metric(s) for %d group(s) on %d messages",
        len(metrics),
        len(prepared.groups),
        labels.size,
    )
    return result


# --------------------------------------------------------------------------------------------
# Comparisons against a reference group
# --------------------------------------------------------------------------------------------


def _two_by_two_test(
    table: np.ndarray, *, test: Literal["auto", "fisher", "chi2"]
) -> tuple[str, float, float, str | None]:
    """Method name, statistic, p-value and undefined reason of a test on a 2x2 table."""
    expected = expected_freq(table)
    use_fisher = test == "fisher" or (test == "auto" and bool((expected < 5).any()))
    if use_fisher:
        result = stats.fisher_exact(table, alternative="two-sided")
        return "fisher_exact", float(result.statistic), float(result.pvalue), None
    if (expected == 0).any():
        return "chi2_pearson", math.nan, math.nan, "zero_expected_count"
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return "chi2_pearson", float(statistic), float(p_value), None


FOUR_FIFTHS_THRESHOLD = 0.8
"""Adverse impact threshold of the four-fifths rule (EEOC Uniform Guidelines, 29 CFR 1607.4D)."""

_FOUR_FIFTHS_NOTES = {
    "flag_rate": "computed on the favourable outcome (not flagged)",
    "false_positive_rate": (
        "computed on the favourable outcome (not flagged), among gold non-harmful messages"
    ),
}

_EMPTY_EFFECT_SIZES: dict[str, Any] = {
    "ratio_ci_low": math.nan,
    "ratio_ci_high": math.nan,
    "ratio_interval_method": None,
    "odds_ratio": math.nan,
    "odds_ratio_ci_low": math.nan,
    "odds_ratio_ci_high": math.nan,
    "odds_ratio_method": None,
    "four_fifths_ratio": math.nan,
    "four_fifths_violated": pd.NA,
    "four_fifths_note": None,
}


def _katz_interval(
    count: int, n: int, count_ref: int, n_ref: int, *, alpha: float
) -> tuple[float, float]:
    """Katz log interval of a ratio of two proportions; both counts must be positive."""
    z = stats.norm.ppf(1 - alpha / 2)
    log_ratio = math.log((count / n) / (count_ref / n_ref))
    se = math.sqrt(1 / count - 1 / n + 1 / count_ref - 1 / n_ref)
    return math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)


def _woolf_odds_ratio(table: np.ndarray, *, alpha: float) -> tuple[float, float, float, str]:
    """Odds ratio and Woolf logit interval; +0.5 per cell (Haldane-Anscombe) only on a zero."""
    cells = table.astype(float)
    method = "woolf_logit"
    if (cells == 0).any():
        cells = cells + 0.5
        method = "woolf_logit_haldane_anscombe"
    (a, b), (c, d) = cells
    log_odds = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z = stats.norm.ppf(1 - alpha / 2)
    return math.exp(log_odds), math.exp(log_odds - z * se), math.exp(log_odds + z * se), method


def _rate_comparison(
    metric: str,
    counts: _Counts,
    reference: _Counts,
    *,
    alpha: float,
    test: Literal["auto", "fisher", "chi2"],
) -> dict[str, Any]:
    count, n, reason = counts.rate(metric)
    count_ref, n_ref, reason_ref = reference.rate(metric)
    row: dict[str, Any] = {
        "estimate": count / n if reason is None else math.nan,
        "reference_estimate": count_ref / n_ref if reason_ref is None else math.nan,
        "difference": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "interval_method": "newcombe",
        "ratio": math.nan,
        **_EMPTY_EFFECT_SIZES,
        "ratio_interval_method": "katz_log",
        "n": n,
        "n_reference": n_ref,
        "count": count,
        "count_reference": count_ref,
        "method": None,
        "statistic": math.nan,
        "p_value": math.nan,
        "undefined_reason": None,
        "ratio_undefined_reason": None,
    }
    if reason is not None or reason_ref is not None:
        row["undefined_reason"] = reason if reason is not None else f"reference_{reason_ref}"
        row["ratio_undefined_reason"] = row["undefined_reason"]
        return row

    row["difference"] = row["estimate"] - row["reference_estimate"]
    low, high = confint_proportions_2indep(
        count, n, count_ref, n_ref, method="newcomb", compare="diff", alpha=alpha
    )
    row["ci_low"], row["ci_high"] = float(low), float(high)
    if row["reference_estimate"] > 0:
        row["ratio"] = row["estimate"] / row["reference_estimate"]
        if count > 0:
            row["ratio_ci_low"], row["ratio_ci_high"] = _katz_interval(
                count, n, count_ref, n_ref, alpha=alpha
            )
        else:
            row["ratio_undefined_reason"] = "zero_count"
    else:
        row["ratio_undefined_reason"] = "zero_denominator"

    table = np.array([[count, n - count], [count_ref, n_ref - count_ref]])
    (
        row["odds_ratio"],
        row["odds_ratio_ci_low"],
        row["odds_ratio_ci_high"],
        row["odds_ratio_method"],
    ) = _woolf_odds_ratio(table, alpha=alpha)
    if metric in _FOUR_FIFTHS_NOTES:
        row["four_fifths_note"] = _FOUR_FIFTHS_NOTES[metric]
        favourable_reference = 1.0 - row["reference_estimate"]
        if favourable_reference > 0:
            row["four_fifths_ratio"] = (1.0 - row["estimate"]) / favourable_reference
            row["four_fifths_violated"] = bool(row["four_fifths_ratio"] < FOUR_FIFTHS_THRESHOLD)
    method, statistic, p_value, test_reason = _two_by_two_test(table, test=test)
    row["method"], row["statistic"], row["p_value"] = method, statistic, p_value
    if test_reason is not None and row["undefined_reason"] is None:
        row["undefined_reason"] = test_reason
    return row


def _mean_comparison(
    scores: np.ndarray, scores_ref: np.ndarray, *, alpha: float
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "estimate": float(scores.mean()) if scores.size else math.nan,
        "reference_estimate": float(scores_ref.mean()) if scores_ref.size else math.nan,
        "difference": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "interval_method": "welch_t",
        "ratio": math.nan,
        **_EMPTY_EFFECT_SIZES,
        "n": int(scores.size),
        "n_reference": int(scores_ref.size),
        "count": pd.NA,
        "count_reference": pd.NA,
        "method": "welch_t",
        "statistic": math.nan,
        "p_value": math.nan,
        "undefined_reason": None,
        "ratio_undefined_reason": None,
    }
    if scores.size < 2 or scores_ref.size < 2:
        row["undefined_reason"] = row["ratio_undefined_reason"] = "too_few_scores"
        return row
    row["difference"] = row["estimate"] - row["reference_estimate"]
    if row["reference_estimate"] != 0:
        row["ratio"] = row["estimate"] / row["reference_estimate"]
    else:
        row["ratio_undefined_reason"] = "zero_denominator"
    if np.ptp(scores) == 0 and np.ptp(scores_ref) == 0:
        row["undefined_reason"] = "zero_variance"
        return row
    result = stats.ttest_ind(scores, scores_ref, equal_var=False)
    low, high = result.confidence_interval(confidence_level=1 - alpha)
    row["ci_low"], row["ci_high"] = float(low), float(high)
    row["statistic"], row["p_value"] = float(result.statistic), float(result.pvalue)
    return row


_ADJUSTMENT_COLUMNS = (
    "p_adjusted",
    "correction",
    "significant",
    "p_adjusted_bh",
    "significant_bh",
    "family",
    "alpha",
)


def _family_labels(
    metrics: pd.Series, family: Literal["all", "per_metric"] | Sequence[str]
) -> pd.Series:
    """Name of the multiple-testing family of each comparison."""
    if isinstance(family, str):
        if family == "all":
            return pd.Series(["all"] * len(metrics), index=metrics.index, dtype=object)
        return metrics.astype(object)
    primary = set(family)
    return metrics.map(lambda m: "primary" if m in primary else "secondary").astype(object)


def compare_groups(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    flagged: str,
    reference: str,
    score: str | None = None,
    alpha: float = 0.05,
    test: Literal["auto", "fisher", "chi2"] = "auto",
    metrics: Sequence[str] | None = None,
    min_negatives: int = 30,
    missing_group: Literal["error", "keep", "drop"] = "error",
    threshold: float | None = None,
    family: Literal["all", "per_metric"] | Sequence[str] = "all",
) -> pd.DataFrame:
    """Compare every group with a reference group: effect sizes with intervals, adjusted tests.

    Parameters
    ----------
    frame, group, gold, flagged, score, min_negatives, missing_group, threshold
        As in :func:`group_metrics`. ``group`` may name two columns for intersectional cells;
        ``reference`` is then a cell such as ``"sae×f"``.
    reference
        The reference group, for example ``"sae"``.
    alpha
        Confidence ``1 - alpha`` of every interval (difference, ratio, odds ratio) and
        significance level of every verdict, after the multiple-testing correction.
    test
        Test of a rate difference on its 2x2 table (group/reference by count/rest).
        ``"auto"`` uses Fisher's exact test when any expected count is below 5 (Cochran, 1954)
        and Pearson's chi-square test without continuity correction otherwise.
    metrics
        Metrics to compare. Default: every rate metric (false positive rate, false negative
        rate, flag rate, precision) and, when ``score`` is given, the mean score.
    family
        Which comparisons form one multiple-testing family, for both corrections: ``"all"``
        (default, every comparison in the table), ``"per_metric"`` (each metric's comparisons
        across groups), or a list of metrics that form the ``"primary"`` family (for example
        ``["false_positive_rate", "false_negative_rate"]`` for equalized odds), the other
        metrics forming a ``"secondary"`` family of their own.

    Returns
    -------
    pandas.DataFrame
        One row per (non-reference group, metric), columns in :data:`COMPARISON_COLUMNS`:

        - ``group``, ``reference``, ``metric``, ``estimate``, ``reference_estimate``;
        - ``difference`` (group minus reference) with ``ci_low``/``ci_high``: the Newcombe
          hybrid score interval for rates, the Welch interval for the mean score, named in
          ``interval_method``;
        - ``ratio`` (group over reference) with ``ratio_ci_low``/``ratio_ci_high``, the Katz log
          interval (``ratio_interval_method="katz_log"``), undefined when either count is 0;
        - ``odds_ratio`` of the 2x2 table with ``odds_ratio_ci_low``/``odds_ratio_ci_high``,
          the Woolf logit interval; ``odds_ratio_method`` is ``"woolf_logit"``, or
          ``"woolf_logit_haldane_anscombe"`` when a cell is 0 and 0.5 was added to every cell
          (estimate and interval);
        - ``four_fifths_ratio``, ``four_fifths_violated`` and ``four_fifths_note``: the
          four-fifths (80 %) rule of adverse impact, computed on the favourable outcome, not
          being flagged: ``(1 - rate) / (1 - reference rate)``, violated below 0.8. Only for
          the flag rate (all messages) and the false positive rate (gold non-harmful
          messages); missing for the other metrics and when the reference is always flagged;
        - ``n``, ``n_reference`` (denominators), ``count``, ``count_reference`` (numerators);
        - ``method`` (``"fisher_exact"``, ``"chi2_pearson"`` or ``"welch_t"``), ``statistic``
          (the sample odds ratio for Fisher's test, else chi-square or t), ``p_value``;
        - ``p_adjusted`` (Holm), ``correction`` (``"holm"``), ``significant``
          (``p_adjusted < alpha``), ``p_adjusted_bh`` (Benjamini-Hochberg false discovery
          rate), ``significant_bh`` (``p_adjusted_bh < alpha``), ``family`` (the family both
          corrections ran over); the verdicts are missing when no test was possible;
        - ``alpha``; ``undefined_reason`` (``None``, the group's reason such as
          ``"no_positives"``, ``"reference_"`` and the reference group's reason,
          ``"zero_expected_count"``, ``"too_few_scores"`` or ``"zero_variance"``: why the
          difference or the test is undefined); ``ratio_undefined_reason`` (why the ratio or
          its interval is: ``"zero_denominator"``, ``"zero_count"``, or the reason above);
          ``small_group`` (the group or the reference has fewer than ``min_negatives`` gold
          non-harmful messages).

    Raises
    ------
    fairaudit.exceptions.InputError
        As :func:`group_metrics`, and if ``reference`` is not a group in the data.

    Warns
    -----
    fairaudit.exceptions.DegenerateDataWarning
        When no message, or every message, is flagged.

    Notes
    -----
    Holm's procedure controls the family-wise error rate under any dependence between the
    tests (the false positive rate and the flag rate share messages); Benjamini-Hochberg
    controls the false discovery rate under independence or positive dependence and is given
    for screening many cells. The four-fifths rule is stated for selection rates of a
    favourable outcome; here that outcome is not being flagged, so the ratio compares the
    shares not flagged. Applied to the flag rate itself it would read a group flagged less
    often as the disadvantaged one.

    References
    ----------
    .. [1] Newcombe, R. G. (1998). Interval estimation for the difference between independent
       proportions: comparison of eleven methods. Statistics in Medicine 17(8), 873-890.
       doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I
    .. [2] Fisher, R. A. (1922). On the interpretation of chi-square from contingency tables,
       and the calculation of P. JRSS 85(1), 87-94. doi:10.2307/2340521
    .. [3] Pearson, K. (1900). On the criterion that a given system of deviations from the
       probable ... Philosophical Magazine 50(302), 157-175. doi:10.1080/14786440009463897
    .. [4] Cochran, W. G. (1954). Some methods for strengthening the common chi-square tests.
       Biometrics 10(4), 417-451. doi:10.2307/3001616
    .. [5] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics 6(2), 65-70. JSTOR:4615733
    .. [6] Welch, B. L. (1947). The generalization of "Student's" problem when several
       different population variances are involved. Biometrika 34(1-2), 28-35.
       doi:10.1093/biomet/34.1-2.28
    .. [7] Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a
       practical and powerful approach to multiple testing. JRSS B 57(1), 289-300.
       doi:10.1111/j.2517-6161.1995.tb02031.x
    .. [8] Katz, D., Baptista, J., Azen, S. P. and Pike, M. C. (1978). Obtaining confidence
       intervals for the risk ratio in cohort studies. Biometrics 34(3), 469-474.
       doi:10.2307/2530610
    .. [9] Woolf, B. (1955). On estimating the relation between blood group and disease.
       Annals of Human Genetics 19(4), 251-253. doi:10.1111/j.1469-1809.1955.tb01348.x
    .. [10] Haldane, J. B. S. (1956). The estimation and significance of the logarithm of a
       ratio of frequencies. Annals of Human Genetics 20(4), 309-311.
       doi:10.1111/j.1469-1809.1956.tb01376.x
    .. [11] Equal Employment Opportunity Commission et al. (1978). Uniform Guidelines on
       Employee Selection Procedures, 29 CFR 1607.4(D) (the four-fifths rule).
    """
    check_alpha(alpha)
    if test not in ("auto", "fisher", "chi2"):
        raise ValueError(f"test must be 'auto', 'fisher' or 'chi2', not {test!r}")
    allowed = [*RATE_METRICS, *(["mean_score"] if score is not None else [])]
    chosen = list(allowed if metrics is None else metrics)
    unknown = [m for m in chosen if m not in allowed]
    if unknown:
        raise ValueError(f"cannot compare {_format_values(unknown)}; choose from {allowed}")
    if not isinstance(family, str):
        outside = [m for m in family if m not in chosen]
        if outside:
            raise ValueError(
                f"family metric(s) {_format_values(outside)} are not compared; compared: {chosen}"
            )
    elif family not in ("all", "per_metric"):
        raise ValueError(
            f"family must be 'all', 'per_metric' or a list of metrics, not {family!r}"
        )

    prepared = _prepare(
        frame,
        group=group,
        gold=gold,
        flagged=flagged,
        score=score,
        missing_group=missing_group,
        threshold=threshold,
    )
    if reference not in prepared.groups:
        group_name = group if isinstance(group, str) else ", ".join(group)
        raise InputError(
            f"reference group {reference!r} not found; groups: {_format_values(prepared.groups)}",
            column=group_name,
        )

    gold_all = prepared.gold.to_numpy(dtype=bool)
    flagged_all = prepared.flagged.to_numpy(dtype=bool)
    score_all = None if prepared.score is None else prepared.score.to_numpy(dtype=float)
    labels = prepared.group.to_numpy()
    reference_mask = labels == reference
    reference_counts = _Counts.of(gold_all[reference_mask], flagged_all[reference_mask])

    rows: list[dict[str, Any]] = []
    for name in prepared.groups:
        if name == reference:
            continue
        mask = labels == name
        counts = _Counts.of(gold_all[mask], flagged_all[mask])
        for metric in chosen:
            if metric == "mean_score" and score_all is not None:
                row = _mean_comparison(score_all[mask], score_all[reference_mask], alpha=alpha)
            else:
                row = _rate_comparison(metric, counts, reference_counts, alpha=alpha, test=test)
            small = min(counts.negatives, reference_counts.negatives) < min_negatives
            rows.append(
                {
                    "group": name,
                    "reference": reference,
                    "metric": metric,
                    **row,
                    "small_group": bool(small),
                }
            )

    result = pd.DataFrame(
        rows,
        columns=[c for c in COMPARISON_COLUMNS if c not in _ADJUSTMENT_COLUMNS],
    )
    for column in (
        "estimate",
        "reference_estimate",
        "difference",
        "ci_low",
        "ci_high",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
        "odds_ratio",
        "odds_ratio_ci_low",
        "odds_ratio_ci_high",
        "four_fifths_ratio",
        "statistic",
        "p_value",
    ):
        result[column] = result[column].astype(float)
    for column in ("ratio_interval_method", "odds_ratio_method", "four_fifths_note"):
        result[column] = pd.Series([row[column] for row in rows], dtype=object)
    result["four_fifths_violated"] = pd.array(
        [row["four_fifths_violated"] for row in rows], dtype="boolean"
    )

    # Holm and Benjamini-Hochberg within each family, over the defined p-values only: an
    # undefined comparison is not a hypothesis tested.
    result["family"] = _family_labels(result["metric"], family)
    adjusted = np.full(len(result), np.nan)
    adjusted_bh = np.full(len(result), np.nan)
    significant = pd.array([pd.NA] * len(result), dtype="boolean")
    significant_bh = pd.array([pd.NA] * len(result), dtype="boolean")
    defined = result["p_value"].notna().to_numpy()
    for label in result["family"].unique():
        members = defined & (result["family"] == label).to_numpy()
        if not members.any():
            continue
        p_values = result.loc[members, "p_value"].to_numpy()
        adjusted[members], significant[members] = holm(p_values, alpha=alpha)
        _, p_bh, _, _ = multipletests(p_values, alpha=alpha, method="fdr_bh")
        adjusted_bh[members] = p_bh
        significant_bh[members] = p_bh < alpha
    result["p_adjusted"] = adjusted
    result["correction"] = "holm"
    result["p_adjusted_bh"] = adjusted_bh
    result["significant_bh"] = significant_bh
    result["undefined_reason"] = _reasons(rows)
    result["ratio_undefined_reason"] = pd.Series(
        [row["ratio_undefined_reason"] for row in rows], dtype=object
    )
    result["significant"] = significant
    result["alpha"] = alpha
    result["n"] = result["n"].astype("int64")
    result["n_reference"] = result["n_reference"].astype("int64")
    result["count"] = result["count"].astype("Int64")
    result["count_reference"] = result["count_reference"].astype("Int64")
    result["small_group"] = result["small_group"].astype(bool)
    logger.info(
        "compared %d group(s) with %r on %d metric(s), %d test(s) in %d family(ies), Holm and "
        "Benjamini-Hochberg at alpha %g",
        len(prepared.groups) - 1,
        reference,
        len(chosen),
        int(defined.sum()),
        result["family"].nunique(),
        alpha,
    )
    return result[list(COMPARISON_COLUMNS)]


# --------------------------------------------------------------------------------------------
# Headline
# --------------------------------------------------------------------------------------------


def headline(metrics: pd.DataFrame, *, metric: str = "false_positive_rate") -> dict[str, Any]:
    """Worst group and largest gap for one metric, over the groups large enough to judge.

    Groups marked ``small_group`` are left out and listed; groups where the metric is undefined
    are skipped and counted, never treated as 0. For precision the worst group is the one with
    the lowest value; for every other metric it is the one with the highest.

    Parameters
    ----------
    metrics
        A table from :func:`group_metrics`.
    metric
        The metric to summarise.

    Returns
    -------
    dict
        Keys: ``metric``; ``worst_group`` and ``worst_estimate``; ``best_group`` and
        ``best_estimate``; ``gap`` (max minus min; NaN with fewer than two groups);
        ``groups_compared``; ``groups_left_out`` (groups marked ``small_group``);
        ``undefined_skipped`` (how many defined-size groups had no estimate) and
        ``undefined_groups``.

    Notes
    -----
    A maximum-minus-minimum gap is the disparity summary of fairlearn's
    ``MetricFrame.difference(method="between_groups")`` (Weerts et al., 2023), restricted here
    to groups with enough data.

    References
    ----------
    .. [1] Weerts, H., Dudik, M., Edgar, R., Jalali, A., Lutz, R. and Madaio, M. (2023).
       Fairlearn: Assessing and improving fairness of AI systems. JMLR 24(257), 1-8.
       arXiv:2303.16626
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    rows = metrics[(metrics["metric"] == metric) & (metrics["group"] != OVERALL)]
    left_out = rows.loc[rows["small_group"].astype(bool), "group"].tolist()
    rows = rows[~rows["small_group"].astype(bool)]
    undefined = rows.loc[rows["estimate"].isna(), "group"].tolist()
    rows = rows[rows["estimate"].notna()]

    result: dict[str, Any] = {
        "metric": metric,
        "worst_group": None,
        "worst_estimate": math.nan,
        "best_group": None,
        "best_estimate": math.nan,
        "gap": math.nan,
        "groups_compared": rows["group"].tolist(),
        "groups_left_out": left_out,
        "undefined_skipped": len(undefined),
        "undefined_groups": undefined,
    }
    if rows.empty:
        return result
    ordered = rows.sort_values("estimate", ascending=(metric == "precision"), kind="stable")
    worst, best = ordered.iloc[0], ordered.iloc[-1]
    result.update(
        worst_group=worst["group"],
        worst_estimate=float(worst["estimate"]),
        best_group=best["group"],
        best_estimate=float(best["estimate"]),
        gap=float(rows["estimate"].max() - rows["estimate"].min()) if len(rows) > 1 else math.nan,
    )
    return result


# --------------------------------------------------------------------------------------------
# ROC AUC
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RocAuc:
    """A ROC AUC with its counts; ``estimate`` is NaN when ``undefined_reason`` is set."""

    estimate: float
    n: int
    positives: int
    negatives: int
    undefined_reason: str | None


def roc_auc(gold: pd.Series | np.ndarray, score: pd.Series | np.ndarray) -> RocAuc:
    """Area under the ROC curve, or NaN with the reason ``"single_class"``.

    Parameters
    ----------
    gold
        Gold labels, 0/1 or boolean, ``True`` meaning harmful.
    score
        Scores, higher meaning more likely harmful.

    Returns
    -------
    RocAuc
        The estimate, n, the class counts and ``undefined_reason`` (``None``, ``"empty"`` or
        ``"single_class"``).

    Notes
    -----
    The AUC is the probability that a random harmful message scores above a random
    non-harmful one (Hanley and McNeil, 1982), the building block of the subgroup, BPSN and
    BNSP AUCs of Borkan et al. (2019). It is undefined with one class; this function checks the
    classes itself, so it neither raises (older scikit-learn) nor returns NaN with a warning
    (newer scikit-learn).

    References
    ----------
    .. [1] Hanley, J. A. and McNeil, B. J. (1982). The meaning and use of the area under a
       receiver operating characteristic (ROC) curve. Radiology 143(1), 29-36.
       doi:10.1148/radiology.143.1.7063747
    .. [2] Borkan, D., Dixon, L., Sorensen, J., Thain, N. and Vasserman, L. (2019). Nuanced
       metrics for measuring unintended bias with real data for text classification.
       Companion Proc. WWW '19, 491-500. doi:10.1145/3308560.3317593
    """
    gold_series = gold if isinstance(gold, pd.Series) else pd.Series(np.asarray(gold))
    truth = binarize_labels(gold_series, positive=None, column="gold").to_numpy(dtype=bool)
    values = np.asarray(score, dtype=float)
    if values.shape != truth.shape:
        raise ValueError(f"gold has {truth.size} values but score has {values.size}")
    positives, n = int(truth.sum()), int(truth.size)
    negatives = n - positives
    if n == 0:
        return RocAuc(math.nan, 0, 0, 0, "empty")
    if np.isnan(values).any():
        raise ValueError(f"{int(np.isnan(values).sum())} missing score(s)")
    if positives == 0 or negatives == 0:
        return RocAuc(math.nan, n, positives, negatives, "single_class")

    # Belt and braces: scikit-learn signals an undefined AUC by raising or by NaN + warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarningSklearn)
        try:
            estimate = float(roc_auc_score(truth, values))
        except ValueError:
            estimate = math.nan
    if math.isnan(estimate):
        return RocAuc(math.nan, n, positives, negatives, "single_class")
    return RocAuc(estimate, n, positives, negatives, None)
