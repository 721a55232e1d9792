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
    "ab_change_figure",
    "ab_comparison_table",
    "ab_summary_table",
    "bias_auc_comparison_table",
    "bias_auc_table",
    "calibration_figure",
    "calibration_summary_table",
    "cmh_table",
    "constant_value",
    "effective_sample_size_table",
    "generic_table",
    "label_bias_sentence",
    "label_bias_table",
    "power_table",
    "regression_sentences",
    "regression_table",
    "regression_terms_table",
    "run_pair_gap_table",
    "run_pair_group_metrics",
    "soft_metrics_table",
    "threshold_sensitivity_figure",
    "threshold_sensitivity_table",
    "threshold_sweep_figure",
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
            "Small group": _small_group_column(rows),
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
            return format_estimate(
                row["ratio"], row.get("ratio_ci_low"), row.get("ratio_ci_high"), digits=2
            )
        return format_undefined(_ratio_undefined_reason(row))

    def odds_ratio(row: Any) -> str:
        if _is_missing(row.get("odds_ratio")):
            return NOT_APPLICABLE if _is_missing(row.get("odds_ratio_method")) else _NOT_AVAILABLE
        return format_estimate(
            row["odds_ratio"],
            row.get("odds_ratio_ci_low"),
            row.get("odds_ratio_ci_high"),
            digits=2,
        )

    def four_fifths(row: Any) -> str:
        value = row.get("four_fifths_ratio")
        if _is_missing(value):
            return NOT_APPLICABLE
        text = f"{float(value):.3f}"
        return f"{text} – below 0.8" if _is_true(row.get("four_fifths_violated")) else text

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
            "p (BH)": [format_p_value(r.get("p_adjusted_bh")) for r in records],
            "Significant": [significant(r) for r in records],
            "Odds ratio [interval]": [odds_ratio(r) for r in records],
            "Four-fifths ratio": [four_fifths(r) for r in records],
            "Correction": rows["correction"].map(_correction_label),
            "α": rows["alpha"].map(lambda a: _NOT_AVAILABLE if _is_missing(a) else f"{a:g}"),
        },
        index=rows.index,
    )
    optional = {
        "p (BH)": "p_adjusted_bh",
        "Odds ratio [interval]": "odds_ratio",
        "Four-fifths ratio": "four_fifths_ratio",
    }
    absent = [name for name, column in optional.items() if column not in comparisons.columns]
    constant = [c for c in ("Reference", "Correction", "α") if table[c].nunique() <= 1]
    return table.drop(columns=constant + absent).reset_index(drop=True)


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
    if "p_adjusted_bh" in comparisons.columns:
        parts.append(
            "p (BH) is Benjamini–Hochberg-adjusted (false discovery rate) across the same "
            "comparisons, shown beside it."
        )
    if "interval_method" in comparisons.columns:
        methods = sorted({str(m) for m in comparisons["interval_method"].dropna()})
        if methods:
            parts.append(f"Difference intervals: {', '.join(methods)}.")
    for column, name in (
        ("ratio_interval_method", "Ratio intervals"),
        ("odds_ratio_method", "Odds ratio intervals"),
    ):
        if column in comparisons.columns:
            methods = sorted({_label(m) for m in comparisons[column].dropna()})
            if methods:
                parts.append(f"{name}: {', '.join(methods)}.")
    if "four_fifths_ratio" in comparisons.columns:
        rule = (
            "Four-fifths ratio: the group's rate of the favourable outcome divided by the "
            "reference group's, “below 0.8” marking a violation of the four-fifths rule of "
            "thumb; “—” where it does not apply"
        )
        notes = []
        if "four_fifths_note" in comparisons.columns:
            notes = list(dict.fromkeys(str(n) for n in comparisons["four_fifths_note"].dropna()))
        parts.append(rule + (f" ({'; '.join(notes)})." if notes else "."))
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


# --- further results: bias AUCs, controls, label bias, robustness, reweighting ---------------

_BIAS_AUC_LABELS: dict[str, str] = {
    "subgroup_auc": "Subgroup AUC",
    "bpsn_auc": "BPSN AUC",
    "bnsp_auc": "BNSP AUC",
    "positive_aeg": "Positive AEG",
    "negative_aeg": "Negative AEG",
    "roc_auc": "ROC AUC",
}

_METHOD_LABELS: dict[str, str] = {
    "delong": "DeLong",
    "delong_unpaired": "DeLong (independent groups)",
    "delong_overlapping": "DeLong (overlapping samples)",
    "cochran_mantel_haenszel": "Cochran–Mantel–Haenszel",
    "robins_breslow_greenland": "Robins–Breslow–Greenland",
    "ml_wald": "maximum likelihood, Wald",
    "firth_penalised_lr": "Firth penalised likelihood",
    "normal_cohens_h": "normal approximation (Cohen's h)",
    "katz_log": "Katz log",
    "woolf_logit": "Woolf logit",
}


def _label(value: Any) -> str:
    """A method or metric name as a reader's label; unknown names are shown as they are."""
    if _is_missing(value):
        return _NOT_AVAILABLE
    text = str(value)
    return _BIAS_AUC_LABELS.get(text) or _METHOD_LABELS.get(text) or text.replace("_", " ")


def _number(value: Any, digits: int = 3, *, signed: bool = False) -> str:
    if _is_missing(value):
        return _NOT_AVAILABLE
    return f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def _yes_no(value: Any, reason: Any = None) -> str:
    if _is_missing(value):
        return format_undefined(reason)
    return "yes" if bool(value) else "no"


def _column(rows: pd.DataFrame, name: str) -> list[Any]:
    return list(rows[name]) if name in rows.columns else [None] * len(rows)


def _small_group_column(rows: pd.DataFrame) -> list[str]:
    """``"yes"`` for each row flagged ``small_group``, else ``"no"`` (also with no such column)."""
    return ["yes" if _is_true(v) else "no" for v in _column(rows, "small_group")]


def _text(values: pd.Series) -> pd.Series:
    """Values as strings, a missing value as ``""`` (pandas' string dtype keeps NaN as NaN)."""
    return values.map(lambda v: "" if _is_missing(v) else str(v)).astype(object)


def _sort_rows(
    rows: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
    metric_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows ordered by model, metric and group when those columns exist; stable otherwise."""
    keys = {}
    if "model" in rows.columns:
        models = _ordered(_text(rows["model"]), model_order)
        keys["model"] = _text(rows["model"]).map(models.index)
    if "metric" in rows.columns:
        metrics = _ordered(_text(rows["metric"]), metric_order)
        keys["metric"] = _text(rows["metric"]).map(metrics.index)
    if "group" in rows.columns:
        groups = _ordered(_text(rows["group"]), group_order, last="overall")
        keys["group"] = _text(rows["group"]).map(groups.index)
    if not keys:
        return rows
    key = pd.DataFrame(keys, index=rows.index)
    return rows.loc[key.sort_values(list(keys), kind="stable").index]


def _drop_constant(table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    constant = [c for c in columns if c in table.columns and table[c].nunique() <= 1]
    return table.drop(columns=constant)


def constant_value(table: pd.DataFrame, column: str) -> str | None:
    """The one value of a column that is the same in every row, else None (for captions)."""
    if column not in table.columns:
        return None
    values = table[column].dropna().astype(str).unique()
    return str(values[0]) if len(values) == 1 else None


def bias_auc_table(
    bias_auc: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Borkan et al.'s threshold-free bias metrics per model and group, for display.

    Parameters
    ----------
    bias_auc
        The run folder's ``bias_auc`` table (model, group, metric, estimate, ci_low, ci_high,
        n, positives, negatives, interval_method, undefined_reason, interval_undefined_reason,
        small_group).
    group_order, model_order
        Display order.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Group``, ``Metric``, ``Estimate [interval]`` (``"n/a –
        <reason>"`` when undefined; an estimate without an interval names why the interval is
        undefined), ``n``, ``Positives``, ``Negatives``, ``Interval method``, ``Small group``.
    """
    _require(
        bias_auc, ("model", "group", "metric", "estimate", "ci_low", "ci_high", "n"), "bias_auc"
    )
    rows = _sort_rows(
        bias_auc,
        group_order=group_order,
        model_order=model_order,
        metric_order=list(_BIAS_AUC_LABELS),
    )
    estimates = []
    for row, reason, interval_reason in zip(
        rows.itertuples(),
        _column(rows, "undefined_reason"),
        _column(rows, "interval_undefined_reason"),
        strict=True,
    ):
        text = format_estimate(row.estimate, row.ci_low, row.ci_high, undefined_reason=reason)
        if not _is_missing(interval_reason) and not text.startswith(_NOT_AVAILABLE):
            text = f"{_number(row.estimate)} (interval {format_undefined(interval_reason)})"
        estimates.append(text)
    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Group": rows["group"].astype(str),
            "Metric": rows["metric"].map(_label),
            "Estimate [interval]": estimates,
            "n": rows["n"].map(_format_count),
            "Positives": [_format_count(v) for v in _column(rows, "positives")],
            "Negatives": [_format_count(v) for v in _column(rows, "negatives")],
            "Interval method": [_label(v) for v in _column(rows, "interval_method")],
            "Small group": _small_group_column(rows),
        },
        index=rows.index,
    )
    return table.reset_index(drop=True)


def bias_auc_comparison_table(
    comparisons: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """DeLong tests of each group's bias AUC against the reference group's, for display.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Metric``, ``Group`` (``Reference`` if it varies),
        ``Estimate vs reference``, ``Difference [interval]``, ``n vs reference``, ``Test``,
        ``z``, ``p (raw)``, ``Correction`` (if it varies).
    """
    _require(
        comparisons,
        ("model", "group", "reference", "metric", "estimate", "reference_estimate",
         "difference", "ci_low", "ci_high", "p_value"),
        "bias_auc_comparisons",
    )  # fmt: skip
    rows = _sort_rows(
        comparisons,
        group_order=group_order,
        model_order=model_order,
        metric_order=list(_BIAS_AUC_LABELS),
    )
    reasons = _column(rows, "undefined_reason")
    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Metric": rows["metric"].map(_label),
            "Group": rows["group"].astype(str),
            "Reference": rows["reference"].astype(str),
            "Estimate vs reference": [
                f"{_number(a)} vs {_number(b)}"
                for a, b in zip(rows["estimate"], rows["reference_estimate"], strict=True)
            ],
            "Difference [interval]": [
                format_estimate(d, lo, hi, undefined_reason=r if _is_missing(d) else None)
                for d, lo, hi, r in zip(
                    rows["difference"], rows["ci_low"], rows["ci_high"], reasons, strict=True
                )
            ],
            "n vs reference": [
                f"{_format_count(a)} vs {_format_count(b)}"
                for a, b in zip(_column(rows, "n"), _column(rows, "n_reference"), strict=True)
            ],
            "Test": [_label(v) for v in _column(rows, "method")],
            "z": [_number(v, 2) for v in _column(rows, "statistic")],
            "p (raw)": [
                format_p_value(p) if not _is_missing(p) else format_undefined(r)
                for p, r in zip(rows["p_value"], reasons, strict=True)
            ],
            "Correction": [_correction_label(v) for v in _column(rows, "correction")],
        },
        index=rows.index,
    )
    return _drop_constant(table, ("Reference", "Correction")).reset_index(drop=True)


def cmh_table(
    cmh: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The Cochran–Mantel–Haenszel test of being flagged by group, stratified by gold label.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Group``, ``Reference``, ``Strata``, ``n vs reference``,
        ``Pooled odds ratio [interval]``, ``Interval method``, ``CMH χ²``, ``p (raw)``,
        ``p (adjusted)``, ``Significant``, ``Breslow–Day p`` and ``Odds ratios differ by
        stratum`` (the Breslow–Day homogeneity test rejected at α).
    """
    _require(cmh, ("model", "group", "reference", "pooled_odds_ratio", "ci_low", "ci_high"), "cmh")
    rows = _sort_rows(cmh, group_order=group_order, model_order=model_order)
    reasons = _column(rows, "undefined_reason")
    strata = [
        f"{s} ({_format_count(k)})" if not _is_missing(s) else _NOT_AVAILABLE
        for s, k in zip(_column(rows, "strata"), _column(rows, "n_strata"), strict=True)
    ]
    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Group": rows["group"].astype(str),
            "Reference": rows["reference"].astype(str),
            "Strata": strata,
            "n vs reference": [
                f"{_format_count(a)} vs {_format_count(b)}"
                for a, b in zip(_column(rows, "n"), _column(rows, "n_reference"), strict=True)
            ],
            "Pooled odds ratio [interval]": [
                format_estimate(e, lo, hi, undefined_reason=r, digits=2)
                for e, lo, hi, r in zip(
                    rows["pooled_odds_ratio"],
                    rows["ci_low"],
                    rows["ci_high"],
                    reasons,
                    strict=True,
                )
            ],
            "Interval method": [_label(v) for v in _column(rows, "interval_method")],
            "CMH χ²": [_number(v, 2) for v in _column(rows, "statistic")],
            "p (raw)": [format_p_value(v) for v in _column(rows, "p_value")],
            "p (adjusted)": [format_p_value(v) for v in _column(rows, "p_adjusted")],
            "Significant": [
                _yes_no(v, r) for v, r in zip(_column(rows, "significant"), reasons, strict=True)
            ],
            "Breslow–Day p": [format_p_value(v) for v in _column(rows, "breslow_day_p_value")],
            "Odds ratios differ by stratum": [
                _yes_no(v) for v in _column(rows, "homogeneity_rejected")
            ],
        },
        index=rows.index,
    )
    return _drop_constant(table, ("Reference",)).reset_index(drop=True)


def _controls_phrase(controls: Any) -> str:
    """``"profanity_terms, identity_terms"`` -> ``"profanity and identity terms"``."""
    if _is_missing(controls) or not str(controls).strip():
        return "the lexical controls"
    names = [c.strip() for c in str(controls).split(",") if c.strip()]
    suffix = ""
    if names and all(n.endswith("_terms") for n in names):
        names = [n[: -len("_terms")] for n in names]
        suffix = " terms"
    names = [n.replace("_", " ") for n in names]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return joined + suffix


def _odds_ratio_text(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return _NOT_AVAILABLE
    return format_estimate(
        row.get("odds_ratio"),
        row.get("odds_ratio_ci_low"),
        row.get("odds_ratio_ci_high"),
        digits=2,
    )


def _regression_note(row: Mapping[str, Any]) -> str:
    parts = []
    if not _is_missing(row.get("separation")):
        parts.append(str(row["separation"]))
    if str(row.get("method") or "").startswith("firth"):
        parts.append("Firth penalised fit (profile penalised-likelihood interval)")
    if not _is_missing(row.get("converged")) and not bool(row["converged"]):
        parts.append("did not converge")
    if not _is_missing(row.get("note")) and str(row["note"]).strip():
        parts.append(str(row["note"]).strip())
    return "; ".join(parts)


def _group_terms(regression: pd.DataFrame) -> pd.DataFrame:
    return regression[regression["group"].notna()] if "group" in regression else regression[:0]


def regression_table(
    regression: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each group's odds ratio of being flagged, without and with the lexical controls.

    Parameters
    ----------
    regression
        The run folder's ``regression`` table: one row per model, ``specification``
        (``"without_controls"``/``"with_controls"``) and term; group terms have ``group`` set.

    Returns
    -------
    pandas.DataFrame
        One row per model and group term, string columns ``Model``, ``Group``, ``Reference``,
        ``Odds ratio without controls [interval]``, ``Odds ratio with controls [interval]``,
        ``Attenuation`` (the share of the unadjusted log odds ratio the controls account for;
        negative when the effect grows), ``p (with controls)``, ``n``, ``Method`` and
        ``Notes`` (separation, Firth fallback, convergence, the fit's note).
    """
    _require(regression, ("model", "specification", "term", "group", "odds_ratio"), "regression")
    terms = _sort_rows(_group_terms(regression), group_order=group_order, model_order=model_order)
    records = []
    for (model, group), part in terms.groupby(["model", "group"], sort=False):
        by_spec = {
            str(s): r for s, r in zip(part["specification"], part.to_dict("records"), strict=True)
        }
        without, with_ = by_spec.get("without_controls"), by_spec.get("with_controls")
        shown = with_ or without or {}
        methods = sorted({_label(r.get("method")) for r in (without, with_) if r is not None})
        notes = [
            f"{spec.replace('_', ' ')}: {note}"
            for spec, r in (("without_controls", without), ("with_controls", with_))
            if r is not None and (note := _regression_note(r))
        ]
        attenuation = None if with_ is None else with_.get("attenuation")
        records.append(
            {
                "Model": str(model),
                "Group": str(group),
                "Reference": str(shown.get("reference") or ""),
                "Odds ratio without controls [interval]": _odds_ratio_text(without),
                "Odds ratio with controls [interval]": (
                    _odds_ratio_text(with_) if with_ is not None else "n/a – no controls fitted"
                ),
                "Attenuation": (
                    _NOT_AVAILABLE
                    if _is_missing(attenuation)
                    else f"{format_percent(attenuation)}%"
                ),
                "p (with controls)": format_p_value((with_ or {}).get("p_value")),
                "n": _format_count(shown.get("n")),
                "Method": "; ".join(methods),
                "Notes": "; ".join(notes),
            }
        )
    columns = [
        "Model", "Group", "Reference", "Odds ratio without controls [interval]",
        "Odds ratio with controls [interval]", "Attenuation", "p (with controls)", "n", "Method",
        "Notes",
    ]  # fmt: skip
    table = pd.DataFrame.from_records(records, columns=columns)
    if not table.empty and (table["Notes"] == "").all():
        table = table.drop(columns="Notes")
    return _drop_constant(table, ("Reference",))


def regression_terms_table(
    regression: pd.DataFrame, *, model_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every coefficient of both specifications (group, gold label and controls), for display."""
    _require(regression, ("model", "specification", "term", "odds_ratio"), "regression")
    rows = _sort_rows(regression, model_order=model_order)
    records = rows.to_dict("records")
    table = pd.DataFrame(
        {
            "Model": [str(r["model"]) for r in records],
            "Specification": [str(r["specification"]).replace("_", " ") for r in records],
            "Term": [str(r["term"]) for r in records],
            "Odds ratio [interval]": [_odds_ratio_text(r) for r in records],
            "p (raw)": [format_p_value(r.get("p_value")) for r in records],
            "LR p": [format_p_value(r.get("lr_p_value")) for r in records],
            "Method": [_label(r.get("method")) for r in records],
            "Covariance": [_label(r.get("covariance")) for r in records],
            "n": [_format_count(r.get("n")) for r in records],
            "Notes": [_regression_note(r) for r in records],
        }
    )
    if (table["Notes"] == "").all():
        table = table.drop(columns="Notes")
    return table


def regression_sentences(
    regression: pd.DataFrame,
    *,
    focus_group: str = "aae",
    model_order: Sequence[str] | None = None,
) -> list[str]:
    """One plain sentence per model on how the focus group's odds ratio moves with controls.

    For example ``"hatesonar: controlling for profanity and identity terms, the odds ratio
    for aae falls from 8.33 [6.40, 10.86] to 4.10 [3.00, 5.60]; the controls account for
    33.3% of the log odds ratio."`` Falls, rises or stays is read from the two numbers as
    shown; a negative attenuation (the effect grows) is said so.
    """
    _require(regression, ("model", "specification", "group", "odds_ratio"), "regression")
    terms = _group_terms(regression)
    sentences = []
    for model in _ordered(terms["model"].astype(str), model_order):
        part = terms[terms["model"].astype(str) == model]
        groups = list(dict.fromkeys(part["group"].astype(str)))
        group = focus_group if focus_group in groups else (groups[0] if groups else None)
        if group is None:
            continue
        rows = part[part["group"].astype(str) == group]
        by_spec = {
            str(s): r for s, r in zip(rows["specification"], rows.to_dict("records"), strict=True)
        }
        without, with_ = by_spec.get("without_controls"), by_spec.get("with_controls")
        if without is None or _is_missing(without.get("odds_ratio")):
            continue
        before = _odds_ratio_text(without)
        if with_ is None or _is_missing(with_.get("odds_ratio")):
            sentences.append(
                f"{model}: the odds ratio of being flagged for {group} against "
                f"{without.get('reference') or 'the reference group'}, at equal gold label, is "
                f"{before}; no model with lexical controls was fitted."
            )
            continue
        after = _odds_ratio_text(with_)
        a, b = _round(float(without["odds_ratio"]), 2), _round(float(with_["odds_ratio"]), 2)
        verb = "falls" if b < a else "rises" if b > a else "stays the same"
        to = f"from {before} to {after}" if verb != "stays the same" else f"at {before}"
        sentence = (
            f"{model}: controlling for {_controls_phrase(with_.get('controls'))}, the odds "
            f"ratio of being flagged for {group} (against "
            f"{with_.get('reference') or 'the reference group'}, at equal gold label) {verb} {to}"
        )
        attenuation = with_.get("attenuation")
        if not _is_missing(attenuation):
            share = float(attenuation)
            if share > 0:
                sentence += (
                    f"; the controls account for {format_percent(share)}% of the log odds ratio"
                )
            elif share < 0:
                sentence += (
                    f"; the controls account for none of it (attenuation "
                    f"{format_percent(share)}%: the dialect effect is larger at equal counts)"
                )
            else:
                sentence += "; the controls account for none of it"
        notes = [n for n in (_regression_note(without), _regression_note(with_)) if n]
        if notes:
            sentence += f" (note: {'; '.join(dict.fromkeys(notes))})"
        sentences.append(sentence + ".")
    return sentences


def label_bias_table(
    label_bias: pd.DataFrame, *, group_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Annotator votes per group: how often the majority called a message harmful, and how
    much the annotators agreed.

    Returns
    -------
    pandas.DataFrame
        String columns ``Group``, ``Items with votes``, ``Votes``, ``Majority harmful
        [interval]``, ``Difference vs reference [interval]``, ``Harmful vote share``,
        ``Split votes``, ``Majority ties``, ``Krippendorff α`` and ``Fleiss κ``.
    """
    _require(label_bias, ("group", "majority_harmful_share", "ci_low", "ci_high"), "label_bias")
    rows = _sort_rows(label_bias, group_order=group_order)
    reasons = _column(rows, "undefined_reason")
    table = pd.DataFrame(
        {
            "Group": rows["group"].astype(str),
            "Items with votes": [_format_count(v) for v in _column(rows, "n_with_votes")],
            "Votes": [_format_count(v) for v in _column(rows, "n_votes")],
            "Majority harmful [interval]": [
                format_estimate(e, lo, hi, undefined_reason=r)
                for e, lo, hi, r in zip(
                    rows["majority_harmful_share"],
                    rows["ci_low"],
                    rows["ci_high"],
                    reasons,
                    strict=True,
                )
            ],
            "Difference vs reference [interval]": [
                NOT_APPLICABLE if _is_missing(d) else format_estimate(d, lo, hi)
                for d, lo, hi in zip(
                    _column(rows, "difference"),
                    _column(rows, "difference_ci_low"),
                    _column(rows, "difference_ci_high"),
                    strict=True,
                )
            ],
            "Harmful vote share": [_number(v) for v in _column(rows, "harmful_vote_share")],
            "Split votes": [_number(v) for v in _column(rows, "split_vote_share")],
            "Majority ties": [_format_count(v) for v in _column(rows, "majority_ties")],
            "Krippendorff α": [_number(v) for v in _column(rows, "krippendorff_alpha")],
            "Fleiss κ": [_number(v) for v in _column(rows, "generalised_fleiss_kappa")],
        },
        index=rows.index,
    )
    return table.reset_index(drop=True)


def label_bias_sentence(
    label_bias: pd.DataFrame, *, focus_group: str = "aae", reference: str | None = None
) -> str | None:
    """A plain sentence comparing the annotators' verdicts on the focus and reference groups.

    Returns None when either group is missing from the table.
    """
    _require(label_bias, ("group", "majority_harmful_share"), "label_bias")
    if reference is None:
        reference = constant_value(label_bias, "reference") or "sae"
    focus = _lookup(label_bias, group=focus_group)
    ref = _lookup(label_bias, group=reference)
    if focus is None or ref is None:
        return None

    def share(row: pd.Series) -> str:
        if not _is_missing(row.get("undefined_reason")) or _is_missing(
            row["majority_harmful_share"]
        ):
            return format_undefined(row.get("undefined_reason"))
        text = f"{format_percent(row['majority_harmful_share'])}%"
        if not (_is_missing(row.get("ci_low")) or _is_missing(row.get("ci_high"))):
            text += f" [{format_percent(row['ci_low'])}%, {format_percent(row['ci_high'])}%]"
        return text

    sentence = (
        f"The annotators' majority called {share(focus)} of {focus_group} messages harmful vs "
        f"{share(ref)} of {reference} messages"
    )
    difference = focus.get("difference")
    if not _is_missing(difference):
        sentence += f" (difference {format_percent(difference, signed=True)} points"
        if not (
            _is_missing(focus.get("difference_ci_low"))
            or _is_missing(focus.get("difference_ci_high"))
        ):
            sentence += (
                f" [{format_percent(focus['difference_ci_low'], signed=True)}, "
                f"{format_percent(focus['difference_ci_high'], signed=True)}]"
            )
        sentence += ")"
    sentence += "."
    a, b = focus.get("krippendorff_alpha"), ref.get("krippendorff_alpha")
    if not (_is_missing(a) or _is_missing(b)):
        ra, rb = _round(float(a), 3), _round(float(b), 3)
        comparison = "lower" if ra < rb else "higher" if ra > rb else "the same"
        sentence += (
            f" Agreement among annotators was {comparison} on {focus_group} messages "
            f"(Krippendorff's α {ra:.3f} vs {rb:.3f})."
        )
    split_a, split_b = focus.get("split_vote_share"), ref.get("split_vote_share")
    if not (_is_missing(split_a) or _is_missing(split_b)):
        sentence += (
            f" Votes were split on {format_percent(split_a)}% of {focus_group} and "
            f"{format_percent(split_b)}% of {reference} messages."
        )
    return sentence


def threshold_sensitivity_figure(
    sensitivity: pd.DataFrame, *, model_order: Sequence[str] | None = None
) -> go.Figure:
    """The false positive rate gap (treated minus control) over the dialect-group threshold.

    One line per model with its interval as a shaded band; undefined points are left out of
    the line and named in the hover text of the neighbouring points' model legend.
    """
    _require(
        sensitivity, ("threshold", "difference", "ci_low", "ci_high"), "threshold_sensitivity"
    )
    frame = sensitivity if "model" in sensitivity else sensitivity.assign(model="model")
    figure = go.Figure()
    undefined = []
    for index, model in enumerate(_ordered(frame["model"].astype(str), model_order)):
        rows = frame[frame["model"].astype(str) == model].sort_values("threshold")
        defined = rows[rows["difference"].notna()]
        if "undefined_reason" in rows:
            for row in rows[rows["difference"].isna()].itertuples():
                undefined.append(
                    f"{model} at {row.threshold:g}: {format_undefined(row.undefined_reason)}"
                )
        colour = _PALETTE[index % len(_PALETTE)]
        _add_threshold_band(figure, defined, colour, 0.18, name=f"{model} interval")
        hover = []
        for r in defined.to_dict("records"):
            lines = [
                f"<b>{model}</b> · group threshold {r['threshold']:g}",
                "FPR gap: " + format_estimate(r["difference"], r["ci_low"], r["ci_high"]),
            ]
            if "fpr_treated" in r:
                lines.append(
                    f"FPR {_number(r.get('fpr_treated'))} vs {_number(r.get('fpr_control'))}"
                )
            if "negatives_treated" in r:
                lines.append(
                    f"negatives {_format_count(r.get('negatives_treated'))} vs "
                    f"{_format_count(r.get('negatives_control'))}"
                )
            if r.get("treated_rule") and r.get("control_rule"):
                lines.append(f"{r['treated_rule']} vs {r['control_rule']}")
            hover.append("<br>".join(lines))
        figure.add_trace(
            go.Scatter(
                x=list(defined["threshold"]),
                y=list(defined["difference"]),
                mode="lines+markers",
                name=model,
                line={"color": colour, "width": 2},
                marker={"size": 7, "color": colour},
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    methods = sorted({str(m) for m in sensitivity.get("interval_method", pd.Series()).dropna()})
    subtitle = "false positive rate of the treated group minus the control group; rules below"
    if methods:
        subtitle += f"; band: {', '.join(methods)} interval"
    if undefined:
        subtitle += f"; undefined: {'; '.join(undefined[:3])}"
    figure.add_hline(y=0, line={"color": "#888", "width": 1, "dash": "dot"})
    figure.update_layout(
        template=_PLOT_TEMPLATE,
        title={
            "text": f"False positive rate gap over the group threshold<br><sup>{subtitle}</sup>"
        },
        height=420,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        legend={"title": {"text": "model"}},
        xaxis={"title": {"text": "dialect-score threshold for the AAE-aligned group"}},
        yaxis={
            "title": {"text": "FPR gap (treated − control)"},
            "tickformat": ".0%",
            "zeroline": True,
        },
    )
    return figure


def _rgba(hex_colour: str, opacity: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{opacity})"


def _add_threshold_band(
    figure: go.Figure, rows: pd.DataFrame, colour: str, opacity: float, **trace: Any
) -> None:
    """Shade the interval ``ci_low``-``ci_high`` over ``threshold`` where both ends exist."""
    band = rows[rows["ci_low"].notna() & rows["ci_high"].notna()]
    if len(band):
        figure.add_trace(
            go.Scatter(
                x=list(band["threshold"]) + list(band["threshold"])[::-1],
                y=list(band["ci_high"]) + list(band["ci_low"])[::-1],
                fill="toself",
                fillcolor=_rgba(colour, opacity),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                **trace,
            )
        )


def threshold_sensitivity_table(
    sensitivity: pd.DataFrame, *, model_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """The figure's numbers: per model and threshold, both FPRs, the gap and its interval."""
    frame = sensitivity if "model" in sensitivity else sensitivity.assign(model="model")
    rows = _sort_rows(frame.sort_values("threshold", kind="stable"), model_order=model_order)
    reasons = _column(rows, "undefined_reason")
    return pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Threshold": rows["threshold"].map(lambda t: f"{float(t):g}"),
            "Rule": [
                f"{a} vs {b}" if not (_is_missing(a) or _is_missing(b)) else _NOT_AVAILABLE
                for a, b in zip(
                    _column(rows, "treated_rule"), _column(rows, "control_rule"), strict=True
                )
            ],
            "FPR treated vs control": [
                f"{_number(a)} vs {_number(b)}"
                for a, b in zip(
                    _column(rows, "fpr_treated"), _column(rows, "fpr_control"), strict=True
                )
            ],
            "Negatives treated vs control": [
                f"{_format_count(a)} vs {_format_count(b)}"
                for a, b in zip(
                    _column(rows, "negatives_treated"),
                    _column(rows, "negatives_control"),
                    strict=True,
                )
            ],
            "Difference [interval]": [
                format_estimate(d, lo, hi, undefined_reason=r)
                for d, lo, hi, r in zip(
                    rows["difference"], rows["ci_low"], rows["ci_high"], reasons, strict=True
                )
            ],
            "Excluded": [_format_count(v) for v in _column(rows, "n_excluded")],
        }
    ).reset_index(drop=True)


def soft_metrics_table(
    soft_metrics: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Metrics with the dialect score as soft group membership, for display.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Metric``, ``Group`` (``difference`` is the group minus
        the reference), ``Estimate [interval]``, ``Weighted count / weight``, ``Kish
        effective n``, ``Rows``, ``Interval method`` and ``Small group``.
    """
    _require(soft_metrics, ("group", "metric", "estimate", "ci_low", "ci_high"), "soft_metrics")
    frame = soft_metrics if "model" in soft_metrics else soft_metrics.assign(model="model")
    rows = _sort_rows(
        frame,
        group_order=[*(group_order or ()), "difference"],
        model_order=model_order,
        metric_order=list(METRIC_LABELS),
    )
    reasons = _column(rows, "undefined_reason")
    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Metric": rows["metric"].map(_metric_label),
            "Group": rows["group"].astype(str),
            "Estimate [interval]": [
                format_estimate(e, lo, hi, undefined_reason=r)
                for e, lo, hi, r in zip(
                    rows["estimate"], rows["ci_low"], rows["ci_high"], reasons, strict=True
                )
            ],
            "Weighted count / weight": [
                NOT_APPLICABLE if _is_missing(w) else f"{_number(c, 1)} / {_number(w, 1)}"
                for c, w in zip(
                    _column(rows, "weighted_count"), _column(rows, "weight_sum"), strict=True
                )
            ],
            "Kish effective n": [
                NOT_APPLICABLE if _is_missing(v) else f"{float(v):,.1f}"
                for v in _column(rows, "effective_n")
            ],
            "Rows": [_format_count(v) for v in _column(rows, "n_rows")],
            "Interval method": [_label(v) for v in _column(rows, "interval_method")],
            "Small group": _small_group_column(rows),
        },
        index=rows.index,
    )
    return table.reset_index(drop=True)


def power_table(
    power: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The minimum detectable difference of each comparison, low power flagged.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Metric``, ``Group``, ``n vs reference``, ``Reference
        estimate``, ``MDD up / down``, ``Minimum detectable difference``, ``Power``, ``Low
        power`` (``"yes – MDD above 0.1"`` or ``"no"``) and ``Method``.
    """
    _require(power, ("group", "metric", "minimum_detectable_difference"), "power")
    frame = power if "model" in power else power.assign(model="model")
    rows = _sort_rows(
        frame, group_order=group_order, model_order=model_order, metric_order=list(METRIC_LABELS)
    )
    reasons = _column(rows, "undefined_reason")

    def low(flag: Any, limit: Any) -> str:
        if not _is_true(flag):
            return "no" if not _is_missing(flag) else _NOT_AVAILABLE
        return f"yes – MDD above {float(limit):g}" if not _is_missing(limit) else "yes"

    table = pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Metric": rows["metric"].map(_metric_label),
            "Group": rows["group"].astype(str),
            "n vs reference": [
                f"{_format_count(a)} vs {_format_count(b)}"
                for a, b in zip(_column(rows, "n"), _column(rows, "n_reference"), strict=True)
            ],
            "Reference estimate": [_number(v) for v in _column(rows, "reference_estimate")],
            "MDD up / down": [
                f"{_number(a)} / {_number(b)}"
                for a, b in zip(
                    _column(rows, "mdd_increase"), _column(rows, "mdd_decrease"), strict=True
                )
            ],
            "Minimum detectable difference": [
                format_estimate(v, undefined_reason=r)
                for v, r in zip(rows["minimum_detectable_difference"], reasons, strict=True)
            ],
            "Power": [_number(v, 2) for v in _column(rows, "power")],
            "Low power": [
                low(f, m)
                for f, m in zip(_column(rows, "low_power"), _column(rows, "max_mdd"), strict=True)
            ],
            "Method": [_label(v) for v in _column(rows, "power_method")],
        },
        index=rows.index,
    )
    return _drop_constant(table, ("Power", "Method")).reset_index(drop=True)


_GROUP_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def threshold_sweep_figure(
    sweep: pd.DataFrame,
    *,
    model: str,
    metric: str = "false_positive_rate",
    group_order: Sequence[str] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> go.Figure:
    """One metric per group over the score threshold, for one model, with interval bands.

    ``thresholds`` maps model names to their operating threshold, marked by a vertical line.
    Undefined points are left out of the lines.
    """
    _require(
        sweep,
        ("model", "group", "threshold", "metric", "estimate", "ci_low", "ci_high"),
        "threshold_sweep",
    )
    rows = sweep[(sweep["model"].astype(str) == model) & (sweep["metric"] == metric)]
    figure = go.Figure()
    for index, group in enumerate(
        _ordered(rows["group"].astype(str), group_order, last="overall")
    ):
        part = rows[rows["group"].astype(str) == group].sort_values("threshold")
        part = part[part["estimate"].notna()]
        colour = _PALETTE[index % len(_PALETTE)] if group != "overall" else "#777777"
        _add_threshold_band(figure, part, colour, 0.12, legendgroup=group)
        figure.add_trace(
            go.Scatter(
                x=list(part["threshold"]),
                y=list(part["estimate"]),
                mode="lines",
                name=group,
                legendgroup=group,
                line={
                    "color": colour,
                    "width": 2,
                    "dash": _GROUP_DASHES[index % len(_GROUP_DASHES)],
                },
                hovertext=[
                    f"<b>{group}</b> · threshold {r['threshold']:g}<br>"
                    + f"{_metric_label(metric)}: "
                    + format_estimate(r["estimate"], r["ci_low"], r["ci_high"])
                    + f"<br>n = {_format_count(r.get('n'))}"
                    for r in part.to_dict("records")
                ],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    threshold = (thresholds or {}).get(model)
    if threshold is not None and not _is_missing(threshold):
        figure.add_vline(
            x=float(threshold),
            line={"color": "#444", "width": 1, "dash": "dot"},
            annotation_text=f"operating threshold {float(threshold):g}",
            annotation_position="top right",
        )
    methods = sorted({str(m) for m in rows.get("interval_method", pd.Series()).dropna()})
    subtitle = "bands: " + (", ".join(methods) if methods else "") + " interval"
    figure.update_layout(
        template=_PLOT_TEMPLATE,
        title={
            "text": f"{model}: {_metric_label(metric).lower()} by group over the score threshold"
            f"<br><sup>{subtitle}</sup>"
        },
        height=400,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        legend={"title": {"text": "group"}},
        xaxis={
            "title": {"text": "score threshold (flagged if score ≥ threshold)"},
            "range": [0, 1],
        },
        yaxis={
            "title": {"text": _metric_label(metric)},
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
    )
    return figure


def calibration_figure(
    calibration: pd.DataFrame, *, model: str, group_order: Sequence[str] | None = None
) -> go.Figure:
    """Reliability diagram for one model: observed harmful rate against mean score per bin,
    one line per group with the observed rate's interval; the diagonal is perfect calibration.
    Bins without items (undefined) are left out.
    """
    _require(
        calibration,
        ("model", "group", "mean_score", "observed_rate", "ci_low", "ci_high", "n"),
        "calibration",
    )
    rows = calibration[calibration["model"].astype(str) == model]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
            line={"color": "#999", "width": 1, "dash": "dot"}, hoverinfo="skip",
        )
    )  # fmt: skip
    for index, group in enumerate(
        _ordered(rows["group"].astype(str), group_order, last="overall")
    ):
        part = rows[rows["group"].astype(str) == group]
        part = part[part["observed_rate"].notna() & part["mean_score"].notna()]
        part = part.sort_values("mean_score")
        colour = _PALETTE[index % len(_PALETTE)] if group != "overall" else "#777777"
        figure.add_trace(
            go.Scatter(
                x=list(part["mean_score"]),
                y=list(part["observed_rate"]),
                mode="lines+markers",
                name=group,
                line={
                    "color": colour,
                    "width": 1.5,
                    "dash": _GROUP_DASHES[index % len(_GROUP_DASHES)],
                },
                marker={"size": 7, "color": colour},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": list(part["ci_high"] - part["observed_rate"]),
                    "arrayminus": list(part["observed_rate"] - part["ci_low"]),
                    "thickness": 1,
                    "width": 3,
                },
                hovertext=[
                    f"<b>{group}</b> · bin {_number(r.get('bin_low'), 2)}"
                    f"–{_number(r.get('bin_high'), 2)}"
                    f"<br>mean score {_number(r['mean_score'])}<br>observed "
                    + format_estimate(r["observed_rate"], r["ci_low"], r["ci_high"])
                    + f"<br>n = {_format_count(r['n'])}"
                    for r in part.to_dict("records")
                ],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    methods = sorted({str(m) for m in rows.get("interval_method", pd.Series()).dropna()})
    subtitle = "observed harmful share per score bin" + (
        f" ({', '.join(methods)} interval)" if methods else ""
    )
    figure.update_layout(
        template=_PLOT_TEMPLATE,
        title={"text": f"{model}: reliability by group<br><sup>{subtitle}</sup>"},
        height=420,
        margin={"l": 60, "r": 20, "t": 70, "b": 50},
        legend={"title": {"text": "group"}},
        xaxis={"title": {"text": "mean score in bin"}, "range": [0, 1]},
        yaxis={
            "title": {"text": "observed harmful share"},
            "range": [0, 1.02],
            "tickformat": ".0%",
        },
    )
    return figure


def calibration_summary_table(
    summary: pd.DataFrame,
    *,
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Brier score and expected calibration error per model and group, for display."""
    _require(
        summary,
        ("model", "group", "brier_score", "expected_calibration_error"),
        "calibration_summary",
    )
    rows = _sort_rows(summary, group_order=group_order, model_order=model_order)
    reasons = _column(rows, "undefined_reason")
    return pd.DataFrame(
        {
            "Model": rows["model"].astype(str),
            "Group": rows["group"].astype(str),
            "n": [_format_count(v) for v in _column(rows, "n")],
            "Positives": [_format_count(v) for v in _column(rows, "positives")],
            "Brier score": [
                format_estimate(v, undefined_reason=r, digits=4)
                for v, r in zip(rows["brier_score"], reasons, strict=True)
            ],
            "ECE": [
                format_estimate(v, undefined_reason=r, digits=4)
                for v, r in zip(rows["expected_calibration_error"], reasons, strict=True)
            ],
            "Bins": [
                f"{_format_count(b)} {str(m).replace('_', ' ')}"
                if not _is_missing(m)
                else _format_count(b)
                for b, m in zip(_column(rows, "bins"), _column(rows, "binning"), strict=True)
            ],
        }
    ).reset_index(drop=True)


def ab_summary_table(ab_summary: pd.DataFrame) -> pd.DataFrame:
    """The reweighting A/B loop: model A (unweighted) against model B, one column per scheme.

    The table is transposed (a row per quantity, a column per scheme) so that it stays
    readable with several schemes.

    Returns
    -------
    pandas.DataFrame
        A string column ``Quantity`` and one string column per scheme, with the rows ``FPR gap
        A → B``, ``Gap change [interval]``, ``Gap change p (adjusted)``, per group ``FPR <group>
        A → B`` and ``FPR <group> McNemar p (adjusted)``, ``ROC AUC A → B``, ``ROC AUC change
        (lower bound)``, ``ROC AUC non-inferior``, the same for macro F1, and ``Min ESS
        fraction``; rows whose columns the table lacks are left out.
    """
    _require(ab_summary, ("scheme", "fpr_gap_a", "fpr_gap_b", "fpr_gap_change"), "ab_summary")
    records = ab_summary.to_dict("records")

    def arrow(r: Mapping[str, Any], stem: str) -> str:
        return f"{_number(r.get(f'{stem}_a'))} → {_number(r.get(f'{stem}_b'))}"

    def change(r: Mapping[str, Any], stem: str) -> str:
        low = _number(r.get(f"{stem}_ci_low"), signed=True)
        return f"{_number(r.get(f'{stem}_change'), signed=True)} (≥ {low})"

    rows: list[tuple[str, Any]] = [
        ("FPR gap A → B", lambda r: arrow(r, "fpr_gap")),
        (
            "Gap change [interval]",
            lambda r: format_estimate(
                r["fpr_gap_change"], r.get("fpr_gap_ci_low"), r.get("fpr_gap_ci_high")
            ),
        ),
        ("Gap change p (adjusted)", lambda r: format_p_value(r.get("fpr_gap_p_adjusted"))),
    ]
    groups = sorted(
        {
            k[len("fpr_") : -len("_a")]
            for k in ab_summary.columns
            if k.startswith("fpr_") and k.endswith("_a") and k != "fpr_gap_a"
        },
        key=lambda g: (g != "aae", g),
    )
    for group in groups:
        rows.append((f"FPR {group} A → B", lambda r, g=group: arrow(r, f"fpr_{g}")))
        if f"fpr_{group}_mcnemar_p_adjusted" in ab_summary.columns:
            rows.append(
                (
                    f"FPR {group} McNemar p (adjusted)",
                    lambda r, g=group: format_p_value(r.get(f"fpr_{g}_mcnemar_p_adjusted")),
                )
            )
    for stem, name in (("roc_auc", "ROC AUC"), ("macro_f1", "Macro F1")):
        if f"{stem}_a" not in ab_summary.columns:
            continue
        rows.append((f"{name} A → B", lambda r, s=stem: arrow(r, s)))
        rows.append((f"{name} change (lower bound)", lambda r, s=stem: change(r, s)))
        rows.append(
            (f"{name} non-inferior", lambda r, s=stem: _yes_no(r.get(f"{s}_non_inferior")))
        )
    if "min_ess_fraction" in ab_summary.columns:
        rows.append(("Min ESS fraction", lambda r: _number(r.get("min_ess_fraction"))))

    schemes = [str(r["scheme"]) for r in records]
    table = {"Quantity": [name for name, _ in rows]}
    for scheme, record in zip(schemes, records, strict=True):
        table[scheme] = [make(record) for _, make in rows]
    return pd.DataFrame(table)


def ab_comparison_table(
    ab_comparison: pd.DataFrame, *, group_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every A/B comparison (per scheme, group and metric), for display."""
    _require(
        ab_comparison,
        ("scheme", "group", "metric", "estimate_a", "estimate_b", "change"),
        "ab_comparison",
    )
    rows = _sort_rows(
        ab_comparison,
        group_order=group_order,
        metric_order=list(METRIC_LABELS) + list(_BIAS_AUC_LABELS),
    )
    schemes = list(dict.fromkeys(rows["scheme"].astype(str)))
    rows = rows.loc[rows["scheme"].astype(str).map(schemes.index).sort_values(kind="stable").index]
    table = pd.DataFrame(
        {
            "Scheme": rows["scheme"].astype(str),
            "Group": rows["group"].astype(str),
            "Metric": rows["metric"].map(
                lambda m: _BIAS_AUC_LABELS.get(str(m)) or _metric_label(str(m))
            ),
            "A → B": [
                f"{_number(a)} → {_number(b)}"
                for a, b in zip(rows["estimate_a"], rows["estimate_b"], strict=True)
            ],
            "Change [interval]": [
                format_estimate(c, lo, hi)
                for c, lo, hi in zip(
                    rows["change"], _column(rows, "ci_low"), _column(rows, "ci_high"), strict=True
                )
            ],
            "p (raw)": [format_p_value(v) for v in _column(rows, "p_value")],
            "p (adjusted)": [format_p_value(v) for v in _column(rows, "p_adjusted")],
            "n": [_format_count(v) for v in _column(rows, "n")],
            "Non-inferior": [
                NOT_APPLICABLE if _is_missing(v) else _yes_no(v)
                for v in _column(rows, "non_inferior")
            ],
            "Method": [_label(v) for v in _column(rows, "method")],
        }
    )
    return table.reset_index(drop=True)


def effective_sample_size_table(
    ess: pd.DataFrame, *, group_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """Kish effective sample size per group before and after weighting, from the run folder."""
    _require(ess, ("group", "ess_before", "ess_after"), "weights_effective_sample_size")
    rows = _sort_rows(ess, group_order=group_order)

    def n(value: Any) -> str:
        return _NOT_AVAILABLE if _is_missing(value) else f"{float(value):,.1f}"

    return pd.DataFrame(
        {
            "Group": rows["group"].astype(str),
            "Items": [_format_count(v) for v in _column(rows, "n")],
            "ESS before": [n(v) for v in rows["ess_before"]],
            "ESS unclipped": [n(v) for v in _column(rows, "ess_unclipped")],
            "ESS after": [n(v) for v in rows["ess_after"]],
            "ESS fraction": [_number(v) for v in _column(rows, "ess_fraction")],
        }
    ).reset_index(drop=True)


def generic_table(frame: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """Any run-folder table as display strings: numbers to ``digits`` decimals, p-values by
    :func:`format_p_value`, and a missing ``estimate`` as ``"n/a – <undefined_reason>"``."""
    reasons = _column(frame, "undefined_reason")
    out = {}
    for column in frame.columns:
        if column == "undefined_reason":
            continue
        values = []
        for value, reason in zip(frame[column], reasons, strict=True):
            if column in ("estimate", "difference") and _is_missing(value):
                values.append(format_undefined(reason))
            elif _is_missing(value):
                values.append("")
            elif "p_value" in column or column.startswith("p_adjusted"):
                values.append(format_p_value(value))
            elif isinstance(value, bool):
                values.append("yes" if value else "no")
            elif isinstance(value, int) or (
                isinstance(value, float) and value.is_integer() and column in ("n", "count")
            ):
                values.append(f"{int(value):,}")
            elif isinstance(value, float):
                values.append(f"{value:.{digits}f}")
            else:
                values.append(str(value))
        out[column.replace("_", " ")] = values
    return pd.DataFrame(out)


# --- before / after -----------------------------------------------------------------------


def ab_change_figure(
    ab_comparison: pd.DataFrame,
    *,
    metric: str = "false_positive_rate",
    group_order: Sequence[str] | None = None,
    scheme_order: Sequence[str] | None = None,
) -> go.Figure:
    """The change B − A of one metric per group, one point per reweighting scheme.

    Parameters
    ----------
    ab_comparison
        The run folder's ``ab_comparison`` table (scheme, group, metric, estimate_a,
        estimate_b, change, ci_low, ci_high, n, method, ...).
    metric
        Which metric's change to plot; false positive rate by default.
    group_order, scheme_order
        Order of the groups on the axis and of the schemes in the legend.

    Returns
    -------
    plotly.graph_objects.Figure
        A point per scheme and group at the change with its (paired) interval as error bars,
        A → B in the hover text, and a dotted line at no change. Changes without an estimate
        are left out.
    """
    _require(
        ab_comparison,
        ("scheme", "group", "metric", "estimate_a", "estimate_b", "change"),
        "ab_comparison",
    )
    rows = ab_comparison[ab_comparison["metric"].astype(str) == metric]
    groups = _ordered(rows["group"].astype(str), group_order, last="overall")
    figure = go.Figure()
    for index, scheme in enumerate(_ordered(rows["scheme"].astype(str), scheme_order)):
        part = rows[rows["scheme"].astype(str) == scheme].drop_duplicates("group")
        part = part.set_index(part["group"].astype(str))
        x, y, upper, lower, hover = [], [], [], [], []
        for group in groups:
            if group not in part.index or _is_missing(part.loc[group, "change"]):
                continue
            row = part.loc[group]
            change = float(row["change"])
            low, high = row.get("ci_low"), row.get("ci_high")
            has_interval = not (_is_missing(low) or _is_missing(high))
            x.append(group)
            y.append(change)
            upper.append(float(high) - change if has_interval else None)
            lower.append(change - float(low) if has_interval else None)
            hover.append(
                "<br>".join(
                    [
                        f"<b>{scheme}</b> · {group}",
                        f"{_metric_label(metric)} A → B: "
                        f"{_number(row['estimate_a'])} → {_number(row['estimate_b'])}",
                        "change: " + format_estimate(row["change"], low, high),
                        f"p (adjusted) = {format_p_value(row.get('p_adjusted'))}",
                        f"n = {_format_count(row.get('n'))}",
                    ]
                )
            )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=y,
                name=scheme,
                mode="markers",
                marker={"size": 11, "color": _PALETTE[index % len(_PALETTE)]},
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
                offsetgroup=scheme,
            )
        )
    figure.add_hline(y=0, line={"color": "#888", "width": 1, "dash": "dot"})
    is_rate = metric in _RATE_METRICS
    figure.update_layout(
        template=_PLOT_TEMPLATE,
        title={
            "text": f"{_metric_label(metric)}: change from model A to model B by group"
            "<br><sup>B − A with its paired interval; below the line: lower under B</sup>"
        },
        scattermode="group",
        height=420,
        margin={"l": 60, "r": 20, "t": 70, "b": 40},
        legend={"title": {"text": "scheme"}},
        xaxis={
            "title": {"text": "group"},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": groups,
        },
        yaxis={
            "title": {"text": f"change in {_metric_label(metric).lower()} (B − A)"},
            "tickformat": ".0%" if is_rate else None,
            "zeroline": True,
        },
    )
    return figure


def run_pair_group_metrics(
    group_metrics_a: pd.DataFrame,
    group_metrics_b: pd.DataFrame,
    *,
    labels: tuple[str, str] = ("A", "B"),
) -> pd.DataFrame:
    """Two runs' ``group_metrics`` in one table, each model named ``"<label> · <model>"``.

    Pass the result to :func:`fpr_by_group_figure` or :func:`group_table` to show run A and
    run B side by side, each estimate with its own interval. Nothing is recomputed.
    """
    parts = []
    for label, frame in zip(labels, (group_metrics_a, group_metrics_b), strict=True):
        part = frame.copy()
        part["model"] = f"{label} · " + part["model"].astype(str)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def run_pair_gap_table(
    comparisons_a: pd.DataFrame,
    comparisons_b: pd.DataFrame,
    *,
    metric: str = "false_positive_rate",
    labels: tuple[str, str] = ("A", "B"),
    group_order: Sequence[str] | None = None,
    model_order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The group-versus-reference gap of one metric in run A and in run B, per model and group.

    The two runs are separate audits, so no interval of the change is available here (a
    paired interval needs the item-level flags of both models on the same items, which the
    reweighting A/B loop computes into ``ab_comparison``); the change column is the difference
    of the two point estimates and says so.

    Returns
    -------
    pandas.DataFrame
        String columns ``Model``, ``Group``, ``Reference``, ``Gap <A> [interval]``,
        ``Gap <B> [interval]``, ``Change <B> − <A> (point)`` and ``Significant <A> / <B>``;
        an undefined gap reads ``"n/a – <reason>"``.
    """
    keys = ["model", "group", "reference"]
    needed = (*keys, "metric", "difference", "ci_low", "ci_high", "undefined_reason")
    _require(comparisons_a, needed, "comparisons (run A)")
    _require(comparisons_b, needed, "comparisons (run B)")
    label_a, label_b = labels

    def pick(frame: pd.DataFrame) -> pd.DataFrame:
        rows = frame[frame["metric"].astype(str) == metric].copy()
        for key in keys:
            rows[key] = rows[key].astype(str)
        return rows.drop_duplicates(keys).set_index(keys)

    a, b = pick(comparisons_a), pick(comparisons_b)
    index = list(dict.fromkeys([*a.index, *b.index]))
    frame = pd.DataFrame(index, columns=keys).assign(metric=metric)
    frame = _sorted_for_display(frame, group_order, model_order)

    def gap(rows: pd.DataFrame, key: tuple[str, str, str]) -> str:
        if key not in rows.index:
            return format_undefined("not in this run")
        row = rows.loc[key]
        return format_estimate(
            row["difference"],
            row["ci_low"],
            row["ci_high"],
            undefined_reason=_difference_undefined_reason(row),
        )

    def change(key: tuple[str, str, str]) -> str:
        if key not in a.index or key not in b.index:
            return format_undefined("not in both runs")
        da, db = a.loc[key, "difference"], b.loc[key, "difference"]
        if _is_missing(da) or _is_missing(db):
            return format_undefined("gap undefined in a run")
        return _number(float(db) - float(da), signed=True)

    def significant(rows: pd.DataFrame, key: tuple[str, str, str]) -> str:
        if key not in rows.index or "significant" not in rows.columns:
            return _NOT_AVAILABLE
        value = rows.loc[key, "significant"]
        return _NOT_AVAILABLE if _is_missing(value) else _yes_no(value)

    keys_in_order = [tuple(k) for k in frame[keys].itertuples(index=False)]
    return pd.DataFrame(
        {
            "Model": [k[0] for k in keys_in_order],
            "Group": [k[1] for k in keys_in_order],
            "Reference": [k[2] for k in keys_in_order],
            f"Gap {label_a} [interval]": [gap(a, k) for k in keys_in_order],
            f"Gap {label_b} [interval]": [gap(b, k) for k in keys_in_order],
            f"Change {label_b} − {label_a} (point)": [change(k) for k in keys_in_order],
            f"Significant {label_a} / {label_b}": [
                f"{significant(a, k)} / {significant(b, k)}" for k in keys_in_order
            ],
        }
    )
