"""Paired comparison of a toxicity model on the same content written in two dialects.

This module takes a data frame of a paired corpus (one row per message, a ``pair`` column naming
the content, a ``variant`` column saying which dialect version the row is, for example ``"aae"``
or ``"sae"``, a model score and the binary decision) and returns one tidy table of paired
statistics: how often the decision flips between the two versions, in which direction (with
McNemar's exact test), and how far the score moves (mean shift with a t interval and the
Wilcoxon signed-rank test). It knows nothing of files or models.

Pairs that lack one of the two versions are counted and listed in the result, never dropped
silently; two rows for the same pair and variant are an error.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from fairaudit._common import check_alpha, format_ids, numeric_scores, warn_undefined
from fairaudit.disparity import binarize_labels
from fairaudit.exceptions import FairauditWarning, InputError

__all__ = [
    "PAIRED_COLUMNS",
    "IncompletePairsWarning",
    "paired_comparison",
]

logger = logging.getLogger(__name__)

PAIRED_COLUMNS: tuple[str, ...] = (
    "statistic",
    "estimate",
    "ci_low",
    "ci_high",
    "interval_method",
    "test_statistic",
    "p_value",
    "method",
    "n_pairs",
    "n_used",
    "count",
    "treated_only",
    "control_only",
    "n_incomplete",
    "incomplete_pair_ids",
    "treated",
    "control",
    "alpha",
    "undefined_reason",
)
"""Columns of the table :func:`paired_comparison` returns, in order."""

_WILCOXON_EXACT_MAX_N = 50


class IncompletePairsWarning(FairauditWarning):
    """Some pairs lack one of the two versions; they are counted and listed, not used."""


def _wide(
    frame: pd.DataFrame,
    *,
    pair: str,
    variant: str,
    score: str,
    flagged: str,
    treated: str,
    control: str,
) -> tuple[pd.DataFrame, list[Any], int]:
    """Complete pairs as one row each, the ids of incomplete pairs, and rows of other variants."""
    absent = [c for c in (pair, variant, score, flagged) if c not in frame.columns]
    if absent:
        raise InputError(
            f"missing column(s) {absent}; columns present: {list(frame.columns)}",
        )
    if treated == control:
        raise ValueError(f"treated and control must differ, both are {treated!r}")
    for column in (pair, variant):
        missing = frame[column].isna().to_numpy()
        if missing.any():
            ids = list(frame.index[missing])
            raise InputError(
                f"{len(ids)} row(s) have no {column} value (ids: {format_ids(ids)})",
                column=column,
            )

    is_used = frame[variant].isin([treated, control]).to_numpy()
    n_other = int((~is_used).sum())
    if n_other:
        others = sorted({str(v) for v in frame.loc[~is_used, variant]})
        logger.info(
            "left out %d row(s) whose %s is neither %r nor %r (values: %s)",
            n_other,
            variant,
            treated,
            control,
            ", ".join(others),
        )
    used = frame.loc[is_used]

    duplicated = used.duplicated(subset=[pair, variant], keep=False).to_numpy()
    if duplicated.any():
        pairs = list(dict.fromkeys(used.loc[duplicated, pair]))
        raise InputError(
            f"{len(pairs)} pair(s) have more than one row for the same variant "
            f"(pair ids: {format_ids(pairs)})",
            column=pair,
        )

    scores = numeric_scores(used, score)
    decisions = binarize_labels(used[flagged], positive=None, column=flagged)

    long = pd.DataFrame(
        {
            "pair": used[pair].to_numpy(),
            "variant": used[variant].to_numpy(),
            "score": scores.to_numpy(),
            "flagged": decisions.to_numpy(dtype=bool),
        }
    )
    wide = long.pivot(index="pair", columns="variant", values=["score", "flagged"])
    present = wide["score"].reindex(columns=[treated, control]).notna()
    complete = present.all(axis=1).to_numpy()
    incomplete_ids = list(wide.index[~complete])
    wide = wide.loc[complete]
    table = pd.DataFrame(
        {
            "score_treated": wide[("score", treated)].astype(float),
            "score_control": wide[("score", control)].astype(float),
            "flagged_treated": wide[("flagged", treated)].astype(bool),
            "flagged_control": wide[("flagged", control)].astype(bool),
        },
        index=wide.index,
    )
    return table, incomplete_ids, n_other


def _row(statistic: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "statistic": statistic,
        "estimate": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "interval_method": None,
        "test_statistic": math.nan,
        "p_value": math.nan,
        "method": None,
        "count": pd.NA,
        "undefined_reason": None,
    }
    row.update(values)
    return row


def _flip_rows(table: pd.DataFrame, *, alpha: float) -> list[dict[str, Any]]:
    flagged_treated = table["flagged_treated"].to_numpy(dtype=bool)
    flagged_control = table["flagged_control"].to_numpy(dtype=bool)
    n = int(flagged_treated.size)
    treated_only = int((flagged_treated & ~flagged_control).sum())
    control_only = int((~flagged_treated & flagged_control).sum())
    both = int((flagged_treated & flagged_control).sum())
    neither = n - treated_only - control_only - both
    flips = treated_only + control_only

    flip = _row(
        "flip_rate",
        interval_method="wilson",
        method="share of pairs flagged in exactly one version; Wilson score interval",
        n_used=n,
        count=flips,
    )
    mcnemar_row = _row(
        "mcnemar_exact",
        method=(
            "McNemar's exact test (statsmodels mcnemar, exact=True): two-sided binomial test of "
            "treated_only against Binomial(treated_only + control_only, 1/2); test_statistic is "
            "min(treated_only, control_only); estimate is the paired difference in flag rates "
            "(treated_only - control_only) / n_pairs"
        ),
        n_used=flips,
        count=treated_only,
    )
    if n == 0:
        flip["undefined_reason"] = mcnemar_row["undefined_reason"] = "no_complete_pairs"
        return [flip, mcnemar_row]

    low, high = proportion_confint(flips, n, alpha=alpha, method="wilson")
    flip.update(estimate=flips / n, ci_low=float(low), ci_high=float(high))

    mcnemar_row["estimate"] = (treated_only - control_only) / n
    if flips == 0:
        # Nothing discordant: the binomial test has no trials, so there is no test to report.
        mcnemar_row["undefined_reason"] = "no_discordant_pairs"
    else:
        result = mcnemar([[both, treated_only], [control_only, neither]], exact=True)
        mcnemar_row["test_statistic"] = float(result.statistic)
        mcnemar_row["p_value"] = float(result.pvalue)
    return [flip, mcnemar_row]


def _shift_rows(
    table: pd.DataFrame, *, alpha: float, zero_method: Literal["wilcox", "pratt"]
) -> list[dict[str, Any]]:
    differences = (table["score_treated"] - table["score_control"]).to_numpy(dtype=float)
    n = int(differences.size)

    shift = _row(
        "mean_score_shift",
        interval_method="student_t",
        method=(
            "mean of the paired differences (treated - control); Student t interval; "
            "test_statistic and p_value from the paired t test (scipy ttest_rel)"
        ),
        n_used=n,
    )
    if n >= 1:
        shift["estimate"] = float(differences.mean())
    if n < 2:
        shift["undefined_reason"] = "too_few_pairs"
    elif np.ptp(differences) == 0:
        shift["undefined_reason"] = "zero_variance"
    else:
        low, high = DescrStatsW(differences).tconfint_mean(alpha=alpha)
        result = stats.ttest_rel(table["score_treated"], table["score_control"])
        shift.update(
            ci_low=float(low),
            ci_high=float(high),
            test_statistic=float(result.statistic),
            p_value=float(result.pvalue),
        )

    zeros = differences == 0
    n_used = n - int(zeros.sum()) if zero_method == "wilcox" else n
    nonzero = np.abs(differences[~zeros])
    has_ties = np.unique(nonzero).size < nonzero.size
    # Under "wilcox" the zeros are dropped here, so the exact null distribution stays valid.
    exact = (
        n_used <= _WILCOXON_EXACT_MAX_N
        and not has_ties
        and (zero_method == "wilcox" or not zeros.any())
    )
    distribution = "exact" if exact else "asymptotic"
    wilcoxon_row = _row(
        "wilcoxon_signed_rank",
        method=(
            f"Wilcoxon signed-rank test (scipy wilcoxon, zero_method={zero_method!r}, "
            f"method={distribution!r}, two-sided): zero differences "
            + (
                "are dropped before ranking"
                if zero_method == "wilcox"
                else "are ranked and then dropped (Pratt)"
            )
            + f"; {int(zeros.sum())} zero difference(s); estimate is the median difference; "
            "test_statistic is the smaller of the positive and negative rank sums"
        ),
        n_used=n_used,
        count=int(zeros.sum()),
    )
    if n >= 1:
        wilcoxon_row["estimate"] = float(np.median(differences))
    if nonzero.size == 0:
        wilcoxon_row["undefined_reason"] = (
            "no_complete_pairs" if n == 0 else "all_differences_zero"
        )
    else:
        ranked = differences[~zeros] if zero_method == "wilcox" else differences
        result = stats.wilcoxon(
            ranked, zero_method=zero_method, method=distribution, alternative="two-sided"
        )
        wilcoxon_row["test_statistic"] = float(result.statistic)
        wilcoxon_row["p_value"] = float(result.pvalue)
    return [shift, wilcoxon_row]


def paired_comparison(
    frame: pd.DataFrame,
    *,
    pair: str,
    variant: str,
    score: str,
    flagged: str,
    treated: str = "aae",
    control: str = "sae",
    alpha: float = 0.05,
    zero_method: Literal["wilcox", "pratt"] = "wilcox",
) -> pd.DataFrame:
    """Flip rate, McNemar's exact test and score shift between two versions of the same content.

    Parameters
    ----------
    frame
        One row per message; the index holds the message ids.
    pair
        Column naming the content; the rows of one pair are the same content in different
        dialects.
    variant
        Column saying which version a row is. Rows whose value is neither ``treated`` nor
        ``control`` are left out (and logged).
    score
        Model score column (numeric, no missing values).
    flagged
        The model's decision, 0/1 or boolean, ``True`` meaning flagged as harmful.
    treated, control
        The two variant values compared, ``treated - control`` (default AAE minus Standard
        American English).
    alpha
        Every interval has confidence ``1 - alpha``.
    zero_method
        How the Wilcoxon signed-rank test treats pairs whose scores are equal: ``"wilcox"``
        drops them before ranking (the classical test), ``"pratt"`` ranks them and then drops
        them (Pratt, 1959), which is more conservative when many differences are zero.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PAIRED_COLUMNS`, four rows (``statistic``):

        - ``flip_rate``: share of complete pairs flagged in exactly one version, Wilson
          interval; ``count`` is the number of flips.
        - ``mcnemar_exact``: estimate is the paired difference in flag rates
          ``(treated_only - control_only) / n_pairs``; McNemar's exact p-value.
          ``count`` is ``treated_only``, ``n_used`` the discordant pairs.
        - ``mean_score_shift``: mean of ``score[treated] - score[control]`` with a Student t
          interval and the paired t test.
        - ``wilcoxon_signed_rank``: the median difference and the Wilcoxon signed-rank test;
          ``count`` is the number of zero differences, ``n_used`` the differences ranked.

        Every row repeats ``n_pairs`` (complete pairs), ``treated_only`` (flagged only in the
        treated version, McNemar's *b*), ``control_only`` (*c*), ``n_incomplete`` and
        ``incomplete_pair_ids`` (a tuple), ``treated``, ``control`` and ``alpha``.
        ``method`` names the procedure; ``undefined_reason`` is ``None`` or why a value is NaN
        (``"no_complete_pairs"``, ``"no_discordant_pairs"``, ``"too_few_pairs"``,
        ``"zero_variance"``, ``"all_differences_zero"``).

    Raises
    ------
    fairaudit.exceptions.InputError
        A column is absent, a pair or variant value or a score is missing, a decision is not
        0/1, or a pair has more than one row for the same variant (the message names the pair
        ids).

    Warns
    -----
    IncompletePairsWarning
        Naming the pairs that lack the treated or the control version.
    fairaudit.exceptions.UndefinedMetricWarning
        Naming the statistics that are undefined.

    Notes
    -----
    McNemar's test [1]_ uses only the discordant pairs; its exact form is the two-sided
    binomial test, valid at any count. The Wilson interval [2]_ is used for the flip rate. The
    score shift is summarised twice: the mean with a Student t interval, and the Wilcoxon
    signed-rank test [3]_, which does not assume normal differences. The exact null
    distribution is used when at most 50 differences are ranked and there are no ties or
    zeros, otherwise the normal approximation with tie correction. Pratt's treatment of zeros
    is [4]_.

    References
    ----------
    .. [1] McNemar, Q. (1947). Note on the sampling error of the difference between correlated
       proportions or percentages. Psychometrika 12(2), 153-157. doi:10.1007/BF02295996
    .. [2] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212. doi:10.1080/01621459.1927.10502953
    .. [3] Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics Bulletin
       1(6), 80-83. doi:10.2307/3001968
    .. [4] Pratt, J. W. (1959). Remarks on zeros and ties in the Wilcoxon signed rank
       procedures. JASA 54(287), 655-667. doi:10.1080/01621459.1959.10501526
    """
    check_alpha(alpha)
    if zero_method not in ("wilcox", "pratt"):
        raise ValueError(f"zero_method must be 'wilcox' or 'pratt', not {zero_method!r}")

    table, incomplete_ids, n_other = _wide(
        frame,
        pair=pair,
        variant=variant,
        score=score,
        flagged=flagged,
        treated=treated,
        control=control,
    )
    if incomplete_ids:
        warnings.warn(
            f"{len(incomplete_ids)} pair(s) lack the {treated!r} or the {control!r} version and "
            f"are left out of every paired statistic (pair ids: {format_ids(incomplete_ids)})",
            IncompletePairsWarning,
            stacklevel=2,
        )

    rows = _flip_rows(table, alpha=alpha) + _shift_rows(
        table, alpha=alpha, zero_method=zero_method
    )
    treated_only = int((table["flagged_treated"] & ~table["flagged_control"]).sum())
    control_only = int((~table["flagged_treated"] & table["flagged_control"]).sum())
    for row in rows:
        row.update(
            n_pairs=len(table),
            treated_only=treated_only,
            control_only=control_only,
            n_incomplete=len(incomplete_ids),
            incomplete_pair_ids=tuple(incomplete_ids),
            treated=treated,
            control=control,
            alpha=alpha,
        )

    result = pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))
    for column in ("estimate", "ci_low", "ci_high", "test_statistic", "p_value"):
        result[column] = result[column].astype(float)
    for column in ("n_pairs", "n_used", "treated_only", "control_only", "n_incomplete"):
        result[column] = result[column].astype("int64")
    result["count"] = result["count"].astype("Int64")
    result["undefined_reason"] = pd.Series([r["undefined_reason"] for r in rows], dtype=object)
    result.attrs["n_other_variant_rows"] = n_other

    undefined = [
        f"{r['statistic']} ({r['undefined_reason']})" for r in rows if r["undefined_reason"]
    ]
    warn_undefined(undefined, "paired statistic")
    logger.info(
        "compared %d complete pair(s) (%s vs %s), %d incomplete; %d flip(s)",
        len(table),
        treated,
        control,
        len(incomplete_ids),
        treated_only + control_only,
    )
    return result
