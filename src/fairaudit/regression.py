"""Adjusted tests of a dialect disparity: stratified 2x2 tests and logistic regression.

This module takes a data frame with one row per message (a group column, a binary gold label
where ``True`` means harmful, a binary ``flagged`` decision and optionally numeric controls and
a cluster column) and returns tidy tables.

- :func:`cmh_test` compares each group with the reference group on being flagged, stratified
  by the gold label: Mantel-Haenszel pooled odds ratio with its interval, the
  Cochran-Mantel-Haenszel test and the Breslow-Day test of a common odds ratio.
- :func:`flag_regression` fits a logistic regression of being flagged on the dialect group and
  the gold label, without and with lexical controls (for example profanity and identity-term
  counts from :mod:`fairaudit.lexical`), so a reviewer sees how much of a group's log odds
  ratio the controls explain. Standard errors are cluster-robust when a cluster column is
  given. Separation is detected before anything is reported; a separated fit is replaced by a
  Firth-penalised fit with profile penalised-likelihood intervals and penalised
  likelihood-ratio tests, never reported with its Wald p-value.
- :func:`firth_logit` is that Firth fit on plain arrays.
- :func:`detect_separation` names the predictor levels, or the linear-programming check, that
  show separation.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats
from scipy.special import expit
from statsmodels.stats.contingency_tables import StratifiedTable

from fairaudit._common import check_alpha, format_ids, holm
from fairaudit.disparity import InputError, _prepare, _Prepared
from fairaudit.exceptions import DegenerateDataWarning

__all__ = [
    "CMH_COLUMNS",
    "REGRESSION_COLUMNS",
    "FirthResult",
    "cmh_test",
    "detect_separation",
    "firth_logit",
    "flag_regression",
]

logger = logging.getLogger(__name__)

CMH_COLUMNS = (
    "group",
    "reference",
    "strata",
    "n_strata",
    "n",
    "n_reference",
    "pooled_odds_ratio",
    "ci_low",
    "ci_high",
    "interval_method",
    "method",
    "statistic",
    "p_value",
    "p_adjusted",
    "correction",
    "significant",
    "breslow_day_statistic",
    "breslow_day_p_value",
    "homogeneity_rejected",
    "alpha",
    "undefined_reason",
)
"""Columns of the table :func:`cmh_test` returns."""

REGRESSION_COLUMNS = (
    "model",
    "term",
    "group",
    "reference",
    "log_odds_ratio",
    "std_error",
    "ci_low",
    "ci_high",
    "odds_ratio",
    "odds_ratio_ci_low",
    "odds_ratio_ci_high",
    "p_value",
    "significant",
    "method",
    "interval_method",
    "covariance",
    "lr_statistic",
    "lr_p_value",
    "attenuation",
    "controls",
    "n",
    "n_clusters",
    "converged",
    "separation",
    "alpha",
    "note",
)
"""Columns of the table :func:`flag_regression` returns."""

MAX_ABS_COEFFICIENT = 10.0
"""A maximum-likelihood log odds ratio larger than this in size is read as separation."""

MAX_STD_ERROR = 10.0
"""A maximum-likelihood standard error (log odds scale) larger than this is read as separation."""

FEW_CLUSTERS = 30
"""Below this many clusters, cluster-robust standard errors are noted as unreliable."""


# --------------------------------------------------------------------------------------------
# Cochran-Mantel-Haenszel
# --------------------------------------------------------------------------------------------


def cmh_test(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    flagged: str,
    reference: str,
    alpha: float = 0.05,
    missing_group: Literal["error", "keep", "drop"] = "error",
) -> pd.DataFrame:
    """Flagging of each group against the reference, stratified by the gold label.

    For every non-reference group, one 2x2 table per gold label (rows group/reference,
    columns flagged/not flagged) is pooled: the Mantel-Haenszel odds ratio is a flagging odds
    ratio that holds the gold label fixed, so a group with more harmful messages is not
    mistaken for a group flagged more often.

    Parameters
    ----------
    frame, group, gold, flagged, missing_group
        As in :func:`fairaudit.disparity.group_metrics`.
    reference
        The reference group, for example ``"sae"``.
    alpha
        Confidence ``1 - alpha`` of the interval and level of every verdict (after Holm over
        the groups, and for the Breslow-Day test).

    Returns
    -------
    pandas.DataFrame
        One row per non-reference group, columns :data:`CMH_COLUMNS`: ``strata`` (the gold
        column), ``n_strata`` (strata in which both groups have messages; the others carry no
        information), ``n``/``n_reference`` (messages), ``pooled_odds_ratio`` (Mantel-Haenszel,
        above 1 when the group is flagged more) with ``ci_low``/``ci_high`` (Robins-Breslow-
        Greenland variance, ``interval_method="robins_breslow_greenland"``), ``method``
        (``"cochran_mantel_haenszel"``), ``statistic`` and ``p_value`` (CMH chi-square without
        continuity correction, 1 df), ``p_adjusted`` (Holm over the groups), ``correction``,
        ``significant``, ``breslow_day_statistic``, ``breslow_day_p_value`` and
        ``homogeneity_rejected`` (Breslow-Day test that the odds ratio is the same in every
        stratum; missing with one stratum), ``alpha`` and ``undefined_reason`` (``None``,
        ``"no_informative_stratum"``, ``"infinite_pooled_odds_ratio"`` or
        ``"zero_pooled_odds_ratio"`` (a zero pooled numerator or denominator: no interval), or
        ``"zero_variance"``).

    References
    ----------
    .. [1] Mantel, N. and Haenszel, W. (1959). Statistical aspects of the analysis of data
       from retrospective studies of disease. JNCI 22(4), 719-748. doi:10.1093/jnci/22.4.719
    .. [2] Robins, J., Breslow, N. and Greenland, S. (1986). Estimators of the Mantel-Haenszel
       variance consistent in both sparse data and large-strata limiting models. Biometrics
       42(2), 311-323. doi:10.2307/2531052
    .. [3] Breslow, N. E. and Day, N. E. (1980). Statistical Methods in Cancer Research, vol. 1,
       The Analysis of Case-Control Studies. IARC Scientific Publications 32.
    """
    check_alpha(alpha)
    prepared = _prepare_with_reference(
        frame,
        group=group,
        gold=gold,
        flagged=flagged,
        missing_group=missing_group,
        reference=reference,
    )
    labels = prepared.group.to_numpy()
    gold_all = prepared.gold.to_numpy(dtype=bool)
    flagged_all = prepared.flagged.to_numpy(dtype=bool)
    reference_mask = labels == reference

    rows: list[dict[str, Any]] = []
    for name in prepared.groups:
        if name == reference:
            continue
        mask = labels == name
        tables = []
        for stratum in (False, True):
            in_stratum = gold_all == stratum
            g, r = mask & in_stratum, reference_mask & in_stratum
            table = np.array(
                [
                    [(flagged_all & g).sum(), (~flagged_all & g).sum()],
                    [(flagged_all & r).sum(), (~flagged_all & r).sum()],
                ],
                dtype=float,
            )
            if table[0].sum() > 0 and table[1].sum() > 0:
                tables.append(table)
        rows.append(
            {
                "group": name,
                "reference": reference,
                "strata": gold,
                "n_strata": len(tables),
                "n": int(mask.sum()),
                "n_reference": int(reference_mask.sum()),
                **_cmh_row(tables, alpha=alpha),
            }
        )

    result = pd.DataFrame(rows, columns=[c for c in CMH_COLUMNS if c not in _HOLM_COLUMNS])
    for column in (
        "pooled_odds_ratio",
        "ci_low",
        "ci_high",
        "statistic",
        "p_value",
        "breslow_day_statistic",
        "breslow_day_p_value",
    ):
        result[column] = result[column].astype(float)
    result["homogeneity_rejected"] = pd.array(
        [row["homogeneity_rejected"] for row in rows], dtype="boolean"
    )
    result["undefined_reason"] = pd.Series([row["undefined_reason"] for row in rows], dtype=object)
    result["p_adjusted"], result["significant"] = holm(result["p_value"], alpha=alpha)
    result["correction"] = "holm"
    result["alpha"] = alpha
    logger.info(
        "Cochran-Mantel-Haenszel: %d group(s) against %r, stratified by %s, Holm at alpha %g",
        len(result),
        reference,
        gold,
        alpha,
    )
    return result[list(CMH_COLUMNS)]


_HOLM_COLUMNS = ("p_adjusted", "correction", "significant", "alpha")


def _cmh_row(tables: list[np.ndarray], *, alpha: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "pooled_odds_ratio": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "interval_method": "robins_breslow_greenland",
        "method": "cochran_mantel_haenszel",
        "statistic": math.nan,
        "p_value": math.nan,
        "breslow_day_statistic": math.nan,
        "breslow_day_p_value": math.nan,
        "homogeneity_rejected": pd.NA,
        "undefined_reason": None,
    }
    if not tables:
        row["undefined_reason"] = "no_informative_stratum"
        return row

    stack = np.dstack(tables)
    totals = stack.sum(axis=(0, 1))
    numerator = (stack[0, 0] * stack[1, 1] / totals).sum()
    denominator = (stack[0, 1] * stack[1, 0] / totals).sum()
    # Variance of the CMH statistic: zero when every stratum has a constant margin.
    variance = (
        stack[0].sum(axis=0) * stack[1].sum(axis=0) * stack[:, 0].sum(axis=0)
        * stack[:, 1].sum(axis=0) / (totals**2 * (totals - 1))
    )  # fmt: skip
    table = StratifiedTable(tables)
    if np.nansum(variance[np.isfinite(variance)]) <= 0:
        row["undefined_reason"] = "zero_variance"
    else:
        test = table.test_null_odds(correction=False)
        # statsmodels returns 1 - cdf, which underflows to 0 for large statistics: the survival
        # function keeps the tail probability (e.g. 1.5e-73 rather than 0).
        row["statistic"] = float(test.statistic)
        row["p_value"] = float(stats.chi2.sf(test.statistic, 1))
    if denominator == 0:
        row["undefined_reason"] = row["undefined_reason"] or "infinite_pooled_odds_ratio"
        return row
    if numerator == 0:
        row["undefined_reason"] = row["undefined_reason"] or "zero_pooled_odds_ratio"
        row["pooled_odds_ratio"] = 0.0
        return row
    row["pooled_odds_ratio"] = float(table.oddsratio_pooled)
    low, high = table.oddsratio_pooled_confint(alpha=alpha)
    row["ci_low"], row["ci_high"] = float(low), float(high)
    if len(tables) >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            homogeneity = table.test_equal_odds(adjust=False)
        if np.isfinite(homogeneity.statistic):
            row["breslow_day_statistic"] = float(homogeneity.statistic)
            p_homogeneity = float(stats.chi2.sf(homogeneity.statistic, len(tables) - 1))
            row["breslow_day_p_value"] = p_homogeneity
            row["homogeneity_rejected"] = bool(p_homogeneity < alpha)
    return row


def _check_reference(reference: str, groups: Sequence[str], group: str | Sequence[str]) -> None:
    if reference not in groups:
        name = group if isinstance(group, str) else ", ".join(group)
        raise InputError(
            f"reference group {reference!r} not found; groups: "
            + ", ".join(repr(g) for g in groups),
            column=name,
        )


def _prepare_with_reference(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    flagged: str,
    missing_group: Literal["error", "keep", "drop"],
    reference: str,
) -> _Prepared:
    """Validated gold labels and flags (no score) of every group; the reference must be one."""
    prepared = _prepare(
        frame,
        group=group,
        gold=gold,
        flagged=flagged,
        score=None,
        missing_group=missing_group,
        threshold=None,
    )
    _check_reference(reference, prepared.groups, group)
    return prepared


# --------------------------------------------------------------------------------------------
# Separation
# --------------------------------------------------------------------------------------------


def _level_separation(labels: np.ndarray, y: np.ndarray, name: str) -> list[str]:
    """Levels of one categorical predictor whose outcomes are all 0 or all 1."""
    found = []
    for level in pd.unique(labels):
        outcomes = y[labels == level]
        if outcomes.size and outcomes.all():
            found.append(f"{name}={level}, all {outcomes.size} flagged")
        elif outcomes.size and not outcomes.any():
            found.append(f"{name}={level}, none of {outcomes.size} flagged")
    return found


def _linear_program_separation(design: np.ndarray, y: np.ndarray) -> bool:
    """Whether some direction separates the outcomes, complete or quasi-complete (Konis, 2007).

    Maximises ``sum(s_i x_i b)`` subject to ``s_i x_i b >= 0`` and ``-1 <= b <= 1``, with
    ``s_i = 2 y_i - 1``; a positive optimum is a direction along which the likelihood rises
    for ever, so the maximum-likelihood estimate does not exist.
    """
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    signed = (2.0 * y - 1.0)[:, None] * (design / scale)
    result = optimize.linprog(
        c=-signed.sum(axis=0),
        A_ub=-signed,
        b_ub=np.zeros(len(y)),
        bounds=[(-1.0, 1.0)] * design.shape[1],
        method="highs",
    )
    return bool(result.status == 0 and -result.fun > 1e-7 * len(y))


def detect_separation(
    design: pd.DataFrame,
    y: pd.Series | np.ndarray,
    *,
    categorical: dict[str, pd.Series | np.ndarray] | None = None,
) -> str | None:
    """Describe the separation in a logistic regression, or return ``None`` when there is none.

    Parameters
    ----------
    design
        The design matrix, intercept included, one named column per coefficient.
    y
        The binary outcome.
    categorical
        Categorical predictors by name (their labels, one per row): a level whose outcomes are
        all 0 or all 1 is named, as in ``"dialect_group=aae, all 8 flagged"``.

    Returns
    -------
    str or None
        ``"quasi-complete separation: <level>, all <k> flagged"`` (levels joined with ``"; "``)
        when a categorical level is separated, ``"separation found by linear programming"`` when
        only the linear program finds it (for example along a numeric control), else ``None``.

    References
    ----------
    .. [1] Albert, A. and Anderson, J. A. (1984). On the existence of maximum likelihood
       estimates in logistic regression models. Biometrika 71(1), 1-10.
       doi:10.1093/biomet/71.1.1
    .. [2] Konis, K. (2007). Linear programming algorithms for detecting separated data in
       binary logistic regression models. DPhil thesis, University of Oxford.
    """
    outcome = np.asarray(y, dtype=float)
    levels: list[str] = []
    for name, labels in (categorical or {}).items():
        levels += _level_separation(np.asarray(labels), outcome.astype(bool), name)
    if levels:
        return "quasi-complete separation: " + "; ".join(levels)
    if _linear_program_separation(design.to_numpy(dtype=float), outcome):
        return "separation found by linear programming"
    return None


# --------------------------------------------------------------------------------------------
# Firth
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirthResult:
    """A Firth-penalised logistic regression.

    ``params`` and ``std_errors`` (from the inverse Fisher information at the estimate) are
    indexed by the design's column names; ``penalised_loglik`` is the log-likelihood plus
    half the log-determinant of the Fisher information.
    """

    params: pd.Series
    std_errors: pd.Series
    penalised_loglik: float
    converged: bool
    iterations: int


def _penalised_loglik(design: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    eta = design @ beta
    loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    p = expit(eta)
    information = design.T @ (design * (p * (1 - p))[:, None])
    sign, logdet = np.linalg.slogdet(information)
    return loglik + 0.5 * logdet if sign > 0 else -math.inf


def _firth_newton(
    design: np.ndarray,
    y: np.ndarray,
    *,
    start: np.ndarray | None = None,
    fixed: tuple[int, float] | None = None,
    max_iter: int = 200,
    tol: float = 1e-10,
) -> tuple[np.ndarray, float, bool, int]:
    """Newton-Raphson on the Firth-modified score; ``fixed=(j, b)`` holds coefficient j at b."""
    k = design.shape[1]
    beta = np.zeros(k) if start is None else start.astype(float).copy()
    free = np.ones(k, dtype=bool)
    if fixed is not None:
        beta[fixed[0]] = fixed[1]
        free[fixed[0]] = False
    current = _penalised_loglik(design, y, beta)
    for iteration in range(1, max_iter + 1):
        p = expit(design @ beta)
        weights = p * (1 - p)
        information = design.T @ (design * weights[:, None])
        inverse = np.linalg.inv(information)
        leverage = weights * np.einsum("ij,jk,ik->i", design, inverse, design)
        score = design.T @ (y - p + leverage * (0.5 - p))
        step = np.zeros(k)
        step[free] = np.linalg.solve(information[np.ix_(free, free)], score[free])
        # Step halving keeps the penalised likelihood from falling (as in logistf).
        for _ in range(30):
            candidate = beta + step
            value = _penalised_loglik(design, y, candidate)
            if value >= current - 1e-12:
                break
            step /= 2
        beta, current = candidate, value
        if np.max(np.abs(step)) < tol and np.max(np.abs(score[free])) < 1e-6:
            return beta, current, True, iteration
    return beta, current, False, max_iter


def firth_logit(design: pd.DataFrame, y: pd.Series | np.ndarray) -> FirthResult:
    """Fit a Firth-penalised logistic regression by Newton-Raphson.

    The modified score is ``X'(y - p + h (1/2 - p))`` with ``h`` the diagonal of the hat
    matrix ``W^(1/2) X (X'WX)^(-1) X' W^(1/2)``; its root maximises the log-likelihood plus
    half the log-determinant of the Fisher information (a Jeffreys prior), which is finite
    under separation.

    Parameters
    ----------
    design
        The design matrix, intercept included, one named column per coefficient.
    y
        The binary outcome.

    Returns
    -------
    FirthResult

    References
    ----------
    .. [1] Firth, D. (1993). Bias reduction of maximum likelihood estimates. Biometrika 80(1),
       27-38. doi:10.1093/biomet/80.1.27
    .. [2] Heinze, G. and Schemper, M. (2002). A solution to the problem of separation in
       logistic regression. Statistics in Medicine 21(16), 2409-2419. doi:10.1002/sim.1047
    """
    x = design.to_numpy(dtype=float)
    outcome = np.asarray(y, dtype=float)
    beta, penalised, converged, iterations = _firth_newton(x, outcome)
    p = expit(x @ beta)
    information = x.T @ (x * (p * (1 - p))[:, None])
    std_errors = np.sqrt(np.diag(np.linalg.inv(information)))
    return FirthResult(
        params=pd.Series(beta, index=design.columns),
        std_errors=pd.Series(std_errors, index=design.columns),
        penalised_loglik=penalised,
        converged=converged,
        iterations=iterations,
    )


def _firth_profile(
    x: np.ndarray, y: np.ndarray, fit: FirthResult, j: int, *, alpha: float
) -> tuple[float, float, float, float]:
    """Penalised LR statistic and p for coefficient j = 0, and its profile interval."""
    beta_hat = fit.params.to_numpy()
    maximum = fit.penalised_loglik

    def deviance(b: float) -> float:
        _, value, _, _ = _firth_newton(x, y, start=beta_hat, fixed=(j, b))
        return 2.0 * (maximum - value)

    statistic = max(deviance(0.0), 0.0)
    critical = stats.chi2.ppf(1 - alpha, 1)

    def bound(direction: float) -> float:
        width = max(float(fit.std_errors.iloc[j]), 0.5)
        edge = beta_hat[j]
        for _ in range(60):
            candidate = edge + direction * width
            if deviance(candidate) > critical:
                return float(
                    optimize.brentq(
                        lambda b: deviance(b) - critical, min(edge, candidate),
                        max(edge, candidate), xtol=1e-10,
                    )
                )  # fmt: skip
            edge, width = candidate, width * 2
        return direction * math.inf

    return statistic, float(stats.chi2.sf(statistic, 1)), bound(-1.0), bound(1.0)


# --------------------------------------------------------------------------------------------
# Logistic regression of being flagged
# --------------------------------------------------------------------------------------------


def _ml_loglik(x: np.ndarray, y: np.ndarray) -> float:
    """Maximised (or, under separation, supremum-approaching) log-likelihood."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.GLM(y, x, family=sm.families.Binomial()).fit(maxiter=200)
    return float(fit.llf)


def _design(
    labels: np.ndarray,
    groups: Sequence[str],
    reference: str,
    group_name: str,
    gold: np.ndarray,
    gold_name: str,
    controls: pd.DataFrame,
) -> tuple[pd.DataFrame, list[str]]:
    """Intercept, group indicators, gold and controls; constant columns dropped and noted."""
    columns: dict[str, np.ndarray] = {"intercept": np.ones(labels.size)}
    for level in groups:
        if level != reference:
            columns[f"{group_name}[{level}]"] = (labels == level).astype(float)
    columns[gold_name] = gold.astype(float)
    for name in controls.columns:
        columns[name] = controls[name].to_numpy(dtype=float)
    notes = []
    for name in list(columns)[1:]:
        values = columns[name]
        if np.ptp(values) == 0 and not name.startswith(f"{group_name}["):
            notes.append(f"{name} is constant and left out")
            del columns[name]
    return pd.DataFrame(columns), notes


def flag_regression(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    flagged: str,
    reference: str,
    controls: Sequence[str] = (),
    cluster: str | None = None,
    alpha: float = 0.05,
    missing_group: Literal["error", "keep", "drop"] = "error",
) -> pd.DataFrame:
    """Logistic regression of being flagged on dialect group and gold label, with and without
    lexical controls.

    The model ``logit P(flagged) = b0 + b_g [group = g] + c * gold (+ d' controls)`` is fitted
    twice: without the controls, then with them. Each group's coefficient ``b_g`` is the log
    odds ratio of being flagged against the reference group at equal gold label (and equal
    control values); the change between the two fits shows how much of a dialect effect the
    controls, such as profanity counts, account for (Harris et al., 2022).

    Before a fit is reported it is checked for separation: a level of the group or the gold
    label whose messages are all flagged or none flagged, a positive linear-programming
    separation check, a fit that does not converge, or a coefficient or standard error that
    explodes (above :data:`MAX_ABS_COEFFICIENT` / :data:`MAX_STD_ERROR`). A separated fit's
    Wald p-value is never reported: the model is refitted by Firth's penalised likelihood, with
    profile penalised-likelihood intervals and penalised likelihood-ratio p-values.

    Parameters
    ----------
    frame, group, gold, flagged, missing_group
        As in :func:`fairaudit.disparity.group_metrics`.
    reference
        The reference group, for example ``"sae"``.
    controls
        Numeric columns to adjust for, for example ``("profanity", "identity")`` from
        :func:`fairaudit.lexical.count_terms`. With none, only the unadjusted model is fitted.
    cluster
        Optional column of cluster ids (for example the author): standard errors of the
        maximum-likelihood fits are then cluster-robust (sandwich, with statsmodels' small-
        sample correction).
    alpha
        Confidence ``1 - alpha`` of every interval and level of every verdict.

    Returns
    -------
    pandas.DataFrame
        One row per (model, term), intercept left out, columns :data:`REGRESSION_COLUMNS`:
        ``model`` (``"without_controls"`` or ``"with_controls"``), ``term`` (``"<group
        column>[<level>]"``, the gold column or a control), ``group`` (the level, for group
        terms), ``reference``, ``log_odds_ratio``, ``std_error``, ``ci_low``/``ci_high`` (log
        odds scale), ``odds_ratio`` with ``odds_ratio_ci_low``/``odds_ratio_ci_high``,
        ``p_value``, ``significant`` (``p_value < alpha``), ``method`` (``"ml_wald"`` or
        ``"firth_penalised_lr"``), ``interval_method`` (``"wald"`` or
        ``"profile_penalised_likelihood"``), ``covariance`` (``"nonrobust"``, ``"cluster"`` or
        ``"firth_model_based"``), ``lr_statistic``/``lr_p_value`` (maximum-likelihood
        likelihood-ratio test of the term, model-based, valid also under separation),
        ``attenuation`` (on ``with_controls`` group rows: ``1 - b_adjusted / b_unadjusted``,
        the share of the unadjusted log odds ratio the controls account for), ``controls``,
        ``n``, ``n_clusters``, ``converged``, ``separation`` (``None`` or what was found, as in
        ``"quasi-complete separation: dialect_group=aae, all 8 flagged"``), ``alpha`` and
        ``note`` (dropped constant columns, ignored clusters, few clusters).

    Warns
    -----
    fairaudit.exceptions.DegenerateDataWarning
        When a fit is separated (naming what was found and that Firth's method is used).

    References
    ----------
    .. [1] Harris, C., Halevy, M., Howard, A., Bruckman, A. and Yang, D. (2022). Exploring the
       role of grammar and word choice in bias toward African American English (AAE) in hate
       speech classification. Proc. FAccT '22, 789-798. doi:10.1145/3531146.3533144
    .. [2] Firth, D. (1993). Bias reduction of maximum likelihood estimates. Biometrika 80(1),
       27-38. doi:10.1093/biomet/80.1.27
    .. [3] Heinze, G. and Schemper, M. (2002). A solution to the problem of separation in
       logistic regression. Statistics in Medicine 21(16), 2409-2419. doi:10.1002/sim.1047
    .. [4] Cameron, A. C. and Miller, D. L. (2015). A practitioner's guide to cluster-robust
       inference. Journal of Human Resources 50(2), 317-372. doi:10.3368/jhr.50.2.317
    """
    check_alpha(alpha)
    controls = list(controls)
    absent = [c for c in [*controls, *([cluster] if cluster else [])] if c not in frame.columns]
    if absent:
        raise InputError(f"missing column(s) {absent}; columns present: {list(frame.columns)}")
    prepared = _prepare_with_reference(
        frame,
        group=group,
        gold=gold,
        flagged=flagged,
        missing_group=missing_group,
        reference=reference,
    )
    rows_used = prepared.group.index
    group_name = group if isinstance(group, str) else ", ".join(group)
    control_values = pd.DataFrame(index=rows_used)
    for name in controls:
        values = pd.to_numeric(frame.loc[rows_used, name], errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            ids = list(rows_used[bad])
            raise InputError(
                f"{len(ids)} missing or non-numeric value(s) (ids: {format_ids(ids)})",
                column=name,
            )
        control_values[name] = values.astype(float)
    clusters: np.ndarray | None = None
    if cluster is not None:
        cluster_values = frame.loc[rows_used, cluster]
        if cluster_values.isna().any():
            ids = list(rows_used[cluster_values.isna().to_numpy()])
            raise InputError(
                f"{len(ids)} missing cluster id(s) (ids: {format_ids(ids)})", column=cluster
            )
        clusters = pd.factorize(cluster_values)[0]

    labels = prepared.group.to_numpy()
    gold_values = prepared.gold.to_numpy(dtype=bool)
    y = prepared.flagged.to_numpy(dtype=float)
    categorical = {group_name: labels, gold: gold_values.astype(int)}

    models = [("without_controls", control_values.iloc[:, :0])]
    if controls:
        models.append(("with_controls", control_values))
    rows: list[dict[str, Any]] = []
    for model, model_controls in models:
        design, notes = _design(
            labels, prepared.groups, reference, group_name, gold_values, gold, model_controls
        )
        if np.linalg.matrix_rank(design.to_numpy()) < design.shape[1]:
            raise InputError(
                f"the {model} design is collinear (columns {list(design.columns)}); drop a "
                "control that repeats another or the group"
            )
        rows += _fit_model(
            model,
            design,
            y,
            categorical=categorical,
            clusters=clusters,
            alpha=alpha,
            notes=notes,
            reference=reference,
            group_name=group_name,
            controls=", ".join(model_controls.columns) or None,
        )

    result = pd.DataFrame(rows, columns=list(REGRESSION_COLUMNS))
    if controls:
        unadjusted = result[result["model"] == "without_controls"].set_index("term")
        adjusted = (result["model"] == "with_controls") & result["group"].notna()
        base = result.loc[adjusted, "term"].map(unadjusted["log_odds_ratio"])
        with np.errstate(divide="ignore", invalid="ignore"):
            share = 1.0 - result.loc[adjusted, "log_odds_ratio"] / base
        result.loc[adjusted, "attenuation"] = share.where(base != 0)
    for column in ("attenuation", "lr_statistic", "lr_p_value", "p_value", "std_error"):
        result[column] = result[column].astype(float)
    result["significant"] = pd.array(
        [None if math.isnan(p) else bool(p < alpha) for p in result["p_value"]], dtype="boolean"
    )
    return result


def _fit_model(
    model: str,
    design: pd.DataFrame,
    y: np.ndarray,
    *,
    categorical: dict[str, np.ndarray],
    clusters: np.ndarray | None,
    alpha: float,
    notes: list[str],
    reference: str,
    group_name: str,
    controls: str,
) -> list[dict[str, Any]]:
    x = design.to_numpy(dtype=float)
    names = list(design.columns)
    present = {name: labels for name, labels in categorical.items() if np.unique(labels).size > 1}
    separation = detect_separation(design, y, categorical=present)
    n_clusters = None if clusters is None else int(np.unique(clusters).size)
    notes = list(notes)

    ml = None
    converged = True
    if separation is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            glm = sm.GLM(y, x, family=sm.families.Binomial())
            if clusters is not None:
                ml = glm.fit(cov_type="cluster", cov_kwds={"groups": clusters})
            else:
                ml = glm.fit()
        converged = bool(ml.converged)
        exploding = [
            names[j]
            for j in range(1, len(names))
            if abs(ml.params[j]) > MAX_ABS_COEFFICIENT or ml.bse[j] > MAX_STD_ERROR
        ]
        if not converged:
            separation = "maximum-likelihood fit did not converge"
        elif exploding:
            separation = "coefficient or standard error explodes for " + ", ".join(exploding)

    full_loglik = _ml_loglik(x, y)
    rows: list[dict[str, Any]] = []
    z = stats.norm.ppf(1 - alpha / 2)
    if separation is not None:
        warnings.warn(
            f"{model}: {separation}; the maximum-likelihood Wald test is not reported, "
            "Firth-penalised logistic regression is used instead",
            DegenerateDataWarning,
            stacklevel=3,
        )
        firth = firth_logit(design, y)
        if clusters is not None:
            notes.append("clusters ignored: the Firth fit has only a model-based variance")
        converged = firth.converged
    elif clusters is not None and n_clusters is not None and n_clusters < FEW_CLUSTERS:
        notes.append(f"only {n_clusters} clusters: cluster-robust standard errors are unreliable")

    for j, term in enumerate(names):
        if j == 0:
            continue
        reduced = np.delete(x, j, axis=1)
        lr_statistic = max(2.0 * (full_loglik - _ml_loglik(reduced, y)), 0.0)
        row: dict[str, Any] = {
            "model": model,
            "term": term,
            "group": term[len(group_name) + 1 : -1] if term.startswith(f"{group_name}[") else None,
            "reference": reference,
            "lr_statistic": lr_statistic,
            "lr_p_value": float(stats.chi2.sf(lr_statistic, 1)),
            "attenuation": math.nan,
            "controls": controls,
            "n": int(y.size),
            "n_clusters": n_clusters,
            "converged": converged,
            "separation": separation,
            "alpha": alpha,
            "note": "; ".join(notes) or None,
        }
        if separation is None and ml is not None:
            estimate, se = float(ml.params[j]), float(ml.bse[j])
            low, high = estimate - z * se, estimate + z * se
            row.update(
                p_value=float(ml.pvalues[j]),
                method="ml_wald",
                interval_method="wald",
                covariance="cluster" if clusters is not None else "nonrobust",
            )
        else:
            estimate, se = float(firth.params.iloc[j]), float(firth.std_errors.iloc[j])
            _, p_value, low, high = _firth_profile(x, y, firth, j, alpha=alpha)
            row.update(
                p_value=p_value,
                method="firth_penalised_lr",
                interval_method="profile_penalised_likelihood",
                covariance="firth_model_based",
            )
        row.update(
            log_odds_ratio=estimate,
            std_error=se,
            ci_low=low,
            ci_high=high,
            odds_ratio=math.exp(estimate),
            odds_ratio_ci_low=math.exp(low),
            odds_ratio_ci_high=math.exp(high) if high < 700 else math.inf,
        )
        rows.append(row)
    logger.info(
        "logistic regression %s: %d messages, %d term(s), %s",
        model,
        y.size,
        len(names) - 1,
        "Firth (separation)" if separation else "maximum likelihood",
    )
    return rows
