"""Label bias: do the annotators, rather than the model, treat one dialect group as more harmful?

This module takes the annotator vote counts behind gold labels (one row per item, one column per
category, for example Davidson et al.'s ``hate_speech, offensive_language, neither``) and the
dialect group of each item, and returns one row per group with the share of items a majority of
annotators called harmful, how split the votes are, and the agreement statistics of
:func:`fairaudit.agreement.vote_agreement`. Set beside the model's flag rates, the table tells
"the model flags AAE more" apart from "the labels call AAE harmful more". It knows nothing of
files or models.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from fairaudit._common import check_alpha
from fairaudit.agreement import MISSING_GROUP, OVERALL, vote_agreement
from fairaudit.exceptions import InputError

__all__ = [
    "LABEL_BIAS_COLUMNS",
    "KNOWN_HARMFUL_CATEGORIES",
    "MAJORITY_RULE",
    "label_bias_table",
]

logger = logging.getLogger(__name__)

LABEL_BIAS_COLUMNS: tuple[str, ...] = (
    "group",
    "n_items",
    "n_with_votes",
    "n_votes",
    "majority_harmful",
    "majority_harmful_share",
    "ci_low",
    "ci_high",
    "interval_method",
    "majority_ties",
    "harmful_vote_share",
    "harmful_split_share",
    "split_vote_share",
    "krippendorff_alpha",
    "generalised_fleiss_kappa",
    "n_agreement_items",
    "reference",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "difference_interval_method",
    "harmful_categories",
    "majority_rule",
    "alpha",
    "undefined_reason",
)
"""Columns of the table :func:`label_bias_table` returns, in order."""

KNOWN_HARMFUL_CATEGORIES: dict[frozenset[str], tuple[str, ...]] = {
    frozenset({"hate_speech", "offensive_language", "neither"}): (
        "hate_speech",
        "offensive_language",
    ),
    frozenset({"votes_toxic", "votes_nontoxic"}): ("votes_toxic",),
}
"""Vote schemes whose harmful categories need not be named: Davidson et al. (2017) and the
fairaudit cases. Any other scheme must pass ``harmful``."""

MAJORITY_RULE = (
    "harmful by majority: harmful votes > half of the item's votes (hate speech and offensive "
    "votes pooled); an exact half is a tie, counted in majority_ties and not as harmful"
)
"""The ``majority_rule`` of every row."""


def _harmful_categories(columns: list[str], harmful: Sequence[str] | None) -> tuple[str, ...]:
    if harmful is None:
        known = KNOWN_HARMFUL_CATEGORIES.get(frozenset(columns))
        if known is None:
            raise InputError(
                f"cannot tell which vote columns are harmful among {columns}; pass harmful="
            )
        return known
    if isinstance(harmful, str):
        harmful = [harmful]
    chosen = tuple(dict.fromkeys(harmful))
    unknown = [c for c in chosen if c not in columns]
    if unknown:
        raise InputError(f"harmful categories {unknown} are not vote columns {columns}")
    if not chosen or len(chosen) == len(columns):
        raise InputError(
            "harmful must name at least one and not every vote column; "
            f"got {list(chosen)} of {columns}"
        )
    return chosen


def label_bias_table(
    votes: pd.DataFrame,
    groups: pd.Series,
    *,
    harmful: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    reference: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per group: majority-harmful share of the gold labels, split votes and vote agreement.

    Parameters
    ----------
    votes
        One row per item, indexed by item id, one column of vote counts per category.
    groups
        Group of each item (for example the dialect group), indexed like ``votes``. Missing
        values form the group ``"<missing>"``.
    harmful
        The vote columns that mean harmful. May be left out for the Davidson et al. columns
        (``hate_speech`` and ``offensive_language`` are harmful, ``neither`` is not) and the
        case columns (``votes_toxic``); otherwise required.
    categories
        The vote columns. Default: every column of ``votes``.
    reference
        Optional reference group (for example ``"sae"``); every other group's row then has the
        difference of its majority-harmful share from the reference's, with a Newcombe
        interval.
    alpha
        Every interval has confidence ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LABEL_BIAS_COLUMNS`; one row for ``"overall"`` and then one per group in
        sorted order (the order of :func:`~fairaudit.agreement.vote_agreement`):

        - ``n_items``; ``n_with_votes`` (items with at least one vote); ``n_votes``.
        - ``majority_harmful`` (count) and ``majority_harmful_share`` over ``n_with_votes``,
          with a Wilson interval (``ci_low``, ``ci_high``, ``interval_method``); the rule is in
          ``majority_rule``; ``majority_ties`` counts exact halves.
        - ``harmful_vote_share``: harmful votes over all votes (pooled, no interval).
        - ``harmful_split_share``: share of items with 2 or more votes that have both harmful
          and non-harmful votes; ``split_vote_share``: share whose votes are not unanimous over
          all categories (from ``vote_agreement``).
        - ``krippendorff_alpha``, ``generalised_fleiss_kappa`` and ``n_agreement_items`` from
          ``vote_agreement`` (over all categories, items with 2 or more votes).
        - ``reference``, ``difference`` (group minus reference majority-harmful share),
          ``difference_ci_low``/``difference_ci_high`` and ``difference_interval_method``
          (``"newcombe"``); NaN on the reference and overall rows and without ``reference``.
        - ``harmful_categories`` (a tuple), ``alpha`` and ``undefined_reason`` (``None`` or
          ``"no_votes"``).

        ``result.attrs["agreement"]`` holds the full ``vote_agreement`` table (methods, excluded
        ids).

    Raises
    ------
    fairaudit.exceptions.InputError
        Votes that are not whole non-negative counts, duplicate ids, ``groups`` not indexed
        like ``votes``, unknown harmful categories, or a ``reference`` that is not a group.

    Warns
    -----
    fairaudit.exceptions.UndefinedMetricWarning
        From ``vote_agreement``, when an agreement statistic is undefined for a group.

    Notes
    -----
    A dialect gap in a model's flag rate can come from the model or from the labels it is
    scored against: Sap et al. [1]_ found that tweets in African American English were more
    often labelled offensive by annotators in Davidson et al. [2]_. If one group's items are
    both called harmful more often and agreed on less, a gap in false positive rate measured
    against those labels partly reflects the labels. The Wilson interval [3]_ treats items as
    independent; Newcombe's hybrid interval [4]_ is used for differences. Agreement statistics
    are described in :func:`~fairaudit.agreement.vote_agreement` (Krippendorff's alpha [5]_).

    References
    ----------
    .. [1] Sap, M., Card, D., Gabriel, S., Choi, Y. and Smith, N. A. (2019). The risk of racial
       bias in hate speech detection. Proc. ACL, 1668-1678. doi:10.18653/v1/P19-1163
    .. [2] Davidson, T., Warmsley, D., Macy, M. and Weber, I. (2017). Automated hate speech
       detection and the problem of offensive language. Proc. ICWSM 11(1), 512-515.
       doi:10.1609/icwsm.v11i1.14955
    .. [3] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158), 209-212. doi:10.1080/01621459.1927.10502953
    .. [4] Newcombe, R. G. (1998). Interval estimation for the difference between independent
       proportions: comparison of eleven methods. Statistics in Medicine 17(8), 873-890.
       doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I
    .. [5] Hayes, A. F. and Krippendorff, K. (2007). Answering the call for a standard
       reliability measure for coding data. Communication Methods and Measures 1(1), 77-89.
       doi:10.1080/19312450709336664
    """
    check_alpha(alpha)
    columns = list(votes.columns) if categories is None else list(categories)
    harmful_columns = _harmful_categories(columns, harmful)

    if (groups.dropna().astype(str) == OVERALL).any():
        raise InputError(f"group value {OVERALL!r} is reserved for the overall row; rename it")

    # vote_agreement validates the counts, the ids and the group index before anything is used.
    agreement = vote_agreement(votes, groups=groups, categories=columns)
    counts = votes[columns].to_numpy(dtype=np.int64)
    total = counts.sum(axis=1)
    harmful_votes = votes[list(harmful_columns)].to_numpy(dtype=np.int64).sum(axis=1)

    labels = groups.reindex(votes.index)
    labels = labels.astype(object).where(labels.notna(), MISSING_GROUP).astype(str).to_numpy()
    names = [OVERALL, *sorted(set(labels))]
    if reference is not None and (reference not in names or reference == OVERALL):
        raise InputError(f"reference group {reference!r} is not among the groups {names[1:]}")

    estimates = agreement.set_index(["group", "statistic"])
    rows: list[dict[str, Any]] = []
    for name in names:
        mask = np.ones(labels.size, dtype=bool) if name == OVERALL else labels == name
        item_total, item_harmful = total[mask], harmful_votes[mask]
        with_votes = item_total > 0
        n_with_votes = int(with_votes.sum())
        majority = int((2 * item_harmful > item_total)[with_votes].sum())
        ties = int((2 * item_harmful == item_total)[with_votes].sum())
        pairable = item_total >= 2
        both_kinds = (item_harmful > 0) & (item_harmful < item_total)
        row: dict[str, Any] = {
            "group": name,
            "n_items": int(mask.sum()),
            "n_with_votes": n_with_votes,
            "n_votes": int(item_total.sum()),
            "majority_harmful": majority,
            "majority_harmful_share": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "interval_method": "wilson",
            "majority_ties": ties,
            "harmful_vote_share": math.nan,
            "harmful_split_share": (
                float(both_kinds[pairable].mean()) if pairable.any() else math.nan
            ),
            "split_vote_share": float(estimates.loc[(name, "split_vote_share"), "estimate"]),
            "krippendorff_alpha": float(estimates.loc[(name, "krippendorff_alpha"), "estimate"]),
            "generalised_fleiss_kappa": float(
                estimates.loc[(name, "generalised_fleiss_kappa"), "estimate"]
            ),
            "n_agreement_items": int(estimates.loc[(name, "krippendorff_alpha"), "n"]),
            "reference": reference,
            "difference": math.nan,
            "difference_ci_low": math.nan,
            "difference_ci_high": math.nan,
            "difference_interval_method": None if reference is None else "newcombe",
            "harmful_categories": harmful_columns,
            "majority_rule": MAJORITY_RULE,
            "alpha": alpha,
            "undefined_reason": None,
        }
        if n_with_votes == 0:
            row["undefined_reason"] = "no_votes"
        else:
            low, high = proportion_confint(majority, n_with_votes, alpha=alpha, method="wilson")
            row.update(
                majority_harmful_share=majority / n_with_votes,
                ci_low=float(low),
                ci_high=float(high),
                harmful_vote_share=float(item_harmful.sum() / item_total.sum()),
            )
        rows.append(row)

    if reference is not None:
        base = next(r for r in rows if r["group"] == reference)
        for row in rows:
            if (
                row["group"] in (OVERALL, reference)
                or row["undefined_reason"]
                or base["undefined_reason"]
            ):
                continue
            low, high = confint_proportions_2indep(
                row["majority_harmful"],
                row["n_with_votes"],
                base["majority_harmful"],
                base["n_with_votes"],
                method="newcomb",
                compare="diff",
                alpha=alpha,
            )
            row.update(
                difference=row["majority_harmful_share"] - base["majority_harmful_share"],
                difference_ci_low=float(low),
                difference_ci_high=float(high),
            )

    result = pd.DataFrame(rows, columns=list(LABEL_BIAS_COLUMNS))
    result["undefined_reason"] = pd.Series([r["undefined_reason"] for r in rows], dtype=object)
    result["reference"] = pd.Series([reference] * len(rows), dtype=object)
    result.attrs["agreement"] = agreement
    logger.info(
        "label bias table for %d item(s) in %d group(s); harmful categories %s",
        len(votes),
        len(names) - 1,
        ", ".join(harmful_columns),
    )
    return result
