"""Counterfactual (slot-swap) checks: does the score move when only a name or identity term does?

This module takes a data frame of template sentences (one row per message, a ``template`` column,
the ``slot_value`` swapped into the template, optionally its ``slot_kind`` such as ``name`` or
``identity_term``, the model score, the binary decision and optionally a gold label) and returns
a :class:`CounterfactualReport` of tidy tables: per template the score range, whether the decision
flips, the flagged slot values and the counterfactual token fairness gap; false positive and flag
rates per slot value and per slot kind; and the false positives by id. It knows nothing of files
or models, and never alters the texts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from fairaudit._common import check_alpha, format_ids, numeric_scores, warn_undefined
from fairaudit.disparity import OVERALL, binarize_labels
from fairaudit.exceptions import InputError

__all__ = [
    "TEMPLATE_COLUMNS",
    "SLOT_RATE_COLUMNS",
    "FALSE_POSITIVE_COLUMNS",
    "OVERALL",
    "CTF_GAP_METHOD",
    "CounterfactualReport",
    "counterfactual_token_fairness_gap",
    "counterfactual_report",
]

logger = logging.getLogger(__name__)

CTF_GAP_METHOD = (
    "counterfactual token fairness gap: mean |score_i - score_j| over the unordered pairs of "
    "slot values within the template (Garg et al. 2019)"
)
"""The ``ctf_method`` of every template row."""

TEMPLATE_COLUMNS: tuple[str, ...] = (
    "template",
    "n",
    "score_min",
    "score_max",
    "score_range",
    "n_flagged",
    "decision_flips",
    "flagged_slot_values",
    "ctf_gap",
    "n_pairs",
    "ctf_method",
    "undefined_reason",
)
"""Columns of :attr:`CounterfactualReport.templates`, in order."""

SLOT_RATE_COLUMNS: tuple[str, ...] = (
    "slot",
    "n",
    "mean_score",
    "n_flagged",
    "flag_rate",
    "negatives",
    "false_positives",
    "false_positive_rate",
    "ci_low",
    "ci_high",
    "interval_method",
    "alpha",
    "undefined_reason",
)
"""Columns of :attr:`CounterfactualReport.slot_values` and ``slot_kinds``, in order."""

FALSE_POSITIVE_COLUMNS: tuple[str, ...] = ("id", "template", "slot_kind", "slot_value", "score")
"""Columns of :attr:`CounterfactualReport.false_positives`, in order."""


@dataclass(frozen=True)
class CounterfactualReport:
    """The tables of a counterfactual slot-swap check.

    Attributes
    ----------
    templates
        One row per template, columns :data:`TEMPLATE_COLUMNS`.
    slot_values
        One row per slot value and a last ``"overall"`` row, columns :data:`SLOT_RATE_COLUMNS`
        (``slot`` holds the slot value).
    slot_kinds
        As ``slot_values`` per slot kind, or ``None`` when no slot kind column was given.
    false_positives
        Messages flagged although gold non-harmful, columns :data:`FALSE_POSITIVE_COLUMNS`, in
        input order; ``None`` when no gold column was given.
    """

    templates: pd.DataFrame
    slot_values: pd.DataFrame
    slot_kinds: pd.DataFrame | None
    false_positives: pd.DataFrame | None


def counterfactual_token_fairness_gap(scores: npt.ArrayLike) -> tuple[float, int]:
    """Mean absolute pairwise score difference and the number of pairs.

    Parameters
    ----------
    scores
        The scores of one template's counterfactual variants (one per slot value).

    Returns
    -------
    tuple of (float, int)
        The gap (NaN when there are fewer than two scores) and the number of unordered pairs,
        ``n (n - 1) / 2``.

    Notes
    -----
    With the scores sorted, ``s_(0) <= ... <= s_(n-1)``, the sum of ``|s_i - s_j|`` over pairs is
    ``sum_k (2k - n + 1) s_(k)``, so the gap costs ``O(n log n)``.

    References
    ----------
    .. [1] Garg, S., Perot, V., Limtiaco, N., Taly, A., Chi, E. H. and Beutel, A. (2019).
       Counterfactual fairness in text classification through robustness. Proc. AAAI/ACM
       Conference on AI, Ethics, and Society, 219-226. doi:10.1145/3306618.3317950
    """
    values = np.sort(np.asarray(scores, dtype=float).ravel())
    n = values.size
    pairs = n * (n - 1) // 2
    if n < 2:
        return math.nan, pairs
    weights = 2 * np.arange(n) - n + 1
    return float((weights * values).sum() / pairs), pairs


def _slot_rows(
    keys: pd.Series,
    score: npt.NDArray[np.float64],
    flagged: npt.NDArray[np.bool_],
    gold: npt.NDArray[np.bool_] | None,
    *,
    alpha: float,
    undefined: list[str],
) -> pd.DataFrame:
    names = list(dict.fromkeys(keys))
    rows: list[dict[str, Any]] = []
    labels = keys.to_numpy()
    for name in [*names, OVERALL]:
        mask = np.ones(labels.size, dtype=bool) if name == OVERALL else labels == name
        n = int(mask.sum())
        n_flagged = int(flagged[mask].sum())
        row: dict[str, Any] = {
            "slot": name,
            "n": n,
            "mean_score": float(score[mask].mean()),
            "n_flagged": n_flagged,
            "flag_rate": n_flagged / n,
            "negatives": pd.NA,
            "false_positives": pd.NA,
            "false_positive_rate": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "interval_method": "wilson",
            "alpha": alpha,
            "undefined_reason": None,
        }
        if gold is None:
            row["undefined_reason"] = "no_gold_labels"
        else:
            negatives = int((~gold[mask]).sum())
            false_positives = int((flagged[mask] & ~gold[mask]).sum())
            row.update(negatives=negatives, false_positives=false_positives)
            if negatives == 0:
                row["undefined_reason"] = "no_negatives"
                undefined.append(f"{name} (no_negatives)")
            else:
                low, high = proportion_confint(
                    false_positives, negatives, alpha=alpha, method="wilson"
                )
                row.update(
                    false_positive_rate=false_positives / negatives,
                    ci_low=float(low),
                    ci_high=float(high),
                )
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(SLOT_RATE_COLUMNS))
    for column in ("negatives", "false_positives"):
        table[column] = table[column].astype("Int64")
    table["undefined_reason"] = pd.Series([r["undefined_reason"] for r in rows], dtype=object)
    return table


def counterfactual_report(
    frame: pd.DataFrame,
    *,
    template: str,
    slot_value: str,
    slot_kind: str | None = None,
    score: str,
    flagged: str,
    gold: str | None = None,
    alpha: float = 0.05,
) -> CounterfactualReport:
    """Per-template score spread, decision flips and CTF gap; false positives per slot.

    Parameters
    ----------
    frame
        One row per message (one filled-in template); the index holds the message ids.
    template
        Column naming the template; the rows of one template differ only in the slot.
    slot_value
        Column with the value swapped into the slot (for example ``"Hassan"`` or ``"gay"``).
    slot_kind
        Optional column with the kind of slot (for example ``"name"``, ``"identity_term"``).
    score
        Model score column (numeric, no missing values).
    flagged
        The model's decision, 0/1 or boolean, ``True`` meaning flagged as harmful.
    gold
        Optional gold label column, 0/1 or boolean, ``True`` meaning harmful. Without it the
        false positive rates are NaN (``"no_gold_labels"``) and there is no false positive
        list.
    alpha
        Every interval has confidence ``1 - alpha``.

    Returns
    -------
    CounterfactualReport
        ``templates`` (columns :data:`TEMPLATE_COLUMNS`, templates in order of first
        appearance): ``n`` variants, ``score_min``, ``score_max``, ``score_range`` (max minus
        min), ``n_flagged``, ``decision_flips`` (some but not all variants flagged),
        ``flagged_slot_values`` (a tuple, input order), ``ctf_gap`` and ``n_pairs`` (see
        :func:`counterfactual_token_fairness_gap`), ``ctf_method`` and ``undefined_reason``
        (``"fewer_than_two_variants"`` when the gap is NaN). ``slot_values`` and
        ``slot_kinds`` (columns :data:`SLOT_RATE_COLUMNS`) give per slot and overall the mean
        score, flag rate and false positive rate with a Wilson interval. ``false_positives``
        lists every gold non-harmful message that was flagged, by id.

    Raises
    ------
    fairaudit.exceptions.InputError
        A column is absent, a template, slot value, slot kind or score is missing, a label is
        not 0/1, or a template has the same slot value twice (the message names them).

    Warns
    -----
    fairaudit.exceptions.UndefinedMetricWarning
        Naming templates with a single variant and slots without gold non-harmful messages.

    Notes
    -----
    The counterfactual token fairness gap [1]_ of a template is the mean absolute difference
    of the model's scores over the pairs of its counterfactual variants; it is zero when the
    swapped token does not move the score. Aggregate error rates can hide a model that fires on
    names and identity terms; a per-template view shows it [2]_. Names and identity terms
    correlate with dialect, so such false positives can appear as a dialect gap with a
    different cause. The Wilson interval [3]_ is used for the rates; with a handful of
    templates per slot value these intervals are wide and are descriptive, not tests.

    References
    ----------
    .. [1] Garg, S., Perot, V., Limtiaco, N., Taly, A., Chi, E. H. and Beutel, A. (2019).
       Counterfactual fairness in text classification through robustness. Proc. AAAI/ACM
       Conference on AI, Ethics, and Society, 219-226. doi:10.1145/3306618.3317950
    .. [2] Dixon, L., Li, J., Sorensen, J., Thain, N. and Vasserman, L. (2018). Measuring and
       mitigating unintended bias in text classification. Proc. AAAI/ACM Conference on AI,
       Ethics, and Society, 67-73. doi:10.1145/3278721.3278729
    .. [3] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212. doi:10.1080/01621459.1927.10502953
    """
    check_alpha(alpha)
    key_columns = [template, slot_value] + ([slot_kind] if slot_kind is not None else [])
    needed = [*key_columns, score, flagged] + ([gold] if gold is not None else [])
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise InputError(f"missing column(s) {absent}; columns present: {list(frame.columns)}")
    for column in key_columns:
        missing = frame[column].isna().to_numpy()
        if missing.any():
            ids = list(frame.index[missing])
            raise InputError(
                f"{len(ids)} row(s) have no value (ids: {format_ids(ids)})", column=column
            )
    for column in key_columns[1:]:
        if (frame[column].astype(str) == OVERALL).any():
            raise InputError(
                f"value {OVERALL!r} is reserved for the overall row; rename it", column=column
            )
    duplicated = frame.duplicated(subset=[template, slot_value], keep=False).to_numpy()
    if duplicated.any():
        ids = list(frame.index[duplicated])
        raise InputError(
            f"{len(ids)} row(s) repeat a slot value within a template (ids: {format_ids(ids)})",
            column=slot_value,
        )
    scores = numeric_scores(frame, score)
    score_values = scores.to_numpy(dtype=float)
    flagged_values = binarize_labels(frame[flagged], positive=None, column=flagged).to_numpy(
        dtype=bool
    )
    gold_values = (
        None
        if gold is None
        else binarize_labels(frame[gold], positive=None, column=gold).to_numpy(dtype=bool)
    )

    undefined: list[str] = []
    template_labels = frame[template].to_numpy()
    slot_labels = frame[slot_value].to_numpy()
    rows: list[dict[str, Any]] = []
    for name in dict.fromkeys(template_labels):
        mask = template_labels == name
        values = score_values[mask]
        decisions = flagged_values[mask]
        gap, pairs = counterfactual_token_fairness_gap(values)
        n_flagged = int(decisions.sum())
        reason = None
        if values.size < 2:
            reason = "fewer_than_two_variants"
            undefined.append(f"template {name} ({reason})")
        rows.append(
            {
                "template": name,
                "n": int(values.size),
                "score_min": float(values.min()),
                "score_max": float(values.max()),
                "score_range": float(values.max() - values.min()),
                "n_flagged": n_flagged,
                "decision_flips": bool(0 < n_flagged < values.size),
                "flagged_slot_values": tuple(slot_labels[mask][decisions]),
                "ctf_gap": gap,
                "n_pairs": pairs,
                "ctf_method": CTF_GAP_METHOD,
                "undefined_reason": reason,
            }
        )
    templates = pd.DataFrame(rows, columns=list(TEMPLATE_COLUMNS))
    templates["undefined_reason"] = pd.Series([r["undefined_reason"] for r in rows], dtype=object)

    slot_values = _slot_rows(
        frame[slot_value],
        score_values,
        flagged_values,
        gold_values,
        alpha=alpha,
        undefined=undefined,
    )
    slot_kinds = (
        None
        if slot_kind is None
        else _slot_rows(
            frame[slot_kind],
            score_values,
            flagged_values,
            gold_values,
            alpha=alpha,
            undefined=undefined,
        )
    )

    false_positives: pd.DataFrame | None = None
    if gold_values is not None:
        is_false_positive = flagged_values & ~gold_values
        chosen = frame.loc[is_false_positive]
        false_positives = pd.DataFrame(
            {
                "id": list(chosen.index),
                "template": chosen[template].to_numpy(),
                "slot_kind": (
                    chosen[slot_kind].to_numpy() if slot_kind is not None else [None] * len(chosen)
                ),
                "slot_value": chosen[slot_value].to_numpy(),
                "score": score_values[is_false_positive],
            },
            columns=list(FALSE_POSITIVE_COLUMNS),
        )

    warn_undefined(undefined, "counterfactual value")
    logger.info(
        "checked %d template(s), %d message(s); %d template(s) flip the decision",
        len(templates),
        len(frame),
        int(templates["decision_flips"].sum()),
    )
    return CounterfactualReport(
        templates=templates,
        slot_values=slot_values,
        slot_kinds=slot_kinds,
        false_positives=false_positives,
    )
