"""A/B comparison of two toxicity models on the same items, and a reference fine-tune to run it.

Takes two scored item tables (model A before weighting, model B after; one row per item with an
id, a group, a binary gold label, a score and a binary flag) and returns one tidy row per (group,
metric): the estimate of each model, the change B - A, a paired bootstrap interval, a paired
test and a Holm-adjusted p-value.

- :func:`paired_ab_comparison` restricts both tables to their shared items, then per group
  compares false positive and false negative rates (McNemar's exact test on the paired flags),
  subgroup and BPSN AUCs and the AAE-vs-SAE gaps (paired bootstrap, item- or cluster-level), and
  checks overall ROC AUC and macro F1 for non-inferiority.
- :func:`ab_verdict` says in one sentence whether the disparity shrank and at what cost.
- :func:`train_reference_model` is the demo's fine-tune: TF-IDF and logistic regression.
- :func:`run_ab_demo` runs the whole loop on the Davidson et al. (2017) tweets.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline
from statsmodels.stats.contingency_tables import mcnemar

from fairaudit._common import holm
from fairaudit.disparity import OVERALL, binarize_labels
from fairaudit.exceptions import FairauditWarning, InputError
from fairaudit.reweighting import Scheme, WeightingResult, compute_weights

__all__ = [
    "AB_COLUMNS",
    "UnpairedItemsWarning",
    "AbDemoResult",
    "train_reference_model",
    "score_reference_model",
    "bootstrap_indices",
    "paired_ab_comparison",
    "ab_verdict",
    "read_davidson",
    "run_ab_demo",
]

logger = logging.getLogger(__name__)

AB_COLUMNS = (
    "group",
    "metric",
    "estimate_a",
    "estimate_b",
    "change",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "method",
    "n",
    "n_boot_valid",
    "non_inferior",
    "margin",
    "alpha",
    "correction",
)
"""Columns of :func:`paired_ab_comparison`; the first ten are the contract, the rest extras."""

_CHUNK = 256
_BOOTSTRAP = (
    "paired bootstrap percentile interval (resampling {unit}); p from z = change / bootstrap SE"
)
_MCNEMAR = "McNemar exact (binomial) test on paired flags; paired bootstrap percentile interval"


class UnpairedItemsWarning(FairauditWarning):
    """The two models were scored on different items; only the shared items are compared."""


# --------------------------------------------------------------------------------------------
# The reference model
# --------------------------------------------------------------------------------------------


def train_reference_model(
    texts: Sequence[str] | pd.Series,
    labels: Sequence[bool] | pd.Series | np.ndarray,
    *,
    sample_weight: np.ndarray | pd.Series | None = None,
    seed: int,
) -> Pipeline:
    """Fit TF-IDF word uni- and bigrams with an L2 logistic regression, optionally weighted.

    Parameters
    ----------
    texts
        Training texts.
    labels
        Binary labels, ``True``/1 harmful.
    sample_weight
        One weight per text, passed to the logistic regression's loss; the TF-IDF vocabulary and
        idf are fitted unweighted (they use no labels).
    seed
        ``random_state`` of the logistic regression (liblinear's coordinate order).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``tfidf`` and ``logisticregression``; ``predict_proba(texts)[:, 1]`` is the score.

    References
    ----------
    .. [1] Davidson, T., Warmsley, D., Macy, M. and Weber, I. (2017). Automated hate speech
       detection and the problem of offensive language. Proc. ICWSM 11(1), 512-515.
       doi:10.1609/icwsm.v11i1.14955 (a TF-IDF and logistic regression baseline on these data).
    """
    model = _reference_pipeline(seed)
    y = np.asarray(labels).astype(int)
    fit_params = {}
    if sample_weight is not None:
        fit_params["logisticregression__sample_weight"] = np.asarray(sample_weight, dtype=float)
    model.fit(list(texts), y, **fit_params)
    return model


def _reference_pipeline(seed: int) -> Pipeline:
    """The unfitted reference pipeline (also cloned by cross-validation)."""
    vectorizer = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    classifier = LogisticRegression(C=1.0, solver="liblinear", max_iter=1000, random_state=seed)
    return Pipeline([("tfidf", vectorizer), ("logisticregression", classifier)])


def score_reference_model(
    model: Pipeline, items: pd.DataFrame, *, text: str = "text", threshold: float = 0.5
) -> pd.DataFrame:
    """Copy of ``items`` with ``score`` (P(harmful)) and ``flagged`` (score >= threshold)."""
    scored = items.copy()
    scored["score"] = model.predict_proba(items[text].tolist())[:, 1]
    scored["flagged"] = scored["score"] >= threshold
    return scored


# --------------------------------------------------------------------------------------------
# Vectorised metrics over bootstrap count matrices
# --------------------------------------------------------------------------------------------


def bootstrap_indices(n_units: int, *, n_boot: int, seed: int) -> np.ndarray:
    """Resampled unit positions, shape ``(n_boot, n_units)``, drawn with replacement.

    The generator is the first child of ``numpy.random.SeedSequence(seed).spawn``, so the
    bootstrap has a stream of its own, the same for model A and model B.
    """
    child = np.random.SeedSequence(seed).spawn(1)[0]
    rng = np.random.default_rng(child)
    dtype = np.int32 if n_units < 2**31 else np.int64
    return rng.integers(0, n_units, size=(n_boot, n_units), dtype=dtype)


def _counts(indices: np.ndarray, n_units: int) -> np.ndarray:
    """How often each unit occurs in each resample, shape ``(len(indices), n_units)``."""
    rows = indices.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * n_units)[:, None]
    flat = np.bincount((indices + offsets).ravel(), minlength=rows * n_units)
    return flat.reshape(rows, n_units).astype(float)


@dataclass(frozen=True)
class _AucPlan:
    """Items of one AUC, sorted by score, with the starts of runs of tied scores."""

    items: np.ndarray
    positive: np.ndarray
    tie_starts: np.ndarray


def _auc_plan(mask: np.ndarray, truth: np.ndarray, score: np.ndarray) -> _AucPlan:
    items = np.flatnonzero(mask)
    order = np.argsort(score[items], kind="mergesort")
    items = items[order]
    sorted_scores = score[items]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    return _AucPlan(items=items, positive=truth[items], tie_starts=starts)


def _weighted_auc(counts: np.ndarray, plan: _AucPlan) -> np.ndarray:
    """Mann-Whitney AUC with item multiplicities, ties counted one half, per count row."""
    if plan.items.size == 0:
        return np.full(counts.shape[0], np.nan)
    weights = counts[:, plan.items]
    positive = np.add.reduceat(weights * plan.positive, plan.tie_starts, axis=1)
    negative = np.add.reduceat(weights * ~plan.positive, plan.tie_starts, axis=1)
    below = np.cumsum(negative, axis=1) - negative
    pairs = positive.sum(axis=1) * negative.sum(axis=1)
    wins = (positive * (below + 0.5 * negative)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )


@dataclass(frozen=True)
class _Model:
    flag: np.ndarray
    plans: dict[str, _AucPlan]


def _metric_values(
    counts: np.ndarray,
    model: _Model,
    truth: np.ndarray,
    masks: dict[str, np.ndarray],
    *,
    target: str | None,
    reference: str | None,
) -> dict[tuple[str, str], np.ndarray]:
    """Every (group, metric) for one model under each count row."""
    values: dict[tuple[str, str], np.ndarray] = {}
    flag = model.flag
    for name, mask in masks.items():
        negatives, positives = mask & ~truth, mask & truth
        values[(name, "false_positive_rate")] = _ratio(
            counts @ (negatives & flag), counts @ negatives
        )
        values[(name, "false_negative_rate")] = _ratio(
            counts @ (positives & ~flag), counts @ positives
        )
        values[(name, "flag_rate")] = _ratio(counts @ (mask & flag), counts @ mask)
        if name == OVERALL:
            values[(name, "roc_auc")] = _weighted_auc(counts, model.plans[OVERALL])
        else:
            values[(name, "subgroup_auc")] = _weighted_auc(counts, model.plans[f"sub:{name}"])
            values[(name, "bpsn_auc")] = _weighted_auc(counts, model.plans[f"bpsn:{name}"])
    if target is not None and reference is not None:
        gap = f"{target}-{reference}"
        for metric in ("false_positive_rate", "false_negative_rate"):
            values[(gap, f"{metric}_gap")] = values[(target, metric)] - values[(reference, metric)]
    tp = counts @ (truth & flag)
    fp = counts @ (~truth & flag)
    fn = counts @ (truth & ~flag)
    tn = counts @ (~truth & ~flag)
    f1_positive = _ratio(2 * tp, 2 * tp + fp + fn)
    f1_negative = _ratio(2 * tn, 2 * tn + fn + fp)
    values[(OVERALL, "macro_f1")] = (f1_positive + f1_negative) / 2
    return values


# --------------------------------------------------------------------------------------------
# The paired comparison
# --------------------------------------------------------------------------------------------


def _pair(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    *,
    id_column: str,
    needed: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    for name, frame in (("A", frame_a), ("B", frame_b)):
        absent = [c for c in [id_column, *needed] if c not in frame.columns]
        if absent:
            raise InputError(
                f"model {name}'s table lacks column(s) {absent}; columns: {list(frame.columns)}"
            )
        ids = frame[id_column].astype(str)
        if ids.duplicated().any():
            raise InputError(
                f"model {name}'s table has repeated ids: "
                f"{ids[ids.duplicated()].unique()[:20].tolist()}",
                column=id_column,
            )
    a = frame_a.set_index(frame_a[id_column].astype(str).to_numpy())
    b = frame_b.set_index(frame_b[id_column].astype(str).to_numpy())
    shared = a.index.intersection(b.index, sort=False)
    counts = {
        "n_shared": int(len(shared)),
        "n_only_a": int(len(a) - len(shared)),
        "n_only_b": int(len(b) - len(shared)),
    }
    if not len(shared):
        raise InputError(
            f"models A ({len(a):,} items) and B ({len(b):,} items) share no item id; a paired "
            "comparison needs both scored on the same items"
        )
    if counts["n_only_a"] or counts["n_only_b"]:
        warnings.warn(
            f"models were scored on different items: comparing the {counts['n_shared']:,} shared "
            f"items only ({counts['n_only_a']:,} only in A, {counts['n_only_b']:,} only in B)",
            UnpairedItemsWarning,
            stacklevel=3,
        )
    return a.loc[shared], b.loc[shared], counts


def _bootstrap_p(observed: float, changes: np.ndarray) -> float:
    """Two-sided p of a change from its paired-bootstrap standard error (z = change / SE).

    A percentile-inversion p cannot go below 2 / (n_boot + 1), so after a Holm correction over
    many rows a large, clear effect could show a larger p than a small one; the normal
    approximation on the bootstrap SE has no such floor and agrees with the interval when the
    bootstrap distribution is near normal.
    """
    valid = changes[~np.isnan(changes)]
    if valid.size < 2 or math.isnan(observed):
        return math.nan
    standard_error = float(np.std(valid, ddof=1))
    if standard_error == 0:
        return 1.0 if observed == 0 else 0.0
    return float(2 * stats.norm.sf(abs(observed) / standard_error))


def _mcnemar_p(flag_a: np.ndarray, flag_b: np.ndarray) -> float:
    if flag_a.size == 0:
        return math.nan
    table = [
        [int((flag_a & flag_b).sum()), int((flag_a & ~flag_b).sum())],
        [int((~flag_a & flag_b).sum()), int((~flag_a & ~flag_b).sum())],
    ]
    return float(mcnemar(table, exact=True).pvalue)


def paired_ab_comparison(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    *,
    group: str,
    gold: str,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    cluster: str | None = None,
    margin: float = 0.01,
    id_column: str = "id",
    score: str = "score",
    flagged: str = "flagged",
    target_group: str | None = "aae",
    reference_group: str | None = "sae",
) -> pd.DataFrame:
    """Per group, the change from model A to model B with paired intervals and tests.

    Parameters
    ----------
    frame_a, frame_b
        One row per item and model: ``id_column``, ``group``, ``gold`` (binary, ``True``/1
        harmful), ``score`` (higher more harmful), ``flagged`` (binary) and optionally
        ``cluster``. Groups and gold labels are taken from A and must agree with B's.
    group, gold
        Column names of the group and the gold label.
    alpha
        Two-sided level of the intervals; the Holm correction uses it too.
    n_boot
        Bootstrap resamples.
    seed
        Root entropy of the bootstrap (see :func:`bootstrap_indices`).
    cluster
        Column of a cluster id (for example a conversation or author): resample clusters
        instead of items. Ignored when ``None`` or absent.
    margin
        Non-inferiority margin for overall ROC AUC and macro F1: B is non-inferior when the
        lower interval bound of B - A exceeds ``-margin``.
    target_group, reference_group
        The pair whose false positive and false negative rate gaps (target - reference) are
        compared; ``None`` to skip.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`AB_COLUMNS`. Rows per group and ``overall``: ``false_positive_rate``,
        ``false_negative_rate``, ``flag_rate`` (McNemar exact test on the flags of the group's
        gold negatives, gold positives and all items respectively), ``subgroup_auc`` and
        ``bpsn_auc`` (``roc_auc`` for ``overall``); the gap rows ``<target>-<reference>``; and
        ``overall`` ``macro_f1``. ``non_inferior`` is set on ``overall`` ``roc_auc`` and
        ``macro_f1``. ``attrs`` holds ``n_shared``, ``n_only_a``, ``n_only_b``.

    Raises
    ------
    fairaudit.exceptions.InputError
        If the tables share no item, lack a column, repeat an id, or disagree on gold labels or
        groups of shared items.

    Warns
    -----
    UnpairedItemsWarning
        When the tables hold different items; only shared items are compared.

    Notes
    -----
    Each bootstrap resample draws items (or clusters) with replacement once and evaluates both
    models on it, so the interval of B - A reflects the pairing. Intervals are percentile
    intervals; bootstrap p-values invert them. Holm's correction runs over every row with a
    p-value. McNemar's exact test conditions on the discordant items, so it is exact at any n.

    References
    ----------
    .. [1] McNemar, Q. (1947). Note on the sampling error of the difference between correlated
       proportions or percentages. Psychometrika 12(2), 153-157. doi:10.1007/BF02295996
    .. [2] Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman &
       Hall, chapters 13 and 15. doi:10.1201/9780429246593
    .. [3] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics 6(2), 65-70.
    .. [4] Borkan, D. et al. (2019). Nuanced metrics for measuring unintended bias with real
       data for text classification. doi:10.1145/3308560.3317593
    .. [5] Field, C. A. and Welsh, A. H. (2007). Bootstrapping clustered data. JRSS B 69(3),
       369-390. doi:10.1111/j.1467-9868.2007.00593.x
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, not {n_boot!r}")
    a, b, pairing = _pair(
        frame_a, frame_b, id_column=id_column, needed=[group, gold, score, flagged]
    )

    truth = binarize_labels(a[gold], positive=None, column=gold).to_numpy(dtype=bool)
    truth_b = binarize_labels(b[gold], positive=None, column=gold).to_numpy(dtype=bool)
    if (truth != truth_b).any():
        raise InputError(
            f"{int((truth != truth_b).sum())} shared item(s) have different gold labels in A "
            "and B",
            column=gold,
        )
    labels = a[group].astype(object)
    if not labels.equals(b[group].astype(object)):
        raise InputError("shared items have different groups in A and B", column=group)
    missing_group = labels.isna().to_numpy()
    if missing_group.any():
        logger.info("%d shared item(s) have no group: only in 'overall'", int(missing_group.sum()))
    labels = labels.astype(str).to_numpy()
    names = sorted(set(labels[~missing_group]))
    masks = {name: (labels == name) & ~missing_group for name in names}
    masks[OVERALL] = np.ones(labels.size, dtype=bool)
    if target_group is not None and reference_group is not None:
        absent = [g for g in (target_group, reference_group) if g not in names]
        if absent:
            logger.info("no gap rows: group(s) %s absent", absent)
            target_group = reference_group = None

    models = []
    for frame, name in ((a, "A"), (b, "B")):
        values = pd.to_numeric(frame[score], errors="coerce").to_numpy(dtype=float)
        if np.isnan(values).any():
            raise InputError(f"model {name} has missing scores", column=score)
        plans = {OVERALL: _auc_plan(masks[OVERALL], truth, values)}
        for g in names:
            plans[f"sub:{g}"] = _auc_plan(masks[g], truth, values)
            plans[f"bpsn:{g}"] = _auc_plan(
                (masks[g] & ~truth) | (~masks[g] & truth & ~missing_group), truth, values
            )
        flag = binarize_labels(frame[flagged], positive=None, column=flagged).to_numpy(bool)
        models.append(_Model(flag=flag, plans=plans))
    model_a, model_b = models

    def evaluate(counts: np.ndarray) -> tuple[dict, dict]:
        options = {"target": target_group, "reference": reference_group}
        return (
            _metric_values(counts, model_a, truth, masks, **options),
            _metric_values(counts, model_b, truth, masks, **options),
        )

    point_a, point_b = evaluate(np.ones((1, labels.size)))

    # Resampling units: items, or clusters whose items all come along.
    use_clusters = cluster is not None and cluster in a.columns
    if use_clusters:
        unit_of_item, uniques = pd.factorize(a[cluster].astype(object))
        if (unit_of_item < 0).any():
            raise InputError("items with a missing cluster id", column=cluster)
        n_units = len(uniques)
    else:
        unit_of_item, n_units = None, labels.size
    started = time.perf_counter()
    indices = bootstrap_indices(n_units, n_boot=n_boot, seed=seed)
    boot_a: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in point_a}
    boot_b: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in point_b}
    for start in range(0, n_boot, _CHUNK):
        counts = _counts(indices[start : start + _CHUNK], n_units)
        if unit_of_item is not None:
            counts = counts[:, unit_of_item]
        chunk_a, chunk_b = evaluate(counts)
        for key in point_a:
            boot_a[key].append(chunk_a[key])
            boot_b[key].append(chunk_b[key])
    logger.info(
        "paired bootstrap: %d resamples of %s %s in %.1f s",
        n_boot,
        f"{n_units:,}",
        "clusters" if use_clusters else "items",
        time.perf_counter() - started,
    )

    unit = f"clusters of {cluster!r}" if use_clusters else "items"
    rows = []
    for key in point_a:
        name, metric = key
        change = np.concatenate(boot_b[key]) - np.concatenate(boot_a[key])
        valid = change[~np.isnan(change)]
        if valid.size:
            low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
        else:
            low = high = math.nan
        if metric in ("false_positive_rate", "false_negative_rate", "flag_rate"):
            mask = masks[name]
            if metric == "false_positive_rate":
                mask = mask & ~truth
            elif metric == "false_negative_rate":
                mask = mask & truth
            p_value = _mcnemar_p(model_a.flag[mask], model_b.flag[mask])
            method = _MCNEMAR
            n = int(mask.sum())
        else:
            p_value = _bootstrap_p(float(point_b[key][0] - point_a[key][0]), change)
            method = _BOOTSTRAP.format(unit=unit)
            n = (
                int(masks[name].sum())
                if name in masks
                else int((masks[target_group] | masks[reference_group]).sum())
            )
        estimate_a, estimate_b = float(point_a[key][0]), float(point_b[key][0])
        non_inferior: object = pd.NA
        if name == OVERALL and metric in ("roc_auc", "macro_f1") and not math.isnan(low):
            non_inferior = bool(low > -margin)
        rows.append(
            {
                "group": name,
                "metric": metric,
                "estimate_a": estimate_a,
                "estimate_b": estimate_b,
                "change": estimate_b - estimate_a,
                "ci_low": float(low),
                "ci_high": float(high),
                "p_value": p_value,
                "p_adjusted": math.nan,
                "method": method,
                "n": n,
                "n_boot_valid": int(valid.size),
                "non_inferior": non_inferior,
                "margin": margin,
                "alpha": alpha,
                "correction": "holm",
            }
        )
    table = pd.DataFrame(rows, columns=list(AB_COLUMNS))
    table["p_adjusted"], _ = holm(table["p_value"], alpha=alpha)
    table["non_inferior"] = table["non_inferior"].astype("boolean")
    table.attrs.update(pairing)
    table.attrs["bootstrap_unit"] = unit
    table.attrs["n_boot"] = n_boot
    logger.info(
        "compared models A and B on %s shared items (%s only in A, %s only in B)",
        f"{pairing['n_shared']:,}",
        f"{pairing['n_only_a']:,}",
        f"{pairing['n_only_b']:,}",
    )
    return table


def ab_verdict(
    table: pd.DataFrame, *, target_group: str = "aae", reference_group: str = "sae"
) -> str:
    """One sentence: did the target-vs-reference FPR gap shrink, by how much, at what cost.

    Built only from the numbers in a :func:`paired_ab_comparison` table.
    """
    gap_name = f"{target_group}-{reference_group}"
    rows = table.set_index(["group", "metric"])
    if (gap_name, "false_positive_rate_gap") not in rows.index:
        return f"No {gap_name} false positive rate gap in the table, so no verdict."
    gap = rows.loc[(gap_name, "false_positive_rate_gap")]
    direction = math.copysign(1.0, gap["estimate_a"]) if gap["estimate_a"] != 0 else 1.0
    # Change in the gap's size: negative means closer to parity.
    low, high = sorted((direction * gap["ci_low"], direction * gap["ci_high"]))
    points = 100 * abs(gap["change"])
    interval = f"{100 * gap['ci_low']:+.1f} to {100 * gap['ci_high']:+.1f} points"
    confidence = f"{100 * (1 - gap['alpha']):.0f}%"
    if high < 0:
        verb = f"shrank by {points:.1f} percentage points"
    elif low > 0:
        verb = f"widened by {points:.1f} percentage points"
    else:
        moved = "narrower" if direction * gap["change"] < 0 else "wider"
        verb = f"did not change detectably ({points:.1f} points {moved}"
        verb += ", interval includes no change)"
    costs = []
    for metric, label in (("roc_auc", "ROC AUC"), ("macro_f1", "macro F1")):
        if (OVERALL, metric) in rows.index:
            row = rows.loc[(OVERALL, metric)]
            shown = not pd.isna(row["non_inferior"]) and bool(row["non_inferior"])
            status = "non-inferior" if shown else "not shown non-inferior"
            costs.append(
                f"overall {label} {row['estimate_a']:.3f} -> {row['estimate_b']:.3f} "
                f"({row['change']:+.3f}, {confidence} CI {row['ci_low']:+.3f} to "
                f"{row['ci_high']:+.3f}; {status} at margin {row['margin']:g})"
            )
    cost = "; ".join(costs) if costs else "no overall quality rows"
    moves = []
    for name in (target_group, reference_group):
        if (name, "false_positive_rate") in rows.index:
            row = rows.loc[(name, "false_positive_rate")]
            moves.append(
                f"{name} {100 * row['estimate_a']:.1f}% -> {100 * row['estimate_b']:.1f}%"
            )
    how = f" (false positive rates {', '.join(moves)})" if moves else ""
    return (
        f"The {target_group}-vs-{reference_group} false positive rate gap {verb}, from "
        f"{100 * gap['estimate_a']:.1f} to {100 * gap['estimate_b']:.1f} points{how} "
        f"({confidence} paired bootstrap CI of the change {interval}, Holm p = "
        f"{gap['p_adjusted']:.3g}), at a cost of: {cost}."
    )


# --------------------------------------------------------------------------------------------
# The demo loop on the Davidson tweets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbDemoResult:
    """Everything :func:`run_ab_demo` measured.

    Attributes
    ----------
    tables
        One :func:`paired_ab_comparison` table per scheme (model B of that scheme vs model A).
    summary
        One row per scheme: the AAE-SAE FPR gap of A and B, the change with its interval and
        Holm p, and the changes in overall ROC AUC and macro F1 with non-inferiority.
    verdicts
        :func:`ab_verdict` per scheme.
    weights
        The weights each scheme gave the training split.
    split
        Sizes and provenance of the train / held-out split.
    seeds
        The root seed and the spawn key and derived seed of each step.
    """

    tables: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    verdicts: dict[str, str]
    weights: dict[str, WeightingResult]
    split: dict[str, Any]
    seeds: dict[str, Any]
    heldout_scores: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        """All comparison tables stacked, with a ``scheme`` column first."""
        return pd.concat(
            [t.assign(scheme=s)[["scheme", *t.columns]] for s, t in self.tables.items()],
            ignore_index=True,
        )


def read_davidson(path: str | Path) -> pd.DataFrame:
    """The Davidson et al. (2017) file as ``id`` (first, unnamed column, as string), ``text``,
    ``gold_label`` (``class``) and ``gold_toxic`` (hate speech or offensive, classes 0 and 1)."""
    raw = pd.read_csv(path)
    first = raw.columns[0]
    missing = [c for c in ("class", "tweet") if c not in raw.columns]
    if missing:
        raise InputError(f"not the Davidson file: no column(s) {missing}", file=path)
    return pd.DataFrame(
        {
            "id": raw[first].astype(str),
            "text": raw["tweet"].astype(str),
            "gold_label": raw["class"].astype(int),
            "gold_toxic": raw["class"].isin([0, 1]).to_numpy(),
        }
    )


def _step_seeds(seed: int, steps: Sequence[str]) -> tuple[dict[str, int], dict[str, Any]]:
    root = np.random.SeedSequence(seed)
    children = root.spawn(len(steps))
    derived = {
        step: int(child.generate_state(1, dtype=np.uint32)[0])
        for step, child in zip(steps, children, strict=True)
    }
    record = {
        "entropy": int(root.entropy),
        "streams": {
            step: {"spawn_key": list(child.spawn_key), "derived_seed": derived[step]}
            for step, child in zip(steps, children, strict=True)
        },
    }
    return derived, record


def run_ab_demo(
    davidson_csv: str | Path,
    utterances_with_groups: str | Path | pd.DataFrame,
    *,
    seed: int,
    schemes: Sequence[Scheme] = ("kamiran_calders", "error_targeted", "group_balance"),
    group_column: str = "dialect_group",
    target_group: str = "aae",
    reference_group: str = "sae",
    strength: float = 1.0,
    max_weight: float | None = None,
    threshold: float = 0.5,
    cv_folds: int = 5,
    alpha: float = 0.05,
    n_boot: int = 2000,
    margin: float = 0.01,
    test_size: float = 0.3,
    split_random_state: int = 42,
) -> AbDemoResult:
    """Train model A unweighted and one model B per weighting scheme; compare each B to A.

    Parameters
    ----------
    davidson_csv
        ``labeled_data.csv`` of Davidson et al. (2017).
    utterances_with_groups
        The demo run's ``utterances.parquet`` (or a frame) with ``id`` and ``group_column``:
        the dialect layer's groups, joined on id.
    seed
        Root seed; each step (model fitting, cross-validation, each scheme's copies, the
        bootstrap) gets its own child of ``numpy.random.SeedSequence(seed).spawn``.
    schemes
        Weighting schemes to try, see :func:`fairaudit.reweighting.compute_weights`.
    strength, max_weight
        Options of the schemes (``strength`` for ``error_targeted``).
    threshold
        Score at which a message is flagged.
    cv_folds
        Folds of the cross-validated predictions that give ``error_targeted`` model A's flags on
        the training items (so no item is flagged by a model that saw it).
    alpha, n_boot, margin
        Passed to :func:`paired_ab_comparison`.
    test_size, split_random_state
        ``train_test_split`` over row positions; the defaults reproduce hatesonar's split, so the
        held-out part is the demo audit's rows.

    Returns
    -------
    AbDemoResult

    Raises
    ------
    fairaudit.exceptions.InputError
        If the group table lacks a column or no Davidson id has a group.
    """
    corpus = read_davidson(davidson_csv)
    if isinstance(utterances_with_groups, pd.DataFrame):
        groups = utterances_with_groups
    else:
        groups = pd.read_parquet(utterances_with_groups)
    absent = [c for c in ("id", group_column) if c not in groups.columns]
    if absent:
        raise InputError(f"group table lacks column(s) {absent}")
    group_of = groups.assign(id=groups["id"].astype(str)).set_index("id")[group_column]
    corpus[group_column] = corpus["id"].map(group_of)
    no_group = int(corpus[group_column].isna().sum())
    if no_group == len(corpus):
        raise InputError("no Davidson id has a group in the group table")

    positions = np.arange(len(corpus))
    train_positions, test_positions = train_test_split(
        positions, test_size=test_size, random_state=split_random_state
    )
    train = corpus.iloc[np.sort(train_positions)].reset_index(drop=True)
    heldout = corpus.iloc[np.sort(test_positions)].reset_index(drop=True)
    split: dict[str, Any] = {
        "method": f"train_test_split(row positions, test_size={test_size}, "
        f"random_state={split_random_state})",
        "n_rows": len(corpus),
        "n_train": len(train),
        "n_heldout": len(heldout),
        "rows_without_group": no_group,
    }
    if "in_audit" in groups.columns:
        audit_ids = set(groups.loc[groups["in_audit"].astype(bool), "id"].astype(str))
        split["heldout_equals_audit_rows"] = audit_ids == set(heldout["id"])

    steps = ["model", "cross_validation", "bootstrap", *[f"copies_{s}" for s in schemes]]
    seeds, seed_record = _step_seeds(seed, steps)

    logger.info("training model A (unweighted) on %s tweets", f"{len(train):,}")
    model_a = train_reference_model(train["text"], train["gold_toxic"], seed=seeds["model"])
    scored_a = score_reference_model(model_a, heldout, threshold=threshold)

    flags_train = None
    if "error_targeted" in schemes:
        # Model A's flags on its own training items would be in-sample (too few false positives);
        # out-of-fold predictions give each item the flag of a model that never saw it.
        folds = StratifiedKFold(
            n_splits=cv_folds, shuffle=True, random_state=seeds["cross_validation"]
        )
        probabilities = cross_val_predict(
            _reference_pipeline(seeds["model"]),
            train["text"].tolist(),
            train["gold_toxic"].astype(int).to_numpy(),
            cv=folds,
            method="predict_proba",
        )[:, 1]
        flags_train = pd.Series(probabilities >= threshold, index=train["id"].to_numpy())

    tables, verdicts, weights, scored = {}, {}, {}, {"A": scored_a}
    indexed = train.set_index("id")
    for scheme in schemes:
        result = compute_weights(
            indexed[group_column],
            indexed["gold_toxic"],
            scheme=scheme,
            flagged=flags_train,
            target_group=target_group,
            strength=strength,
            max_weight=max_weight,
            seed=seeds[f"copies_{scheme}"],
        )
        weights[scheme] = result
        weight_of = result.weights["sample_weight"].reindex(indexed.index).fillna(0.0)
        logger.info("training model B (%s weights)", scheme)
        model_b = train_reference_model(
            train["text"],
            train["gold_toxic"],
            sample_weight=weight_of.to_numpy(),
            seed=seeds["model"],
        )
        scored_b = score_reference_model(model_b, heldout, threshold=threshold)
        scored[scheme] = scored_b
        table = paired_ab_comparison(
            scored_a,
            scored_b,
            group=group_column,
            gold="gold_toxic",
            alpha=alpha,
            n_boot=n_boot,
            seed=seeds["bootstrap"],
            margin=margin,
            target_group=target_group,
            reference_group=reference_group,
        )
        tables[scheme] = table
        verdicts[scheme] = ab_verdict(
            table, target_group=target_group, reference_group=reference_group
        )
        logger.info("%s: %s", scheme, verdicts[scheme])

    return AbDemoResult(
        tables=tables,
        summary=_summary(tables, weights, target_group, reference_group),
        verdicts=verdicts,
        weights=weights,
        split=split,
        seeds=seed_record,
        heldout_scores=scored,
    )


def _summary(
    tables: dict[str, pd.DataFrame],
    weights: dict[str, WeightingResult],
    target_group: str,
    reference_group: str,
) -> pd.DataFrame:
    gap = f"{target_group}-{reference_group}"
    rows = []
    for scheme, table in tables.items():
        by = table.set_index(["group", "metric"])
        row: dict[str, Any] = {"scheme": scheme}
        if (gap, "false_positive_rate_gap") in by.index:
            g = by.loc[(gap, "false_positive_rate_gap")]
            row |= {
                "fpr_gap_a": g["estimate_a"],
                "fpr_gap_b": g["estimate_b"],
                "fpr_gap_change": g["change"],
                "fpr_gap_ci_low": g["ci_low"],
                "fpr_gap_ci_high": g["ci_high"],
                "fpr_gap_p_adjusted": g["p_adjusted"],
            }
        for name in (target_group, reference_group):
            if (name, "false_positive_rate") in by.index:
                r = by.loc[(name, "false_positive_rate")]
                row |= {
                    f"fpr_{name}_a": r["estimate_a"],
                    f"fpr_{name}_b": r["estimate_b"],
                    f"fpr_{name}_mcnemar_p_adjusted": r["p_adjusted"],
                }
        for metric in ("roc_auc", "macro_f1"):
            r = by.loc[(OVERALL, metric)]
            row |= {
                f"{metric}_a": r["estimate_a"],
                f"{metric}_b": r["estimate_b"],
                f"{metric}_change": r["change"],
                f"{metric}_ci_low": r["ci_low"],
                f"{metric}_non_inferior": r["non_inferior"],
            }
        ess = weights[scheme].effective_sample_size.set_index("group")
        row["min_ess_fraction"] = float(ess["ess_fraction"].min())
        rows.append(row)
    return pd.DataFrame(rows)
