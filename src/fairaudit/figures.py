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
    "comparison_caption",
    "comparison_table",
    "dialect_counts_figure",
    "fpr_by_group_figure",
    "format_estimate",
    "format_p_value",
    "format_percent",
    "format_undefined",
    "group_label",
    "NOT_APPLICABLE",
    "group_table",
    "headline_summaries",
    "is_caveat_note",
    "kish_effective_sample_size",
    "kish_by_group_table",
    "uses_own_groups",
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

# Shown where a column does not apply to a row (a count for a mean score), unlike "n/a",
# which marks a value that applies but is undefined.
NOT_APPLICABLE = "—"

_P_DECIMAL_FLOOR = 1e-4
_P_FLOOR = 1e-300

# The start of the manifest's group rule when the groups come from the user's own column.
_OWN_GROUPS_RULE = "groups from the corpus column"


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
    """Format a p-value the way the command line does.

    Four decimals from 1e-4 up (``"0.0047"``), scientific notation with two significant digits
    below (``"1.2e-13"``), and ``"< 1e-300"`` for zero or anything below 1e-300, where a
    double's precision has run out and the printed digits would mean nothing.
    """
    if _is_missing(p_value):
        return _NOT_AVAILABLE
    p_value = float(p_value)
    if p_value >= _P_DECIMAL_FLOOR:
        return f"{p_value:.4f}"
    if p_value < _P_FLOOR:
        return f"< {_P_FLOOR:g}"
    return f"{p_value:.1e}"


def _is_true(value: Any) -> bool:
    return not _is_missing(value) and bool(value)


def _format_count(value: Any) -> str:
    if _is_missing(value):
        return _NOT_AVAILABLE
    return f"{int(value):,}"


def _format_metric_count(metric: str, count: Any) -> str:
    if _is_missing(count) and metric not in _RATE_METRICS:
        return NOT_APPLICABLE
    return _format_count(count)


def group_label(group: str, *, own_groups: bool = False) -> str:
    """A reader's name for a group (``"aae"`` -> ``"AAE-aligned"``).

    With ``own_groups`` (the groups come from the user's corpus column, see
    :func:`uses_own_groups`) the name is returned as it is, since ``"aae"`` there means
    whatever the user meant by it.
    """
    if own_groups:
        return "all groups" if str(group) == "overall" else str(group)
    return _GROUP_LABELS.get(str(group), str(group))


def uses_own_groups(manifest: Mapping[str, Any]) -> bool:
    """Whether the run's groups come from the user's corpus column, not the dialect rule."""
    rule = (manifest.get("dialect") or {}).get("group_rule")
    return isinstance(rule, str) and rule.strip().lower().startswith(_OWN_GROUPS_RULE)


def is_caveat_note(note: Any) -> bool:
    """Whether a model note is a caveat: it starts with ``"in-sample:"`` or mentions a warning.

    Other notes (the score's meaning, the text normaliser's locale, the cache) are provenance.
    """
    text = str(note).strip().lower()
    return text.startswith("in-sample:") or "warning" in text


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
    group_noun: str = "dialect group",
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
    group_noun
        What the groups are called in the title and on the axis; ``"group"`` when the groups
        are the user's own rather than dialect groups.

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
                + (
                    f", count = {_format_count(row['count'])}"
                    if "count" in row.index and not _is_missing(row["count"])
                    else ""
                ),
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
        title={"text": f"{_metric_label(metric)} by {group_noun}<br><sup>{subtitle}</sup>"},
        scattermode="group",
        height=440,
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        legend={"title": {"text": "model"}},
        xaxis={
            "title": {"text": group_noun},
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
    utterances: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    group_noun: str = "dialect group",
) -> go.Figure:
    """Bar chart of utterances per dialect group, split into audited and not audited.

    Parameters
    ----------
    utterances
        The run folder's ``utterances`` table; uses ``dialect_group`` (the audited groups,
        whether assigned by the dialect rule or taken from the user's own column) and, if
        present, ``in_audit``.
    group_order
        Order of the groups on the axis; others follow in order of appearance.
    group_noun
        What the groups are called in the title and on the axis.

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
        title={"text": f"Utterances per {group_noun}"},
        barmode="stack",
        height=360,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        xaxis={"title": {"text": group_noun}, "type": "category"},
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
        ``Interval method`` and ``Small group``. ``Count`` reads ``"—"`` where no count
        applies (a mean score), and ``"n/a"`` only where a count applies but is missing.
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
            "Count": [
                _format_metric_count(metric, count)
                for metric, count in zip(
                    rows["metric"].astype(str),
                    rows["count"] if "count" in rows else [None] * len(rows),
                    strict=True,
                )
            ],
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
    """Group-versus-reference comparisons formatted for a compact display.

    Columns that hold one value for every row (the reference group, the correction and α) are
    left out and belong in the table's caption, see :func:`comparison_caption`; they are kept
    as columns only when they vary.

    Parameters
    ----------
    comparisons
        The run folder's ``comparisons`` table. Its ``undefined_reason`` says why the
        difference or the test is undefined; the optional ``ratio_undefined_reason`` (newer run
        folders) says why the ratio is. A difference counts as undefined only when
        ``difference`` is missing, so a ratio with a zero denominator never hides a defined
        difference.
    group_order, model_order
        Display order; others follow in order of appearance.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Metric``, ``Group`` (and ``Reference`` if it varies),
        ``Estimate vs reference`` (``"0.412 vs 0.201"``), ``Difference [interval]``,
        ``Ratio``, ``n vs reference``, ``Test``, ``p (raw)``, ``p (adjusted)``,
        ``Significant`` (``"yes"``, ``"no"`` or ``"n/a – <reason>"``), and ``Correction`` and
        ``α`` if they vary.
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

    def number(value: Any, digits: int) -> str:
        return _NOT_AVAILABLE if _is_missing(value) else f"{float(value):.{digits}f}"

    def ratio(row: Any) -> str:
        if not _is_missing(row["ratio"]):
            return f"{float(row['ratio']):.2f}"
        return format_undefined(_ratio_undefined_reason(row))

    def significant(row: Any) -> str:
        if _is_missing(row["significant"]):
            return format_undefined(row["undefined_reason"])
        return "yes" if bool(row["significant"]) else "no"

    records = [row for _, row in rows.iterrows()]
    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Metric": rows["metric"].map(_metric_label),
            "Group": rows["group"].astype(str),
            "Reference": rows["reference"].astype(str),
            "Estimate vs reference": [
                f"{number(r['estimate'], 3)} vs {number(r['reference_estimate'], 3)}"
                for r in records
            ],
            "Difference [interval]": [
                format_estimate(
                    r["difference"],
                    r["ci_low"],
                    r["ci_high"],
                    undefined_reason=_difference_undefined_reason(r),
                )
                for r in records
            ],
            "Ratio": [ratio(r) for r in records],
            "n vs reference": [
                f"{_format_count(r['n'])} vs {_format_count(r['n_reference'])}" for r in records
            ],
            "Test": rows["method"].map(lambda m: _NOT_AVAILABLE if _is_missing(m) else str(m)),
            "p (raw)": rows["p_value"].map(format_p_value),
            "p (adjusted)": rows["p_adjusted"].map(format_p_value),
            "Significant": [significant(r) for r in records],
            "Correction": rows["correction"].map(_correction_label),
            "α": rows["alpha"].map(lambda a: _NOT_AVAILABLE if _is_missing(a) else f"{a:g}"),
        },
        index=rows.index,
    )
    constant = [c for c in ("Reference", "Correction", "α") if table[c].nunique() <= 1]
    return table.drop(columns=constant).reset_index(drop=True)


def comparison_caption(comparisons: pd.DataFrame) -> str:
    """The caption of :func:`comparison_table`: the reference, correction and α it leaves out.

    Parameters
    ----------
    comparisons
        The run folder's ``comparisons`` table.

    Returns
    -------
    str
        One or two sentences, naming each value that is the same in every row; a value that
        varies is a column of the table instead and is not named here.
    """
    if comparisons.empty:
        return "No comparisons were made."
    parts = []
    references = comparisons["reference"].dropna().astype(str).unique()
    if len(references) == 1:
        parts.append(f"Each group is compared with the reference group {references[0]}.")
    corrections = comparisons["correction"].map(_correction_label).unique()
    alphas = comparisons["alpha"].dropna().unique()
    adjusted = ""
    if len(corrections) == 1:
        adjusted = (
            "p (adjusted) is not adjusted for multiple comparisons"
            if corrections[0] == "unadjusted"
            else f"p (adjusted) is {corrections[0]}-adjusted across the comparisons"
        )
    if len(alphas) == 1:
        rule = f"“Significant” means p (adjusted) < α = {float(alphas[0]):g}"
        adjusted = f"{adjusted}; {rule[0].lower()}{rule[1:]}" if adjusted else rule
    if adjusted:
        parts.append(adjusted + ".")
    if "interval_method" in comparisons.columns:
        methods = sorted({str(m) for m in comparisons["interval_method"].dropna()})
        if methods:
            parts.append(f"Difference intervals: {', '.join(methods)}.")
    return " ".join(parts)


def _difference_undefined_reason(row: Mapping[str, Any]) -> Any:
    # Old tables give one undefined_reason that may be about the ratio alone (a zero
    # denominator), so the difference is undefined only when it is missing.
    return row["undefined_reason"] if _is_missing(row["difference"]) else None


def _ratio_undefined_reason(row: Mapping[str, Any]) -> Any:
    reason = row.get("ratio_undefined_reason")
    return row["undefined_reason"] if _is_missing(reason) else reason


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


def _readable_label(label: Any) -> str:
    # The weights' label is the gold label as a boolean: True is a toxic item.
    if _is_missing(label):
        return "(no label)"
    if isinstance(label, bool) or str(label) in ("True", "False"):
        return "toxic" if str(label) == "True" else "non-toxic"
    return str(label)


def _weights_frame(weights: pd.DataFrame) -> pd.DataFrame:
    _require(weights, ("sample_weight", "group", "label"), "weights")
    frame = weights.assign(
        group=weights["group"].astype("object").where(weights["group"].notna(), "(no group)"),
        label=weights["label"].astype("object").map(_readable_label),
    )
    frame["group"] = frame["group"].astype(str)
    return frame


def weights_table(
    weights: pd.DataFrame, *, group_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Summarise sample weights per dialect group and gold label, with an overall row.

    Within a cell (group and label) every item has the same weight, so the cells carry no
    effective sample size; :func:`kish_by_group_table` gives it per group.

    Parameters
    ----------
    weights
        The run folder's ``weights`` table (id, sample_weight, copies, group, label); a
        boolean label is the gold label and reads ``"toxic"`` or ``"non-toxic"``.
    group_order
        Display order of the groups.

    Returns
    -------
    pandas.DataFrame
        String columns ``Group``, ``Label``, ``Items``, ``Mean weight``, ``Min weight``,
        ``Max weight``, ``Total weight`` and ``Total copies``.
    """
    frame = _weights_frame(weights)
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
            "Total weight", "Total copies",
        ],
    )  # fmt: skip


def kish_by_group_table(
    weights: pd.DataFrame, *, group_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Kish's effective sample size of the weights per group (across its labels) and overall.

    Parameters
    ----------
    weights
        The run folder's ``weights`` table.
    group_order
        Display order of the groups; the row ``"all"`` comes last.

    Returns
    -------
    pandas.DataFrame
        String columns ``Group``, ``Items`` and ``Kish effective n``
        (see :func:`kish_effective_sample_size`).
    """
    frame = _weights_frame(weights)
    records = []
    parts = [(g, frame[frame["group"] == g]) for g in _ordered(frame["group"], group_order)]
    if len(frame):
        parts.append(("all", frame))
    for group, part in parts:
        records.append(
            {
                "Group": group,
                "Items": f"{len(part):,}",
                "Kish effective n": f"{kish_effective_sample_size(part['sample_weight']):,.1f}",
            }
        )
    return pd.DataFrame.from_records(records, columns=["Group", "Items", "Kish effective n"])


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
    caveats
        The model's notes that qualify these numbers: those starting with ``"in-sample:"``
        (the model saw some of the audited rows in training), prefix included.
    audit_subset
        Which rows were audited, from the manifest's ``corpus.audit_subset``; None when every
        row counts.
    """

    model: str
    sentences: tuple[str, ...]
    caveats: tuple[str, ...] = ()
    audit_subset: str | None = None

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


def _opening(
    metric: str, model: str, group: str, reference: str, a: str, b: str, *, own_groups: bool
) -> str:
    group_name = group_label(group, own_groups=own_groups)
    reference_name = group_label(reference, own_groups=own_groups)
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
    *,
    own_groups: bool = False,
) -> list[str]:
    def label(g: str) -> str:
        return group_label(g, own_groups=own_groups)

    group_row = _lookup(group_metrics, model=model, group=group, metric=metric)
    reference_row = _lookup(group_metrics, model=model, group=reference, metric=metric)
    undefined = [
        (f"{label(g)} ({g})" if label(g) != g else g) + f": {_describe_rate(row, metric)}"
        for g, row in ((group, group_row), (reference, reference_row))
        if row is None or not _is_missing(row["undefined_reason"]) or _is_missing(row["estimate"])
    ]
    if undefined:
        return [
            f"{model}'s {_metric_label(metric).lower()} cannot be compared between "
            f"{label(group)} and {label(reference)} messages: " + "; ".join(undefined) + "."
        ]
    opening = _opening(
        metric,
        model,
        group,
        reference,
        _describe_rate(group_row, metric),
        _describe_rate(reference_row, metric),
        own_groups=own_groups,
    )
    comparison = _lookup(comparisons, model=model, group=group, reference=reference, metric=metric)
    if comparison is None:
        return [f"{opening}; no comparison of the two is in the comparisons table."]
    # The difference is undefined only when it is missing: an old table's undefined_reason
    # may be about the ratio alone (a zero denominator), or about the test.
    if _is_missing(comparison["difference"]):
        reason = format_undefined(comparison["undefined_reason"])
        return [f"{opening}; the difference cannot be estimated ({reason})."]

    difference = _describe_difference(comparison, metric)
    if _is_missing(comparison["p_adjusted"]):
        reason = format_undefined(comparison["undefined_reason"])
        return [f"{opening}; difference {difference}; no test was possible ({reason})."]
    correction = _correction_label(comparison["correction"])
    method = "" if _is_missing(comparison["method"]) else f"{comparison['method']}, "
    adjusted = "" if correction == "unadjusted" else f"{correction}-adjusted"
    sentences = [
        f"{opening}; difference {difference}, "
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
        The run folder's manifest: uses ``models`` (names and notes), ``reference_group``,
        ``alpha``, ``headline`` (metric, worst group and small groups kept out of the
        headline), ``corpus.audit_subset`` and ``dialect.group_rule`` (whether the groups are
        the user's own, named as they are).
    group_metrics, comparisons
        The run folder's tables; every number in the sentences is taken from them, formatted
        the same way as in :func:`group_table` and :func:`comparison_table`.
    focus_group
        The group the audit is about, compared with the reference group first. When a model
        has no such group (the user's own groups), the headline's worst group is used, or else
        the first group that is not the reference.

    Returns
    -------
    list of ModelSummary
        One entry per model, in the manifest's order.
    """
    headline_all = manifest.get("headline") or {}
    reference = str(manifest.get("reference_group") or "sae")
    alpha = manifest.get("alpha")
    alpha = None if _is_missing(alpha) else float(alpha)
    own_groups = uses_own_groups(manifest)
    audit_subset = (manifest.get("corpus") or {}).get("audit_subset")
    audit_subset = str(audit_subset).strip() if audit_subset else None
    notes = {
        str(m.get("name")): [str(n) for n in m.get("notes") or []]
        for m in manifest.get("models") or []
        if m.get("name")
    }
    models = [m.get("name") for m in manifest.get("models") or [] if m.get("name")]
    models = _ordered(list(models) + list(group_metrics["model"].astype(str)), models)

    summaries = []
    for model in models:
        headline = headline_all.get(model) or {}
        metric = str(headline.get("metric") or "false_positive_rate")
        worst = headline.get("worst_group")
        worst = None if _is_missing(worst) else str(worst)
        focus = _focus_group(group_metrics, model, metric, focus_group, reference, worst)
        sentences = _comparison_sentences(
            model,
            metric,
            focus,
            reference,
            group_metrics,
            comparisons,
            alpha,
            own_groups=own_groups,
        )

        if worst is not None and worst not in (focus, reference):
            worst_name = group_label(worst, own_groups=own_groups)
            sentences.append(
                f"Among groups large enough to judge, the highest {_metric_label(metric).lower()}"
                f" was in the {worst_name} group"
                + (f" ({worst})." if worst_name != worst else ".")
            )
            sentences += _comparison_sentences(
                model,
                metric,
                worst,
                reference,
                group_metrics,
                comparisons,
                alpha,
                own_groups=own_groups,
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
        caveats = tuple(
            n.strip() for n in notes.get(model, []) if n.strip().lower().startswith("in-sample:")
        )
        summaries.append(
            ModelSummary(
                model=model,
                sentences=tuple(sentences),
                caveats=caveats,
                audit_subset=audit_subset,
            )
        )
    return summaries


def _focus_group(
    group_metrics: pd.DataFrame,
    model: str,
    metric: str,
    focus_group: str,
    reference: str,
    worst: str | None,
) -> str:
    rows = group_metrics[
        (group_metrics["model"].astype(str) == model) & (group_metrics["metric"] == metric)
    ]
    present = [g for g in dict.fromkeys(rows["group"].astype(str)) if g != "overall"]
    if focus_group in present or not present:
        return focus_group
    if worst is not None and worst != reference and worst in present:
        return worst
    others = [g for g in present if g != reference]
    return others[0] if others else focus_group
