"""Figures, display tables and the plain-language summary, built from a run folder's tables.

Both the dashboard and the HTML report show what this module builds, so a reviewer and an
auditor see the same picture of the same numbers. Every function is pure: it takes the tables of
a run folder (``group_metrics``, ``comparisons``, ``utterances``, ``weights``, the manifest as a
dict) and returns a ``plotly.graph_objects.Figure``, a ``pandas.DataFrame`` of display strings,
or plain values. Nothing here reads files or recomputes the audit's statistics; the only
statistic computed here is Kish's effective sample size of the weights, a description of the
weights themselves.

Undefined values (for example a false negative rate in a group without gold toxic items) are
shown as ``"n/a – <reason>"`` from the table's ``undefined_reason``, never plotted as 0.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "METRIC_LABELS",
    "ModelSummary",
    "comparison_table",
    "dialect_counts_figure",
    "fpr_by_group_figure",
    "format_estimate",
    "format_p_value",
    "format_percent",
    "format_undefined",
    "group_label",
    "group_table",
    "headline_summaries",
    "kish_effective_sample_size",
    "weights_table",
]

METRIC_LABELS: dict[str, str] = {
    "false_positive_rate": "False positive rate",
    "false_negative_rate": "False negative rate",
    "flag_rate": "Flag rate",
    "mean_score": "Mean score",
    "precision": "Precision",
}

# Metrics on the 0-1 scale that read naturally as percentages.
_RATE_METRICS = frozenset({"false_positive_rate", "false_negative_rate", "flag_rate", "precision"})

_GROUP_LABELS: dict[str, str] = {
    "aae": "AAE-aligned",
    "sae": "white-aligned (SAE)",
    "uncertain": "dialect-uncertain",
    "overall": "all groups",
}

_CORRECTION_LABELS: dict[str, str] = {
    "holm": "Holm",
    "bonferroni": "Bonferroni",
    "fdr_bh": "Benjamini–Hochberg",
    "bh": "Benjamini–Hochberg",
    "none": "unadjusted",
}

# Okabe & Ito's palette stays distinguishable under the common colour-vision deficiencies.
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

_PLOT_TEMPLATE = "simple_white"

_NOT_AVAILABLE = "n/a"


# --- formatting ---------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _round(value: float, digits: int) -> float:
    # Percentages are formatted from the rounded proportion so that "41.2%" in a sentence and
    # "0.412" in a table are always the same number.
    return float(f"{value:.{digits}f}")


def format_undefined(reason: Any) -> str:
    """Return ``"n/a – <reason>"`` for an undefined value, or ``"n/a"`` without a reason."""
    if _is_missing(reason) or not str(reason).strip():
        return _NOT_AVAILABLE
    return f"{_NOT_AVAILABLE} – {str(reason).strip().replace('_', ' ')}"


def format_estimate(
    estimate: Any,
    ci_low: Any = None,
    ci_high: Any = None,
    *,
    undefined_reason: Any = None,
    digits: int = 3,
) -> str:
    """Format an estimate with its interval, as in ``"0.412 [0.371, 0.455]"``.

    An undefined estimate (a reason is given, or the estimate is missing) becomes
    ``"n/a – <reason>"``. A defined estimate without an interval is shown alone.
    """
    if not _is_missing(undefined_reason) or _is_missing(estimate):
        return format_undefined(undefined_reason)
    text = f"{float(estimate):.{digits}f}"
    if _is_missing(ci_low) or _is_missing(ci_high):
        return text
    return f"{text} [{float(ci_low):.{digits}f}, {float(ci_high):.{digits}f}]"


def format_percent(proportion: float, *, signed: bool = False) -> str:
    """Format a proportion as a percentage with one decimal, consistent with 3-decimal tables."""
    percent = _round(float(proportion), 3) * 100
    return f"{percent:+.1f}" if signed else f"{percent:.1f}"


def format_p_value(p_value: Any) -> str:
    """Format a p-value: three decimals from 0.001 up, two significant digits below."""
    if _is_missing(p_value):
        return _NOT_AVAILABLE
    p_value = float(p_value)
    if p_value >= 0.001:
        return f"{p_value:.3f}"
    if p_value == 0.0:
        return "< 1e-300"
    return f"{p_value:.1e}"


def _is_true(value: Any) -> bool:
    return not _is_missing(value) and bool(value)


def _format_count(value: Any) -> str:
    if _is_missing(value):
        return _NOT_AVAILABLE
    return f"{int(value):,}"


def group_label(group: str) -> str:
    """A reader's name for a dialect group (``"aae"`` -> ``"AAE-aligned"``)."""
    return _GROUP_LABELS.get(str(group), str(group))


def _metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def _correction_label(correction: Any) -> str:
    if _is_missing(correction):
        return "unadjusted"
    return _CORRECTION_LABELS.get(str(correction).lower(), str(correction))


def _ordered(
    values: Iterable[Any], order: Sequence[str] | None, *, last: str | None = None
) -> list[str]:
    present = list(dict.fromkeys(str(v) for v in values))
    ordered = [v for v in (order or ()) if v in present]
    ordered += [v for v in present if v not in ordered]
    if last is not None and last in ordered:
        ordered.remove(last)
        ordered.append(last)
    return ordered


def _require(table: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {', '.join(missing)}")


# --- figures ------------------------------------------------------------------------------


def fpr_by_group_figure(
    group_metrics: pd.DataFrame,
    *,
    metric: str = "false_positive_rate",
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> go.Figure:
    """Plot one metric per model and dialect group, with its interval.

    Parameters
    ----------
    group_metrics
        The run folder's ``group_metrics`` table (model, group, metric, estimate, ci_low,
        ci_high, n, count, interval_method, alpha, undefined_reason, small_group).
    metric
        Which metric to plot; false positive rate by default.
    group_order, model_order
        Order of the groups on the axis and of the models in the legend; others follow in order
        of appearance, and the group ``"overall"`` comes last.

    Returns
    -------
    plotly.graph_objects.Figure
        A point per model and group with asymmetric error bars from ``ci_low`` to ``ci_high``
        and n in the hover text. Small groups use open markers. Undefined values are not
        plotted; the axis label of their group reads ``"n/a – <reason>"``.
    """
    _require(
        group_metrics,
        ("model", "group", "metric", "estimate", "ci_low", "ci_high", "n", "undefined_reason"),
        "group_metrics",
    )
    rows = group_metrics[group_metrics["metric"] == metric]
    groups = _ordered(rows["group"], group_order, last="overall")
    models = _ordered(rows["model"], model_order)
    is_rate = metric in _RATE_METRICS
    value_format = ".1%" if is_rate else ".3f"

    figure = go.Figure()
    undefined_notes: dict[str, list[str]] = {group: [] for group in groups}
    any_small = False
    for index, model in enumerate(models):
        model_rows = rows[rows["model"].astype(str) == model].drop_duplicates("group")
        model_rows = model_rows.set_index(model_rows["group"].astype(str))
        y: list[float | None] = []
        upper: list[float | None] = []
        lower: list[float | None] = []
        hover: list[str] = []
        symbols: list[str] = []
        for group in groups:
            if group not in model_rows.index:
                y.append(None)
                upper.append(None)
                lower.append(None)
                hover.append(f"{model} · {group}: not in the table")
                symbols.append("circle")
                continue
            row = model_rows.loc[group]
            small = _is_true(row.get("small_group"))
            any_small = any_small or small
            symbols.append("circle-open" if small else "circle")
            if not _is_missing(row["undefined_reason"]) or _is_missing(row["estimate"]):
                y.append(None)
                upper.append(None)
                lower.append(None)
                note = format_undefined(row["undefined_reason"])
                undefined_notes[group].append(f"{model}: {note}" if len(models) > 1 else note)
                hover.append(
                    f"<b>{model}</b> · {group}<br>{note}<br>n = {_format_count(row['n'])}"
                )
                continue

            estimate = float(row["estimate"])
            has_interval = not (_is_missing(row["ci_low"]) or _is_missing(row["ci_high"]))
            y.append(estimate)
            upper.append(float(row["ci_high"]) - estimate if has_interval else None)
            lower.append(estimate - float(row["ci_low"]) if has_interval else None)
            lines = [
                f"<b>{model}</b> · {group}",
                f"{_metric_label(metric)}: "
                + format_estimate(row["estimate"], row["ci_low"], row["ci_high"]),
                f"n = {_format_count(row['n'])}"
                + (f", count = {_format_count(row['count'])}" if "count" in row.index else ""),
            ]
            if not _is_missing(row.get("interval_method")):
                lines.append(f"interval: {row['interval_method']}")
            if small:
                lines.append("small group: kept out of the headline")
            hover.append("<br>".join(lines))

        figure.add_trace(
            go.Scatter(
                x=groups,
                y=y,
                name=model,
                mode="markers",
                marker={"size": 11, "color": _PALETTE[index % len(_PALETTE)], "symbol": symbols},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": upper,
                    "arrayminus": lower,
                    "thickness": 1.5,
                    "width": 6,
                },
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
                offsetgroup=model,
            )
        )

    tick_text = []
    for group in groups:
        notes = "<br>".join(
            "<i>" + "<br>".join(textwrap.wrap(note, 28)) + "</i>"
            for note in undefined_notes[group]
        )
        tick_text.append(f"{group}<br>{notes}" if notes else group)
    interval_methods = (
        sorted({str(m) for m in rows["interval_method"].dropna()})
        if "interval_method" in rows.columns
        else []
    )
    subtitle = "point estimate with interval"
    if interval_methods:
        subtitle += f" ({', '.join(interval_methods)})"
    if any_small:
        subtitle += "; open markers: small groups"
    figure.update_layout(
        template=_PLOT_TEMPLATE,
        title={"text": f"{_metric_label(metric)} by dialect group<br><sup>{subtitle}</sup>"},
        scattermode="group",
        height=440,
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        legend={"title": {"text": "model"}},
        xaxis={
            "title": {"text": "dialect group"},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": groups,
            "tickmode": "array",
            "tickvals": groups,
            "ticktext": tick_text,
            "automargin": True,
        },
        yaxis={
            "title": {"text": _metric_label(metric)},
            "tickformat": ".0%" if is_rate else None,
            "hoverformat": value_format,
            "rangemode": "tozero",
            "zeroline": True,
        },
    )
    return figure


def dialect_counts_figure(
    utterances: pd.DataFrame, *, group_order: Sequence[str] | None = None
) -> go.Figure:
    """Bar chart of utterances per dialect group, split into audited and not audited.

    Parameters
    ----------
    utterances
        The run folder's ``utterances`` table; uses ``dialect_group`` and, if present,
        ``in_audit``.
    group_order
        Order of the groups on the axis; others follow in order of appearance.

    Returns
    -------
    plotly.graph_objects.Figure
        Stacked bars with the count on each bar.
    """
    _require(utterances, ("dialect_group",), "utterances")
    groups_column = (
        utterances["dialect_group"]
        .astype("object")
        .where(utterances["dialect_group"].notna(), "(no group)")
    )
    groups = _ordered(groups_column, group_order)
    if "in_audit" in utterances.columns:
        audited = utterances["in_audit"].astype("boolean").fillna(False).astype(bool)
        parts = [("audited", audited), ("not audited", ~audited)]
    else:
        parts = [("utterances", pd.Series(True, index=utterances.index))]

    figure = go.Figure()
    for (name, mask), colour in zip(parts, ("#0072B2", "#BBBBBB"), strict=False):
        counts = groups_column[mask].astype(str).value_counts().reindex(groups, fill_value=0)
        if name == "not audited" and counts.sum() == 0:
            continue
        figure.add_trace(
            go.Bar(
                x=groups,
                y=counts.to_list(),
                name=name,
                marker={"color": colour},
                text=[f"{c:,}" for c in counts],
                textposition="auto",
                hovertemplate="%{x}: %{y:,} utterances " + name + "<extra></extra>",
            )
        )
    figure.update_layout(
        template=_PLOT_TEMPLATE,
        title={"text": "Utterances per dialect group"},
        barmode="stack",
        height=360,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        xaxis={"title": {"text": "dialect group"}, "type": "category"},
        yaxis={"title": {"text": "utterances"}, "tickformat": ","},
    )
    return figure


# --- display tables -----------------------------------------------------------------------


def group_table(
    group_metrics: pd.DataFrame,
    *,
    metric: str | None = None,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-group metrics formatted for display.

    Parameters
    ----------
    group_metrics
        The run folder's ``group_metrics`` table.
    metric
        Keep only this metric; all metrics by default.
    group_order, model_order
        Display order; others follow in order of appearance, ``"overall"`` last.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Metric``, ``Group``, ``Estimate [interval]`` (as in
        ``"0.412 [0.371, 0.455]"``, or ``"n/a – <reason>"``), ``n``, ``Count``,
        ``Interval method`` and ``Small group``.
    """
    _require(
        group_metrics,
        ("model", "group", "metric", "estimate", "ci_low", "ci_high", "n", "undefined_reason"),
        "group_metrics",
    )
    rows = group_metrics if metric is None else group_metrics[group_metrics["metric"] == metric]
    rows = _sorted_for_display(rows, group_order, model_order)
    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Metric": rows["metric"].map(_metric_label),
            "Group": rows["group"].astype(str),
            "Estimate [interval]": [
                format_estimate(
                    r.estimate, r.ci_low, r.ci_high, undefined_reason=r.undefined_reason
                )
                for r in rows.itertuples()
            ],
            "n": rows["n"].map(_format_count),
            "Count": rows["count"].map(_format_count) if "count" in rows else _NOT_AVAILABLE,
            "Interval method": (
                rows["interval_method"].map(lambda m: _NOT_AVAILABLE if _is_missing(m) else str(m))
                if "interval_method" in rows
                else _NOT_AVAILABLE
            ),
            "Small group": (
                rows["small_group"].map(lambda s: "yes" if _is_true(s) else "no")
                if "small_group" in rows
                else "no"
            ),
        }
    )
    return table.reset_index(drop=True)


def comparison_table(
    comparisons: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Group-versus-reference comparisons formatted for display.

    Parameters
    ----------
    comparisons
        The run folder's ``comparisons`` table.
    group_order, model_order
        Display order; others follow in order of appearance.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Metric``, ``Group``, ``Reference``, ``Estimate``,
        ``Reference estimate``, ``Difference [interval]``, ``Ratio``, ``n``, ``n reference``,
        ``Test``, ``p (raw)``, ``p (adjusted)``, ``Correction`` and ``Significant``. An
        undefined comparison reads ``"n/a – <reason>"``.
    """
    _require(
        comparisons,
        (
            "model", "group", "reference", "metric", "estimate", "reference_estimate",
            "difference", "ci_low", "ci_high", "ratio", "n", "n_reference", "method",
            "p_value", "p_adjusted", "correction", "significant", "alpha", "undefined_reason",
        ),
        "comparisons",
    )  # fmt: skip
    rows = _sorted_for_display(comparisons, group_order, model_order)

    def significant(row: Any) -> str:
        if not _is_missing(row.undefined_reason) or _is_missing(row.significant):
            return format_undefined(row.undefined_reason)
        alpha = "" if _is_missing(row.alpha) else f" (α = {float(row.alpha):g})"
        return ("yes" if bool(row.significant) else "no") + alpha

    def number(value: Any, digits: int) -> str:
        return _NOT_AVAILABLE if _is_missing(value) else f"{float(value):.{digits}f}"

    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Metric": rows["metric"].map(_metric_label),
            "Group": rows["group"].astype(str),
            "Reference": rows["reference"].astype(str),
            "Estimate": rows["estimate"].map(lambda v: number(v, 3)),
            "Reference estimate": rows["reference_estimate"].map(lambda v: number(v, 3)),
            "Difference [interval]": [
                format_estimate(
                    r.difference, r.ci_low, r.ci_high, undefined_reason=r.undefined_reason
                )
                for r in rows.itertuples()
            ],
            "Ratio": rows["ratio"].map(lambda v: number(v, 2)),
            "n": rows["n"].map(_format_count),
            "n reference": rows["n_reference"].map(_format_count),
            "Test": rows["method"].map(lambda m: _NOT_AVAILABLE if _is_missing(m) else str(m)),
            "p (raw)": rows["p_value"].map(format_p_value),
            "p (adjusted)": rows["p_adjusted"].map(format_p_value),
            "Correction": rows["correction"].map(_correction_label),
            "Significant": [significant(r) for r in rows.itertuples()],
        }
    )
    return table.reset_index(drop=True)


def _sorted_for_display(
    rows: pd.DataFrame, group_order: Sequence[str] | None, model_order: Sequence[str] | None
) -> pd.DataFrame:
    models = _ordered(rows["model"], model_order)
    groups = _ordered(rows["group"], group_order, last="overall")
    metrics = _ordered(rows["metric"], list(METRIC_LABELS))
    key = pd.DataFrame(
        {
            "model": rows["model"].astype(str).map(models.index),
            "metric": rows["metric"].astype(str).map(metrics.index),
            "group": rows["group"].astype(str).map(groups.index),
        },
        index=rows.index,
    )
    return rows.loc[key.sort_values(["model", "metric", "group"], kind="stable").index]


def kish_effective_sample_size(sample_weight: Iterable[float]) -> float:
    """Kish's effective sample size of a set of weights, ``(sum w)^2 / sum w^2``.

    Parameters
    ----------
    sample_weight
        Non-negative weights; missing values are ignored.

    Returns
    -------
    float
        The number of equally weighted items that would give the same variance of a weighted
        mean; equal to the number of items when all weights are equal. NaN when the weights
        sum to zero.

    References
    ----------
    .. [1] Kish, L. (1965). *Survey Sampling*. New York: John Wiley & Sons, section 11.7.
    """
    weights = pd.Series(list(sample_weight), dtype="float64").dropna()
    sum_of_squares = float((weights**2).sum())
    if sum_of_squares == 0.0:
        return math.nan
    return float(weights.sum()) ** 2 / sum_of_squares


def weights_table(
    weights: pd.DataFrame, *, group_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Summarise sample weights per dialect group and label, with an overall row.

    Parameters
    ----------
    weights
        The run folder's ``weights`` table (id, sample_weight, copies, group, label).
    group_order
        Display order of the groups.

    Returns
    -------
    pandas.DataFrame
        String columns ``Group``, ``Label``, ``Items``, ``Mean weight``, ``Min weight``,
        ``Max weight``, ``Total weight``, ``Total copies`` and ``Kish effective n``.
    """
    _require(weights, ("sample_weight", "group", "label"), "weights")
    frame = weights.assign(
        group=weights["group"].astype("object").where(weights["group"].notna(), "(no group)"),
        label=weights["label"].astype("object").where(weights["label"].notna(), "(no label)"),
    )
    frame["group"] = frame["group"].astype(str)
    frame["label"] = frame["label"].astype(str)
    groups = _ordered(frame["group"], group_order)

    def summarise(part: pd.DataFrame, group: str, label: str) -> dict[str, str]:
        w = part["sample_weight"].astype("float64")
        copies = f"{int(part['copies'].sum()):,}" if "copies" in part.columns else _NOT_AVAILABLE
        return {
            "Group": group,
            "Label": label,
            "Items": f"{len(part):,}",
            "Mean weight": f"{w.mean():.3f}",
            "Min weight": f"{w.min():.3f}",
            "Max weight": f"{w.max():.3f}",
            "Total weight": f"{w.sum():,.1f}",
            "Total copies": copies,
            "Kish effective n": f"{kish_effective_sample_size(w):,.1f}",
        }

    records = []
    for group in groups:
        in_group = frame[frame["group"] == group]
        for label in sorted(in_group["label"].unique()):
            records.append(summarise(in_group[in_group["label"] == label], group, label))
    if len(frame):
        records.append(summarise(frame, "all", "all"))
    return pd.DataFrame.from_records(
        records,
        columns=[
            "Group", "Label", "Items", "Mean weight", "Min weight", "Max weight",
            "Total weight", "Total copies", "Kish effective n",
        ],
    )  # fmt: skip


# --- plain-language summary ---------------------------------------------------------------


@dataclass(frozen=True)
class ModelSummary:
    """The plain-language headline for one model, generated from the tables.

    Attributes
    ----------
    model
        The model's name.
    sentences
        The sentences, in reading order.
    """

    model: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        """The sentences joined into one paragraph."""
        return " ".join(self.sentences)


def _lookup(table: pd.DataFrame, **where: Any) -> pd.Series | None:
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        mask &= table[column].astype(str) == str(value)
    found = table[mask]
    return None if found.empty else found.iloc[0]


def _describe_rate(row: pd.Series | None, metric: str) -> str:
    if row is None:
        return "n/a – not in the group metrics table"
    if not _is_missing(row["undefined_reason"]) or _is_missing(row["estimate"]):
        return format_undefined(row["undefined_reason"])
    if metric not in _RATE_METRICS:
        return format_estimate(row["estimate"], row["ci_low"], row["ci_high"])
    text = f"{format_percent(row['estimate'])}%"
    if not (_is_missing(row["ci_low"]) or _is_missing(row["ci_high"])):
        text += f" [{format_percent(row['ci_low'])}%, {format_percent(row['ci_high'])}%]"
    return text


def _describe_difference(row: pd.Series, metric: str) -> str:
    if metric in _RATE_METRICS:
        text = f"{format_percent(row['difference'], signed=True)} percentage points"
        if not (_is_missing(row["ci_low"]) or _is_missing(row["ci_high"])):
            low = format_percent(row["ci_low"], signed=True)
            high = format_percent(row["ci_high"], signed=True)
            text += f" [{low}, {high}]"
        return text
    return format_estimate(row["difference"], row["ci_low"], row["ci_high"])


def _opening(metric: str, model: str, group: str, reference: str, a: str, b: str) -> str:
    group_name, reference_name = group_label(group), group_label(reference)
    if metric == "false_positive_rate":
        return (
            f"On gold non-toxic messages, {model} flagged {a} of {group_name} messages "
            f"vs {b} of {reference_name} messages"
        )
    if metric == "false_negative_rate":
        return (
            f"On gold toxic messages, {model} missed {a} of {group_name} messages "
            f"vs {b} of {reference_name} messages"
        )
    if metric == "flag_rate":
        return (
            f"Over all audited messages, {model} flagged {a} of {group_name} messages "
            f"vs {b} of {reference_name} messages"
        )
    label = _metric_label(metric).lower()
    return f"{model}'s {label} was {a} for {group_name} vs {b} for {reference_name}"


def _comparison_sentences(
    model: str,
    metric: str,
    group: str,
    reference: str,
    group_metrics: pd.DataFrame,
    comparisons: pd.DataFrame,
    alpha: float | None,
) -> list[str]:
    group_row = _lookup(group_metrics, model=model, group=group, metric=metric)
    reference_row = _lookup(group_metrics, model=model, group=reference, metric=metric)
    undefined = [
        f"{group_label(g)} ({g}): {_describe_rate(row, metric)}"
        for g, row in ((group, group_row), (reference, reference_row))
        if row is None or not _is_missing(row["undefined_reason"]) or _is_missing(row["estimate"])
    ]
    if undefined:
        return [
            f"{model}'s {_metric_label(metric).lower()} cannot be compared between "
            f"{group_label(group)} and {group_label(reference)} messages: "
            + "; ".join(undefined)
            + "."
        ]
    opening = _opening(
        metric,
        model,
        group,
        reference,
        _describe_rate(group_row, metric),
        _describe_rate(reference_row, metric),
    )
    comparison = _lookup(comparisons, model=model, group=group, reference=reference, metric=metric)
    if comparison is None:
        return [f"{opening}; no comparison of the two is in the comparisons table."]
    if not _is_missing(comparison["undefined_reason"]) or _is_missing(comparison["difference"]):
        reason = format_undefined(comparison["undefined_reason"])
        return [f"{opening}; the difference cannot be estimated ({reason})."]

    correction = _correction_label(comparison["correction"])
    method = "" if _is_missing(comparison["method"]) else f"{comparison['method']}, "
    adjusted = "" if correction == "unadjusted" else f"{correction}-adjusted"
    sentences = [
        f"{opening}; difference {_describe_difference(comparison, metric)}, "
        f"p_adjusted = {format_p_value(comparison['p_adjusted'])} "
        f"({method}{adjusted or 'unadjusted'})."
    ]
    row_alpha = alpha if _is_missing(comparison["alpha"]) else float(comparison["alpha"])
    at_alpha = "" if row_alpha is None else f" at α = {row_alpha:g}"
    if _is_missing(comparison["significant"]):
        sentences.append("Whether the difference is significant is not recorded.")
    elif bool(comparison["significant"]):
        sentences.append(
            f"The difference is statistically significant{at_alpha}"
            + (f" after {correction} adjustment." if adjusted else ".")
        )
    else:
        sentences.append(
            f"The difference is not statistically significant{at_alpha}"
            + (f" after {correction} adjustment" if adjusted else "")
            + "; this is not evidence that the model treats the groups alike."
        )
    return sentences


def headline_summaries(
    manifest: Mapping[str, Any],
    group_metrics: pd.DataFrame,
    comparisons: pd.DataFrame,
    *,
    focus_group: str = "aae",
) -> list[ModelSummary]:
    """Generate the plain-language headline per model from the run's numbers.

    Parameters
    ----------
    manifest
        The run folder's manifest: uses ``models``, ``reference_group``, ``alpha`` and
        ``headline`` (metric, worst group and small groups kept out of the headline).
    group_metrics, comparisons
        The run folder's tables; every number in the sentences is taken from them, formatted
        the same way as in :func:`group_table` and :func:`comparison_table`.
    focus_group
        The group the audit is about, compared with the reference group first.

    Returns
    -------
    list of ModelSummary
        One entry per model, in the manifest's order.
    """
    headline_all = manifest.get("headline") or {}
    reference = str(manifest.get("reference_group") or "sae")
    alpha = manifest.get("alpha")
    alpha = None if _is_missing(alpha) else float(alpha)
    models = [m.get("name") for m in manifest.get("models") or [] if m.get("name")]
    models = _ordered(list(models) + list(group_metrics["model"].astype(str)), models)

    summaries = []
    for model in models:
        headline = headline_all.get(model) or {}
        metric = str(headline.get("metric") or "false_positive_rate")
        sentences = _comparison_sentences(
            model, metric, focus_group, reference, group_metrics, comparisons, alpha
        )

        worst = headline.get("worst_group")
        if not _is_missing(worst) and str(worst) not in (focus_group, reference):
            sentences.append(
                f"Among groups large enough to judge, the highest {_metric_label(metric).lower()}"
                f" was in the {group_label(str(worst))} group ({worst})."
            )
            sentences += _comparison_sentences(
                model, metric, str(worst), reference, group_metrics, comparisons, alpha
            )

        excluded = [str(g) for g in headline.get("excluded_small_groups") or []]
        if excluded:
            described = []
            for group in excluded:
                row = _lookup(group_metrics, model=model, group=group, metric=metric)
                n = "" if row is None else f" (n = {_format_count(row['n'])})"
                described.append(f"{group}{n}")
            sentences.append(
                "Excluded from this headline as too small to judge: "
                + ", ".join(described)
                + "; their figures are in the tables below."
            )
        summaries.append(ModelSummary(model=model, sentences=tuple(sentences)))
    return summaries
