"""Small helpers shared by the statistics modules: one source of truth for each.

Private to the package: input checks, how offending row ids are quoted in error messages,
how a multi-column group is labelled, and the Holm correction every family of tests uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from statsmodels.stats.multitest import multipletests

from fairaudit.exceptions import InputError, SmallGroupWarning, UndefinedMetricWarning

GROUP_SEPARATOR = "×"
"""Joins the values of several group columns into one group label."""

MAX_IDS_SHOWN = 20
"""How many offending row ids an error message quotes before it says how many more."""


def check_alpha(alpha: float) -> None:
    """Raise :class:`ValueError` unless ``0 < alpha < 1``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha!r}")


def format_ids(ids: Sequence[object]) -> str:
    """The first :data:`MAX_IDS_SHOWN` ids, comma-separated, then how many more there are."""
    shown = ", ".join(str(i) for i in ids[:MAX_IDS_SHOWN])
    if len(ids) > MAX_IDS_SHOWN:
        shown += f", ... ({len(ids) - MAX_IDS_SHOWN} more)"
    return shown


def numeric_scores(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as floats; :class:`InputError` naming rows missing or non-numeric."""
    scores = pd.to_numeric(frame[column], errors="coerce").astype(float)
    bad = scores.isna().to_numpy()
    if bad.any():
        ids = list(frame.index[bad])
        raise InputError(
            f"{len(ids)} missing or non-numeric score(s) (ids: {format_ids(ids)})",
            column=column,
        )
    return scores


def holm(
    p_values: pd.Series | npt.ArrayLike, *, alpha: float
) -> tuple[npt.NDArray[np.float64], pd.arrays.BooleanArray]:
    """Holm-adjusted p-values and rejections over the defined p-values only.

    A missing p-value is not a hypothesis tested: its adjusted p-value is NaN and its
    rejection ``<NA>``.
    """
    if not isinstance(p_values, pd.Series):
        p_values = pd.Series(p_values, dtype=float)
    adjusted = np.full(len(p_values), np.nan)
    significant = pd.array([pd.NA] * len(p_values), dtype="boolean")
    defined = p_values.notna().to_numpy()
    if defined.any():
        _, p_holm, _, _ = multipletests(p_values[defined].to_numpy(), alpha=alpha, method="holm")
        adjusted[defined] = p_holm
        significant[defined] = p_holm < alpha
    return adjusted, significant


def warn_small_groups(small: Sequence[str], min_negatives: int) -> None:
    """Warn, for the caller's caller, of groups with too few gold non-harmful messages."""
    if small:
        warnings.warn(
            f"{len(small)} group(s) have fewer than {min_negatives} gold non-harmful messages "
            f"and are too small to judge: {', '.join(small)}",
            SmallGroupWarning,
            stacklevel=3,
        )


def warn_undefined(undefined: Sequence[str], what: str, *, separator: str = ", ") -> None:
    """Warn, for the caller's caller, of ``what`` values that are undefined (NaN)."""
    if undefined:
        warnings.warn(
            f"{len(undefined)} {what}(s) undefined, reported as NaN: {separator.join(undefined)}",
            UndefinedMetricWarning,
            stacklevel=3,
        )
