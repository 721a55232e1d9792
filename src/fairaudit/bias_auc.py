"""Threshold-free bias metrics of a toxicity model per dialect group, with DeLong inference.

This module takes a data frame with one row per message (a group column, or several boolean
marker columns; a binary gold label where ``True`` means harmful; a model score) and returns tidy
tables. It knows nothing of files, models or dialect markers.

- :func:`bias_aucs` returns the subgroup, BPSN and BNSP AUCs and the positive and negative
  average equality gaps of Borkan et al. (2019) per group, and the overall ROC AUC, each with a
  DeLong confidence interval, the counts and the reason when a value is undefined.
- :func:`compare_bias_aucs` tests each group's subgroup (and BPSN) AUC against a reference
  group's with DeLong's method, returning raw p-values.
- :func:`delong_auc_variance`, :func:`delong_test_paired` and :func:`delong_test_unpaired` are
  DeLong's variance of one AUC and its tests of two AUCs, in O(N log N) as in Sun and Xu
  (2014), ties counting one half.
- :func:`threshold_sweep` returns flag rate, false positive and false negative rates and
  precision per group at many thresholds; :func:`calibration_by_group` returns reliability
  bins, Brier scores and expected calibration errors per group.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from fairaudit._common import (
    GROUP_SEPARATOR,
    check_alpha,
    format_ids,
    warn_small_groups,
    warn_undefined,
)
from fairaudit.disparity import OVERALL, RocAuc, binarize_labels, roc_auc
from fairaudit.exceptions import InputError

__all__ = [
    "BIAS_AUC_METRICS",
    "BIAS_AUC_COLUMNS",
    "AUC_COMPARISON_COLUMNS",
    "SWEEP_METRICS",
    "SWEEP_COLUMNS",
    "CALIBRATION_BIN_COLUMNS",
    "CALIBRATION_SUMMARY_COLUMNS",
    "DEFAULT_THRESHOLDS",
    "DelongAuc",
    "DelongTest",
    "Calibration",
    "delong_auc_variance",
    "delong_test_paired",
    "delong_test_unpaired",
    "bias_aucs",
    "compare_bias_aucs",
    "threshold_sweep",
    "calibration_by_group",
]

logger = logging.getLogger(__name__)

BIAS_AUC_METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc", "positive_aeg", "negative_aeg")
"""Per-group metrics of :func:`bias_aucs`, in table order; the overall row is ``roc_auc``."""

BIAS_AUC_COLUMNS = (
    "group",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "positives",
    "negatives",
    "interval_method",
    "alpha",
    "undefined_reason",
    "interval_undefined_reason",
    "small_group",
)
"""Columns of the table :func:`bias_aucs` returns."""

AUC_COMPARISON_COLUMNS = (
    "group",
    "reference",
    "metric",
    "estimate",
    "reference_estimate",
    "difference",
    "standard_error",
    "ci_low",
    "ci_high",
    "statistic",
    "p_value",
    "method",
    "interval_method",
    "correction",
    "alpha",
    "n",
    "n_reference",
    "undefined_reason",
    "small_group",
)
"""Columns of the table :func:`compare_bias_aucs` returns."""

SWEEP_METRICS = ("flag_rate", "false_positive_rate", "false_negative_rate", "precision")
"""Metrics of :func:`threshold_sweep`, in table order."""

SWEEP_COLUMNS = (
    "group",
    "threshold",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "count",
    "interval_method",
    "alpha",
    "undefined_reason",
)
"""Columns of the table :func:`threshold_sweep` returns."""

CALIBRATION_BIN_COLUMNS = (
    "group",
    "bin",
    "bin_low",
    "bin_high",
    "n",
    "positives",
    "mean_score",
    "observed_rate",
    "ci_low",
    "ci_high",
    "interval_method",
    "alpha",
    "undefined_reason",
)
"""Columns of :attr:`Calibration.bins`."""

CALIBRATION_SUMMARY_COLUMNS = (
    "group",
    "n",
    "positives",
    "brier_score",
    "expected_calibration_error",
    "bins",
    "binning",
    "undefined_reason",
)
"""Columns of :attr:`Calibration.summary`."""

DEFAULT_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
"""Thresholds 0.05, 0.10, ..., 0.95 of :func:`threshold_sweep`."""

_INTERVAL_METHOD = "delong"
_POSITIVE, _NEGATIVE, _ABSENT = 1, 0, -1


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """Validated gold labels, scores and one membership mask per group."""

    gold: np.ndarray
    score: np.ndarray
    members: dict[str, np.ndarray]


def _scores(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        ids = list(frame.index[bad])
        raise InputError(
            f"{len(ids)} missing, infinite or non-numeric score(s) (ids: {format_ids(ids)})",
            column=column,
        )
    return values


def _prepare(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    score: str,
    subgroups: Literal["exclusive", "overlapping"],
) -> _Data:
    if subgroups not in ("exclusive", "overlapping"):
        raise ValueError(f"subgroups must be 'exclusive' or 'overlapping', not {subgroups!r}")
    group_columns = [group] if isinstance(group, str) else list(group)
    if not group_columns:
        raise ValueError("group must name at least one column")
    absent = [c for c in [*group_columns, gold, score] if c not in frame.columns]
    if absent:
        raise InputError(
            f"missing column(s) {', '.join(map(repr, absent))}; columns present: "
            f"{', '.join(map(repr, frame.columns))}"
        )

    truth = binarize_labels(frame[gold], positive=None, column=gold).to_numpy(dtype=bool)
    values = _scores(frame, score)

    members: dict[str, np.ndarray] = {}
    if subgroups == "overlapping":
        # One boolean marker column per subgroup; an utterance can carry several.
        for column in group_columns:
            members[str(column)] = binarize_labels(
                frame[column], positive=None, column=column
            ).to_numpy(dtype=bool)
    else:
        missing = frame[group_columns].isna().any(axis=1).to_numpy()
        if missing.any():
            ids = list(frame.index[missing])
            raise InputError(
                f"{len(ids)} row(s) have no group value (ids: {format_ids(ids)})",
                column=", ".join(group_columns),
            )
        order: list[str] = []
        if len(group_columns) == 1:
            column = frame[group_columns[0]]
            if isinstance(column.dtype, pd.CategoricalDtype):
                order = [str(c) for c in column.cat.categories]
            labels = column.astype(object).map(str).to_numpy()
        else:
            labels = (
                frame[group_columns].astype(object).map(str).agg(GROUP_SEPARATOR.join, axis=1)
            ).to_numpy()
        present = pd.unique(labels)
        order += sorted(str(g) for g in present if g not in order)
        codes = pd.Categorical(labels, categories=order).codes
        for code, name in enumerate(order):
            members[name] = codes == code

    if OVERALL in members:
        raise InputError(
            f"group {OVERALL!r} is reserved for fairaudit's own rows; rename it",
            column=", ".join(group_columns),
        )
    return _Data(gold=truth, score=values, members=members)


def _reason_series(reasons: list[str | None]) -> pd.Series:
    # Object dtype keeps None for "defined" instead of pandas' inferred string NaN.
    return pd.Series(reasons, dtype=object)


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DelongAuc:
    """A ROC AUC with DeLong's variance.

    ``estimate`` is NaN when ``undefined_reason`` is set; ``variance`` and ``standard_error`` are
    NaN when ``variance_undefined_reason`` is set.
    """

    estimate: float
    variance: float
    standard_error: float
    n: int
    positives: int
    negatives: int
    undefined_reason: str | None
    variance_undefined_reason: str | None

    def confidence_interval(self, *, alpha: float = 0.05) -> tuple[float, float]:
        """Wald interval ``estimate ± z(1 - alpha/2) * standard_error``, clipped to [0, 1]."""
        check_alpha(alpha)
        if self.variance_undefined_reason is not None:
            return math.nan, math.nan
        half = stats.norm.ppf(1 - alpha / 2) * self.standard_error
        return max(0.0, self.estimate - half), min(1.0, self.estimate + half)


@dataclass(frozen=True)
class DelongTest:
    """DeLong's test of two ROC AUCs (``a`` minus ``b``).

    ``method`` is ``"delong_paired"`` (same messages, two scores), ``"delong_unpaired"``
    (disjoint messages) or ``"delong_overlapping"`` (some messages in both AUCs). Every number
    but the AUCs is NaN when ``undefined_reason`` is set.
    """

    auc_a: float
    auc_b: float
    difference: float
    standard_error: float
    correlation: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float
    method: str
    undefined_reason: str | None


def _truth_and_values(
    gold: pd.Series | np.ndarray, score: pd.Series | np.ndarray, *, name: str = "score"
) -> tuple[np.ndarray, np.ndarray]:
    gold_series = gold if isinstance(gold, pd.Series) else pd.Series(np.asarray(gold))
    truth = binarize_labels(gold_series, positive=None, column="gold").to_numpy(dtype=bool)
    values = np.asarray(score, dtype=float)
    if values.shape != truth.shape:
        raise ValueError(f"gold has {truth.size} values but {name} has {values.size}")
    if not np.isfinite(values).all():
        raise ValueError(f"{int((~np.isfinite(values)).sum())} missing or infinite {name}(s)")
    return truth, values


def _score_codes(values: np.ndarray) -> np.ndarray:
    """Index of every score among the sorted distinct scores (one sort, reused by each AUC)."""
    return np.unique(values, return_inverse=True)[1].ravel()


def _contributions(
    values: np.ndarray, role: np.ndarray, *, codes: np.ndarray | None = None
) -> tuple[RocAuc, np.ndarray | None]:
    """The AUC of the rows with a role, and each row's weighted DeLong placement.

    ``role`` is 1 for a positive, 0 for a negative and -1 for a row left out; ``codes`` are
    :func:`_score_codes` of ``values`` when already known. A positive's placement ``V10`` is
    the share of negatives it outscores, ties one half, and a negative's ``V01`` the share of
    positives that outscore it (DeLong et al., 1988). Counting each class per distinct score
    after one sort gives them all in O(N log N), the counting form of the midrank algorithm of
    Sun and Xu (2014). The returned array holds ``V10 / positives`` for positives,
    ``V01 / negatives`` for negatives and 0 for rows left out, so that the AUC's first-order
    (Hajek) projection is their sum.
    """
    used = role != _ABSENT
    truth = role[used] == _POSITIVE
    auc = roc_auc(truth, values[used])
    if auc.undefined_reason is not None:
        return auc, None

    m, n = auc.positives, auc.negatives
    level = (_score_codes(values) if codes is None else codes)[used]
    levels = int(level.max()) + 1
    positives_at = np.bincount(level[truth], minlength=levels)
    negatives_at = np.bincount(level[~truth], minlength=levels)
    negatives_below = np.cumsum(negatives_at) - negatives_at
    positives_above = m - np.cumsum(positives_at)
    v10 = (negatives_below + 0.5 * negatives_at)[level[truth]] / n
    v01 = (positives_above + 0.5 * positives_at)[level[~truth]] / m
    placement = np.empty(level.size)
    placement[truth] = v10 / m
    placement[~truth] = v01 / n
    weighted = np.zeros(values.size)
    weighted[used] = placement
    return auc, weighted


def _stratified_variance(contribution: np.ndarray, strata: np.ndarray) -> float:
    """Sum over strata of size times the sample variance (ddof=1) of the contributions.

    Rows in one stratum are exchangeable draws; the AUC (or a difference of AUCs) is, to first
    order, the sum of independent per-row contributions, so its variance is estimated stratum
    by stratum. A stratum of one row has no variance estimate: the result is then NaN.
    """
    codes, inverse = np.unique(strata, return_inverse=True)
    sizes = np.bincount(inverse, minlength=codes.size)
    if (sizes < 2).any():
        return math.nan
    means = np.bincount(inverse, weights=contribution, minlength=codes.size) / sizes
    squares = np.bincount(inverse, weights=(contribution - means[inverse]) ** 2)
    return float(np.sum(sizes * squares / (sizes - 1)))


def _variance_reason(variance: float) -> str | None:
    if math.isnan(variance):
        return "too_few_for_variance"
    if variance <= 0.0:
        return "zero_variance"
    return None


def _delong_single(
    values: np.ndarray, role: np.ndarray, *, codes: np.ndarray | None = None
) -> DelongAuc:
    auc, weighted = _contributions(values, role, codes=codes)
    if weighted is None:
        return DelongAuc(
            estimate=math.nan,
            variance=math.nan,
            standard_error=math.nan,
            n=auc.n,
            positives=auc.positives,
            negatives=auc.negatives,
            undefined_reason=auc.undefined_reason,
            variance_undefined_reason=auc.undefined_reason,
        )
    used = role != _ABSENT
    variance = _stratified_variance(weighted[used], role[used])
    reason = _variance_reason(variance)
    if reason is not None:
        variance = math.nan
    return DelongAuc(
        estimate=auc.estimate,
        variance=variance,
        standard_error=math.sqrt(variance) if reason is None else math.nan,
        n=auc.n,
        positives=auc.positives,
        negatives=auc.negatives,
        undefined_reason=None,
        variance_undefined_reason=reason,
    )


def delong_auc_variance(gold: pd.Series | np.ndarray, score: pd.Series | np.ndarray) -> DelongAuc:
    """ROC AUC with DeLong's nonparametric variance estimate.

    Parameters
    ----------
    gold
        Gold labels, 0/1 or boolean, ``True`` meaning harmful.
    score
        Scores, higher meaning more likely harmful; ties are allowed.

    Returns
    -------
    DelongAuc
        ``estimate`` (from :func:`fairaudit.disparity.roc_auc`), ``variance``,
        ``standard_error``, ``n``, ``positives``, ``negatives``, ``undefined_reason`` (``None``,
        ``"empty"`` or ``"single_class"``) and ``variance_undefined_reason`` (the same, or
        ``"too_few_for_variance"`` with a single positive or negative, or ``"zero_variance"``
        when the classes are perfectly separated, where the Wald interval would collapse to a
        point).

    Raises
    ------
    fairaudit.exceptions.InputError
        If a gold label is missing or not binary.
    ValueError
        If the lengths differ or a score is missing or infinite.

    Notes
    -----
    With ``m`` positives ``X`` and ``n`` negatives ``Y`` and ``psi(x, y)`` equal to 1, 1/2 or 0
    as ``x`` is above, tied with or below ``y``, the AUC is the mean of ``psi`` over all pairs.
    DeLong et al. (1988) define the structural components ``V10(X_i)``, the mean of
    ``psi(X_i, Y_j)`` over ``j``, and ``V01(Y_j)``, the mean over ``i``; the variance estimate is
    ``S10 / m + S01 / n`` with ``S10`` and ``S01`` their sample variances. The components are
    computed in O((m + n) log(m + n)) by counting each class per distinct score after one
    sort, the counting form of the midrank algorithm of Sun and Xu (2014).

    References
    ----------
    .. [1] DeLong, E. R., DeLong, D. M. and Clarke-Pearson, D. L. (1988). Comparing the areas
       under two or more correlated receiver operating characteristic curves: a nonparametric
       approach. Biometrics 44(3), 837-845. doi:10.2307/2531595
    .. [2] Sun, X. and Xu, W. (2014). Fast implementation of DeLong's algorithm for comparing
       the areas under correlated receiver operating characteristic curves. IEEE Signal
       Processing Letters 21(11), 1389-1393. doi:10.1109/LSP.2014.2337313
    """
    truth, values = _truth_and_values(gold, score)
    return _delong_single(values, truth.astype(np.int8))


def _delong_difference(
    values_a: np.ndarray,
    role_a: np.ndarray,
    values_b: np.ndarray,
    role_b: np.ndarray,
    *,
    alpha: float,
) -> DelongTest:
    """DeLong's test of AUC(a) - AUC(b) over one set of rows, each in a, b or both."""
    in_a, in_b = role_a != _ABSENT, role_b != _ABSENT
    if not (in_a & in_b).any():
        method = "delong_unpaired"
    elif np.array_equal(role_a, role_b):
        method = "delong_paired"
    else:
        method = "delong_overlapping"

    codes_a = _score_codes(values_a)
    codes_b = codes_a if values_b is values_a else _score_codes(values_b)
    auc_a, weighted_a = _contributions(values_a, role_a, codes=codes_a)
    auc_b, weighted_b = _contributions(values_b, role_b, codes=codes_b)
    result: dict[str, Any] = {
        "auc_a": auc_a.estimate,
        "auc_b": auc_b.estimate,
        "difference": math.nan,
        "standard_error": math.nan,
        "correlation": math.nan,
        "statistic": math.nan,
        "p_value": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "alpha": alpha,
        "method": method,
        "undefined_reason": None,
    }
    if weighted_a is None or weighted_b is None:
        which = "a" if weighted_a is None else "b"
        reason = auc_a.undefined_reason if weighted_a is None else auc_b.undefined_reason
        result["undefined_reason"] = f"auc_{which}_{reason}"
        return DelongTest(**result)

    # Rows with the same roles in both AUCs are exchangeable; the variance is estimated within
    # each such stratum (for two AUCs on the same rows this is DeLong's S matrix contrast).
    used = in_a | in_b
    strata = ((role_a + 1) * 3 + (role_b + 1))[used]
    difference = auc_a.estimate - auc_b.estimate
    variance = _stratified_variance((weighted_a - weighted_b)[used], strata)
    result["difference"] = difference
    reason = _variance_reason(variance)
    if reason is not None:
        result["undefined_reason"] = reason
        return DelongTest(**result)

    variance_a = _stratified_variance(weighted_a[used], strata)
    variance_b = _stratified_variance(weighted_b[used], strata)
    if variance_a > 0 and variance_b > 0:
        covariance = (variance_a + variance_b - variance) / 2
        result["correlation"] = float(covariance / math.sqrt(variance_a * variance_b))
    standard_error = math.sqrt(variance)
    statistic = difference / standard_error
    half = stats.norm.ppf(1 - alpha / 2) * standard_error
    result.update(
        standard_error=standard_error,
        statistic=statistic,
        p_value=float(2 * stats.norm.sf(abs(statistic))),
        ci_low=max(-1.0, difference - half),
        ci_high=min(1.0, difference + half),
    )
    return DelongTest(**result)


def delong_test_paired(
    gold: pd.Series | np.ndarray,
    score_a: pd.Series | np.ndarray,
    score_b: pd.Series | np.ndarray,
    *,
    alpha: float = 0.05,
) -> DelongTest:
    """DeLong's test of two correlated ROC AUCs: two scores of the same messages.

    Parameters
    ----------
    gold
        Gold labels, 0/1 or boolean, ``True`` meaning harmful.
    score_a, score_b
        The two models' scores of the same messages, in the same order.
    alpha
        The interval of the difference has confidence ``1 - alpha``.

    Returns
    -------
    DelongTest
        ``auc_a``, ``auc_b``, ``difference`` (a minus b), its ``standard_error``, the
        ``correlation`` of the two AUC estimates, ``statistic`` (z), the two-sided ``p_value``,
        the Wald interval ``ci_low``/``ci_high`` of the difference (clipped to [-1, 1]),
        ``alpha``, ``method`` (``"delong_paired"``) and ``undefined_reason`` (``None``,
        ``"auc_a_single_class"`` and the like, ``"too_few_for_variance"`` or
        ``"zero_variance"``).

    Raises
    ------
    fairaudit.exceptions.InputError
        If a gold label is missing or not binary.
    ValueError
        If the lengths differ or a score is missing or infinite.

    Notes
    -----
    With structural components ``V10`` and ``V01`` of each score, DeLong et al. (1988) estimate
    the covariance matrix of the two AUCs as ``S10 / m + S01 / n``, where ``S10`` and ``S01``
    are now 2x2 sample covariance matrices; ``z = (A - B) / sqrt(var A + var B - 2 cov(A, B))``
    is referred to the standard normal. One sort gives the components (Sun and Xu, 2014).

    References
    ----------
    .. [1] DeLong, E. R., DeLong, D. M. and Clarke-Pearson, D. L. (1988). Comparing the areas
       under two or more correlated receiver operating characteristic curves: a nonparametric
       approach. Biometrics 44(3), 837-845. doi:10.2307/2531595
    .. [2] Sun, X. and Xu, W. (2014). Fast implementation of DeLong's algorithm for comparing
       the areas under correlated receiver operating characteristic curves. IEEE Signal
       Processing Letters 21(11), 1389-1393. doi:10.1109/LSP.2014.2337313
    """
    check_alpha(alpha)
    truth, values_a = _truth_and_values(gold, score_a, name="score_a")
    _, values_b = _truth_and_values(gold, score_b, name="score_b")
    role = truth.astype(np.int8)
    return _delong_difference(values_a, role, values_b, role, alpha=alpha)


def delong_test_unpaired(
    gold_a: pd.Series | np.ndarray,
    score_a: pd.Series | np.ndarray,
    gold_b: pd.Series | np.ndarray,
    score_b: pd.Series | np.ndarray,
    *,
    alpha: float = 0.05,
) -> DelongTest:
    """Test of two independent ROC AUCs (disjoint messages), each with DeLong's variance.

    Parameters
    ----------
    gold_a, score_a
        Gold labels (0/1 or boolean, ``True`` meaning harmful) and scores of the first sample,
        for example the ``aae`` messages.
    gold_b, score_b
        The same for the second, independent sample, for example the ``sae`` messages.
    alpha
        The interval of the difference has confidence ``1 - alpha``.

    Returns
    -------
    DelongTest
        As :func:`delong_test_paired`, with ``method="delong_unpaired"`` and a correlation of 0.

    Raises
    ------
    fairaudit.exceptions.InputError
        If a gold label is missing or not binary.
    ValueError
        If the lengths differ or a score is missing or infinite.

    Notes
    -----
    The two AUCs are independent, so ``z = (A - B) / sqrt(var A + var B)`` with each variance
    from DeLong et al. (1988), as in Hanley and McNeil (1982) for unpaired designs.

    References
    ----------
    .. [1] DeLong, E. R., DeLong, D. M. and Clarke-Pearson, D. L. (1988). Comparing the areas
       under two or more correlated receiver operating characteristic curves: a nonparametric
       approach. Biometrics 44(3), 837-845. doi:10.2307/2531595
    .. [2] Hanley, J. A. and McNeil, B. J. (1982). The meaning and use of the area under a
       receiver operating characteristic (ROC) curve. Radiology 143(1), 29-36.
       doi:10.1148/radiology.143.1.7063747
    .. [3] Sun, X. and Xu, W. (2014). Fast implementation of DeLong's algorithm for comparing
       the areas under correlated receiver operating characteristic curves. IEEE Signal
       Processing Letters 21(11), 1389-1393. doi:10.1109/LSP.2014.2337313
    """
    check_alpha(alpha)
    truth_a, values_a = _truth_and_values(gold_a, score_a, name="score_a")
    truth_b, values_b = _truth_and_values(gold_b, score_b, name="score_b")
    values = np.concatenate([values_a, values_b])
    absent_a = np.full(truth_a.size, _ABSENT, dtype=np.int8)
    absent_b = np.full(truth_b.size, _ABSENT, dtype=np.int8)
    role_a = np.concatenate([truth_a.astype(np.int8), absent_b])
    role_b = np.concatenate([absent_a, truth_b.astype(np.int8)])
    return _delong_difference(values, role_a, values, role_b, alpha=alpha)


# --------------------------------------------------------------------------------------------
# Bias AUCs
# --------------------------------------------------------------------------------------------


def _metric_roles(metric: str, member: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Role of every row (1 positive, 0 negative, -1 left out) in one AUC of Borkan et al."""
    role = np.full(gold.size, _ABSENT, dtype=np.int8)
    background = ~member
    if metric in ("subgroup_auc", "roc_auc"):
        chosen = member if metric == "subgroup_auc" else np.ones_like(member)
        role[chosen] = gold[chosen]
    elif metric == "bpsn_auc":
        role[member & ~gold] = _NEGATIVE
        role[background & gold] = _POSITIVE
    elif metric == "bnsp_auc":
        role[member & gold] = _POSITIVE
        role[background & ~gold] = _NEGATIVE
    elif metric in ("positive_aeg", "negative_aeg"):
        # Mann-Whitney AUC of group scores ("positive" role) against background scores.
        in_class = gold if metric == "positive_aeg" else ~gold
        role[member & in_class] = _POSITIVE
        role[background & in_class] = _NEGATIVE
    else:
        raise ValueError(f"unknown metric {metric!r}")
    return role


def _aeg_reason(metric: str, member: np.ndarray, gold: np.ndarray) -> str:
    in_class = gold if metric == "positive_aeg" else ~gold
    label = "positives" if metric == "positive_aeg" else "negatives"
    if not (member & in_class).any():
        return f"no_group_{label}"
    return f"no_background_{label}"


def _auc_row(
    metric: str,
    member: np.ndarray,
    gold: np.ndarray,
    score: np.ndarray,
    *,
    alpha: float,
    codes: np.ndarray,
) -> dict[str, Any]:
    role = _metric_roles(metric, member, gold)
    result = _delong_single(score, role, codes=codes)
    used = role != _ABSENT
    positives = int((gold & used).sum())
    negatives = int(used.sum()) - positives
    low, high = result.confidence_interval(alpha=alpha)
    estimate = result.estimate
    reason = result.undefined_reason
    interval_reason = result.variance_undefined_reason
    if metric.endswith("_aeg"):
        # AEG = 1/2 - Mann-Whitney AUC, so the interval flips.
        estimate, low, high = 0.5 - estimate, 0.5 - high, 0.5 - low
        if reason is not None:
            reason = interval_reason = _aeg_reason(metric, member, gold)
    return {
        "metric": metric,
        "estimate": float(estimate),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": int(used.sum()),
        "positives": positives,
        "negatives": negatives,
        "interval_method": _INTERVAL_METHOD,
        "alpha": alpha,
        "undefined_reason": reason,
        "interval_undefined_reason": interval_reason,
    }


def bias_aucs(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    score: str,
    subgroups: Literal["exclusive", "overlapping"] = "exclusive",
    alpha: float = 0.05,
    min_negatives: int = 30,
) -> pd.DataFrame:
    """Subgroup, BPSN and BNSP AUCs and average equality gaps per group, with DeLong intervals.

    Parameters
    ----------
    frame
        One row per message; the index holds the message ids.
    group
        ``subgroups="exclusive"``: the group column (several columns make intersectional cells,
        labels joined with ``"×"``); every row belongs to exactly one group and a missing value
        is an error. ``subgroups="overlapping"``: several boolean columns, one per subgroup (for
        example one per dialect marker); a message can be in several subgroups or in none.
    gold
        Gold label column, 0/1 or boolean, ``True`` meaning harmful.
    score
        Model score column, higher meaning more likely harmful.
    subgroups
        ``"exclusive"`` or ``"overlapping"``, as above. In both, a group's background is every
        row not in the group.
    alpha
        Every interval has confidence ``1 - alpha``.
    min_negatives
        Groups with fewer gold non-harmful messages than this are marked ``small_group`` and
        named in a :class:`~fairaudit.exceptions.SmallGroupWarning`.

    Returns
    -------
    pandas.DataFrame
        Per group, in category, sorted or column order, one row per metric of
        :data:`BIAS_AUC_METRICS`, then one ``"overall"`` row with metric ``"roc_auc"``.
        Columns (:data:`BIAS_AUC_COLUMNS`): ``group``, ``metric``, ``estimate``, ``ci_low``,
        ``ci_high``, ``n`` (rows used by the metric), ``positives`` and ``negatives`` (gold
        classes among them), ``interval_method`` (``"delong"``), ``alpha``,
        ``undefined_reason`` (``None``; ``"single_class"`` or ``"empty"`` for an AUC;
        ``"no_group_positives"``, ``"no_background_positives"``, ``"no_group_negatives"`` or
        ``"no_background_negatives"`` for an AEG; the estimate is then NaN),
        ``interval_undefined_reason`` (the same, or ``"too_few_for_variance"`` with a single
        message in a class or ``"zero_variance"`` under perfect separation; the interval is
        then NaN though the estimate is defined) and ``small_group`` (the group has fewer than
        ``min_negatives`` gold negatives).

    Raises
    ------
    fairaudit.exceptions.InputError
        If a column is absent, a label or score is missing or invalid, a group value is missing
        (exclusive mode), or a group is called ``"overall"``.

    Warns
    -----
    fairaudit.exceptions.SmallGroupWarning
        Naming the groups with fewer than ``min_negatives`` gold negatives.
    fairaudit.exceptions.UndefinedMetricWarning
        Naming the (group, metric) pairs that are undefined.

    Notes
    -----
    Following Borkan et al. (2019), with D the group's messages and B the background (every
    other message), and + / - the gold classes: the subgroup AUC uses D+ and D-; BPSN
    (background positive, subgroup negative) uses D- against B+, and is low when the group's
    harmless messages score above harmful background ones, the over-flagging of AAE found by
    Sap et al. (2019); BNSP uses D+ against B-. The positive AEG is ``1/2 - MWU(D+, B+) /
    (|D+| |B+|)``, the Mann-Whitney (1947) AUC of group against background scores among
    harmful messages, and the negative AEG the same among harmless ones; a negative value means
    the group's messages score higher than the background's. Borkan et al. compare the
    subgroup with the whole class; here the comparison is with the background only, so that
    the group is never compared with itself. Each interval is the DeLong et al. (1988) Wald
    interval, clipped to [0, 1] for AUCs (as pROC does; Robin et al., 2011) and mapped through
    ``1/2 - AUC`` for AEGs. An AUC of exactly 0 or 1 has DeLong variance 0, and its interval is
    reported as undefined (``"zero_variance"``) rather than as a point.

    References
    ----------
    .. [1] Borkan, D., Dixon, L., Sorensen, J., Thain, N. and Vasserman, L. (2019). Nuanced
       metrics for measuring unintended bias with real data for text classification.
       Companion Proc. WWW '19, 491-500. doi:10.1145/3308560.3317593
    .. [2] DeLong, E. R., DeLong, D. M. and Clarke-Pearson, D. L. (1988). Comparing the areas
       under two or more correlated receiver operating characteristic curves: a nonparametric
       approach. Biometrics 44(3), 837-845. doi:10.2307/2531595
    .. [3] Sun, X. and Xu, W. (2014). Fast implementation of DeLong's algorithm for comparing
       the areas under correlated receiver operating characteristic curves. IEEE Signal
       Processing Letters 21(11), 1389-1393. doi:10.1109/LSP.2014.2337313
    .. [4] Mann, H. B. and Whitney, D. R. (1947). On a test of whether one of two random
       variables is stochastically larger than the other. Annals of Mathematical Statistics
       18(1), 50-60. doi:10.1214/aoms/1177730491
    .. [5] Sap, M., Card, D., Gabriel, S., Choi, Y. and Smith, N. A. (2019). The risk of racial
       bias in hate speech detection. Proc. ACL, 1668-1678. doi:10.18653/v1/P19-1163
    .. [6] Robin, X. et al. (2011). pROC: an open-source package for R and S+ to analyze and
       compare ROC curves. BMC Bioinformatics 12, 77. doi:10.1186/1471-2105-12-77
    """
    check_alpha(alpha)
    started = time.perf_counter()
    data = _prepare(frame, group=group, gold=gold, score=score, subgroups=subgroups)

    rows: list[dict[str, Any]] = []
    small: list[str] = []
    undefined: list[str] = []
    everyone = np.ones(data.gold.size, dtype=bool)
    codes = _score_codes(data.score)
    targets = [(name, member, BIAS_AUC_METRICS) for name, member in data.members.items()]
    targets.append((OVERALL, everyone, ("roc_auc",)))
    for name, member, metrics in targets:
        group_negatives = int((member & ~data.gold).sum())
        is_small = group_negatives < min_negatives
        if is_small and name != OVERALL:
            small.append(f"{name!r} ({group_negatives})")
        for metric in metrics:
            row = _auc_row(metric, member, data.gold, data.score, alpha=alpha, codes=codes)
            if row["undefined_reason"] is not None:
                undefined.append(f"{name}/{metric} ({row['undefined_reason']})")
            rows.append({"group": name, **row, "small_group": bool(is_small)})

    result = pd.DataFrame(rows, columns=list(BIAS_AUC_COLUMNS))
    for column in ("n", "positives", "negatives"):
        result[column] = result[column].astype("int64")
    result["small_group"] = result["small_group"].astype(bool)
    result["undefined_reason"] = _reason_series([r["undefined_reason"] for r in rows])
    result["interval_undefined_reason"] = _reason_series(
        [r["interval_undefined_reason"] for r in rows]
    )

    warn_small_groups(small, min_negatives)
    warn_undefined(undefined, "bias AUC")
    logger.info(
        "computed bias AUCs with DeLong intervals for %d group(s) on %d messages in %.1f s",
        len(data.members),
        data.gold.size,
        time.perf_counter() - started,
    )
    return result


def compare_bias_aucs(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    score: str,
    reference: str,
    alpha: float = 0.05,
    metrics: Sequence[Literal["subgroup_auc", "bpsn_auc", "bnsp_auc"]] = (
        "subgroup_auc",
        "bpsn_auc",
    ),
    subgroups: Literal["exclusive", "overlapping"] = "exclusive",
    min_negatives: int = 30,
) -> pd.DataFrame:
    """Difference of each group's bias AUCs from a reference group's, with DeLong tests.

    Parameters
    ----------
    frame, group, gold, score, subgroups, min_negatives
        As in :func:`bias_aucs`.
    reference
        The reference group, for example ``"sae"``.
    alpha
        The intervals of the differences have confidence ``1 - alpha``.
    metrics
        Which AUCs to compare: ``"subgroup_auc"``, ``"bpsn_auc"``, ``"bnsp_auc"``.

    Returns
    -------
    pandas.DataFrame
        One row per (non-reference group, metric). Columns (:data:`AUC_COMPARISON_COLUMNS`):
        ``group``, ``reference``, ``metric``, ``estimate``, ``reference_estimate``,
        ``difference`` (group minus reference), ``standard_error``, ``ci_low``/``ci_high``
        (Wald interval of the difference), ``statistic`` (z), ``p_value`` (two-sided, raw),
        ``method`` (``"delong_unpaired"`` when the two AUCs share no message, as two exclusive
        groups' subgroup AUCs; ``"delong_overlapping"`` when they share some, as two BPSN
        AUCs whose backgrounds both contain a third group's positives), ``interval_method``
        (``"delong"``), ``correction`` (``"none"``: adjust for multiple comparisons yourself,
        for example with ``statsmodels.stats.multitest.multipletests``), ``alpha``, ``n`` and
        ``n_reference`` (messages in each AUC), ``undefined_reason`` (``None``; the group's
        reason such as ``"single_class"``; ``"reference_"`` and the reference's reason;
        ``"too_few_for_variance"`` or ``"zero_variance"``) and ``small_group`` (the group or
        the reference has fewer than ``min_negatives`` gold negatives).

    Raises
    ------
    fairaudit.exceptions.InputError
        As :func:`bias_aucs`, and if ``reference`` is not a group.
    ValueError
        If a metric is not one of the three AUCs.

    Notes
    -----
    Each AUC is, to first order, a sum of independent per-message terms: a message's DeLong
    placement over the number of messages of its class in that AUC (DeLong et al., 1988). The
    variance of a difference of two AUCs is estimated as the sum, over strata of messages with
    the same role in both AUCs (positive, negative or absent), of the stratum size times the
    sample variance of the message's term in the difference. For disjoint sets this is
    ``var A + var B``, the unpaired test; for identical sets it is DeLong's paired contrast.

    References
    ----------
    .. [1] DeLong, E. R., DeLong, D. M. and Clarke-Pearson, D. L. (1988). Comparing the areas
       under two or more correlated receiver operating characteristic curves: a nonparametric
       approach. Biometrics 44(3), 837-845. doi:10.2307/2531595
    .. [2] Borkan, D., Dixon, L., Sorensen, J., Thain, N. and Vasserman, L. (2019). Nuanced
       metrics for measuring unintended bias with real data for text classification.
       Companion Proc. WWW '19, 491-500. doi:10.1145/3308560.3317593
    .. [3] Sun, X. and Xu, W. (2014). Fast implementation of DeLong's algorithm for comparing
       the areas under correlated receiver operating characteristic curves. IEEE Signal
       Processing Letters 21(11), 1389-1393. doi:10.1109/LSP.2014.2337313
    """
    check_alpha(alpha)
    allowed = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
    unknown = [m for m in metrics if m not in allowed]
    if unknown:
        raise ValueError(f"cannot compare {unknown}; choose from {list(allowed)}")
    data = _prepare(frame, group=group, gold=gold, score=score, subgroups=subgroups)
    if reference not in data.members:
        raise InputError(
            f"reference group {reference!r} not found; groups: {', '.join(data.members)}",
            column=group if isinstance(group, str) else ", ".join(group),
        )

    reference_member = data.members[reference]
    reference_negatives = int((reference_member & ~data.gold).sum())
    rows: list[dict[str, Any]] = []
    for name, member in data.members.items():
        if name == reference:
            continue
        small = min(int((member & ~data.gold).sum()), reference_negatives) < min_negatives
        for metric in metrics:
            role = _metric_roles(metric, member, data.gold)
            role_reference = _metric_roles(metric, reference_member, data.gold)
            test = _delong_difference(data.score, role, data.score, role_reference, alpha=alpha)
            reason = test.undefined_reason
            if reason is not None and reason.startswith("auc_"):
                side, cause = reason[4], reason[6:]
                reason = cause if side == "a" else f"reference_{cause}"
            rows.append(
                {
                    "group": name,
                    "reference": reference,
                    "metric": metric,
                    "estimate": test.auc_a,
                    "reference_estimate": test.auc_b,
                    "difference": test.difference,
                    "standard_error": test.standard_error,
                    "ci_low": test.ci_low,
                    "ci_high": test.ci_high,
                    "statistic": test.statistic,
                    "p_value": test.p_value,
                    "method": test.method,
                    "interval_method": _INTERVAL_METHOD,
                    "correction": "none",
                    "alpha": alpha,
                    "n": int((role != _ABSENT).sum()),
                    "n_reference": int((role_reference != _ABSENT).sum()),
                    "undefined_reason": reason,
                    "small_group": bool(small),
                }
            )

    result = pd.DataFrame(rows, columns=list(AUC_COMPARISON_COLUMNS))
    for column in ("n", "n_reference"):
        result[column] = result[column].astype("int64")
    result["small_group"] = result["small_group"].astype(bool)
    result["undefined_reason"] = _reason_series([r["undefined_reason"] for r in rows])
    logger.info(
        "compared %d group(s) with %r on %d AUC(s) by DeLong's test, no correction",
        len(data.members) - 1,
        reference,
        len(metrics),
    )
    return result


# --------------------------------------------------------------------------------------------
# Threshold sweep
# --------------------------------------------------------------------------------------------


def threshold_sweep(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    score: str,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    subgroups: Literal["exclusive", "overlapping"] = "exclusive",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Flag rate, false positive and negative rates and precision per group at many thresholds.

    Parameters
    ----------
    frame, group, gold, score, subgroups
        As in :func:`bias_aucs`.
    thresholds
        A message is flagged when ``score >= threshold`` (as in :mod:`fairaudit.scoring`).
        Default :data:`DEFAULT_THRESHOLDS`, 0.05 to 0.95 by 0.05.
    alpha
        Every Wilson interval has confidence ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        One row per (group, threshold, metric of :data:`SWEEP_METRICS`), groups first, then
        ``"overall"`` (every row). Columns (:data:`SWEEP_COLUMNS`): ``group``, ``threshold``,
        ``metric``, ``estimate``, ``ci_low``/``ci_high`` (Wilson score interval),
        ``n`` (denominator: all messages for the flag rate, gold negatives for the false
        positive rate, gold positives for the false negative rate, flagged messages for
        precision), ``count`` (numerator), ``interval_method`` (``"wilson"``), ``alpha`` and
        ``undefined_reason`` (``None``, ``"empty_group"``, ``"no_negatives"``,
        ``"no_positives"`` or ``"no_predicted_positives"``; the estimate is then NaN).

    Raises
    ------
    fairaudit.exceptions.InputError
        As :func:`bias_aucs`.
    ValueError
        If a threshold is not finite or there is none.

    Notes
    -----
    Each group's positive and negative scores are sorted once; the counts at or above every
    threshold come from binary search, so the cost is O(N log N + T log N) for T thresholds.
    The false positive rate per group is the quantity behind the dialect bias of Sap et al.
    (2019); the interval is Wilson's (1927).

    References
    ----------
    .. [1] Sap, M., Card, D., Gabriel, S., Choi, Y. and Smith, N. A. (2019). The risk of racial
       bias in hate speech detection. Proc. ACL, 1668-1678. doi:10.18653/v1/P19-1163
    .. [2] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212. doi:10.1080/01621459.1927.10502953
    """
    check_alpha(alpha)
    cuts = np.asarray(thresholds, dtype=float).ravel()
    if cuts.size == 0 or not np.isfinite(cuts).all():
        raise ValueError("thresholds must be a non-empty sequence of finite numbers")
    data = _prepare(frame, group=group, gold=gold, score=score, subgroups=subgroups)

    names: list[str] = []
    parts: list[dict[str, np.ndarray]] = []
    everyone = np.ones(data.gold.size, dtype=bool)
    for name, member in [*data.members.items(), (OVERALL, everyone)]:
        positive_scores = np.sort(data.score[member & data.gold])
        negative_scores = np.sort(data.score[member & ~data.gold])
        positives, negatives = positive_scores.size, negative_scores.size
        true_positives = positives - np.searchsorted(positive_scores, cuts, side="left")
        false_positives = negatives - np.searchsorted(negative_scores, cuts, side="left")
        flagged = true_positives + false_positives
        size = np.full(cuts.size, positives + negatives)
        counts = {
            "flag_rate": (flagged, size, "empty_group"),
            "false_positive_rate": (
                false_positives,
                np.full(cuts.size, negatives),
                "no_negatives",
            ),
            "false_negative_rate": (
                positives - true_positives,
                np.full(cuts.size, positives),
                "no_positives",
            ),
            "precision": (true_positives, flagged, "no_predicted_positives"),
        }
        for metric in SWEEP_METRICS:
            count, n, reason = counts[metric]
            names.extend([name] * cuts.size)
            if positives + negatives == 0:
                reason = "empty_group"
            parts.append(
                {
                    "threshold": cuts,
                    "metric": np.full(cuts.size, metric, dtype=object),
                    "count": count.astype(np.int64),
                    "n": n.astype(np.int64),
                    "reason": np.where(n == 0, reason, None).astype(object),
                }
            )

    count = np.concatenate([p["count"] for p in parts])
    n = np.concatenate([p["n"] for p in parts])
    defined = n > 0
    estimate = np.full(n.size, np.nan)
    low = np.full(n.size, np.nan)
    high = np.full(n.size, np.nan)
    estimate[defined] = count[defined] / n[defined]
    if defined.any():
        low[defined], high[defined] = proportion_confint(
            count[defined], n[defined], alpha=alpha, method="wilson"
        )
    result = pd.DataFrame(
        {
            "group": np.array(names, dtype=object),
            "threshold": np.concatenate([p["threshold"] for p in parts]),
            "metric": np.concatenate([p["metric"] for p in parts]),
            "estimate": estimate,
            "ci_low": low,
            "ci_high": high,
            "n": n,
            "count": count,
            "interval_method": "wilson",
            "alpha": alpha,
            "undefined_reason": pd.Series(
                np.concatenate([p["reason"] for p in parts]), dtype=object
            ),
        },
        columns=list(SWEEP_COLUMNS),
    )
    result["undefined_reason"] = result["undefined_reason"].where(
        result["undefined_reason"].notna(), None
    )
    logger.info(
        "swept %d threshold(s) for %d group(s) on %d messages",
        cuts.size,
        len(data.members),
        data.gold.size,
    )
    return result


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """Reliability bins and summary scores per group, from :func:`calibration_by_group`."""

    bins: pd.DataFrame
    """One row per (group, bin); columns :data:`CALIBRATION_BIN_COLUMNS`."""
    summary: pd.DataFrame
    """One row per group; columns :data:`CALIBRATION_SUMMARY_COLUMNS`."""


def calibration_by_group(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    score: str,
    bins: int = 10,
    subgroups: Literal["exclusive", "overlapping"] = "exclusive",
    alpha: float = 0.05,
) -> Calibration:
    """Reliability table, Brier score and expected calibration error per group.

    Parameters
    ----------
    frame, group, gold, subgroups
        As in :func:`bias_aucs`.
    score
        Model score column; must be a probability in [0, 1].
    bins
        Number of equal-width bins on [0, 1]; bin ``k`` is ``[k/bins, (k+1)/bins)`` and the last
        bin also holds 1.
    alpha
        Every Wilson interval has confidence ``1 - alpha``.

    Returns
    -------
    Calibration
        ``bins``: one row per (group, bin), groups first then ``"overall"``, every bin listed;
        columns ``group``, ``bin`` (0-based), ``bin_low``, ``bin_high``, ``n``, ``positives``,
        ``mean_score``, ``observed_rate`` (share of gold positives), ``ci_low``/``ci_high``
        (Wilson interval of the observed rate, by ``statsmodels``' ``proportion_confint``),
        ``interval_method`` (``"wilson"``), ``alpha`` and ``undefined_reason`` (``None`` or
        ``"empty_bin"``; the means and interval are then NaN). ``summary``: one row per group;
        columns ``group``, ``n``, ``positives``, ``brier_score``,
        ``expected_calibration_error``, ``bins``, ``binning`` (``"equal_width"``) and
        ``undefined_reason`` (``None`` or ``"empty_group"``).

    Raises
    ------
    fairaudit.exceptions.InputError
        As :func:`bias_aucs`, and if a score lies outside [0, 1].
    ValueError
        If ``bins`` is not a positive integer.

    Notes
    -----
    The Brier (1950) score is the mean of ``(score - gold)^2``. The expected calibration error
    (Naeini et al., 2015; Guo et al., 2017) is the sum over non-empty bins of the bin's share of
    the group's messages times ``|observed_rate - mean_score|``; it depends on the binning and
    is biased upwards in small groups, so compare groups of similar size or read the bins with
    their Wilson (1927) intervals.

    References
    ----------
    .. [1] Brier, G. W. (1950). Verification of forecasts expressed in terms of probability.
       Monthly Weather Review 78(1), 1-3. doi:10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2
    .. [2] Naeini, M. P., Cooper, G. and Hauskrecht, M. (2015). Obtaining well calibrated
       probabilities using Bayesian binning. Proc. AAAI 29(1), 2901-2907.
       doi:10.1609/aaai.v29i1.9602
    .. [3] Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. (2017). On calibration of modern
       neural networks. Proc. ICML, PMLR 70, 1321-1330. arXiv:1706.04599
    .. [4] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212. doi:10.1080/01621459.1927.10502953
    """
    check_alpha(alpha)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a positive integer, not {bins!r}")
    data = _prepare(frame, group=group, gold=gold, score=score, subgroups=subgroups)
    outside = (data.score < 0) | (data.score > 1)
    if outside.any():
        ids = list(frame.index[outside])
        raise InputError(
            f"{len(ids)} score(s) outside [0, 1]; calibration needs probabilities "
            f"(ids: {format_ids(ids)})",
            column=score,
        )

    edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of = np.clip(np.searchsorted(edges, data.score, side="right") - 1, 0, bins - 1)
    gold_float = data.gold.astype(float)
    bin_rows: list[pd.DataFrame] = []
    summary_rows: list[dict[str, Any]] = []
    everyone = np.ones(data.gold.size, dtype=bool)
    for name, member in [*data.members.items(), (OVERALL, everyone)]:
        n = np.bincount(bin_of[member], minlength=bins)
        positives = np.bincount(bin_of[member], weights=gold_float[member], minlength=bins)
        score_sums = np.bincount(bin_of[member], weights=data.score[member], minlength=bins)
        filled = n > 0
        mean_score = np.full(bins, np.nan)
        observed = np.full(bins, np.nan)
        low = np.full(bins, np.nan)
        high = np.full(bins, np.nan)
        mean_score[filled] = score_sums[filled] / n[filled]
        observed[filled] = positives[filled] / n[filled]
        if filled.any():
            low[filled], high[filled] = proportion_confint(
                positives[filled], n[filled], alpha=alpha, method="wilson"
            )
        bin_rows.append(
            pd.DataFrame(
                {
                    "group": name,
                    "bin": np.arange(bins),
                    "bin_low": edges[:-1],
                    "bin_high": edges[1:],
                    "n": n.astype(np.int64),
                    "positives": positives.astype(np.int64),
                    "mean_score": mean_score,
                    "observed_rate": observed,
                    "ci_low": low,
                    "ci_high": high,
                    "interval_method": "wilson",
                    "alpha": alpha,
                    "undefined_reason": pd.Series(
                        np.where(filled, None, "empty_bin"), dtype=object
                    ),
                }
            )
        )
        total = int(member.sum())
        brier = ece = math.nan
        if total:
            brier = float(np.mean((data.score[member] - gold_float[member]) ** 2))
            ece = float(np.sum(n[filled] / total * np.abs(observed[filled] - mean_score[filled])))
        summary_rows.append(
            {
                "group": name,
                "n": total,
                "positives": int(data.gold[member].sum()),
                "brier_score": brier,
                "expected_calibration_error": ece,
                "bins": bins,
                "binning": "equal_width",
                "undefined_reason": None if total else "empty_group",
            }
        )

    bin_table = pd.concat(bin_rows, ignore_index=True)[list(CALIBRATION_BIN_COLUMNS)]
    bin_table["undefined_reason"] = _reason_series(
        [None if r is None else str(r) for r in bin_table["undefined_reason"]]
    )
    summary = pd.DataFrame(summary_rows, columns=list(CALIBRATION_SUMMARY_COLUMNS))
    summary["undefined_reason"] = _reason_series([r["undefined_reason"] for r in summary_rows])
    logger.info(
        "calibration in %d bin(s) for %d group(s) on %d messages",
        bins,
        len(data.members),
        data.gold.size,
    )
    return Calibration(bins=bin_table, summary=summary)
