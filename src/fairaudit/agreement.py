"""Inter-annotator agreement: chance-corrected agreement of annotators, votes and rules.

This module takes plain data (label sequences, item-by-category count tables, span tables and
vote-count frames) and returns small named results or tidy tables. It is used in two places:

- the dialect-marker layer, where :func:`marker_agreement` measures, per marker, how well human
  annotators agree with each other and with the rules on *item-level presence* (does the item
  carry the marker?);
- the gold labels, where :func:`vote_agreement` measures, per dialect group and overall, how
  much the crowd annotators behind each label agreed (low agreement on one group signals label
  noise that biases that group's error rates).

Building blocks, each returning the estimate together with the reason when it is undefined
(NaN, never a made-up 0 or 1):

- :func:`cohen_kappa`: Cohen's kappa of two raters (scikit-learn).
- :func:`fleiss_kappa_from_counts`: Fleiss' kappa from an item-by-category count table
  (statsmodels when every item has the same number of ratings; the per-item generalisation for
  unequal numbers of ratings otherwise).
- :func:`randolph_kappa`: Randolph's free-marginal multirater kappa.
- :func:`krippendorff_alpha_from_counts`: Krippendorff's alpha (nominal) from value counts
  (the ``krippendorff`` package).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import krippendorff
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from fairaudit._common import warn_undefined
from fairaudit.disparity import MISSING_GROUP, OVERALL
from fairaudit.exceptions import InputError

__all__ = [
    "OVERALL",
    "MISSING_GROUP",
    "RULE_SOURCE",
    "HUMAN_PREFIX",
    "ALL_ANNOTATORS",
    "MARKER_AGREEMENT_COLUMNS",
    "VOTE_AGREEMENT_COLUMNS",
    "GENERALISED_FLEISS_FORMULA",
    "REASON_CONSTANT_RATERS",
    "REASON_ONE_CATEGORY",
    "REASON_NO_PAIRABLE_ITEMS",
    "REASON_NO_COMMON_ITEMS",
    "REASON_UNEQUAL_RATERS",
    "Kappa",
    "AgreementEstimate",
    "cohen_kappa",
    "fleiss_kappa_from_counts",
    "randolph_kappa",
    "krippendorff_alpha_from_counts",
    "marker_agreement",
    "vote_agreement",
]

logger = logging.getLogger(__name__)

RULE_SOURCE = "rule"
"""``source`` value of spans found by the marker rules."""

HUMAN_PREFIX = "human:"
"""Prefix of the ``source`` value of spans marked by a human annotator (``human:<annotator>``)."""

ALL_ANNOTATORS = "all annotators"
"""``rater_a`` of the multi-rater rows (Fleiss, Krippendorff) of :func:`marker_agreement`."""

MARKER_AGREEMENT_COLUMNS: tuple[str, ...] = (
    "marker",
    "statistic",
    "rater_a",
    "rater_b",
    "estimate",
    "n",
    "undefined_reason",
    "method",
)
"""Columns of the table returned by :func:`marker_agreement`, in order."""

VOTE_AGREEMENT_COLUMNS: tuple[str, ...] = (
    "group",
    "statistic",
    "estimate",
    "observed_agreement",
    "expected_agreement",
    "n",
    "n_total",
    "n_excluded",
    "excluded_ids",
    "n_pairable",
    "undefined_reason",
    "method",
)
"""Columns of the table returned by :func:`vote_agreement`, in order."""

GENERALISED_FLEISS_FORMULA = (
    "P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1)), P_bar = mean_i P_i, "
    "p_j = sum_i n_ij / sum_i n_i, P_e = sum_j p_j^2, kappa = (P_bar - P_e) / (1 - P_e), "
    "over items with n_i >= 2"
)
"""The per-item generalisation of Fleiss' kappa used for unequal numbers of ratings."""

REASON_CONSTANT_RATERS = "both raters used one category; expected agreement = 1"
REASON_ONE_CATEGORY = "all ratings are in one category; expected agreement = 1"
REASON_NO_PAIRABLE_ITEMS = "no item has 2 or more ratings"
REASON_NO_COMMON_ITEMS = "no items rated by both raters"
REASON_UNEQUAL_RATERS = "not applicable (unequal raters)"
_REASON_FEWER_CATEGORIES = "fewer than 2 categories; expected agreement = 1"
_REASON_FEWER_ANNOTATORS = "not applicable (fewer than 2 annotators)"
_REASON_ONE_RATING_PER_ITEM = "every item has fewer than 2 ratings"

_COHEN_METHOD = "Cohen's kappa (scikit-learn cohen_kappa_score, labels [0, 1])"
_PERCENT_METHOD = "percent agreement: share of items with the same label"
_FLEISS_METHOD = "Fleiss' kappa (statsmodels fleiss_kappa, method 'fleiss'; equal raters)"
_GENERALISED_METHOD = (
    "generalised Fleiss' kappa for unequal raters (per-item formula): "
    + GENERALISED_FLEISS_FORMULA
)
_RANDOLPH_METHOD = "Randolph's free-marginal kappa, P_e = 1/k"
_ALPHA_METHOD = (
    "Krippendorff's alpha, nominal (krippendorff.alpha with value_counts); "
    "items with fewer than 2 values excluded"
)
_SPLIT_METHOD = "share of items (with 2 or more votes) whose votes are not unanimous"


class Kappa(NamedTuple):
    """A two-rater kappa and, when it is undefined, why.

    Attributes
    ----------
    estimate
        The estimate, NaN when undefined.
    reason
        ``None`` when defined, else why the estimate is undefined.
    """

    estimate: float
    reason: str | None


@dataclass(frozen=True)
class AgreementEstimate:
    """A multi-rater agreement statistic with its components and counts.

    Attributes
    ----------
    estimate
        The chance-corrected estimate, NaN when undefined.
    reason
        ``None`` when defined, else why the estimate is undefined.
    observed_agreement
        Observed agreement: P-bar for the kappas, the coincidence-matrix agreement
        ``sum_c o_cc / n`` for Krippendorff's alpha (``1 - D_o``). NaN when there is nothing to
        pair.
    expected_agreement
        Agreement expected by chance: P_e for the kappas, ``sum_c n_c (n_c - 1) / (n (n - 1))``
        for Krippendorff's alpha (``1 - D_e``). NaN when there is nothing to pair.
    n_items
        Items used (items with 2 or more ratings).
    n_excluded
        Items left out because they have fewer than 2 ratings.
    n_pairable
        Ratings on the items used (Krippendorff's number of pairable values).
    method
        What was computed, in words.
    """

    estimate: float
    reason: str | None
    observed_agreement: float
    expected_agreement: float
    n_items: int
    n_excluded: int
    n_pairable: int
    method: str


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _count_matrix(counts: Any, *, name: str = "counts") -> npt.NDArray[np.int64]:
    """Return ``counts`` as a 2-D array of non-negative integers, or raise :class:`InputError`."""
    if isinstance(counts, pd.DataFrame):
        labels = list(counts.index)
        columns: list[Any] = list(counts.columns)
        frame = counts
    else:
        array = np.asarray(counts)
        if array.ndim != 2:
            raise InputError(f"{name} must be a 2-D table of items by categories")
        frame = pd.DataFrame(array)
        labels = [position + 1 for position in range(array.shape[0])]
        columns = list(frame.columns)

    values = np.empty(frame.shape, dtype=float)
    for position, column in enumerate(frame.columns):
        numeric = pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
        bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric != np.floor(numeric))
        if bad.any():
            row = labels[int(np.flatnonzero(bad)[0])]
            raise InputError(
                f"{name}: {int(bad.sum())} value(s) are not non-negative whole-number counts",
                row=row,
                column=str(columns[position]),
            )
        values[:, position] = numeric
    return values.astype(np.int64)


def _labels(rater: Any, *, name: str) -> npt.NDArray[Any]:
    """Return one rater's labels as an array, refusing missing values."""
    values = pd.Series(list(rater) if not isinstance(rater, pd.Series) else rater, dtype=object)
    missing = values.isna().to_numpy()
    if missing.any():
        raise InputError(
            f"{name} has {int(missing.sum())} missing label(s); drop the items the rater did "
            "not rate first",
            row=int(np.flatnonzero(missing)[0]) + 1,
        )
    # An object array would make scikit-learn refuse the labels as of "unknown" type.
    return np.asarray(values.tolist())


# --------------------------------------------------------------------------------------------
# Two raters
# --------------------------------------------------------------------------------------------


def cohen_kappa(
    rater_a: Sequence[Hashable] | pd.Series | npt.ArrayLike,
    rater_b: Sequence[Hashable] | pd.Series | npt.ArrayLike,
    *,
    labels: Sequence[Hashable] | None = None,
) -> Kappa:
    """Cohen's kappa of two raters who labelled the same items, NaN with a reason if undefined.

    Parameters
    ----------
    rater_a, rater_b
        The two raters' labels, one per item, in the same item order. Missing labels are an
        error: keep only the items both raters labelled.
    labels
        The category set (for example ``[0, 1]``). Default: every label either rater used.
        A label outside this set is an error (scikit-learn would silently drop the item).

    Returns
    -------
    Kappa
        ``(estimate, reason)``. The estimate is NaN only when kappa is undefined: no items, or
        both raters used one and the same category, so that expected agreement is 1 and kappa
        is 0/0 (reason :data:`REASON_CONSTANT_RATERS`). One constant rater is *not* undefined:
        expected agreement then equals the other rater's share of that category, and kappa is
        a well-defined number (0 when observed equals expected agreement).

    Raises
    ------
    InputError
        The raters have different lengths, a label is missing or outside ``labels``.

    Notes
    -----
    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the share of items with equal labels and
    ``p_e = sum_c P_a(c) P_b(c)`` from each rater's own marginals [1]_. Computed by
    :func:`sklearn.metrics.cohen_kappa_score` once the undefined case is ruled out, so no
    ``RuntimeWarning`` is raised.

    References
    ----------
    .. [1] Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and
       Psychological Measurement, 20(1), 37-46. https://doi.org/10.1177/001316446002000104

    Examples
    --------
    >>> cohen_kappa([0, 0, 0, 0], [0, 1, 0, 1], labels=[0, 1])
    Kappa(estimate=0.0, reason=None)
    >>> cohen_kappa([0, 0], [0, 0], labels=[0, 1])
    Kappa(estimate=nan, reason='both raters used one category; expected agreement = 1')
    """
    a = _labels(rater_a, name="rater_a")
    b = _labels(rater_b, name="rater_b")
    if a.size != b.size:
        raise InputError(f"rater_a has {a.size} labels but rater_b has {b.size}")
    if a.size == 0:
        return Kappa(math.nan, REASON_NO_COMMON_ITEMS)

    used = list(pd.unique(np.concatenate([a, b])))
    if labels is None:
        label_list = used
    else:
        label_list = list(labels)
        unknown = [label for label in used if label not in label_list]
        if unknown:
            raise InputError(f"label(s) {unknown!r} are not in labels={label_list!r}")

    values_a = set(pd.unique(a))
    if len(values_a) == 1 and values_a == set(pd.unique(b)):
        return Kappa(math.nan, REASON_CONSTANT_RATERS)

    estimate = float(cohen_kappa_score(a, b, labels=label_list))
    return Kappa(estimate, None)


def _percent_agreement(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> Kappa:
    """Share of items on which two raters gave the same label."""
    if a.size == 0:
        return Kappa(math.nan, REASON_NO_COMMON_ITEMS)
    return Kappa(float(np.mean(a == b)), None)


# --------------------------------------------------------------------------------------------
# Many raters, from item-by-category counts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pairable:
    """Items with 2 or more ratings, and the per-item agreement components."""

    table: npt.NDArray[np.int64]
    n_excluded: int
    per_item_agreement: npt.NDArray[np.float64]
    category_shares: npt.NDArray[np.float64]

    @classmethod
    def of(cls, counts: npt.NDArray[np.int64]) -> _Pairable:
        ratings = counts.sum(axis=1)
        keep = ratings >= 2
        table = counts[keep]
        n_i = table.sum(axis=1).astype(float)
        if table.shape[0]:
            agreement = ((table.astype(float) ** 2).sum(axis=1) - n_i) / (n_i * (n_i - 1.0))
            shares = table.sum(axis=0) / n_i.sum()
        else:
            agreement = np.empty(0)
            shares = np.full(counts.shape[1], math.nan)
        return cls(
            table=table,
            n_excluded=int((~keep).sum()),
            per_item_agreement=agreement,
            category_shares=shares,
        )

    @property
    def n_items(self) -> int:
        return int(self.table.shape[0])

    @property
    def n_pairable(self) -> int:
        return int(self.table.sum())

    @property
    def observed(self) -> float:
        return float(self.per_item_agreement.mean()) if self.n_items else math.nan

    @property
    def equal_raters(self) -> bool:
        return self.n_items > 0 and bool(np.all(self.table.sum(axis=1) == self.table[0].sum()))

    @property
    def categories_used(self) -> int:
        return int((self.table.sum(axis=0) > 0).sum())

    def result(
        self,
        estimate: float,
        reason: str | None,
        *,
        expected: float,
        method: str,
        observed: float | None = None,
    ) -> AgreementEstimate:
        """The estimate with these items' counts; ``observed`` defaults to :attr:`observed`."""
        return AgreementEstimate(
            estimate=estimate,
            reason=reason,
            observed_agreement=self.observed if observed is None else observed,
            expected_agreement=expected,
            n_items=self.n_items,
            n_excluded=self.n_excluded,
            n_pairable=self.n_pairable,
            method=method,
        )


def fleiss_kappa_from_counts(
    counts: pd.DataFrame | npt.ArrayLike,
    *,
    unequal_raters: Literal["generalised", "not applicable"] = "generalised",
) -> AgreementEstimate:
    """Fleiss' kappa from an item-by-category table of rating counts.

    Parameters
    ----------
    counts
        One row per item, one column per category, each cell the number of raters who put the
        item in that category (for example ``votes_toxic, votes_nontoxic``). Rows may sum to
        different totals. Items with fewer than 2 ratings are excluded (they cannot show
        agreement) and counted in ``n_excluded``.
    unequal_raters
        What to do when the items used have different numbers of ratings: ``"generalised"``
        (default) computes the per-item generalisation in Notes and labels it so in
        ``method``; ``"not applicable"`` returns NaN with reason
        :data:`REASON_UNEQUAL_RATERS`.

    Returns
    -------
    AgreementEstimate
        ``estimate`` is kappa, ``observed_agreement`` is P-bar and ``expected_agreement`` is
        P_e. NaN with a reason when no item has 2 ratings, or when every rating is in one
        category (P_e = 1, kappa is 0/0; reason :data:`REASON_ONE_CATEGORY`).

    Raises
    ------
    InputError
        ``counts`` is not a 2-D table of non-negative whole numbers.

    Notes
    -----
    With the same number of ratings ``m`` on every item this is Fleiss' (1971) kappa [1]_,
    computed by :func:`statsmodels.stats.inter_rater.fleiss_kappa`. With unequal numbers
    ``n_i`` (crowd re-queues, dropped annotators) statsmodels refuses the table, and this
    function uses the per-item generalisation (:data:`GENERALISED_FLEISS_FORMULA`)::

        P_i   = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))
        P_bar = mean_i P_i
        p_j   = sum_i n_ij / sum_i n_i
        P_e   = sum_j p_j^2
        kappa = (P_bar - P_e) / (1 - P_e)

    over items with ``n_i >= 2``, which reduces to Fleiss' formula when every ``n_i`` is equal.
    Other generalisations exist (Gwet [2]_ averages per-item category proportions instead of
    pooling them), so values from other tools can differ slightly for unequal raters;
    Krippendorff's alpha (:func:`krippendorff_alpha_from_counts`) is the standard statistic
    for that design.

    References
    ----------
    .. [1] Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
       Psychological Bulletin, 76(5), 378-382. https://doi.org/10.1037/h0031619
    .. [2] Gwet, K. L. (2014). Handbook of Inter-Rater Reliability (4th ed.). Advanced
       Analytics, LLC. ISBN 978-0970806284.

    Examples
    --------
    >>> result = fleiss_kappa_from_counts([[3, 0], [1, 1], [0, 4]])
    >>> round(result.estimate, 6), result.method.startswith("generalised")
    (0.325, True)
    """
    table = _count_matrix(counts)
    pairable = _Pairable.of(table)
    equal = pairable.equal_raters
    if equal:
        raters = int(pairable.table[0].sum())
        method = f"{_FLEISS_METHOD[:-1]}, {raters} per item)"
    else:
        method = _GENERALISED_METHOD

    def result(estimate: float, reason: str | None, expected: float) -> AgreementEstimate:
        return pairable.result(estimate, reason, expected=expected, method=method)

    if pairable.n_items == 0:
        return result(math.nan, REASON_NO_PAIRABLE_ITEMS, math.nan)
    expected = float((pairable.category_shares**2).sum())
    if pairable.categories_used < 2:
        return result(math.nan, REASON_ONE_CATEGORY, 1.0)
    if equal:
        return result(
            float(statsmodels_fleiss_kappa(pairable.table, method="fleiss")), None, expected
        )
    if unequal_raters == "not applicable":
        return result(math.nan, REASON_UNEQUAL_RATERS, expected)
    return result((pairable.observed - expected) / (1.0 - expected), None, expected)


def randolph_kappa(
    counts: pd.DataFrame | npt.ArrayLike,
    *,
    n_categories: int | None = None,
) -> AgreementEstimate:
    """Randolph's free-marginal multirater kappa from an item-by-category count table.

    Parameters
    ----------
    counts
        One row per item, one column per category, each cell a number of ratings (rows may sum
        to different totals; items with fewer than 2 ratings are excluded).
    n_categories
        Number of categories ``k`` the raters could choose from. Default: the number of
        columns of ``counts``.

    Returns
    -------
    AgreementEstimate
        ``estimate`` is kappa, ``observed_agreement`` is P-bar (the per-item agreement of
        :func:`fleiss_kappa_from_counts`) and ``expected_agreement`` is ``1/k``. NaN with a
        reason when no item has 2 ratings or ``k < 2``. When every rating is in one category
        the estimate is 1 (defined: chance agreement is fixed at ``1/k``).

    Raises
    ------
    InputError
        ``counts`` is not a table of counts, or ``n_categories`` is smaller than the number of
        columns.

    Notes
    -----
    ``kappa = (P_bar - 1/k) / (1 - 1/k)`` [1]_, the multirater form of Brennan and Prediger's
    coefficient [2]_. With equal numbers of ratings it equals
    ``statsmodels.stats.inter_rater.fleiss_kappa(table, method="randolph")``.

    References
    ----------
    .. [1] Randolph, J. J. (2005). Free-marginal multirater kappa (multirater kappa-free): An
       alternative to Fleiss' fixed-marginal multirater kappa. Joensuu Learning and
       Instruction Symposium. ERIC ED490661. https://eric.ed.gov/?id=ED490661
    .. [2] Brennan, R. L., & Prediger, D. J. (1981). Coefficient kappa: Some uses, misuses, and
       alternatives. Educational and Psychological Measurement, 41(3), 687-699.
       https://doi.org/10.1177/001316448104100307

    Examples
    --------
    >>> randolph_kappa([[2, 0], [2, 0], [2, 0]]).estimate
    1.0
    """
    table = _count_matrix(counts)
    k = table.shape[1] if n_categories is None else int(n_categories)
    if k < table.shape[1]:
        raise InputError(f"n_categories={k} is smaller than the {table.shape[1]} count columns")
    pairable = _Pairable.of(table)
    method = f"{_RANDOLPH_METHOD} (k = {k})"
    expected = 1.0 / k if k >= 1 else math.nan
    estimate, reason = math.nan, None
    if pairable.n_items == 0:
        reason = REASON_NO_PAIRABLE_ITEMS
    elif k < 2:
        reason = _REASON_FEWER_CATEGORIES
    else:
        estimate = (pairable.observed - expected) / (1.0 - expected)
    return pairable.result(estimate, reason, expected=expected, method=method)


def krippendorff_alpha_from_counts(counts: pd.DataFrame | npt.ArrayLike) -> AgreementEstimate:
    """Krippendorff's alpha (nominal) from an item-by-category table of value counts.

    Parameters
    ----------
    counts
        One row per item (unit), one column per category (value), each cell the number of
        coders who assigned that value. Any number of coders per item; items with fewer than 2
        values are not pairable, are excluded and counted in ``n_excluded``.

    Returns
    -------
    AgreementEstimate
        ``estimate`` is alpha; ``n_pairable`` is Krippendorff's ``n``, the number of pairable
        values; ``observed_agreement`` and ``expected_agreement`` are ``1 - D_o`` and
        ``1 - D_e``. NaN with a reason when no item has 2 values, or when every pairable value
        is in one category (``D_e = 0``, alpha is 0/0).

    Raises
    ------
    InputError
        ``counts`` is not a 2-D table of non-negative whole numbers.

    Notes
    -----
    Computed by ``krippendorff.alpha(value_counts=..., level_of_measurement="nominal")``.
    For nominal data ``alpha = 1 - D_o / D_e = (A_o - A_e) / (1 - A_e)`` with the coincidence
    matrix ``o``, ``n_c = sum_k o_ck``, ``A_o = sum_c o_cc / n`` and
    ``A_e = sum_c n_c (n_c - 1) / (n (n - 1))`` [1]_ [2]_.

    References
    ----------
    .. [1] Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard
       reliability measure for coding data. Communication Methods and Measures, 1(1), 77-89.
       https://doi.org/10.1080/19312450709336664
    .. [2] Krippendorff, K. (2018). Content Analysis: An Introduction to Its Methodology
       (4th ed.). SAGE. https://doi.org/10.4135/9781071878781

    Examples
    --------
    >>> result = krippendorff_alpha_from_counts([[3, 0], [1, 1], [0, 4], [1, 0]])
    >>> round(result.estimate, 6), result.n_pairable, result.n_excluded
    (0.6, 9, 1)
    """
    table = _count_matrix(counts)
    pairable = _Pairable.of(table)

    def result(
        estimate: float, reason: str | None, observed: float, expected: float
    ) -> AgreementEstimate:
        return pairable.result(
            estimate, reason, expected=expected, method=_ALPHA_METHOD, observed=observed
        )

    if pairable.n_items == 0:
        return result(math.nan, REASON_NO_PAIRABLE_ITEMS, math.nan, math.nan)

    values = pairable.table.astype(float)
    m_u = values.sum(axis=1)
    coincidence_diagonal = (values * (values - 1.0) / (m_u - 1.0)[:, None]).sum(axis=0)
    n = float(pairable.n_pairable)
    n_c = values.sum(axis=0)
    observed = float(coincidence_diagonal.sum() / n)
    expected = float((n_c * (n_c - 1.0)).sum() / (n * (n - 1.0)))
    if pairable.categories_used < 2:
        return result(
            math.nan,
            "all pairable values are in one category; expected disagreement = 0",
            observed,
            expected,
        )
    estimate = float(
        krippendorff.alpha(value_counts=pairable.table, level_of_measurement="nominal")
    )
    return result(estimate, None, observed, expected)


# --------------------------------------------------------------------------------------------
# Dialect markers: annotators and rules, per marker, on item-level presence
# --------------------------------------------------------------------------------------------


def _ordered_unique(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _annotator_name(key: str) -> str:
    return key[len(HUMAN_PREFIX) :] if key.startswith(HUMAN_PREFIX) else key


def marker_agreement(
    spans: pd.DataFrame,
    items: Mapping[str, Sequence[str]],
    *,
    markers: Sequence[str],
) -> pd.DataFrame:
    """Agreement on dialect-marker presence between annotators, and between annotators and rules.

    Each rater's spans are reduced to item-level presence: for marker M, an item is 1 when the
    rater marked at least one span of M in it and 0 otherwise, including items the rater
    annotated without marking anything.

    Parameters
    ----------
    spans
        Span table with at least the columns ``id``, ``marker`` and ``source`` (the full span
        table of :mod:`fairaudit.markers` also has ``start, end, text``). ``source`` is
        ``"rule"`` or ``"human:<annotator>"``.
    items
        Item ids each annotator annotated, keyed by annotator name (``"alice"`` or
        ``"human:alice"``). Optionally a ``"rule"`` key gives the items the rules were run on;
        without it the rules count as run on every item an annotator saw (rule spans on other
        items are ignored).
    markers
        Marker ids to report, in table order. A marker without any span is reported too (every
        rater says "absent"; its kappas are then undefined).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`MARKER_AGREEMENT_COLUMNS`. Per marker, in this order:

        - ``cohen_kappa`` and ``percent_agreement`` for every annotator pair and then every
          annotator against the rules (``rater_b = "rule"``); ``n`` is the number of items
          both rated.
        - ``fleiss_kappa`` across annotators (``rater_a`` = :data:`ALL_ANNOTATORS`, ``rater_b``
          ``None``), only when every item in the union of the annotators' items has the same
          number (at least 2) of annotators; otherwise NaN with reason
          :data:`REASON_UNEQUAL_RATERS`. ``n`` is the number of items in that union.
        - ``krippendorff_alpha`` (nominal) across annotators; ``n`` is the number of items with
          at least 2 annotators.

        Raters are named as in ``source`` (``"human:alice"``, ``"rule"``). Undefined estimates
        are NaN with ``undefined_reason`` set.

    Raises
    ------
    InputError
        Missing columns, a ``source`` that is neither ``"rule"`` nor ``"human:<name>"``, an
        annotator with spans but no item list, or a human span on an item outside that
        annotator's item list.

    Warns
    -----
    UndefinedMetricWarning
        When some kappa or alpha is undefined (0/0), naming them. "Not applicable" (unequal
        raters, a single annotator) does not warn: it is a property of the design, not of the
        data.

    Notes
    -----
    Cohen's kappa [1]_ via :func:`cohen_kappa` with ``labels=[0, 1]``; Fleiss' kappa [2]_ via
    :func:`fleiss_kappa_from_counts`; Krippendorff's alpha [3]_ via
    :func:`krippendorff_alpha_from_counts`, which allows any number of annotators per item.

    References
    ----------
    .. [1] Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and
       Psychological Measurement, 20(1), 37-46. https://doi.org/10.1177/001316446002000104
    .. [2] Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
       Psychological Bulletin, 76(5), 378-382. https://doi.org/10.1037/h0031619
    .. [3] Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard
       reliability measure for coding data. Communication Methods and Measures, 1(1), 77-89.
       https://doi.org/10.1080/19312450709336664
    """
    missing_columns = [column for column in ("id", "marker", "source") if column not in spans]
    if missing_columns:
        raise InputError(f"span table lacks column(s) {missing_columns}")

    # Item lists: annotators in mapping order; the rules' items default to the annotators' union.
    annotator_items: dict[str, list[str]] = {}
    rule_items: list[str] | None = None
    for key, ids in items.items():
        if isinstance(ids, str):
            raise InputError(f"items[{key!r}] must be a sequence of item ids, not a string")
        if key == RULE_SOURCE:
            rule_items = _ordered_unique(list(ids))
        else:
            annotator_items[f"{HUMAN_PREFIX}{_annotator_name(key)}"] = _ordered_unique(list(ids))
    annotators = list(annotator_items)
    if not annotators:
        raise InputError("items names no annotator")
    universe = _ordered_unique([item for ids in annotator_items.values() for item in ids])
    rated: dict[str, set[str]] = {name: set(ids) for name, ids in annotator_items.items()}
    rated[RULE_SOURCE] = set(universe if rule_items is None else rule_items)

    # Presence: rater -> marker -> set of item ids carrying the marker.
    presence: dict[str, dict[str, set[str]]] = {
        rater: {marker: set() for marker in markers} for rater in [*annotators, RULE_SOURCE]
    }
    for row_number, (item, marker, source) in enumerate(
        spans[["id", "marker", "source"]].itertuples(index=False), start=1
    ):
        if source == RULE_SOURCE:
            rater = RULE_SOURCE
        elif (
            isinstance(source, str)
            and source.startswith(HUMAN_PREFIX)
            and len(source) > len(HUMAN_PREFIX)
        ):
            rater = source
            if rater not in rated:
                raise InputError(
                    f"annotator {source!r} has spans but no item list in items",
                    row=row_number,
                    column="source",
                )
        else:
            raise InputError(
                f"source {source!r} is neither 'rule' nor 'human:<annotator>'",
                row=row_number,
                column="source",
            )
        if item not in rated[rater]:
            if rater == RULE_SOURCE:
                continue
            raise InputError(
                f"span on item {item!r}, which is not in the item list of {source!r}",
                row=row_number,
                column="id",
            )
        if marker in presence[rater]:
            presence[rater][marker].add(item)

    pairs = [
        *itertools.combinations(annotators, 2),
        *((annotator, RULE_SOURCE) for annotator in annotators),
    ]
    common = {
        pair: [item for item in universe if item in rated[pair[0]] and item in rated[pair[1]]]
        for pair in pairs
    }
    raters_per_item = np.array(
        [sum(item in rated[annotator] for annotator in annotators) for item in universe]
    )

    rows: list[dict[str, Any]] = []
    undefined: list[str] = []
    for marker in _ordered_unique(list(markers)):

        def vector(rater: str, ids: list[str], marker: str = marker) -> npt.NDArray[np.int64]:
            present = presence[rater][marker]
            return np.array([int(item in present) for item in ids], dtype=np.int64)

        for rater_a, rater_b in pairs:
            ids = common[(rater_a, rater_b)]
            a, b = vector(rater_a, ids), vector(rater_b, ids)
            for statistic, value, method in (
                ("cohen_kappa", cohen_kappa(a, b, labels=[0, 1]), _COHEN_METHOD),
                ("percent_agreement", _percent_agreement(a, b), _PERCENT_METHOD),
            ):
                rows.append(
                    {
                        "marker": marker,
                        "statistic": statistic,
                        "rater_a": rater_a,
                        "rater_b": rater_b,
                        "estimate": value.estimate,
                        "n": len(ids),
                        "undefined_reason": value.reason,
                        "method": method,
                    }
                )

        # Item-by-category counts across annotators: columns (absent, present).
        present_counts = np.zeros(len(universe), dtype=np.int64)
        for annotator in annotators:
            present_counts += vector(annotator, universe)
        counts = np.column_stack([raters_per_item - present_counts, present_counts])

        fleiss: Kappa
        fleiss_method = _FLEISS_METHOD
        if len(annotators) < 2:
            fleiss = Kappa(math.nan, _REASON_FEWER_ANNOTATORS)
        elif raters_per_item.size and np.all(raters_per_item == raters_per_item[0]):
            if raters_per_item[0] < 2:
                fleiss = Kappa(math.nan, _REASON_ONE_RATING_PER_ITEM)
            else:
                result = fleiss_kappa_from_counts(counts)
                fleiss, fleiss_method = Kappa(result.estimate, result.reason), result.method
        else:
            fleiss = Kappa(math.nan, REASON_UNEQUAL_RATERS)
        if len(annotators) < 2:
            alpha = Kappa(math.nan, _REASON_FEWER_ANNOTATORS)
            n_alpha = 0
        else:
            alpha_result = krippendorff_alpha_from_counts(counts)
            alpha, n_alpha = (
                Kappa(alpha_result.estimate, alpha_result.reason),
                alpha_result.n_items,
            )

        for statistic, value, n, method in (
            ("fleiss_kappa", fleiss, len(universe), fleiss_method),
            ("krippendorff_alpha", alpha, n_alpha, _ALPHA_METHOD),
        ):
            rows.append(
                {
                    "marker": marker,
                    "statistic": statistic,
                    "rater_a": ALL_ANNOTATORS,
                    "rater_b": None,
                    "estimate": value.estimate,
                    "n": n,
                    "undefined_reason": value.reason,
                    "method": method,
                }
            )

    for row in rows:
        reason = row["undefined_reason"]
        if reason is not None and not reason.startswith("not applicable"):
            pair = (
                row["rater_a"] if row["rater_b"] is None else f"{row['rater_a']}/{row['rater_b']}"
            )
            undefined.append(f"{row['marker']}/{row['statistic']}/{pair} ({reason})")

    result = pd.DataFrame(rows, columns=list(MARKER_AGREEMENT_COLUMNS))
    result["estimate"] = result["estimate"].astype(float)
    result["n"] = result["n"].astype("int64")
    result["undefined_reason"] = result["undefined_reason"].astype(object)
    warn_undefined(undefined, "agreement value", separator="; ")
    logger.info(
        "computed marker agreement for %d marker(s), %d annotator(s), %d item(s)",
        len(_ordered_unique(list(markers))),
        len(annotators),
        len(universe),
    )
    return result


# --------------------------------------------------------------------------------------------
# Gold labels: agreement of the crowd votes behind each label
# --------------------------------------------------------------------------------------------


def vote_agreement(
    votes: pd.DataFrame,
    *,
    groups: pd.Series | None = None,
    categories: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Agreement of the annotator votes behind gold labels, overall and per group.

    Parameters
    ----------
    votes
        One row per item, indexed by item id, with one column of vote counts per category (for
        Davidson et al. 2017: ``hate_speech, offensive_language, neither``; for the cases:
        ``votes_toxic, votes_nontoxic``). Items may have different numbers of votes.
    groups
        Group of each item (for example the dialect group), indexed like ``votes``. Missing
        groups form the group :data:`MISSING_GROUP`. Default: overall only.
    categories
        The vote-count columns. Default: every column of ``votes``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`VOTE_AGREEMENT_COLUMNS`; for :data:`OVERALL` and then each group in
        sorted order, three rows (``statistic``):

        - ``krippendorff_alpha``: nominal alpha (:func:`krippendorff_alpha_from_counts`);
        - ``generalised_fleiss_kappa``: :func:`fleiss_kappa_from_counts` with unequal raters
          allowed; ``method`` says whether the slice had equal raters (then it is Fleiss'
          kappa, from statsmodels) or gives the per-item formula used;
        - ``split_vote_share``: share of the items used whose votes are not unanimous.

        ``observed_agreement``/``expected_agreement`` are the statistic's components (see
        :class:`AgreementEstimate`; NaN for the split-vote share). ``n`` is the number of items
        used (2 or more votes), ``n_total`` the items in the slice, ``excluded_ids`` a tuple of
        the ids of items with fewer than 2 votes, ``n_pairable`` the votes on the items used.

    Raises
    ------
    InputError
        Duplicate item ids, a vote column that is not whole non-negative counts, or ``groups``
        not indexed like ``votes``.

    Warns
    -----
    UndefinedMetricWarning
        When a statistic is undefined for some slice (for example unanimous votes only).

    Notes
    -----
    Krippendorff's alpha [1]_ is the statistic defined for any number of votes per item; the
    generalised Fleiss' kappa [2]_ is given for comparison with the literature and equals
    statsmodels' ``fleiss_kappa`` when the slice has equal numbers of votes.

    References
    ----------
    .. [1] Hayes, A. F., & Krippendorff, K. (2007). Answering the call for a standard
       reliability measure for coding data. Communication Methods and Measures, 1(1), 77-89.
       https://doi.org/10.1080/19312450709336664
    .. [2] Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
       Psychological Bulletin, 76(5), 378-382. https://doi.org/10.1037/h0031619
    """
    if votes.index.has_duplicates:
        duplicated = list(votes.index[votes.index.duplicated()])[:5]
        raise InputError(f"duplicate item id(s) in votes: {duplicated}")
    columns = list(votes.columns) if categories is None else list(categories)
    absent = [column for column in columns if column not in votes.columns]
    if absent:
        raise InputError(f"vote column(s) {absent} not in votes")
    if len(columns) < 2:
        raise InputError(f"need at least 2 vote columns (categories), got {columns}")
    table = _count_matrix(votes[columns], name="votes")

    if groups is None:
        slices: list[tuple[str, npt.NDArray[np.bool_]]] = [
            (OVERALL, np.ones(len(votes), dtype=bool))
        ]
    else:
        if len(groups) != len(votes) or not groups.index.sort_values().equals(
            votes.index.sort_values()
        ):
            raise InputError("groups must be indexed by the same item ids as votes")
        labels = groups.reindex(votes.index)
        labels = labels.astype(object).where(labels.notna(), MISSING_GROUP).astype(str)
        slices = [(OVERALL, np.ones(len(votes), dtype=bool))]
        slices += [(name, (labels == name).to_numpy()) for name in sorted(labels.unique())]

    ids = np.asarray(votes.index, dtype=object)
    rows: list[dict[str, Any]] = []
    undefined: list[str] = []
    for name, mask in slices:
        sub = table[mask]
        alpha = krippendorff_alpha_from_counts(sub)
        fleiss = fleiss_kappa_from_counts(sub, unequal_raters="generalised")
        excluded = tuple(ids[mask][sub.sum(axis=1) < 2])
        used = sub[sub.sum(axis=1) >= 2]
        split_share = float(np.mean((used > 0).sum(axis=1) > 1)) if used.shape[0] else math.nan
        split = AgreementEstimate(
            estimate=split_share,
            reason=None if used.shape[0] else REASON_NO_PAIRABLE_ITEMS,
            observed_agreement=math.nan,
            expected_agreement=math.nan,
            n_items=alpha.n_items,
            n_excluded=alpha.n_excluded,
            n_pairable=alpha.n_pairable,
            method=_SPLIT_METHOD,
        )
        for statistic, value in (
            ("krippendorff_alpha", alpha),
            ("generalised_fleiss_kappa", fleiss),
            ("split_vote_share", split),
        ):
            if value.reason is not None:
                undefined.append(f"{name}/{statistic} ({value.reason})")
            rows.append(
                {
                    "group": name,
                    "statistic": statistic,
                    "estimate": value.estimate,
                    "observed_agreement": value.observed_agreement,
                    "expected_agreement": value.expected_agreement,
                    "n": value.n_items,
                    "n_total": int(mask.sum()),
                    "n_excluded": value.n_excluded,
                    "excluded_ids": excluded,
                    "n_pairable": value.n_pairable,
                    "undefined_reason": value.reason,
                    "method": value.method,
                }
            )
        if excluded:
            logger.info(
                "%s: %d item(s) with fewer than 2 votes excluded from agreement",
                name,
                len(excluded),
            )

    result = pd.DataFrame(rows, columns=list(VOTE_AGREEMENT_COLUMNS))
    for column in ("estimate", "observed_agreement", "expected_agreement"):
        result[column] = result[column].astype(float)
    for column in ("n", "n_total", "n_excluded", "n_pairable"):
        result[column] = result[column].astype("int64")
    result["undefined_reason"] = result["undefined_reason"].astype(object)
    warn_undefined(undefined, "agreement value")
    logger.info("computed vote agreement for %d item(s) in %d slice(s)", len(votes), len(slices))
    return result
