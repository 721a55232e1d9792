"""Sample weights for fine-tuning a toxicity model so that it treats dialect groups alike.

Takes a group and a label per message (two series sharing the message-id index), and for the
error-targeted scheme the audited model's flags, and returns one row per message with its
``sample_weight`` and an integer number of ``copies`` for training tools that cannot take weights.

- :func:`kamiran_calders` reweighs (group, label) cells so that the label is independent of the
  group (AIF360's ``Reweighing`` formula, any number of groups and labels).
- :func:`compute_weights` runs one of :data:`SCHEMES` (``group_balance``, ``kamiran_calders``,
  ``error_targeted``) with clipping, normalising to mean 1, seeded stochastic rounding into
  ``copies`` and the Kish effective sample size per group before and after weighting.
- :func:`weight_training_corpus` weights a separate training table and records the audit run
  that motivated the weights; :func:`export_weights` writes Parquet, CSV, JSON Lines and a
  manifest into a folder atomically.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fairaudit.disparity import binarize_labels
from fairaudit.exceptions import FairauditWarning, InputError, UndefinedMetricWarning
from fairaudit.runfolder import (
    atomic_run_folder,
    file_sha256,
    package_versions,
    read_manifest,
    write_json,
)

__all__ = [
    "REWEIGHTING_COLUMNS",
    "ESS_COLUMNS",
    "SCHEMES",
    "EffectiveSampleSizeWarning",
    "WeightingResult",
    "kamiran_calders",
    "group_balance_weights",
    "kamiran_calders_weights",
    "error_targeted_weights",
    "clip_weights",
    "normalize_weights",
    "stochastic_copies",
    "kish_effective_sample_size",
    "effective_sample_size_table",
    "spawn_streams",
    "compute_weights",
    "audit_run_reference",
    "weight_training_corpus",
    "export_weights",
]

logger = logging.getLogger(__name__)

REWEIGHTING_COLUMNS = ("id", "sample_weight", "copies", "group", "label")
"""Columns of the weight tables :func:`kamiran_calders` and :func:`compute_weights` return."""

ESS_COLUMNS = ("group", "n", "ess_before", "ess_unclipped", "ess_after", "ess_fraction")
"""Columns of :func:`effective_sample_size_table`."""

Scheme = Literal["group_balance", "kamiran_calders", "error_targeted"]
SCHEMES: tuple[str, ...] = ("group_balance", "kamiran_calders", "error_targeted")
"""Weighting schemes :func:`compute_weights` knows."""

_STREAMS = ("copies",)
"""Random steps of :func:`compute_weights`, one :class:`numpy.random.SeedSequence` child each."""

_OVERALL = "overall"


class EffectiveSampleSizeWarning(FairauditWarning):
    """Weighting leaves a group with a small share of its messages' information (Kish ESS)."""


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _check_index(*series: pd.Series | None) -> None:
    present = [s for s in series if s is not None]
    for other in present[1:]:
        if not present[0].index.equals(other.index):
            raise InputError("groups, labels and flags must share the same index of message ids")
    if present and present[0].index.has_duplicates:
        index = present[0].index
        duplicated = index[index.duplicated()].unique().tolist()
        raise InputError(f"message ids occur more than once: {duplicated[:20]}")


def _kamiran_calders_raw(
    groups: pd.Series, labels: pd.Series, *, stacklevel: int
) -> tuple[np.ndarray, int, int]:
    """Raw weights ``n_g n_y / (n n_gy)`` of complete rows, the non-empty and empty cell counts."""
    n = len(groups)
    # Plain objects, so that unused categories do not show up as empty groups.
    cell_counts = pd.crosstab(groups.astype(object), labels.astype(object))
    group_counts = cell_counts.sum(axis=1)
    label_counts = cell_counts.sum(axis=0)

    # Expected over observed cell counts; empty cells get no weight because no message has them.
    expected = np.outer(group_counts.to_numpy(), label_counts.to_numpy()) / max(n, 1)
    observed = cell_counts.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        cell_weights = pd.DataFrame(
            np.where(observed > 0, expected / np.where(observed > 0, observed, 1), np.nan),
            index=cell_counts.index,
            columns=cell_counts.columns,
        )

    empty = cell_weights.isna()
    for group_value, row in empty.iterrows():
        if row.any():
            lacking = [label for label, is_empty in row.items() if is_empty]
            warnings.warn(
                f"group {group_value!r} has no message with label(s) {lacking}: its weight for "
                "that cell is undefined and the label cannot be made independent of this group",
                UndefinedMetricWarning,
                stacklevel=stacklevel + 1,
            )

    stacked = cell_weights.stack().rename("sample_weight")
    keys = pd.MultiIndex.from_arrays([groups.to_numpy(), labels.to_numpy()])
    weights = stacked.reindex(keys).to_numpy(dtype=float)
    return weights, int((observed > 0).sum()), int(empty.to_numpy().sum())


def kamiran_calders_weights(groups: pd.Series, labels: pd.Series) -> np.ndarray:
    """Raw Kamiran-Calders weights ``w(g, y) = n_g * n_y / (n * n_gy)``, one per message.

    Every row must have a group and a label (see :func:`kamiran_calders` for the full table with
    missing values handled). The weighted (group x label) table equals the product of its
    margins divided by ``n``, so the label is independent of the group under the weights.

    References
    ----------
    .. [1] Kamiran, F. and Calders, T. (2012). Data preprocessing techniques for classification
       without discrimination. Knowledge and Information Systems 33(1), 1-33.
       doi:10.1007/s10115-011-0463-8
    """
    _check_index(groups, labels)
    if groups.isna().any() or labels.isna().any():
        raise InputError("every message needs a group and a label for Kamiran-Calders weights")
    weights, _, _ = _kamiran_calders_raw(groups, labels, stacklevel=2)
    return weights


def group_balance_weights(groups: pd.Series) -> np.ndarray:
    """Inverse group frequency ``w(g) = n / (G * n_g)``, one per message.

    Every group then carries the same total weight ``n / G``, whatever its size; the label
    distribution inside each group is left as it is.

    References
    ----------
    .. [1] King, G. and Zeng, L. (2001). Logistic regression in rare events data. Political
       Analysis 9(2), 137-163. doi:10.1093/oxfordjournals.pan.a004868 (the same inverse
       frequency weighting applied to classes, as scikit-learn's ``class_weight="balanced"``).
    """
    if groups.isna().any():
        raise InputError("every message needs a group for group-balance weights")
    codes, uniques = pd.factorize(groups.astype(object))
    counts = np.bincount(codes, minlength=len(uniques)).astype(float)
    return len(groups) / (len(uniques) * counts[codes])


def error_targeted_weights(
    groups: pd.Series,
    gold: pd.Series,
    flagged: pd.Series,
    *,
    target_group: str = "aae",
    strength: float = 1.0,
) -> np.ndarray:
    """Weight ``1 + strength`` for the target group's non-harmful messages the model flags.

    Those messages (group ``target_group``, gold label non-harmful, flagged by the audited
    model) are the false positives behind the group's false positive rate; every other message
    keeps weight 1. ``strength = 1`` counts each of them twice.

    Parameters
    ----------
    groups, gold, flagged
        Group, binary gold label (``True``/1 harmful) and binary model flag per message, sharing
        one index.
    target_group
        The group whose false positives are up-weighted.
    strength
        Extra weight, at least 0; 0 gives unit weights.

    Raises
    ------
    fairaudit.exceptions.InputError
        If the labels or flags are not binary, or ``target_group`` does not occur.
    ValueError
        If ``strength`` is negative or not finite.

    Warns
    -----
    fairaudit.exceptions.UndefinedMetricWarning
        When the model flags none of the target group's non-harmful messages: every weight is 1.

    References
    ----------
    .. [1] Kamiran, F. and Calders, T. (2012), section 4.3 (preferential sampling), which moves
       weight to the items near the decision boundary of a ranker trained on the data.
       doi:10.1007/s10115-011-0463-8
    """
    _check_index(groups, gold, flagged)
    if not (math.isfinite(strength) and strength >= 0):
        raise ValueError(f"strength must be a finite number >= 0, not {strength!r}")
    if not groups.astype(object).eq(target_group).any():
        present = sorted({str(g) for g in groups.dropna().unique()})
        raise InputError(f"target group {target_group!r} does not occur; groups found: {present}")
    harmful = binarize_labels(gold, positive=None, column="gold").to_numpy(dtype=bool)
    flags = binarize_labels(flagged, positive=None, column="flagged").to_numpy(dtype=bool)
    targeted = groups.astype(object).eq(target_group).to_numpy() & ~harmful & flags
    if not targeted.any():
        warnings.warn(
            f"the model flags none of group {target_group!r}'s non-harmful messages: there is no "
            "false positive to up-weight, so every weight is 1",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return np.where(targeted, 1.0 + strength, 1.0)


def clip_weights(weights: np.ndarray, *, max_weight: float) -> np.ndarray:
    """Cap each weight at ``max_weight``; the order of the weights is kept (ties may form)."""
    if not max_weight > 0:
        raise ValueError(f"max_weight must be > 0, not {max_weight!r}")
    return np.minimum(np.asarray(weights, dtype=float), max_weight)


def normalize_weights(weights: np.ndarray) -> np.ndarray:
    """Divide by the mean so the weights average 1; ratios (hence order) are unchanged."""
    values = np.asarray(weights, dtype=float)
    if values.size == 0:
        return values
    return values / values.mean()


def _clip_and_normalize(
    weights: np.ndarray, *, max_weight: float | None, normalize: bool
) -> tuple[np.ndarray, int]:
    """Clip, normalise, and repeat while normalising pushes weights back above the cap."""
    if max_weight is None:
        return (normalize_weights(weights) if normalize else weights.copy()), 0
    if normalize and max_weight < 1:
        raise ValueError("max_weight must be at least 1 when the weights are normalised to mean 1")
    clipped = int((weights > max_weight).sum())
    out = clip_weights(weights, max_weight=max_weight)
    if not normalize:
        return out, clipped
    # Trimming as in survey weighting: each round can only lower the largest weights relative to
    # the others, so the order is kept and the loop ends (at worst all weights equal 1).
    for _ in range(1000):
        out = normalize_weights(out)
        if out.max(initial=0.0) <= max_weight * (1 + 1e-12):
            break
        clipped = max(clipped, int((out > max_weight).sum()))
        out = clip_weights(out, max_weight=max_weight)
    return np.minimum(out, max_weight), clipped


def stochastic_copies(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integer copies ``floor(w) + Bernoulli(w - floor(w))``: their expectation is ``w``.

    References
    ----------
    .. [1] Croci, M., Fasi, M., Higham, N. J., Mary, T. and Mikaitis, M. (2022). Stochastic
       rounding: implementation, error analysis and applications. Royal Society Open Science
       9(3), 211631. doi:10.1098/rsos.211631
    """
    values = np.asarray(weights, dtype=float)
    whole = np.floor(values)
    return (whole + (rng.random(values.size) < values - whole)).astype(np.int64)


def kish_effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``; equals n for equal weights.

    References
    ----------
    .. [1] Kish, L. (1965). Survey Sampling. New York: Wiley, section 11.7.
    """
    values = np.asarray(weights, dtype=float)
    squares = float(np.square(values).sum())
    return float(values.sum() ** 2 / squares) if squares > 0 else 0.0


def effective_sample_size_table(
    groups: pd.Series | np.ndarray,
    weights: np.ndarray,
    *,
    unclipped: np.ndarray | None = None,
    warn_below: float = 0.5,
) -> pd.DataFrame:
    """Kish effective sample size per group (and overall) before and after weighting.

    Parameters
    ----------
    groups
        Group per message.
    weights
        Final weights per message.
    unclipped
        The scheme's weights before clipping, if clipping was applied (else ``weights``).
    warn_below
        Warn when a group's effective sample size after weighting falls below this fraction of
        its size.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ESS_COLUMNS`: ``n`` (messages), ``ess_before`` (unweighted, equal to
        ``n``), ``ess_unclipped`` (under the scheme's weights before clipping), ``ess_after``
        (under the final weights) and ``ess_fraction = ess_after / n``. The last row is
        ``overall``.

    Warns
    -----
    EffectiveSampleSizeWarning
        For each row whose ``ess_fraction`` is below ``warn_below``.
    """
    labels = pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()
    before = np.asarray(weights if unclipped is None else unclipped, dtype=float)
    after = np.asarray(weights, dtype=float)
    rows = []
    for name in [*sorted(set(labels)), _OVERALL]:
        mask = np.ones(labels.size, bool) if name == _OVERALL else labels == name
        n = int(mask.sum())
        ess = kish_effective_sample_size(after[mask])
        rows.append(
            {
                "group": name,
                "n": n,
                "ess_before": float(n),
                "ess_unclipped": kish_effective_sample_size(before[mask]),
                "ess_after": ess,
                "ess_fraction": ess / n if n else math.nan,
            }
        )
    table = pd.DataFrame(rows, columns=list(ESS_COLUMNS))
    for row in table.itertuples():
        if row.n and row.ess_fraction < warn_below:
            warnings.warn(
                f"weighting leaves group {row.group!r} an effective sample size of "
                f"{row.ess_after:,.0f} of {row.n:,} messages ({row.ess_fraction:.0%} < "
                f"{warn_below:.0%}): a model trained on these weights leans on a few messages; "
                "consider max_weight",
                EffectiveSampleSizeWarning,
                stacklevel=2,
            )
    return table


# --------------------------------------------------------------------------------------------
# The original entry point (kept as the pipeline calls it)
# --------------------------------------------------------------------------------------------


def kamiran_calders(
    groups: pd.Series,
    labels: pd.Series,
    *,
    normalize: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """Reweighing weights ``w(g, y) = n_g * n_y / (n * n_gy)`` per message.

    Each message in the non-empty cell (group ``g``, label ``y``) gets the weight
    ``P(g) P(y) / P(g, y)``, the ratio of the count the cell would have if label and group were
    independent to the count it has. Under these weights every group that holds every label has
    the overall label distribution.

    Parameters
    ----------
    groups
        Group of each message (for example the dialect group); the index holds message ids.
    labels
        Label of each message (for example the gold toxicity), with the same index.
    normalize
        Divide the weights by their mean, so that they average 1 over the weighted messages.
        Ratios between weights are unchanged.
    seed
        Seed of :func:`numpy.random.default_rng` for the stochastic rounding of ``copies``.

    Returns
    -------
    pandas.DataFrame
        Indexed by message id, one row per message with both a group and a label, in input
        order. Columns: ``id`` (str), ``sample_weight`` (float), ``copies`` (int: the floor of
        the weight plus one with probability equal to its fractional part, so that the expected
        number of copies equals the weight), ``group`` and ``label``. The ids of messages left
        out for a missing group or label are in ``result.attrs["excluded_ids"]``.

    Raises
    ------
    fairaudit.exceptions.InputError
        If the two series do not share the same index or an id occurs twice.

    Warns
    -----
    fairaudit.exceptions.UndefinedMetricWarning
        For each group that lacks some label (an empty cell): its weight there is undefined and
        label independence cannot be reached for that group. The group's other cells keep their
        formula weights; no weight is ever infinite or NaN.

    Notes
    -----
    Messages with a missing group or label get no weight and are left out of every count; how
    many is logged. Empty cells contribute no messages, so the raw weights sum to less than
    ``n`` when a cell is empty.

    References
    ----------
    .. [1] Kamiran, F. and Calders, T. (2012). Data preprocessing techniques for classification
       without discrimination. Knowledge and Information Systems 33(1), 1-33.
       doi:10.1007/s10115-011-0463-8
    .. [2] Croci, M., Fasi, M., Higham, N. J., Mary, T. and Mikaitis, M. (2022). Stochastic
       rounding: implementation, error analysis and applications. Royal Society Open Science
       9(3), 211631. doi:10.1098/rsos.211631
    """
    _check_index(groups, labels)

    missing = (groups.isna() | labels.isna()).to_numpy()
    excluded = groups.index[missing].tolist()
    if excluded:
        logger.info(
            "gave no weight to %d message(s) with a missing group or label (ids: %s)",
            len(excluded),
            ", ".join(str(i) for i in excluded[:20]),
        )
    groups, labels = groups[~missing], labels[~missing]

    n = len(groups)
    weights, cells, empty_cells = _kamiran_calders_raw(groups, labels, stacklevel=2)
    if normalize and n:
        weights = weights / weights.mean()

    copies = stochastic_copies(weights, np.random.default_rng(seed))

    result = pd.DataFrame(
        {
            "id": groups.index.map(str),
            "sample_weight": weights,
            "copies": copies,
            "group": groups.to_numpy(),
            "label": labels.to_numpy(),
        },
        index=groups.index.copy(),
    )
    result.index.name = None
    result.attrs["excluded_ids"] = excluded
    logger.info(
        "reweighed %d messages in %d (group, label) cells; %d empty cell(s)",
        n,
        cells,
        empty_cells,
    )
    return result


# --------------------------------------------------------------------------------------------
# Schemes with options, training corpora and export
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightingResult:
    """Weights of one scheme and everything needed to reproduce and judge them.

    Attributes
    ----------
    weights
        Columns :data:`REWEIGHTING_COLUMNS`, one row per weighted message, indexed by id.
    effective_sample_size
        :func:`effective_sample_size_table` of the weights.
    scheme
        One of :data:`SCHEMES`.
    parameters
        The options the weights were computed with.
    seeds
        Root entropy of the :class:`numpy.random.SeedSequence` and the spawn key of each random
        step's child stream.
    excluded_ids
        Messages left out for a missing group, label or flag.
    source
        Where the weights come from and why (for example the audit run); empty if not given.
    """

    weights: pd.DataFrame
    effective_sample_size: pd.DataFrame
    scheme: str
    parameters: dict[str, Any]
    seeds: dict[str, Any]
    excluded_ids: tuple[Any, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)


def spawn_streams(
    seed: int, names: tuple[str, ...]
) -> tuple[dict[str, np.random.Generator], dict[str, Any]]:
    """Independent generators per named step from ``SeedSequence(seed).spawn``, and their record.

    The record says how to rebuild each stream:
    ``numpy.random.default_rng(numpy.random.SeedSequence(entropy, spawn_key=spawn_key))``.
    """
    root = np.random.SeedSequence(seed)
    children = root.spawn(len(names))
    generators = {
        name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)
    }
    record = {
        "entropy": int(root.entropy),
        "rebuild": "numpy.random.default_rng(numpy.random.SeedSequence(entropy, spawn_key))",
        "streams": {
            name: {"spawn_key": list(child.spawn_key)}
            for name, child in zip(names, children, strict=True)
        },
    }
    return generators, record


def _required(series: pd.Series | None) -> pd.Series:
    if series is None:
        raise InputError("a column the weighting scheme needs is missing")
    return series


def compute_weights(
    groups: pd.Series,
    labels: pd.Series | None = None,
    *,
    scheme: Scheme = "kamiran_calders",
    flagged: pd.Series | None = None,
    target_group: str = "aae",
    strength: float = 1.0,
    max_weight: float | None = None,
    normalize: bool = True,
    seed: int = 0,
    ess_warn_below: float = 0.5,
) -> WeightingResult:
    """Weights of one scheme, clipped, normalised, rounded into copies, with their Kish ESS.

    Parameters
    ----------
    groups
        Group per message (for example the dialect group); the index holds message ids.
    labels
        Gold label per message with the same index; required by ``kamiran_calders`` (any
        labels) and ``error_targeted`` (binary, ``True``/1 harmful).
    scheme
        ``group_balance`` (:func:`group_balance_weights`), ``kamiran_calders``
        (:func:`kamiran_calders_weights`) or ``error_targeted`` (:func:`error_targeted_weights`).
    flagged
        The audited model's binary flag per message; required by ``error_targeted``.
    target_group, strength
        Options of ``error_targeted``.
    max_weight
        Cap on the weights. With ``normalize`` the cap holds after normalising: clipping and
        normalising repeat until both hold (weight trimming), which keeps the order of weights.
    normalize
        Divide the weights by their mean, so they average 1.
    seed
        Root entropy; the stochastic rounding of ``copies`` draws from its own spawned stream.
    ess_warn_below
        Fraction of a group's size below which its effective sample size draws a warning.

    Returns
    -------
    WeightingResult

    Raises
    ------
    fairaudit.exceptions.InputError
        If the series do not share an index, an id repeats, or a required series is missing.
    ValueError
        For an unknown scheme or an invalid option.

    Warns
    -----
    EffectiveSampleSizeWarning
        When a group's effective sample size falls below ``ess_warn_below`` of its size.
    fairaudit.exceptions.UndefinedMetricWarning
        For an empty (group, label) cell (``kamiran_calders``) or no false positive to
        up-weight (``error_targeted``).

    Notes
    -----
    Messages with a missing group, or a missing label or flag that the scheme needs, get no
    weight and are listed in ``excluded_ids``. ``copies`` are ``floor(w)`` plus one with
    probability ``w - floor(w)``, so their expectation is the weight.

    References
    ----------
    .. [1] Kamiran, F. and Calders, T. (2012). doi:10.1007/s10115-011-0463-8
    .. [2] Kish, L. (1965). Survey Sampling. Wiley, section 11.7.
    .. [3] Potter, F. J. (1990). A study of procedures to identify and trim extreme sampling
       weights. Proc. Survey Research Methods Section, American Statistical Association, 225-230.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {SCHEMES}")
    needs_labels = scheme in ("kamiran_calders", "error_targeted")
    if needs_labels and labels is None:
        raise InputError(f"scheme {scheme!r} needs gold labels")
    if scheme == "error_targeted" and flagged is None:
        raise InputError("scheme 'error_targeted' needs the audited model's flags")
    used_flags = flagged if scheme == "error_targeted" else None
    _check_index(groups, labels, used_flags)

    missing = groups.isna().to_numpy().copy()
    if needs_labels and labels is not None:
        missing |= labels.isna().to_numpy()
    if used_flags is not None:
        missing |= used_flags.isna().to_numpy()
    excluded = tuple(groups.index[missing])
    if excluded:
        logger.info(
            "gave no weight to %d message(s) with a missing group, label or flag", len(excluded)
        )
    keep = ~missing
    groups = groups[keep]
    labels = labels[keep] if labels is not None else None

    if scheme == "group_balance":
        raw = group_balance_weights(groups)
    elif scheme == "kamiran_calders":
        raw, _, _ = _kamiran_calders_raw(groups, _required(labels), stacklevel=2)
    else:
        raw = error_targeted_weights(
            groups,
            _required(labels),
            _required(used_flags)[keep],
            target_group=target_group,
            strength=strength,
        )

    final, n_clipped = _clip_and_normalize(raw, max_weight=max_weight, normalize=normalize)
    generators, seeds = spawn_streams(seed, _STREAMS)
    copies = stochastic_copies(final, generators["copies"])
    unclipped = normalize_weights(raw) if normalize else raw
    ess = effective_sample_size_table(
        groups.to_numpy(), final, unclipped=unclipped, warn_below=ess_warn_below
    )

    weights = pd.DataFrame(
        {
            "id": groups.index.map(str),
            "sample_weight": final,
            "copies": copies,
            "group": groups.astype(object).to_numpy(),
            "label": labels.to_numpy() if labels is not None else pd.NA,
        },
        index=groups.index.copy(),
    )
    weights.index.name = None
    parameters: dict[str, Any] = {
        "max_weight": max_weight,
        "normalize": normalize,
        "ess_warn_below": ess_warn_below,
        "weights_clipped": n_clipped,
    }
    if scheme == "error_targeted":
        parameters |= {"target_group": target_group, "strength": strength}
    logger.info(
        "weighted %s messages by %s (min %.3g, max %.3g, %d clipped); overall Kish ESS %s",
        f"{len(weights):,}",
        scheme,
        float(final.min()) if final.size else math.nan,
        float(final.max()) if final.size else math.nan,
        n_clipped,
        f"{ess['ess_after'].iloc[-1]:,.0f}",
    )
    return WeightingResult(
        weights=weights,
        effective_sample_size=ess,
        scheme=scheme,
        parameters=parameters,
        seeds=seeds,
        excluded_ids=excluded,
    )


def audit_run_reference(audit_run: str | Path) -> dict[str, Any]:
    """What a weights manifest records about the audit run behind the weights.

    ``audit_run`` is a run folder or its ``manifest.json``.
    """
    path = Path(audit_run)
    folder = path.parent if path.name == "manifest.json" else path
    manifest = read_manifest(folder)
    headline = manifest.get("headline") or manifest.get("headlines")
    return {
        "run_name": manifest.get("run_name"),
        "run_folder": str(folder.resolve()),
        "manifest_sha256": file_sha256(folder / "manifest.json"),
        "finished_at": manifest.get("finished_at"),
        "seed": manifest.get("seed"),
        "headline": headline,
    }


def weight_training_corpus(
    training: pd.DataFrame,
    *,
    audit_run: str | Path,
    scheme: Scheme = "kamiran_calders",
    id_column: str = "id",
    group_column: str = "dialect_group",
    gold_column: str = "gold_toxic",
    flagged_column: str | None = None,
    reason: str | None = None,
    **options: Any,
) -> WeightingResult:
    """Weight a training corpus, separate from the audit set, by a scheme.

    The audit set is rarely the training set: the audit run shows the disparity, and the
    weights go on the corpus the next model is trained on. The caller runs the dialect layer
    on that corpus first, so it already has a group and a gold label per row.

    Parameters
    ----------
    training
        One row per training message with ``id_column``, ``group_column``, ``gold_column`` and,
        for ``error_targeted``, ``flagged_column`` (the audited model's flags on these messages,
        from cross-validation if the model is trained on them).
    audit_run
        The run folder (or its ``manifest.json``) whose findings motivate the weights; its name,
        path and manifest hash are recorded as the reason.
    scheme, options
        Passed to :func:`compute_weights` (``target_group``, ``strength``, ``max_weight``,
        ``normalize``, ``seed``, ``ess_warn_below``).
    reason
        Free text added to the record, for example which disparity the weights target.

    Returns
    -------
    WeightingResult
        With ``source`` naming the audit run, the reason and the training table's size.

    Raises
    ------
    fairaudit.exceptions.InputError
        If a column is missing, ids repeat, or the audit run folder has no manifest.
    """
    needed = [id_column, group_column]
    if scheme != "group_balance":
        needed.append(gold_column)
    if scheme == "error_targeted":
        if flagged_column is None:
            raise InputError("scheme 'error_targeted' needs flagged_column")
        needed.append(flagged_column)
    absent = [c for c in needed if c not in training.columns]
    if absent:
        raise InputError(
            f"training table lacks column(s) {absent}; columns present: {list(training.columns)}"
        )
    source = {
        "audit_run": audit_run_reference(audit_run),
        "reason": reason
        or f"disparities found by audit run {Path(audit_run)}; weights apply to a separate "
        "training corpus",
        "training_rows": int(len(training)),
    }
    frame = training.set_index(training[id_column].astype(str).to_numpy())
    result = compute_weights(
        frame[group_column],
        frame[gold_column] if gold_column in frame.columns else None,
        scheme=scheme,
        flagged=frame[flagged_column] if flagged_column is not None else None,
        **options,
    )
    return WeightingResult(
        weights=result.weights,
        effective_sample_size=result.effective_sample_size,
        scheme=result.scheme,
        parameters=result.parameters,
        seeds=result.seeds,
        excluded_ids=result.excluded_ids,
        source=source,
    )


def export_weights(
    result: WeightingResult,
    out: str | Path,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the weights keyed by id as Parquet, CSV and JSON Lines, with a manifest.

    The folder holds ``weights.parquet``, ``weights.csv``, ``weights.jsonl`` (columns
    :data:`REWEIGHTING_COLUMNS`), ``effective_sample_size.csv`` and ``manifest.json`` (kind
    ``fairaudit-weights``: scheme, parameters, seeds, source audit run, counts, file hashes and
    package versions). Everything is written into a temporary sibling renamed into place at the
    end, so a failure leaves no partial folder.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    fairaudit.exceptions.FairauditError
        If ``out`` exists and ``overwrite`` is false.
    """
    from fairaudit import __version__

    table = result.weights.reset_index(drop=True)
    table["id"] = table["id"].astype(str)
    with atomic_run_folder(out, overwrite=overwrite, kind="fairaudit-weights") as staging:
        table.to_parquet(staging / "weights.parquet", index=False)
        table.to_csv(staging / "weights.csv", index=False, lineterminator="\n")
        table.to_json(staging / "weights.jsonl", orient="records", lines=True)
        result.effective_sample_size.to_csv(
            staging / "effective_sample_size.csv", index=False, lineterminator="\n"
        )
        files = {
            name: file_sha256(staging / name)
            for name in (
                "weights.parquet",
                "weights.csv",
                "weights.jsonl",
                "effective_sample_size.csv",
            )
        }
        manifest = {
            "kind": "fairaudit-weights",
            "fairaudit_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "scheme": result.scheme,
            "parameters": result.parameters,
            "seeds": result.seeds,
            "source": result.source,
            "rows_weighted": int(len(table)),
            "rows_excluded": len(result.excluded_ids),
            "excluded_ids_sample": [str(i) for i in result.excluded_ids[:20]],
            "weight_sum": float(table["sample_weight"].sum()),
            "copies_sum": int(table["copies"].sum()),
            "effective_sample_size": result.effective_sample_size.to_dict(orient="records"),
            "files": files,
            "packages": package_versions(),
        }
        write_json(manifest, staging / "manifest.json")
    folder = Path(out).resolve()
    logger.info("wrote %s weights (%s) to %s", f"{len(table):,}", result.scheme, folder)
    return folder
