"""Minimum detectable differences of two-proportion comparisons at the audit's sample sizes.

This module takes the comparison table of :func:`fairaudit.disparity.compare_groups` (or plain
counts) and says, for each comparison, how large a difference from the reference rate the
audit could detect with the given power. A non-significant difference in a comparison that
could only detect large differences is not evidence of no disparity: such rows are marked
``low_power`` and named in a :class:`~fairaudit.exceptions.SmallGroupWarning`.

- :func:`minimum_detectable_difference` works on two sample sizes and a reference rate.
- :func:`power_table` adds the minimum detectable differences to a comparison table.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from statsmodels.stats.power import NormalIndPower

from fairaudit.exceptions import SmallGroupWarning

__all__ = ["POWER_COLUMNS", "minimum_detectable_difference", "power_table"]

logger = logging.getLogger(__name__)

POWER_COLUMNS = (
    "group",
    "reference",
    "metric",
    "n",
    "n_reference",
    "reference_estimate",
    "cohens_h",
    "mdd_increase",
    "mdd_decrease",
    "minimum_detectable_difference",
    "power",
    "alpha",
    "low_power",
    "max_mdd",
    "power_method",
    "undefined_reason",
)
"""Columns of the table :func:`power_table` returns."""


def _cohens_h(n: int, n_reference: int, *, alpha: float, power: float, alternative: str) -> float:
    return float(
        NormalIndPower().solve_power(
            effect_size=None,
            nobs1=n,
            ratio=n_reference / n,
            alpha=alpha,
            power=power,
            alternative=alternative,
        )
    )


def minimum_detectable_difference(
    n: int,
    n_reference: int,
    reference_rate: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Literal["two-sided", "larger"] = "two-sided",
) -> tuple[float, float, float]:
    """Smallest rate differences from ``reference_rate`` detectable at this power.

    The two-proportion z-test's detectable effect in Cohen's h (the difference of
    ``2 * arcsin(sqrt(p))``) is solved with statsmodels' ``NormalIndPower`` and turned back
    into proportions around the reference rate: upward
    ``sin((2 * arcsin(sqrt(p_ref)) + h) / 2) ** 2 - p_ref`` and downward likewise with ``-h``.

    Parameters
    ----------
    n, n_reference
        The denominators of the compared rates: for a false positive rate, each group's number
        of gold non-harmful messages.
    reference_rate
        The reference group's rate, in [0, 1].
    alpha, power
        Significance level and power.
    alternative
        ``"two-sided"`` (as the audit's tests) or ``"larger"``.

    Returns
    -------
    tuple of float
        Cohen's h, the detectable increase and the detectable decrease (both positive). A
        direction that cannot be detected at all, because even a rate of 1 (or 0) is too
        close, is ``inf``.

    References
    ----------
    .. [1] Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.,
       chapter 6. Lawrence Erlbaum. doi:10.4324/9780203771587
    """
    if n <= 0 or n_reference <= 0:
        raise ValueError(f"sample sizes must be positive, not {n} and {n_reference}")
    if not 0.0 <= reference_rate <= 1.0:
        raise ValueError(f"reference_rate must lie in [0, 1], not {reference_rate!r}")
    h = _cohens_h(n, n_reference, alpha=alpha, power=power, alternative=alternative)
    phi = 2 * math.asin(math.sqrt(reference_rate))
    increase = math.sin((phi + h) / 2) ** 2 - reference_rate if phi + h <= math.pi else math.inf
    decrease = reference_rate - math.sin((phi - h) / 2) ** 2 if phi - h >= 0 else math.inf
    return h, increase, decrease


def power_table(
    comparisons: pd.DataFrame,
    *,
    alpha: float | None = None,
    power: float = 0.8,
    max_mdd: float = 0.1,
) -> pd.DataFrame:
    """Minimum detectable difference of every rate comparison in a comparison table.

    Parameters
    ----------
    comparisons
        A table from :func:`fairaudit.disparity.compare_groups`; its ``n`` and
        ``n_reference`` are already the right denominators (gold non-harmful messages for the
        false positive rate). Mean-score rows are skipped.
    alpha
        Significance level; by default the table's own ``alpha``.
    power
        Power to detect the difference.
    max_mdd
        Comparisons whose detectable difference in the adverse direction exceeds this are
        marked ``low_power``.

    Returns
    -------
    pandas.DataFrame
        One row per rate comparison, columns :data:`POWER_COLUMNS`: ``cohens_h``,
        ``mdd_increase``, ``mdd_decrease`` (``inf`` when a direction is out of reach),
        ``minimum_detectable_difference`` (in the adverse direction: the increase for the
        error and flag rates, the decrease for precision), ``power``, ``alpha``,
        ``low_power``, ``max_mdd``, ``power_method`` (``"normal_cohens_h"``) and
        ``undefined_reason`` (``"empty_group"`` or ``"no_reference_rate"``, the other values
        then missing).

    Warns
    -----
    fairaudit.exceptions.SmallGroupWarning
        Naming the comparisons with low power: their absence of significance says little.
    """
    rates = comparisons[comparisons["metric"] != "mean_score"]
    rows: list[dict[str, Any]] = []
    for row in rates.itertuples(index=False):
        level = float(row.alpha) if alpha is None else alpha
        entry: dict[str, Any] = {
            "group": row.group,
            "reference": row.reference,
            "metric": row.metric,
            "n": int(row.n),
            "n_reference": int(row.n_reference),
            "reference_estimate": float(row.reference_estimate),
            "cohens_h": math.nan,
            "mdd_increase": math.nan,
            "mdd_decrease": math.nan,
            "minimum_detectable_difference": math.nan,
            "power": power,
            "alpha": level,
            "low_power": True,
            "max_mdd": max_mdd,
            "power_method": "normal_cohens_h",
            "undefined_reason": None,
        }
        if row.n <= 0 or row.n_reference <= 0:
            entry["undefined_reason"] = "empty_group"
        elif np.isnan(row.reference_estimate):
            entry["undefined_reason"] = "no_reference_rate"
        else:
            h, up, down = minimum_detectable_difference(
                int(row.n), int(row.n_reference), float(row.reference_estimate), alpha=level,
                power=power,
            )  # fmt: skip
            adverse = down if row.metric == "precision" else up
            entry.update(
                cohens_h=h,
                mdd_increase=up,
                mdd_decrease=down,
                minimum_detectable_difference=adverse,
                low_power=bool(adverse > max_mdd),
            )
        rows.append(entry)
    result = pd.DataFrame(rows, columns=list(POWER_COLUMNS))
    result["undefined_reason"] = pd.Series([r["undefined_reason"] for r in rows], dtype=object)
    result["low_power"] = result["low_power"].astype(bool)
    low = result[result["low_power"]]
    if not low.empty:
        named = ", ".join(
            f"{g}/{m} ({'undefined' if math.isnan(d) else f'{d:.2f}'})"
            for g, m, d in zip(
                low["group"], low["metric"], low["minimum_detectable_difference"], strict=True
            )
        )
        warnings.warn(
            f"{len(low)} comparison(s) can only detect differences larger than {max_mdd:g} at "
            f"power {power:g}; a non-significant result there is not evidence of no "
            f"disparity: {named}",
            SmallGroupWarning,
            stacklevel=2,
        )
    logger.info("minimum detectable differences for %d comparison(s)", len(result))
    return result
