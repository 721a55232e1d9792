"""Dialect disparities without a hard group cut: soft membership and threshold sensitivity.

This module takes a data frame with one row per message, a dialect probability or score (the
probability that the message is African American English, for example ``dialect_score``), a
binary gold label (``True`` harmful) and the model's binary decision, and returns tidy tables:

- :func:`weighted_group_rates` weights every message by its probability of each dialect (AAE
  weight ``p``, SAE weight ``1 - p``) instead of assigning it to one group, and reports the
  weighted false positive rate, false negative rate and flag rate per soft group, their Kish
  effective sample sizes, intervals, and the AAE minus SAE difference.
- :func:`threshold_sensitivity` recomputes the main disparity (false positive rate of AAE minus
  SAE, Newcombe interval) for a range of group thresholds, so a reader sees whether a finding
  depends on one cut.

It knows nothing of files, models or dialect markers.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

from fairaudit._common import check_alpha, format_ids, warn_undefined
from fairaudit.disparity import binarize_labels
from fairaudit.exceptions import InputError, SmallGroupWarning, UndefinedMetricWarning

__all__ = [
    "SOFT_RATE_COLUMNS",
    "SENSITIVITY_COLUMNS",
    "DIFFERENCE",
    "DEFAULT_THRESHOLDS",
    "weighted_group_rates",
    "threshold_sensitivity",
]

logger = logging.getLogger(__name__)

DIFFERENCE = "difference"
"""``group`` label of the treated-minus-control rows of :func:`weighted_group_rates`."""

SOFT_RATE_COLUMNS: tuple[str, ...] = (
    "group",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "interval_method",
    "weight_sum",
    "weighted_count",
    "effective_n",
    "n_rows",
    "alpha",
    "undefined_reason",
    "small_group",
)
"""Columns of the table :func:`weighted_group_rates` returns, in order."""

SENSITIVITY_COLUMNS: tuple[str, ...] = (
    "threshold",
    "treated_rule",
    "control_rule",
    "n_treated",
    "n_control",
    "n_excluded",
    "negatives_treated",
    "negatives_control",
    "false_positives_treated",
    "false_positives_control",
    "fpr_treated",
    "fpr_control",
    "difference",
    "ci_low",
    "ci_high",
    "interval_method",
    "alpha",
    "undefined_reason",
    "small_group",
)
"""Columns of the table :func:`threshold_sensitivity` returns, in order."""

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(
    round(float(t), 10) for t in np.arange(0.5, 0.951, 0.05)
)
"""Default group thresholds of :func:`threshold_sensitivity`: 0.50, 0.55, ..., 0.95."""

_WEIGHTED_INTERVAL = "wilson_kish_effective_n"
_DIFFERENCE_INTERVAL = "newcombe_kish_effective_n"
_THRESHOLD_DIGITS = 10


def _probabilities(frame: pd.DataFrame, column: str) -> npt.NDArray[np.float64]:
    if column not in frame.columns:
        raise InputError(
            f"missing column {column!r}; columns present: {list(frame.columns)}", column=column
        )
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    bad = (values.isna() | (values < 0) | (values > 1)).to_numpy()
    if bad.any():
        ids = list(frame.index[bad])
        raise InputError(
            f"{len(ids)} value(s) missing, non-numeric or outside [0, 1] (ids: {format_ids(ids)})",
            column=column,
        )
    return values.to_numpy(dtype=float)


def _binary(frame: pd.DataFrame, column: str) -> npt.NDArray[np.bool_]:
    if column not in frame.columns:
        raise InputError(
            f"missing column {column!r}; columns present: {list(frame.columns)}", column=column
        )
    return binarize_labels(frame[column], positive=None, column=column).to_numpy(dtype=bool)


def _wilson(count: float, n: float, *, alpha: float) -> tuple[float, float]:
    """Wilson score interval for ``count`` successes in ``n`` trials; both may be fractional."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    p = count / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * math.sqrt(max(p * (1 - p) / n + z**2 / (4 * n**2), 0.0)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _weighted_rate(
    weights: npt.NDArray[np.float64],
    outcome: npt.NDArray[np.bool_],
    *,
    alpha: float,
    empty_reason: str,
) -> dict[str, Any]:
    weight_sum = float(weights.sum())
    weighted_count = float(weights[outcome].sum())
    squares = float((weights**2).sum())
    row: dict[str, Any] = {
        "estimate": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "interval_method": _WEIGHTED_INTERVAL,
        "weight_sum": weight_sum,
        "weighted_count": weighted_count,
        "effective_n": weight_sum**2 / squares if squares > 0 else 0.0,
        "n_rows": int((weights > 0).sum()),
        "undefined_reason": None,
    }
    if weight_sum <= 0:
        row["undefined_reason"] = empty_reason
        return row
    estimate = weighted_count / weight_sum
    low, high = _wilson(estimate * row["effective_n"], row["effective_n"], alpha=alpha)
    row.update(estimate=estimate, ci_low=low, ci_high=high)
    return row


def _newcombe(
    p1: float, interval1: tuple[float, float], p2: float, interval2: tuple[float, float]
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p1 - p2`` from the two Wilson intervals."""
    (l1, u1), (l2, u2) = interval1, interval2
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


_METRIC_SUBSETS = (
    ("false_positive_rate", "no_negatives"),
    ("false_negative_rate", "no_positives"),
    ("flag_rate", "empty_group"),
)


def weighted_group_rates(
    frame: pd.DataFrame,
    *,
    membership: str,
    gold: str,
    flagged: str,
    alpha: float = 0.05,
    treated: str = "aae",
    control: str = "sae",
    min_effective_n: float = 30.0,
) -> pd.DataFrame:
    """False positive, false negative and flag rates per soft dialect group.

    Every message counts in both groups: in the treated group (AAE) with weight ``p``, its
    ``membership`` value, and in the control group (SAE) with weight ``1 - p``. With 0/1
    memberships the rates equal the hard-group rates.

    Parameters
    ----------
    frame
        One row per message; the index holds the message ids.
    membership
        Column with the probability that the message is in the treated dialect, in [0, 1]
        (for example ``dialect_score``, the probability of African American English).
    gold
        Gold label column, 0/1 or boolean, ``True`` meaning harmful.
    flagged
        The model's decision, 0/1 or boolean, ``True`` meaning flagged.
    alpha
        Every interval has confidence ``1 - alpha``.
    treated, control
        Labels of the two soft groups in the result.
    min_effective_n
        A (group, metric) whose Kish effective sample size is below this is marked
        ``small_group`` and named in a :class:`~fairaudit.exceptions.SmallGroupWarning`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SOFT_RATE_COLUMNS`; for each metric (``false_positive_rate`` over gold
        non-harmful messages, ``false_negative_rate`` over gold harmful ones, ``flag_rate``
        over all) one row for ``treated``, one for ``control`` and one ``"difference"``
        (treated minus control). ``estimate`` is the weighted rate
        ``sum(w * outcome) / sum(w)`` over the metric's denominator messages;
        ``weight_sum`` is ``sum(w)``, ``weighted_count`` ``sum(w * outcome)``,
        ``effective_n`` Kish's ``sum(w)**2 / sum(w**2)``, ``n_rows`` the messages with
        positive weight. Group rows have a Wilson interval computed as if ``estimate *
        effective_n`` events had been seen in ``effective_n`` trials
        (``"wilson_kish_effective_n"``); difference rows have Newcombe's hybrid interval
        from those two Wilson intervals (``"newcombe_kish_effective_n"``), and their
        ``effective_n``/``weight_sum`` columns are NaN. ``undefined_reason`` is ``None``,
        ``"no_negatives"``, ``"no_positives"``, ``"empty_group"`` or, on a difference row,
        the group's reason prefixed with the group label.

    Raises
    ------
    fairaudit.exceptions.InputError
        A column is absent, a membership is missing or outside [0, 1], or a label is not 0/1.

    Warns
    -----
    fairaudit.exceptions.SmallGroupWarning
        Naming the (group, metric) pairs with effective n below ``min_effective_n``.
    fairaudit.exceptions.UndefinedMetricWarning
        Naming the undefined (group, metric) pairs.

    Notes
    -----
    Weighting by the dialect probability avoids discarding the uncertain middle of the
    dialect score and avoids the misclassification a hard cut brings; Blodgett et al. [1]_
    use posterior dialect proportions in the same way. Unequal weights make an estimate less
    precise than its number of rows suggests; Kish's effective sample size [2]_ measures how
    much, and the Wilson interval [3]_ is computed on it. This is an approximation (it treats
    the outcomes as independent with a common rate within a group). The difference interval
    follows Newcombe [4]_ and treats the two soft groups as independent. They are not: the same
    messages appear in both with weights ``p`` and ``1 - p``. The covariance of the two
    weighted rates is ``sum(p (1 - p) var(y)) / (sum(p) sum(1 - p)) >= 0``, so ignoring it
    makes the difference interval conservative (too wide), never too narrow.

    References
    ----------
    .. [1] Blodgett, S. L., Green, L. and O'Connor, B. (2016). Demographic dialectal variation
       in social media: a case study of African-American English. Proc. EMNLP, 1119-1130.
       doi:10.18653/v1/D16-1120
    .. [2] Kish, L. (1965). Survey Sampling. New York: Wiley. (Effective sample size of a
       weighted sample, section 11.7.)
    .. [3] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212. doi:10.1080/01621459.1927.10502953
    .. [4] Newcombe, R. G. (1998). Interval estimation for the difference between independent
       proportions: comparison of eleven methods. Statistics in Medicine 17(8), 873-890.
       doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I
    """
    check_alpha(alpha)
    if treated == control:
        raise ValueError(f"treated and control must differ, both are {treated!r}")
    if DIFFERENCE in (treated, control):
        raise ValueError(f"{DIFFERENCE!r} is reserved for the difference rows")
    probability = _probabilities(frame, membership)
    gold_values = _binary(frame, gold)
    flagged_values = _binary(frame, flagged)

    subsets = {
        "false_positive_rate": ~gold_values,
        "false_negative_rate": gold_values,
        "flag_rate": np.ones_like(gold_values),
    }
    outcomes = {
        "false_positive_rate": flagged_values,
        "false_negative_rate": ~flagged_values,
        "flag_rate": flagged_values,
    }

    rows: list[dict[str, Any]] = []
    small: list[str] = []
    undefined: list[str] = []
    for metric, empty_reason in _METRIC_SUBSETS:
        mask = subsets[metric]
        by_group: dict[str, dict[str, Any]] = {}
        for name, weights in ((treated, probability), (control, 1.0 - probability)):
            row = _weighted_rate(
                weights[mask], outcomes[metric][mask], alpha=alpha, empty_reason=empty_reason
            )
            row["small_group"] = bool(row["effective_n"] < min_effective_n)
            if row["small_group"]:
                small.append(f"{name}/{metric} ({row['effective_n']:.1f})")
            if row["undefined_reason"] is not None:
                undefined.append(f"{name}/{metric} ({row['undefined_reason']})")
            by_group[name] = row
            rows.append({"group": name, "metric": metric, **row, "alpha": alpha})

        first, second = by_group[treated], by_group[control]
        difference: dict[str, Any] = {
            "group": DIFFERENCE,
            "metric": metric,
            "estimate": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "interval_method": _DIFFERENCE_INTERVAL,
            "weight_sum": math.nan,
            "weighted_count": math.nan,
            "effective_n": math.nan,
            "n_rows": int(mask.sum()),
            "alpha": alpha,
            "undefined_reason": None,
            "small_group": bool(first["small_group"] or second["small_group"]),
        }
        if first["undefined_reason"] is not None:
            difference["undefined_reason"] = f"{treated}_{first['undefined_reason']}"
        elif second["undefined_reason"] is not None:
            difference["undefined_reason"] = f"{control}_{second['undefined_reason']}"
        else:
            low, high = _newcombe(
                first["estimate"],
                (first["ci_low"], first["ci_high"]),
                second["estimate"],
                (second["ci_low"], second["ci_high"]),
            )
            difference.update(
                estimate=first["estimate"] - second["estimate"], ci_low=low, ci_high=high
            )
        rows.append(difference)

    result = pd.DataFrame(rows, columns=list(SOFT_RATE_COLUMNS))
    for column in ("estimate", "ci_low", "ci_high", "weight_sum", "weighted_count"):
        result[column] = result[column].astype(float)
    result["effective_n"] = result["effective_n"].astype(float)
    result["n_rows"] = result["n_rows"].astype("int64")
    result["small_group"] = result["small_group"].astype(bool)
    result["undefined_reason"] = pd.Series([r["undefined_reason"] for r in rows], dtype=object)

    if small:
        warnings.warn(
            f"{len(small)} soft group metric(s) have a Kish effective n below "
            f"{min_effective_n:g}: {', '.join(small)}",
            SmallGroupWarning,
            stacklevel=2,
        )
    warn_undefined(undefined, "metric")
    logger.info(
        "computed soft-membership rates on %d messages (mean %s membership %.3f)",
        probability.size,
        treated,
        float(probability.mean()) if probability.size else math.nan,
    )
    return result


def _counts_at_least(
    sorted_scores: npt.NDArray[np.float64],
    flagged_suffix: npt.NDArray[np.int64],
    bound: npt.NDArray[np.float64],
    *,
    strict: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows with score >= bound (> bound where strict) and how many of them are flagged."""
    start = np.where(
        strict,
        np.searchsorted(sorted_scores, bound, side="right"),
        np.searchsorted(sorted_scores, bound, side="left"),
    )
    return sorted_scores.size - start, flagged_suffix[start]


def _counts_at_most(
    sorted_scores: npt.NDArray[np.float64],
    flagged_prefix: npt.NDArray[np.int64],
    bound: npt.NDArray[np.float64],
    *,
    strict: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Rows with score <= bound (< bound where strict) and how many of them are flagged."""
    stop = np.where(
        strict,
        np.searchsorted(sorted_scores, bound, side="left"),
        np.searchsorted(sorted_scores, bound, side="right"),
    )
    return stop, flagged_prefix[stop]


def threshold_sensitivity(
    frame: pd.DataFrame,
    *,
    score_column: str,
    gold: str,
    flagged: str,
    thresholds: Sequence[float] | npt.ArrayLike = DEFAULT_THRESHOLDS,
    alpha: float = 0.05,
    min_negatives: int = 30,
) -> pd.DataFrame:
    """The false positive rate gap between dialect groups over a range of group thresholds.

    At threshold ``t`` a message is in the treated group (AAE) if its dialect score is at
    least ``t``, in the control group (SAE) if it is at most ``1 - t``, and in neither
    otherwise (the uncertain middle band). At ``t = 0.5`` the two rules meet; a score of
    exactly 0.5 is then in neither group (the rules become ``> 0.5`` and ``< 0.5``).

    Parameters
    ----------
    frame
        One row per message; the index holds the message ids.
    score_column
        Dialect score column, the probability of the treated dialect, in [0, 1].
    gold
        Gold label column, 0/1 or boolean, ``True`` meaning harmful.
    flagged
        The model's decision, 0/1 or boolean, ``True`` meaning flagged.
    thresholds
        Group thresholds, each in [0.5, 1]; they are rounded to 10 decimals so that
        ``np.arange`` steps such as ``0.6000000000000001`` cut where they are meant to.
    alpha
        Every interval has confidence ``1 - alpha``.
    min_negatives
        A threshold at which a group has fewer gold non-harmful messages than this is marked
        ``small_group``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SENSITIVITY_COLUMNS`, one row per threshold in the order given:
        ``threshold``, the two rules in words, group sizes ``n_treated``/``n_control``,
        ``n_excluded`` (middle band), the gold non-harmful counts and false positives per
        group, ``fpr_treated``, ``fpr_control``, ``difference`` (treated minus control),
        its Newcombe hybrid score interval (``ci_low``, ``ci_high``; statsmodels
        ``confint_proportions_2indep(method="newcomb")``), ``interval_method``, ``alpha``,
        ``undefined_reason`` (``None``, ``"treated_no_negatives"`` or
        ``"control_no_negatives"``) and ``small_group``.

    Raises
    ------
    fairaudit.exceptions.InputError
        A column is absent, a score is missing or outside [0, 1], or a label is not 0/1.
    ValueError
        A threshold outside [0.5, 1].

    Warns
    -----
    fairaudit.exceptions.UndefinedMetricWarning
        Naming the thresholds at which a group has no gold non-harmful messages.

    Notes
    -----
    The intervals are per threshold and are not adjusted for looking at several thresholds;
    the rows share messages and are strongly dependent. The table is a robustness display
    (does the sign and rough size of the gap hold across cuts?), not a family of tests to
    pick the best cut from. Counts are computed for all thresholds at once from the sorted
    scores (binary search on cumulative sums), so the cost is ``O(n log n)``.

    References
    ----------
    .. [1] Newcombe, R. G. (1998). Interval estimation for the difference between independent
       proportions: comparison of eleven methods. Statistics in Medicine 17(8), 873-890.
       doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I
    .. [2] Sap, M., Card, D., Gabriel, S., Choi, Y. and Smith, N. A. (2019). The risk of racial
       bias in hate speech detection. Proc. ACL, 1668-1678. doi:10.18653/v1/P19-1163
    """
    check_alpha(alpha)
    cuts = np.round(np.asarray(thresholds, dtype=float).ravel(), _THRESHOLD_DIGITS)
    if cuts.size == 0:
        raise ValueError("thresholds is empty")
    if ((cuts < 0.5) | (cuts > 1.0) | np.isnan(cuts)).any():
        raise ValueError(f"every threshold must lie in [0.5, 1]; got {cuts.tolist()}")
    lower = np.round(1.0 - cuts, _THRESHOLD_DIGITS)
    meet = lower >= cuts  # only at t = 0.5: both bounds are strict there

    scores = _probabilities(frame, score_column)
    gold_values = _binary(frame, gold)
    flagged_values = _binary(frame, flagged)

    order = np.argsort(scores, kind="stable")
    all_sorted = scores[order]
    negatives = ~gold_values[order]
    neg_scores = all_sorted[negatives]
    neg_flagged = flagged_values[order][negatives].astype(np.int64)
    prefix = np.concatenate([[0], np.cumsum(neg_flagged)])
    suffix = prefix[-1] - prefix
    zeros = np.zeros(all_sorted.size + 1, dtype=np.int64)

    neg_treated, fp_treated = _counts_at_least(neg_scores, suffix, cuts, strict=meet)
    neg_control, fp_control = _counts_at_most(neg_scores, prefix, lower, strict=meet)
    n_treated, _ = _counts_at_least(all_sorted, zeros, cuts, strict=meet)
    n_control, _ = _counts_at_most(all_sorted, zeros, lower, strict=meet)

    rows: list[dict[str, Any]] = []
    undefined: list[str] = []
    for i, cut in enumerate(cuts):
        row: dict[str, Any] = {
            "threshold": float(cut),
            "treated_rule": f"score > {cut:g}" if meet[i] else f"score >= {cut:g}",
            "control_rule": f"score < {lower[i]:g}" if meet[i] else f"score <= {lower[i]:g}",
            "n_treated": int(n_treated[i]),
            "n_control": int(n_control[i]),
            "n_excluded": int(scores.size - n_treated[i] - n_control[i]),
            "negatives_treated": int(neg_treated[i]),
            "negatives_control": int(neg_control[i]),
            "false_positives_treated": int(fp_treated[i]),
            "false_positives_control": int(fp_control[i]),
            "fpr_treated": math.nan,
            "fpr_control": math.nan,
            "difference": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "interval_method": "newcombe",
            "alpha": alpha,
            "undefined_reason": None,
            "small_group": bool(min(neg_treated[i], neg_control[i]) < min_negatives),
        }
        if neg_treated[i]:
            row["fpr_treated"] = fp_treated[i] / neg_treated[i]
        if neg_control[i]:
            row["fpr_control"] = fp_control[i] / neg_control[i]
        if not neg_treated[i]:
            row["undefined_reason"] = "treated_no_negatives"
        elif not neg_control[i]:
            row["undefined_reason"] = "control_no_negatives"
        else:
            row["difference"] = row["fpr_treated"] - row["fpr_control"]
            low, high = confint_proportions_2indep(
                int(fp_treated[i]),
                int(neg_treated[i]),
                int(fp_control[i]),
                int(neg_control[i]),
                method="newcomb",
                compare="diff",
                alpha=alpha,
            )
            row["ci_low"], row["ci_high"] = float(low), float(high)
        if row["undefined_reason"] is not None:
            undefined.append(f"{cut:g} ({row['undefined_reason']})")
        rows.append(row)

    result = pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))
    result["undefined_reason"] = pd.Series([r["undefined_reason"] for r in rows], dtype=object)
    if undefined:
        warnings.warn(
            f"false positive rate gap undefined at {len(undefined)} threshold(s), reported as "
            f"NaN: {', '.join(undefined)}",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    logger.info(
        "recomputed the false positive rate gap at %d threshold(s) on %d messages",
        cuts.size,
        scores.size,
    )
    return result
