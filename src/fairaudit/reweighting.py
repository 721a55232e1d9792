"""Kamiran-Calders reweighing: sample weights that make the label independent of the group.

Takes a group and a label per message (two series sharing the message-id index) and returns one
row per message with its ``sample_weight`` and an integer number of ``copies`` for training
tools that cannot take weights. Works for any number of groups and labels, with no collapse to
"privileged versus the rest".
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from fairaudit.exceptions import InputError, UndefinedMetricWarning

__all__ = ["REWEIGHTING_COLUMNS", "kamiran_calders"]

logger = logging.getLogger(__name__)

REWEIGHTING_COLUMNS = ("id", "sample_weight", "copies", "group", "label")
"""Columns of the table :func:`kamiran_calders` returns."""


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
    if not groups.index.equals(labels.index):
        raise InputError("groups and labels must share the same index of message ids")
    if groups.index.has_duplicates:
        duplicated = groups.index[groups.index.duplicated()].unique().tolist()
        raise InputError(f"message ids occur more than once: {duplicated[:20]}")

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
                stacklevel=2,
            )

    stacked = cell_weights.stack().rename("sample_weight")
    keys = pd.MultiIndex.from_arrays([groups.to_numpy(), labels.to_numpy()])
    weights = stacked.reindex(keys).to_numpy(dtype=float)
    if normalize and n:
        weights = weights / weights.mean()

    rng = np.random.default_rng(seed)
    whole = np.floor(weights)
    copies = (whole + (rng.random(n) < weights - whole)).astype(np.int64)

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
        int((observed > 0).sum()),
        int(empty.to_numpy().sum()),
    )
    return result
