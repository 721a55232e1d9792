"""Bootstrap intervals for per-group error rates, computed from cell counts.

This module takes one row per message (a group column, a binary gold label where ``True`` means
harmful, one binary ``flagged`` column per model and optionally a conversation or author id)
and returns tidy tables, like :mod:`fairaudit.disparity`, but with bootstrap intervals that can
respect clustering.

- :func:`cell_counts` counts the messages once per group x gold label x flag of every model (and
  per cluster, as a sparse matrix, when a cluster column is given).
- :func:`bootstrap_counts` draws replicate cell counts: a multinomial draw per group for the
  stratified bootstrap, or resampled clusters (a sparse matrix product) for the clustered one.
  Every model sees the same resampled rows (paired resampling).
- :func:`bootstrap_metrics` turns replicate counts into percentile intervals for the false
  positive rate, false negative rate, flag rate and precision of every (model, group), and for
  the difference and ratio of every group against a reference group, with a bootstrap p-value.

Every statistic here is a function of the four cells (true negatives, false positives, false
negatives, true positives) of a (model, group), so nothing touches the rows after
:func:`cell_counts`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from fairaudit._common import GROUP_SEPARATOR, check_alpha, holm
from fairaudit.disparity import OVERALL, RATE_METRICS, binarize_labels
from fairaudit.exceptions import InputError, UndefinedMetricWarning

__all__ = [
    "BOOTSTRAP_COLUMNS",
    "CELLS",
    "INTERVAL_METHODS",
    "CellCounts",
    "cell_counts",
    "bootstrap_counts",
    "bootstrap_metrics",
    "metrics_from_cells",
]

logger = logging.getLogger(__name__)

CELLS = ("true_negative", "false_positive", "false_negative", "true_positive")
"""The four cells of one (model, group), in array order: index ``2 * gold + flagged``."""

INTERVAL_METHODS = {
    "stratified": "bootstrap_percentile_stratified",
    "clustered": "bootstrap_percentile_clustered",
}
"""The ``interval_method`` each bootstrap ``method`` writes into its results."""

TEST_METHOD = "bootstrap_percentile_inversion"
"""Name of the test behind the ``p_value`` of difference rows."""

BOOTSTRAP_COLUMNS = (
    "model",
    "group",
    "reference",
    "metric",
    "kind",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "count",
    "n_reference",
    "n_clusters",
    "interval_method",
    "n_boot",
    "n_boot_defined",
    "seed",
    "alpha",
    "test_method",
    "p_value",
    "p_adjusted",
    "correction",
    "undefined_reason",
)
"""Columns of the table :func:`bootstrap_metrics` returns."""

_MAX_MODELS = 16
# Bootstrap weights drawn per block of replicates: bounds memory at about 8 bytes x this.
_DRAWS_PER_BLOCK = 20_000_000

_UNDEFINED_REASONS = {
    "false_positive_rate": "no_negatives",
    "false_negative_rate": "no_positives",
    "flag_rate": "empty_group",
    "precision": "no_predicted_positives",
}


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellCounts:
    """Message counts per group x joint label pattern, and per cluster when clusters exist.

    A *pattern* is the gold label together with the flag of every model for one message, coded
    ``gold + 2 * sum(flagged_m * 2**m)``; only patterns that occur are kept. Counting patterns
    instead of each model's four cells separately keeps the models paired: a bootstrap draw of
    patterns resamples the same messages for every model.

    Attributes
    ----------
    models
        The models, named after their ``flagged`` columns.
    groups
        The groups, in category or sorted order.
    patterns
        Codes of the patterns that occur, shape ``(K,)``.
    pattern_counts
        Messages per group and pattern, shape ``(G, K)``.
    projection
        0/1 array of shape ``(K, M, 4)`` mapping a pattern to the cell of each model
        (see :data:`CELLS`).
    cluster
        The cluster column, or ``None``.
    cluster_counts
        Sparse ``(n_clusters, G * K)`` matrix of messages per cluster and (group, pattern),
        column ``g * K + k``; ``None`` without clusters.
    cluster_group
        Group index of each cluster, ``-1`` for clusters with messages in several groups;
        ``None`` without clusters.
    n_rows
        Messages counted.
    """

    models: tuple[str, ...]
    groups: tuple[str, ...]
    patterns: np.ndarray
    pattern_counts: np.ndarray
    projection: np.ndarray
    cluster: str | None = None
    cluster_counts: sparse.csr_array | None = None
    cluster_group: np.ndarray | None = None
    n_rows: int = 0

    @property
    def counts(self) -> np.ndarray:
        """Cell counts per model, group and cell, shape ``(M, G, 4)``."""
        return np.einsum("gk,kmc->mgc", self.pattern_counts, self.projection)

    @property
    def n_clusters(self) -> int:
        """Number of clusters (0 without a cluster column)."""
        return 0 if self.cluster_counts is None else int(self.cluster_counts.shape[0])

    @property
    def clusters_span_groups(self) -> bool:
        """Whether some cluster has messages in more than one group."""
        return self.cluster_group is not None and bool((self.cluster_group < 0).any())

    def clusters_per_group(self) -> np.ndarray:
        """Clusters with at least one message in each group, shape ``(G,)``."""
        if self.cluster_counts is None:
            return np.zeros(len(self.groups), dtype=np.int64)
        k = self.patterns.size
        coo = self.cluster_counts.tocoo()
        pairs = np.unique(coo.row.astype(np.int64) * len(self.groups) + coo.col // k)
        return np.bincount(pairs % len(self.groups), minlength=len(self.groups))

    def table(self) -> pd.DataFrame:
        """Tidy table of the cell counts: ``model``, ``group``, ``cell``, ``count``."""
        counts = self.counts
        index = pd.MultiIndex.from_product(
            [self.models, self.groups, CELLS], names=["model", "group", "cell"]
        )
        return pd.DataFrame({"count": counts.reshape(-1)}, index=index).reset_index()


def _factorize_groups(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    group_name = ", ".join(columns)
    missing = frame[columns].isna().any(axis=1).to_numpy()
    if missing.any():
        ids = list(frame.index[missing][:20])
        raise InputError(
            f"{int(missing.sum())} row(s) have no group value (first ids: {ids}); drop or label "
            "them before counting",
            column=group_name,
        )
    if len(columns) == 1:
        column = frame[columns[0]]
        if isinstance(column.dtype, pd.CategoricalDtype):
            column = column.cat.remove_unused_categories()
            codes = column.cat.codes.to_numpy(dtype=np.int64)
            order = [str(c) for c in column.cat.categories]
        else:
            # Factorize the raw values (fast), then order groups by their string labels.
            raw_codes, uniques = pd.factorize(column, sort=False)
            names = [str(u) for u in uniques]
            if len(set(names)) != len(names):
                raise InputError("distinct group values print the same", column=group_name)
            rank = np.argsort(np.argsort(np.array(names, dtype=object), kind="stable"))
            codes = rank[raw_codes].astype(np.int64)
            order = sorted(names)
    else:
        labels = frame[columns].astype(object).map(str).agg(GROUP_SEPARATOR.join, axis=1)
        order = sorted(set(labels))
        codes = pd.Categorical(labels, categories=order).codes.astype(np.int64)
    if OVERALL in order:
        raise InputError(
            f"group value {OVERALL!r} is reserved for fairaudit's own rows; rename it",
            column=group_name,
        )
    return codes, order


def cell_counts(
    frame: pd.DataFrame,
    *,
    group: str | Sequence[str],
    gold: str,
    flagged: str | Sequence[str],
    cluster: str | None = None,
) -> CellCounts:
    """Count messages per group x gold label x flag of each model, once, with ``np.bincount``.

    Parameters
    ----------
    frame
        One row per message; the index holds the message ids.
    group
        Group column, or several columns for intersectional cells (labels joined with ``"×"``).
    gold
        Gold label column, 0/1 or boolean, ``True`` meaning harmful.
    flagged
        One model's decision column (0/1 or boolean, ``True`` meaning flagged), or several
        columns, one per model, for paired results. Models are named after their columns.
    cluster
        Optional conversation or author id column. Messages sharing an id are resampled
        together by the clustered bootstrap.

    Returns
    -------
    CellCounts
        The counts per group and joint pattern, and per cluster when ``cluster`` is given.

    Raises
    ------
    fairaudit.exceptions.InputError
        If a column is absent, a label is missing or not binary, a group or cluster value is
        missing, or a group is called ``"overall"``.
    ValueError
        If no model or more than 16 models are given.
    """
    started = time.perf_counter()
    group_columns = [group] if isinstance(group, str) else list(group)
    models = [flagged] if isinstance(flagged, str) else list(flagged)
    if not models or len(models) > _MAX_MODELS:
        raise ValueError(f"give between 1 and {_MAX_MODELS} flagged columns, not {len(models)}")
    if len(set(models)) != len(models):
        raise ValueError(f"flagged columns repeat: {models}")
    needed = [*group_columns, gold, *models] + ([cluster] if cluster is not None else [])
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise InputError(f"missing column(s) {absent}; columns present: {list(frame.columns)}")

    group_codes, groups = _factorize_groups(frame, group_columns)
    code = binarize_labels(frame[gold], positive=None, column=gold).to_numpy(dtype=np.int64)
    for m, column in enumerate(models):
        flags = binarize_labels(frame[column], positive=None, column=column)
        code += flags.to_numpy(dtype=np.int64) << (m + 1)

    # Keep only the joint patterns that occur, so K stays small with many models.
    n_groups = len(groups)
    all_patterns = 1 << (len(models) + 1)
    by_group = np.bincount(group_codes * all_patterns + code, minlength=n_groups * all_patterns)
    by_group = by_group.reshape(n_groups, all_patterns)
    patterns = np.flatnonzero(by_group.sum(axis=0))
    pattern_index = np.full(all_patterns, -1, dtype=np.int64)
    pattern_index[patterns] = np.arange(patterns.size)

    gold_bit = patterns & 1
    projection = np.zeros((patterns.size, len(models), 4), dtype=np.int64)
    for m in range(len(models)):
        cell = 2 * gold_bit + ((patterns >> (m + 1)) & 1)
        projection[np.arange(patterns.size), m, cell] = 1

    cluster_counts = cluster_group = None
    if cluster is not None:
        ids = frame[cluster]
        missing = ids.isna().to_numpy()
        if missing.any():
            raise InputError(
                f"{int(missing.sum())} row(s) have no cluster id (first ids: "
                f"{list(frame.index[missing][:20])}); give each its own id if it is alone",
                column=cluster,
            )
        cluster_codes, uniques = pd.factorize(ids, sort=False)
        n_clusters = len(uniques)
        width = n_groups * patterns.size
        combined = cluster_codes.astype(np.int64) * width + (
            group_codes * patterns.size + pattern_index[code]
        )
        keys, values = np.unique(combined, return_counts=True)
        cluster_counts = sparse.csr_array(
            (values.astype(np.int64), (keys // width, keys % width)), shape=(n_clusters, width)
        )
        # A cluster's group: the one group it has messages in, or -1 when there are several.
        pairs = np.unique(keys // patterns.size)
        pair_cluster, pair_group = pairs // n_groups, pairs % n_groups
        groups_per_cluster = np.bincount(pair_cluster, minlength=n_clusters)
        cluster_group = np.full(n_clusters, -1, dtype=np.int64)
        single = groups_per_cluster[pair_cluster] == 1
        cluster_group[pair_cluster[single]] = pair_group[single]

    result = CellCounts(
        models=tuple(models),
        groups=tuple(groups),
        patterns=patterns,
        pattern_counts=by_group[:, patterns].astype(np.int64),
        projection=projection,
        cluster=cluster,
        cluster_counts=cluster_counts,
        cluster_group=cluster_group,
        n_rows=int(len(frame)),
    )
    logger.info(
        "counted %s messages in %d group(s) x %d pattern(s) for %d model(s)%s in %.2f s",
        f"{len(frame):,}",
        n_groups,
        patterns.size,
        len(models),
        "" if cluster is None else f", {result.n_clusters:,} clusters",
        time.perf_counter() - started,
    )
    return result


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


def _seed_sequence(seed: int | np.random.SeedSequence | None) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(seed)


def _stratified_patterns(counts: CellCounts, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n_g = counts.pattern_counts.sum(axis=1)
    safe_n = np.where(n_g > 0, n_g, 1)
    probabilities = counts.pattern_counts / safe_n[:, None]
    draws = rng.multinomial(n_g, probabilities, size=(n_boot, n_g.size))
    return draws.astype(np.int64)


def _cluster_weights(n_clusters: int, n_replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Times each of ``n_clusters`` clusters is drawn in each replicate, shape ``(B, C)``."""
    draws = rng.integers(0, n_clusters, size=(n_replicates, n_clusters))
    draws += (np.arange(n_replicates) * n_clusters)[:, None]
    weights = np.bincount(draws.reshape(-1), minlength=n_replicates * n_clusters)
    return weights.reshape(n_replicates, n_clusters)


def _clustered_patterns(
    counts: CellCounts, n_boot: int, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    assert counts.cluster_counts is not None and counts.cluster_group is not None
    n_groups, k = len(counts.groups), counts.patterns.size
    if counts.clusters_span_groups:
        strata = [np.arange(counts.n_clusters)]
        strata_name = "none (clusters span groups)"
    else:
        order = np.argsort(counts.cluster_group, kind="stable")
        bounds = np.searchsorted(counts.cluster_group[order], np.arange(n_groups + 1))
        strata = [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]
        strata_name = "group"

    # Reorder the cluster matrix so each stratum is a contiguous block of rows; transposed
    # (CSR of shape (G*K, C)) so that matrix @ weights.T runs in scipy's compiled loops.
    order = np.concatenate(strata)
    matrix_t = sparse.csr_array(counts.cluster_counts[order].T).astype(np.float64)
    sizes = np.array([s.size for s in strata], dtype=np.int64)
    block = max(1, int(_DRAWS_PER_BLOCK // max(1, counts.n_clusters)))

    result = np.empty((n_boot, n_groups * k), dtype=np.int64)
    for start in range(0, n_boot, block):
        stop = min(n_boot, start + block)
        weights = np.empty((stop - start, counts.n_clusters), dtype=np.float64)
        offset = 0
        for size in sizes:
            if size:
                weights[:, offset : offset + size] = _cluster_weights(int(size), stop - start, rng)
            offset += size
        # Counts are integers below 2**53, so the float product is exact.
        result[start:stop] = np.rint(matrix_t @ weights.T).T.astype(np.int64)
    return result.reshape(n_boot, n_groups, k), strata_name


def bootstrap_counts(
    counts: CellCounts,
    *,
    method: Literal["stratified", "clustered"] = "stratified",
    n_boot: int = 1000,
    seed: int | np.random.SeedSequence | None = 0,
) -> np.ndarray:
    """Replicate cell counts of every model and group, shape ``(n_boot, M, G, 4)``.

    Parameters
    ----------
    counts
        Counts from :func:`cell_counts`.
    method
        ``"stratified"``: resample the messages of each group with replacement, keeping the
        group sizes. ``"clustered"``: resample whole clusters with replacement, within groups
        when every cluster lies in one group, else over all clusters (see Notes).
    n_boot
        Number of replicates.
    seed
        Seed of :class:`numpy.random.SeedSequence`; the same counts, method, ``n_boot`` and
        seed give the same replicates.

    Returns
    -------
    numpy.ndarray
        Integer cell counts (order of :data:`CELLS`) per replicate, model and group. All
        models share the resampled messages of a replicate (paired resampling).

    Notes
    -----
    Drawing :math:`n_g` messages with replacement from a group of :math:`n_g` messages, and
    recording only which joint pattern each has, is a multinomial draw
    :math:`\\mathrm{Mult}(n_g, \\hat p_g)` with :math:`\\hat p_g` the observed pattern
    frequencies of the group: each draw picks a pattern independently with those
    probabilities. The stratified bootstrap of Efron and Tibshirani (1993, ch. 6 and 7) is
    therefore exactly one multinomial draw per group and replicate, never touching the rows.

    The clustered bootstrap resamples clusters (Davison and Hinkley, 1997, sec. 3.8; Field and
    Welsh, 2007): within each group the :math:`C_g` clusters are drawn :math:`C_g` times with
    replacement, giving weights :math:`w` (times each cluster is drawn), and the replicate
    counts are :math:`w^\\top N`, with :math:`N` the sparse cluster x (group, pattern) count
    matrix. When some cluster has messages in several groups the clusters cannot be split by
    group; then all clusters are resampled together, and group sizes vary between replicates.

    References
    ----------
    .. [1] Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman &
       Hall. doi:10.1201/9780429246593
    .. [2] Davison, A. C. and Hinkley, D. V. (1997). Bootstrap Methods and their Application.
       Cambridge University Press. doi:10.1017/CBO9780511802843
    .. [3] Field, C. A. and Welsh, A. H. (2007). Bootstrapping clustered data. JRSS B 69(3),
       369-390. doi:10.1111/j.1467-9868.2007.00593.x
    """
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, not {n_boot!r}")
    rng = np.random.default_rng(_seed_sequence(seed))
    if method == "stratified":
        patterns = _stratified_patterns(counts, int(n_boot), rng)
    elif method == "clustered":
        if counts.cluster_counts is None:
            raise ValueError("method='clustered' needs counts made with a cluster column")
        patterns, _ = _clustered_patterns(counts, int(n_boot), rng)
    else:
        raise ValueError(f"method must be 'stratified' or 'clustered', not {method!r}")
    return np.einsum("bgk,kmc->bmgc", patterns, counts.projection)


# --------------------------------------------------------------------------------------------
# Metrics from counts
# --------------------------------------------------------------------------------------------


def metrics_from_cells(cells: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of a rate metric from cell counts ``(..., 4)``.

    Parameters
    ----------
    cells
        Counts in the order of :data:`CELLS` on the last axis.
    metric
        ``"false_positive_rate"``, ``"false_negative_rate"``, ``"flag_rate"`` or
        ``"precision"``.

    Returns
    -------
    tuple of numpy.ndarray
        Numerator and denominator; the rate is undefined where the denominator is 0.
    """
    tn, fp, fn, tp = (cells[..., i] for i in range(4))
    if metric == "false_positive_rate":
        return fp, tn + fp
    if metric == "false_negative_rate":
        return fn, fn + tp
    if metric == "flag_rate":
        return fp + tp, tn + fp + fn + tp
    if metric == "precision":
        return tp, fp + tp
    raise ValueError(f"not a rate metric: {metric!r}; choose from {RATE_METRICS}")


def _rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    safe = np.where(denominator > 0, denominator, 1)
    return np.where(denominator > 0, numerator / safe, np.nan)


def _interval(replicates: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring undefined replicates, and how many were not."""
    defined = np.isfinite(replicates)
    n_defined = defined.sum(axis=0)
    values = np.where(defined, replicates, np.nan)
    low = np.full(replicates.shape[1:], np.nan)
    high = np.full(replicates.shape[1:], np.nan)
    some = n_defined > 0
    if some.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            quantiles = np.nanquantile(values[:, some], [alpha / 2, 1 - alpha / 2], axis=0)
        low[some], high[some] = quantiles[0], quantiles[1]
    return low, high, n_defined


def _percentile_p_value(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-value of "difference = 0" by inverting the percentile interval."""
    defined = np.isfinite(differences)
    n_defined = defined.sum(axis=0)
    below = (np.where(defined, differences, np.inf) <= 0).sum(axis=0)
    above = (np.where(defined, differences, -np.inf) >= 0).sum(axis=0)
    # (1 + count) / (1 + replicates) keeps p away from an impossible exact 0.
    p_value = np.minimum(1.0, 2 * (1 + np.minimum(below, above)) / (1 + n_defined))
    return np.where(n_defined > 0, p_value, np.nan), n_defined


def bootstrap_metrics(
    counts: CellCounts,
    *,
    reference: str | None = None,
    method: Literal["stratified", "clustered"] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | np.random.SeedSequence | None = 0,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Bootstrap percentile intervals for rates per (model, group) and against a reference.

    Parameters
    ----------
    counts
        Counts from :func:`cell_counts`.
    reference
        Reference group for the difference and ratio rows; ``None`` gives no such rows.
    method
        ``"stratified"`` or ``"clustered"`` (see :func:`bootstrap_counts`). Default:
        ``"clustered"`` when ``counts`` has clusters, else ``"stratified"``.
    n_boot
        Number of bootstrap replicates.
    alpha
        Every interval has confidence ``1 - alpha``; Holm-adjusted p-values are judged at it.
    seed
        Seed of :class:`numpy.random.SeedSequence`; ``None`` draws fresh entropy, reported in
        the ``seed`` column so the run can be repeated.
    metrics
        Rate metrics to report; default every one of
        :data:`fairaudit.disparity.RATE_METRICS`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BOOTSTRAP_COLUMNS`. One row per (model, metric, group) with
        ``kind="rate"``, the groups followed by ``"overall"`` (every group together); then, when
        ``reference`` is given, one row per (model, metric, non-reference group) with
        ``kind="difference"`` (group minus reference) and one with ``kind="ratio"`` (group over
        reference). ``estimate`` is computed on the observed counts; ``ci_low``/``ci_high``
        are the ``alpha/2`` and ``1 - alpha/2`` quantiles of the replicates where the quantity
        is defined (``n_boot_defined`` of ``n_boot``). ``n`` and ``count`` are the group's
        denominator and numerator (as in :func:`fairaudit.disparity.group_metrics`),
        ``n_reference`` the reference's denominator, ``n_clusters`` the clusters with messages
        in the group (missing without clusters). ``interval_method`` is
        ``"bootstrap_percentile_stratified"`` or ``"bootstrap_percentile_clustered"``.
        Difference rows carry ``test_method`` (``"bootstrap_percentile_inversion"``),
        ``p_value``, ``p_adjusted`` and ``correction`` (``"holm"``, over the difference rows of
        the same model). ``undefined_reason`` is ``None`` or, with the estimate NaN, one of
        ``"no_negatives"``, ``"no_positives"``, ``"no_predicted_positives"``,
        ``"empty_group"``, the reference's reason prefixed ``"reference_"``, or for ratios
        ``"zero_denominator"``.

    Raises
    ------
    fairaudit.exceptions.InputError
        If ``reference`` is not a group.
    ValueError
        For an unknown method or metric, a bad ``alpha`` or ``n_boot``.

    Warns
    -----
    fairaudit.exceptions.UndefinedMetricWarning
        When a defined estimate is undefined in some replicates (its interval then uses the
        others; see ``n_boot_defined``).

    Notes
    -----
    Percentile intervals (Efron and Tibshirani, 1993, ch. 13) need no variance formula, so the
    same code serves the stratified and the clustered bootstrap. The p-value of a difference is
    twice the smaller share of replicates on either side of 0, the smallest ``alpha`` whose
    percentile interval excludes 0 (Efron and Tibshirani, 1993, sec. 16.4, the achieved
    significance level read from the bootstrap distribution), counted as
    ``2 * (1 + k) / (1 + n_boot_defined)`` with ``k`` the replicates on the smaller side
    (Davison and Hinkley, 1997, eq. 4.11), so it is never below ``2 / (1 + n_boot)``.
    Holm (1979) adjusts them within each model. BCa intervals are not offered.

    References
    ----------
    .. [1] Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman &
       Hall. doi:10.1201/9780429246593
    .. [2] Davison, A. C. and Hinkley, D. V. (1997). Bootstrap Methods and their Application.
       Cambridge University Press. doi:10.1017/CBO9780511802843
    .. [3] Field, C. A. and Welsh, A. H. (2007). Bootstrapping clustered data. JRSS B 69(3),
       369-390. doi:10.1111/j.1467-9868.2007.00593.x
    .. [4] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics 6(2), 65-70. JSTOR:4615733
    """
    started = time.perf_counter()
    check_alpha(alpha)
    chosen = list(RATE_METRICS if metrics is None else metrics)
    unknown = [m for m in chosen if m not in RATE_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(RATE_METRICS)}")
    if method is None:
        method = "clustered" if counts.cluster_counts is not None else "stratified"
    if method not in INTERVAL_METHODS:
        raise ValueError(f"method must be 'stratified' or 'clustered', not {method!r}")
    if reference is not None and reference not in counts.groups:
        raise InputError(f"reference group {reference!r} not found; groups: {counts.groups}")

    seed_sequence = _seed_sequence(seed)
    replicates = bootstrap_counts(counts, method=method, n_boot=n_boot, seed=seed_sequence)
    observed = counts.counts
    # Append the overall row: every group together.
    observed = np.concatenate([observed, observed.sum(axis=1, keepdims=True)], axis=1)
    replicates = np.concatenate([replicates, replicates.sum(axis=2, keepdims=True)], axis=2)

    labels = [*counts.groups, OVERALL]
    clustered = method == "clustered"
    n_clusters: list[Any] = [pd.NA] * len(labels)
    if clustered:
        per_group = counts.clusters_per_group()
        n_clusters = [*(int(c) for c in per_group), counts.n_clusters]
    common = {
        "interval_method": INTERVAL_METHODS[method],
        "n_boot": int(n_boot),
        "seed": str(seed_sequence.entropy),
        "alpha": alpha,
    }

    rows: list[dict[str, Any]] = []
    unstable: list[str] = []
    ref = None if reference is None else counts.groups.index(reference)
    for m, model in enumerate(counts.models):
        model_rows: list[dict[str, Any]] = []
        for metric in chosen:
            num, den = metrics_from_cells(observed[m], metric)
            estimate = _rate(num, den)
            rep_num, rep_den = metrics_from_cells(replicates[:, m], metric)
            rep = _rate(rep_num, rep_den)
            low, high, n_defined = _interval(rep, alpha)
            reasons = [
                None if d > 0 else ("empty_group" if c.sum() == 0 else _UNDEFINED_REASONS[metric])
                for d, c in zip(den, observed[m], strict=True)
            ]
            for g, label in enumerate(labels):
                defined = reasons[g] is None
                if defined and n_defined[g] < n_boot:
                    unstable.append(f"{model}/{label}/{metric} ({n_defined[g]} of {n_boot})")
                model_rows.append(
                    {
                        "model": model,
                        "group": label,
                        "reference": None,
                        "metric": metric,
                        "kind": "rate",
                        "estimate": estimate[g],
                        "ci_low": low[g] if defined else math.nan,
                        "ci_high": high[g] if defined else math.nan,
                        "n": int(den[g]),
                        "count": int(num[g]),
                        "n_reference": pd.NA,
                        "n_clusters": n_clusters[g],
                        "n_boot_defined": int(n_defined[g]),
                        "test_method": None,
                        "p_value": math.nan,
                        "correction": None,
                        "undefined_reason": reasons[g],
                    }
                )
            if ref is None:
                continue

            for g, label in enumerate(counts.groups):
                if g == ref:
                    continue
                reason = reasons[g] or (
                    None if reasons[ref] is None else f"reference_{reasons[ref]}"
                )
                difference = rep[:, g] - rep[:, ref]
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(rep[:, ref] > 0, rep[:, g] / rep[:, ref], np.nan)
                d_low, d_high, d_defined = _interval(difference[:, None], alpha)
                r_low, r_high, r_defined = _interval(ratio[:, None], alpha)
                p_value, _ = _percentile_p_value(difference[:, None])
                ratio_reason = reason
                if reason is None and not estimate[ref] > 0:
                    ratio_reason = "zero_denominator"
                shared = {
                    "model": model,
                    "group": label,
                    "reference": reference,
                    "metric": metric,
                    "n": int(den[g]),
                    "count": int(num[g]),
                    "n_reference": int(den[ref]),
                    "n_clusters": n_clusters[g],
                }
                model_rows.append(
                    {
                        **shared,
                        "kind": "difference",
                        "estimate": estimate[g] - estimate[ref] if reason is None else math.nan,
                        "ci_low": d_low[0] if reason is None else math.nan,
                        "ci_high": d_high[0] if reason is None else math.nan,
                        "n_boot_defined": int(d_defined[0]),
                        "test_method": TEST_METHOD if reason is None else None,
                        "p_value": p_value[0] if reason is None else math.nan,
                        "correction": "holm",
                        "undefined_reason": reason,
                    }
                )
                ratio_defined = ratio_reason is None
                model_rows.append(
                    {
                        **shared,
                        "kind": "ratio",
                        "estimate": estimate[g] / estimate[ref] if ratio_defined else math.nan,
                        "ci_low": r_low[0] if ratio_defined else math.nan,
                        "ci_high": r_high[0] if ratio_defined else math.nan,
                        "n_boot_defined": int(r_defined[0]),
                        "test_method": None,
                        "p_value": math.nan,
                        "correction": None,
                        "undefined_reason": ratio_reason,
                    }
                )
                if reason is None and d_defined[0] < n_boot:
                    unstable.append(f"{model}/{label}-{reference}/{metric}")

        # Holm within the model, over the defined difference p-values only.
        p_values = np.array([r["p_value"] for r in model_rows], dtype=float)
        adjusted, _ = holm(p_values, alpha=alpha)
        for row, value in zip(model_rows, adjusted, strict=True):
            row["p_adjusted"] = value
        rows.extend(model_rows)

    result = pd.DataFrame([{**row, **common} for row in rows], columns=list(BOOTSTRAP_COLUMNS))
    for column in ("estimate", "ci_low", "ci_high", "p_value", "p_adjusted"):
        result[column] = result[column].astype(float)
    for column in ("n", "count", "n_boot", "n_boot_defined"):
        result[column] = result[column].astype("int64")
    for column in ("n_reference", "n_clusters"):
        result[column] = result[column].astype("Int64")
    for column in ("reference", "test_method", "correction", "undefined_reason"):
        result[column] = pd.Series([row[column] for row in rows], dtype=object)

    if unstable:
        warnings.warn(
            f"{len(unstable)} quantity(ies) undefined in some bootstrap replicates; their "
            f"intervals use the defined replicates only: {', '.join(unstable[:20])}",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    logger.info(
        "bootstrapped %d model(s) x %d group(s) x %d metric(s), %d %s replicates, in %.2f s",
        len(counts.models),
        len(counts.groups),
        len(chosen),
        n_boot,
        method,
        time.perf_counter() - started,
    )
    return result
