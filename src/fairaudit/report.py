"""Write a standalone HTML audit report from a run folder.

Takes a run folder (``manifest.json`` and the Parquet tables that ``fairaudit run`` writes) and
returns the path of a single ``report.html`` that opens offline: plotly.js is embedded once in
the page and every figure is inline. The report reads only the run folder, never the pipeline,
and shows the figures and tables that :mod:`fairaudit.figures` builds, so it agrees with the
dashboard number for number.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
import pyarrow.parquet as pq
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from fairaudit import figures
from fairaudit.exceptions import FairauditError, InputError
from fairaudit.runfolder import write_text_atomic

__all__ = ["RunFolder", "load_run", "render_report", "write_report"]

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "report.html.j2"

_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "utterances.parquet": ("id", "dialect_group"),
    "group_metrics.parquet": (
        "model", "group", "metric", "estimate", "ci_low", "ci_high", "n", "count",
        "interval_method", "alpha", "undefined_reason", "small_group",
    ),
    "comparisons.parquet": (
        "model", "group", "reference", "metric", "estimate", "reference_estimate", "difference",
        "ci_low", "ci_high", "ratio", "n", "n_reference", "method", "p_value", "p_adjusted",
        "correction", "significant", "alpha", "undefined_reason",
    ),
    "weights.parquet": ("id", "sample_weight", "copies", "group", "label"),
}  # fmt: skip

# Only these utterance columns are shown; the marker columns can be many and are not read.
_UTTERANCE_COLUMNS = ("id", "dialect_group", "in_audit", "gold_toxic")

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

# Tables a run folder may hold besides the required ones; a section is shown only for the
# tables present. ``counterfactual_*`` tables are found by name.
OPTIONAL_TABLES = (
    "bias_auc",
    "bias_auc_comparisons",
    "cmh",
    "regression",
    "power",
    "threshold_sweep",
    "calibration",
    "calibration_summary",
    "label_bias",
    "soft_metrics",
    "threshold_sensitivity",
    "weights_effective_sample_size",
    "ab_comparison",
    "ab_summary",
    "paired",
)

# Display columns that hold numbers; the template keeps them on one line.
_NUMBER_COLUMNS = frozenset(
    {
        "Estimate [interval]", "Estimate vs reference", "Difference [interval]", "Ratio", "n",
        "n vs reference", "Count", "p (raw)", "p (adjusted)", "Items", "Mean weight",
        "Min weight", "Max weight", "Total weight", "Total copies", "Kish effective n",
        "p (BH)", "Odds ratio [interval]", "Four-fifths ratio", "Positives", "Negatives",
        "Difference vs reference [interval]", "Pooled odds ratio [interval]", "CMH χ²",
        "Breslow–Day p", "Odds ratio without controls [interval]",
        "Odds ratio with controls [interval]", "Attenuation", "p (with controls)", "LR p",
        "z", "Items with votes", "Votes",
        "Majority harmful [interval]", "Harmful vote share", "Split votes", "Majority ties",
        "Krippendorff α", "Fleiss κ", "Weighted count / weight", "Rows", "Reference estimate",
        "MDD up / down", "Minimum detectable difference", "Power", "Brier score", "ECE",
        "FPR gap A → B", "Gap change [interval]", "A → B", "Change [interval]", "ESS before",
        "ESS unclipped", "ESS after", "ESS fraction", "FPR treated vs control",
        "Negatives treated vs control", "Excluded", "Threshold", "ROC AUC A → B",
        "ROC AUC change (lower bound)", "Macro F1 A → B", "Macro F1 change (lower bound)",
        "Min ESS fraction",
    }
)  # fmt: skip

_WEIGHT_SCHEMES = {
    "kamiran_calders": "Kamiran & Calders reweighing (each group and gold label weighted as if "
    "group and label were independent)",
}


@dataclass(frozen=True)
class RunFolder:
    """The parts of a run folder that the report shows.

    Attributes
    ----------
    path
        The run folder.
    manifest
        ``manifest.json`` as a dict.
    utterances
        ``utterances.parquet``, only the columns the report uses.
    group_metrics, comparisons
        The disparity tables.
    weights
        ``weights.parquet``, or None when the run made no weights.
    tables
        The optional tables present (see :data:`OPTIONAL_TABLES`, and ``counterfactual_*``),
        by name without ``.parquet``.
    """

    path: Path
    manifest: dict[str, Any]
    utterances: pd.DataFrame
    group_metrics: pd.DataFrame
    comparisons: pd.DataFrame
    weights: pd.DataFrame | None
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError("the run folder has no manifest; is this a fairaudit run?", file=path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"not valid JSON ({error})", file=path) from error
    if not isinstance(manifest, dict):
        raise InputError("expected a JSON object at the top level", file=path)
    return manifest


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("the run folder lacks this table", file=path)
    columns = None
    if path.name == "utterances.parquet":
        columns = [c for c in _UTTERANCE_COLUMNS if c in _parquet_columns(path)]
    try:
        table = pd.read_parquet(path, columns=columns)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot read Parquet ({error})", file=path) from error
    for column in _REQUIRED_COLUMNS.get(path.name, ()):
        if column not in table.columns:
            raise InputError("required column is missing", file=path, column=column)
    return table


def _parquet_columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except Exception as error:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot read Parquet ({error})", file=path) from error


def load_run(run_dir: str | Path) -> RunFolder:
    """Read the parts of a run folder that the report shows.

    Parameters
    ----------
    run_dir
        The run folder written by ``fairaudit run``.

    Returns
    -------
    RunFolder

    Raises
    ------
    InputError
        If the folder, the manifest or a required table is missing or unreadable, naming the
        file (and the column, for a missing column).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise InputError("run folder not found", file=path)
    manifest = _read_manifest(path / "manifest.json")
    utterances = _read_table(path / "utterances.parquet")
    group_metrics = _read_table(path / "group_metrics.parquet")
    comparisons = _read_table(path / "comparisons.parquet")
    weights_path = path / "weights.parquet"
    weights = _read_table(weights_path) if weights_path.is_file() else None
    names = list(OPTIONAL_TABLES) + sorted(
        p.name[: -len(".parquet")] for p in path.glob("counterfactual_*.parquet")
    )
    tables = {
        name: _read_table(path / f"{name}.parquet")
        for name in names
        if (path / f"{name}.parquet").is_file()
    }
    return RunFolder(
        path=path,
        manifest=manifest,
        utterances=utterances,
        group_metrics=group_metrics,
        comparisons=comparisons,
        weights=weights,
        tables=tables,
    )


def _environment() -> jinja2.Environment:
    templates = files("fairaudit") / "templates"
    source = (templates / TEMPLATE_NAME).read_text(encoding="utf-8")
    environment = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        loader=jinja2.DictLoader({TEMPLATE_NAME: source}),
    )
    environment.filters["thousands"] = lambda v: "n/a" if v is None or v == "" else f"{int(v):,}"
    return environment


def _figure_html(figure: go.Figure, div_id: str) -> Markup:
    # plotly.js is embedded once in the page head, so no figure includes it.
    html = figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=_PLOTLY_CONFIG
    )
    return Markup(html)


def _table(
    frame: pd.DataFrame, caption: str | None = None, *, numbers: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A display table as header and rows of strings, for the template to escape and lay out.

    ``classes`` gives each column's CSS class: ``"num"`` for number columns (those in
    :data:`_NUMBER_COLUMNS` and ``numbers``), which are kept on one line.
    """
    columns = [str(c) for c in frame.columns]
    return {
        "columns": columns,
        "classes": ["num" if c in _NUMBER_COLUMNS or c in numbers else "" for c in columns],
        "rows": [["" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(False)],
        "caption": caption,
    }


def _group_order(manifest: Mapping[str, Any]) -> list[str]:
    counts = (manifest.get("dialect") or {}).get("counts") or {}
    reference = manifest.get("reference_group")
    first = [] if figures.uses_own_groups(manifest) else ["aae"]
    order = first + [str(g) for g in counts] + ([str(reference)] if reference else [])
    return list(dict.fromkeys(order))


def _group_counts(dialect: Mapping[str, Any]) -> dict[str, Any] | None:
    """Audited and all-row counts per group, for the groups table."""
    audited = dialect.get("counts") or {}
    all_rows = dialect.get("counts_all_rows") or {}
    if not audited and not all_rows:
        return None
    groups = list(dict.fromkeys([*map(str, audited), *map(str, all_rows)]))
    audited = {str(k): v for k, v in audited.items()}
    all_rows = {str(k): v for k, v in all_rows.items()}
    return {
        "has_audited": bool(audited),
        "has_all_rows": bool(all_rows),
        "rows": [
            {"group": g, "audited": audited.get(g), "all_rows": all_rows.get(g)} for g in groups
        ],
        "total_audited": sum(int(v) for v in audited.values()) if audited else None,
        "total_all_rows": sum(int(v) for v in all_rows.values()) if all_rows else None,
    }


def _model_notes(models: list[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Model notes split into caveats (in-sample, warnings) and plain provenance notes."""
    split: dict[str, list[dict[str, str]]] = {"caveats": [], "provenance": []}
    for model in models:
        for note in model.get("notes") or []:
            kind = "caveats" if figures.is_caveat_note(note) else "provenance"
            split[kind].append({"model": str(model.get("name") or ""), "note": str(note)})
    return split


def _model_order(manifest: Mapping[str, Any]) -> list[str]:
    return [str(m["name"]) for m in manifest.get("models") or [] if m.get("name")]


def _weights_scheme(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    config = manifest.get("config") or {}
    for candidate in (manifest.get("weights"), config.get("weights"), config.get("reweighting")):
        if isinstance(candidate, Mapping) and candidate:
            return {str(k): v for k, v in candidate.items()}
        if isinstance(candidate, str) and candidate:
            return {"scheme": candidate}
    return None


def _describe_weights(scheme: Mapping[str, Any]) -> list[str]:
    """The manifest's weights entry as sentences a reader can follow."""
    lines = []
    for key, value in scheme.items():
        if key == "scheme":
            lines.append(f"Scheme: {_WEIGHT_SCHEMES.get(str(value), str(value))}.")
        elif key == "normalize":
            lines.append(
                "Weights normalised to mean 1."
                if value is True
                else "Weights not normalised (their mean is not fixed at 1)."
                if value is False
                else f"Normalisation: {value}."
            )
        elif key == "rows_weighted" and isinstance(value, int | float):
            lines.append(f"{int(value):,} rows weighted.")
        elif key == "rows":
            lines.append(f"Rows weighted: {value}.")
        else:
            lines.append(f"{key.replace('_', ' ').capitalize()}: {value}.")
    return lines


def _small_groups(group_metrics: pd.DataFrame) -> list[dict[str, Any]]:
    if "small_group" not in group_metrics.columns:
        return []
    small = group_metrics[group_metrics["small_group"].astype("boolean").fillna(False)]
    small = small.drop_duplicates(["model", "group"])
    return [
        {"model": str(r.model), "group": str(r.group), "n": None if pd.isna(r.n) else int(r.n)}
        for r in small.itertuples()
    ]


def _first_value(frame: pd.DataFrame, column: str) -> Any:
    return figures.constant_value(frame, column)


def _alpha_percent(frame: pd.DataFrame, alpha: Any) -> str:
    value = _first_value(frame, "alpha")
    value = value if value is not None else alpha
    try:
        return f"{(1 - float(value)) * 100:g}%"
    except (TypeError, ValueError):
        return "stated"


def _focus_group(manifest: Mapping[str, Any], groups: list[str]) -> str:
    reference = str(manifest.get("reference_group") or "sae")
    if "aae" in groups and not figures.uses_own_groups(manifest):
        return "aae"
    others = [g for g in groups if g not in (reference, "overall", "difference")]
    return others[0] if others else "aae"


class _Sections:
    """Builds the optional sections; a table that lacks a column becomes a visible note."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def build(self, name: str, builder: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return builder(*args, **kwargs)
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("cannot show %s: %s", name, error)
            self.problems.append(f"n/a – {name} cannot be shown ({error})")
            return None


def _optional_sections(
    run: RunFolder, *, group_order: list[str], model_order: list[str]
) -> dict[str, Any]:
    """Context for the sections of the optional tables; a key is None when its tables are
    absent from the run folder."""
    tables = run.tables
    manifest = run.manifest
    alpha = manifest.get("alpha")
    sections = _Sections()
    order = {"group_order": group_order, "model_order": model_order}

    def table(name: str, builder: Any, caption: str | None = None, **kwargs: Any) -> Any:
        frame = sections.build(name, builder, tables[name], **kwargs)
        if frame is None:
            return None
        # The A/B summary has one column of numbers per scheme.
        numbers = frozenset(map(str, frame.columns[1:])) if name == "ab_summary" else frozenset()
        return _table(frame, caption=caption, numbers=numbers)

    def figure(name: str, div_id: str, builder: Any, *args: Any, **kwargs: Any) -> Any:
        made = sections.build(name, builder, *args, **kwargs)
        return None if made is None else _figure_html(made, div_id=div_id)

    context: dict[str, Any] = {}

    # (1) Threshold-free bias metrics
    bias = None
    if "bias_auc" in tables or "bias_auc_comparisons" in tables:
        bias = {"table": None, "comparisons": None}
        if "bias_auc" in tables:
            frame = tables["bias_auc"]
            bias["table"] = table(
                "bias_auc",
                figures.bias_auc_table,
                caption=f"Intervals at the {_alpha_percent(frame, alpha)} level. Subgroup AUC: "
                "ranking within the group; BPSN: the group's non-harmful against the others' "
                "harmful messages (low = the group's innocuous messages score high); BNSP: the "
                "group's harmful against the others' non-harmful messages; AEG: average "
                "equality gap (0 = the group's scores rank like the rest).",
                **order,
            )
        if "bias_auc_comparisons" in tables:
            frame = tables["bias_auc_comparisons"]
            correction = _first_value(frame, "correction")
            reference = _first_value(frame, "reference")
            caption = "Each group's AUC minus the reference group's" + (
                f" ({reference})" if reference else ""
            )
            caption += f", with a {_alpha_percent(frame, alpha)} DeLong interval and z-test"
            if correction is not None:
                caption += (
                    "; p-values are not adjusted for multiple comparisons."
                    if str(correction).lower() == "none"
                    else f"; p-values {figures._correction_label(correction)}-adjusted."
                )
            else:
                caption += "."
            bias["comparisons"] = table(
                "bias_auc_comparisons", figures.bias_auc_comparison_table, caption=caption, **order
            )
    context["bias_auc"] = bias

    # (2) Controls and confounds
    controls = None
    if "cmh" in tables or "regression" in tables:
        controls = {"cmh": None, "regression": None, "terms": None, "sentences": []}
        if "cmh" in tables:
            frame = tables["cmh"]
            controls["cmh"] = table(
                "cmh",
                figures.cmh_table,
                caption="Odds ratio of being flagged (group vs reference), pooled over the strata "
                f"of the gold label (Mantel–Haenszel), with a {_alpha_percent(frame, alpha)} "
                "interval; the Breslow–Day test asks whether the odds ratio differs between "
                "strata (“yes” = it does, and the pooled value is an average).",
                **order,
            )
        if "regression" in tables:
            frame = tables["regression"]
            controls["regression"] = table(
                "regression",
                figures.regression_table,
                caption="Logistic regression of being flagged on group and gold label, without "
                "and with the lexical controls; odds ratios against the reference group with "
                f"{_alpha_percent(frame, alpha)} intervals. Attenuation is 1 − b_with / "
                "b_without on the log odds scale: the share of the group effect the controls "
                "account for (negative: the effect grows). Under separation the fit falls back "
                "to Firth's penalised likelihood, noted in the row.",
                **order,
            )
            controls["terms"] = table(
                "regression", figures.regression_terms_table, model_order=model_order
            )
            focus = _focus_group(
                manifest, [str(g) for g in frame.get("group", pd.Series()).dropna()]
            )
            controls["sentences"] = (
                sections.build(
                    "regression",
                    figures.regression_sentences,
                    frame,
                    focus_group=focus,
                    model_order=model_order,
                )
                or []
            )
    context["controls"] = controls

    # (3) Label bias
    label = None
    if "label_bias" in tables:
        frame = tables["label_bias"]
        rule = _first_value(frame, "majority_rule")
        categories = _first_value(frame, "harmful_categories")
        label = {
            "table": table(
                "label_bias",
                figures.label_bias_table,
                caption=(f"Harmful categories: {categories}. " if categories else "")
                + (f"{rule[0].upper()}{rule[1:]}. " if rule else "")
                + f"Intervals at the {_alpha_percent(frame, alpha)} level (Wilson; difference: "
                "Newcombe). Split votes: items whose annotators did not all agree.",
                group_order=group_order,
            ),
            "sentence": sections.build(
                "label_bias",
                figures.label_bias_sentence,
                frame,
                focus_group=_focus_group(manifest, [str(g) for g in frame["group"]])
                if "group" in frame
                else "aae",
                reference=_first_value(frame, "reference") or manifest.get("reference_group"),
            ),
        }
    context["label_bias"] = label

    # (4) Robustness
    robust = None
    robust_names = (
        "threshold_sensitivity", "soft_metrics", "power", "threshold_sweep", "calibration",
        "calibration_summary",
    )  # fmt: skip
    if any(name in tables for name in robust_names):
        robust = dict.fromkeys(robust_names)
        robust["sweep_figures"] = []
        robust["calibration_figures"] = []
        if "threshold_sensitivity" in tables:
            frame = tables["threshold_sensitivity"]
            robust["threshold_sensitivity"] = {
                "figure": figure(
                    "threshold_sensitivity",
                    "figure-threshold-sensitivity",
                    figures.threshold_sensitivity_figure,
                    frame,
                    model_order=model_order,
                ),
                "table": table(
                    "threshold_sensitivity",
                    figures.threshold_sensitivity_table,
                    model_order=model_order,
                ),
            }
        if "soft_metrics" in tables:
            robust["soft_metrics"] = table(
                "soft_metrics",
                figures.soft_metrics_table,
                caption="Each message counts towards a group with its dialect score as weight "
                "(AAE-aligned: the score; reference: one minus it), so no threshold decides "
                "membership; “difference” is the group minus the reference. Intervals use "
                "Kish's effective n.",
                **order,
            )
        if "power" in tables:
            frame = tables["power"]
            power = _first_value(frame, "power")
            robust["power"] = table(
                "power",
                figures.power_table,
                caption="The smallest difference from the reference group each comparison "
                "could detect"
                + (f" with power {float(power):g}" if power is not None else "")
                + f" at α = {_first_value(frame, 'alpha') or alpha} (two-sided, normal "
                "approximation on Cohen's h); “low power” marks a comparison whose minimum "
                "detectable difference exceeds the limit, where “no significant difference” "
                "says little.",
                **order,
            )
        thresholds = {
            str(m.get("name")): m.get("threshold")
            for m in manifest.get("models") or []
            if m.get("name") and isinstance(m.get("threshold"), int | float)
        }
        if "threshold_sweep" in tables:
            frame = tables["threshold_sweep"]
            metric = "false_positive_rate"
            if "metric" in frame and metric not in set(frame["metric"].astype(str)):
                metric = str(frame["metric"].iloc[0]) if len(frame) else metric
            models = figures._ordered(frame.get("model", pd.Series(dtype=str)), model_order)
            for index, model in enumerate(models):
                made = figure(
                    "threshold_sweep",
                    f"figure-threshold-sweep-{index}",
                    figures.threshold_sweep_figure,
                    frame,
                    model=model,
                    metric=metric,
                    group_order=group_order,
                    thresholds=thresholds,
                )
                if made is not None:
                    robust["sweep_figures"].append(made)
        if "calibration" in tables:
            frame = tables["calibration"]
            models = figures._ordered(frame.get("model", pd.Series(dtype=str)), model_order)
            for index, model in enumerate(models):
                made = figure(
                    "calibration",
                    f"figure-calibration-{index}",
                    figures.calibration_figure,
                    frame,
                    model=model,
                    group_order=group_order,
                )
                if made is not None:
                    robust["calibration_figures"].append(made)
        if "calibration_summary" in tables:
            robust["calibration_summary"] = table(
                "calibration_summary",
                figures.calibration_summary_table,
                caption="Brier score: mean squared difference between score and gold label "
                "(lower is better). ECE: expected calibration error, the item-weighted mean "
                "gap between mean score and observed harmful share over the bins.",
                **order,
            )
    context["robustness"] = robust

    # (5) Reweighting A/B
    ab = None
    ab_test = manifest.get("ab_test") if isinstance(manifest.get("ab_test"), Mapping) else {}
    verdicts = (ab_test or {}).get("verdicts") or {}
    if (
        "ab_summary" in tables
        or "ab_comparison" in tables
        or "weights_effective_sample_size" in tables
        or verdicts
    ):
        margin = None
        correction = None
        if "ab_comparison" in tables:
            margin = _first_value(tables["ab_comparison"], "margin")
            correction = _first_value(tables["ab_comparison"], "correction")
        adjusted = figures._correction_label(correction) if correction else "multiplicity"
        ab = {
            "note": (ab_test or {}).get("note"),
            "split": (ab_test or {}).get("split") or {},
            "verdicts": [{"scheme": str(k), "text": str(v)} for k, v in verdicts.items() if v],
            "summary": table(
                "ab_summary",
                figures.ab_summary_table,
                caption="One column per scheme. Model A is trained unweighted, model B with the "
                "scheme's weights; both "
                "are compared on the same held-out rows. FPR gap: the focus group's false "
                "positive rate minus the reference group's. Gap change: B − A with a paired "
                f"bootstrap interval; p-values {adjusted}-adjusted across the A/B "
                + "comparisons. FPR per group: A → B with the McNemar "
                "p-value. Change (lower bound): B − A and the lower interval bound; "
                "non-inferior when that bound exceeds −margin"
                + (f" (margin {float(margin):g})" if margin is not None else "")
                + ". Min ESS fraction: the smallest per-group ratio of effective to actual "
                "sample size under B's weights.",
            )
            if "ab_summary" in tables
            else None,
            "comparison": table(
                "ab_comparison", figures.ab_comparison_table, group_order=group_order
            )
            if "ab_comparison" in tables
            else None,
            "ess": table(
                "weights_effective_sample_size",
                figures.effective_sample_size_table,
                caption="Kish effective sample size (Σw)² / Σw² per group: before weighting, "
                "with the scheme's weights before clipping, and after clipping.",
                group_order=group_order,
            )
            if "weights_effective_sample_size" in tables
            else None,
        }
    context["ab"] = ab

    # Pairs and templates, shown as they are.
    other = []
    for name in [n for n in tables if n == "paired" or n.startswith("counterfactual_")]:
        made = table(name, figures.generic_table)
        if made is not None:
            other.append(
                {"name": name, "title": name.replace("_", " ").capitalize(), "table": made}
            )
    context["other_tables"] = other
    context["section_problems"] = sections.problems
    return context


def render_report(run: RunFolder) -> str:
    """Render the report of a loaded run folder as one self-contained HTML page.

    Parameters
    ----------
    run
        The run folder, as :func:`load_run` returns it.

    Returns
    -------
    str
        The HTML text, with plotly.js embedded once and no external resources.
    """
    manifest = run.manifest
    own_groups = figures.uses_own_groups(manifest)
    group_noun = "group" if own_groups else "dialect group"
    group_order = _group_order(manifest)
    model_order = _model_order(manifest)
    metrics_present = list(dict.fromkeys(run.group_metrics["metric"].astype(str)))
    headline_metrics = [
        str((h or {}).get("metric") or "false_positive_rate")
        for h in (manifest.get("headline") or {}).values()
    ] or ["false_positive_rate"]
    plotted = [
        m
        for m in dict.fromkeys([*headline_metrics, "false_positive_rate", "false_negative_rate"])
        if m in metrics_present
    ]

    metric_figures = [
        {
            "metric": metric,
            "label": figures.METRIC_LABELS.get(metric, metric),
            "html": _figure_html(
                figures.fpr_by_group_figure(
                    run.group_metrics,
                    metric=metric,
                    group_order=group_order,
                    model_order=model_order,
                    group_noun=group_noun,
                ),
                div_id=f"figure-{metric.replace('_', '-')}",
            ),
        }
        for metric in plotted
    ]
    weights = None
    if run.weights is not None:
        scheme = _weights_scheme(manifest)
        weights = {
            "table": _table(figures.weights_table(run.weights, group_order=group_order)),
            "kish_table": _table(
                figures.kish_by_group_table(run.weights, group_order=group_order)
            ),
            "items": len(run.weights),
            "kish": figures.kish_effective_sample_size(run.weights["sample_weight"]),
            "description": _describe_weights(scheme) if scheme else [],
        }
    models = manifest.get("models") or []

    context = {
        "plotly_js": Markup(get_plotlyjs()),
        "manifest": manifest,
        "run_name": manifest.get("run_name") or run.path.name,
        "alpha": manifest.get("alpha"),
        "models": models,
        "model_notes": _model_notes(models),
        "own_groups": own_groups,
        "inputs": manifest.get("inputs") or [],
        "corpus": manifest.get("corpus") or {},
        "join": manifest.get("join") or {},
        "dialect": manifest.get("dialect") or {},
        "group_counts": _group_counts(manifest.get("dialect") or {}),
        "reference_group": manifest.get("reference_group"),
        "warnings": manifest.get("warnings") or [],
        "packages": sorted((manifest.get("packages") or {}).items()),
        "timings": list((manifest.get("timings") or {}).items()),
        "config_json": json.dumps(manifest.get("config") or {}, indent=2, sort_keys=True),
        "summaries": figures.headline_summaries(manifest, run.group_metrics, run.comparisons),
        "small_groups": _small_groups(run.group_metrics),
        "dialect_counts_figure": _figure_html(
            figures.dialect_counts_figure(
                run.utterances, group_order=group_order, group_noun=group_noun
            ),
            div_id="figure-dialect-counts",
        ),
        "metric_figures": metric_figures,
        "group_table": _table(
            figures.group_table(
                run.group_metrics, group_order=group_order, model_order=model_order
            )
        ),
        "comparison_table": _table(
            figures.comparison_table(
                run.comparisons, group_order=group_order, model_order=model_order
            ),
            caption=figures.comparison_caption(run.comparisons),
        ),
        "weights": weights,
        "group_label": lambda group: figures.group_label(group, own_groups=own_groups),
        **_optional_sections(run, group_order=group_order, model_order=model_order),
    }
    return _environment().get_template(TEMPLATE_NAME).render(**context)


def write_report(run_dir: str | Path, *, out: str | Path | None = None) -> Path:
    """Write the standalone HTML report of a run folder.

    Parameters
    ----------
    run_dir
        The run folder written by ``fairaudit run``; the only thing read.
    out
        Where to write the report; ``run_dir/report.html`` by default. The file is written to a
        temporary file in the same folder and then moved into place, so a reader never sees a
        half-written report.

    Returns
    -------
    pathlib.Path
        The path of the written report.

    Raises
    ------
    InputError
        If the run folder, its manifest or a required table is missing or unreadable.
    """
    started = time.perf_counter()
    run = load_run(run_dir)
    target = Path(out) if out is not None else run.path / "report.html"
    html = render_report(run)

    write_text_atomic(target, lambda handle: handle.write(html))

    logger.info(
        "wrote report %s (%.1f MB) in %.1f s",
        target,
        target.stat().st_size / 1e6,
        time.perf_counter() - started,
    )
    return target


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--no-pdf-header-footer",
    "--virtual-time-budget=15000",
)


def find_chromium() -> str | None:
    """A headless-capable Chromium on this machine (``$FAIRAUDIT_CHROMIUM`` first), or None."""
    candidates = [os.environ.get("FAIRAUDIT_CHROMIUM"), "chromium", "chromium-browser"]
    candidates += ["google-chrome", "/usr/bin/chromium"]
    for candidate in candidates:
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def write_pdf(
    run_dir: str | Path, *, out: str | Path | None = None, chromium: str | None = None
) -> Path:
    """Print the run's HTML report to PDF with headless Chromium (figures included).

    The HTML report is written first if the run folder has none. The PDF goes to a temporary
    file in the target folder and is moved into place only when Chromium produced a PDF.

    Raises
    ------
    FairauditError
        When no Chromium is installed (Debian: ``apt-get install chromium``) or printing fails.
    """
    run_dir = Path(run_dir)
    html = run_dir / "report.html"
    if not html.is_file():
        write_report(run_dir)
    browser = chromium or find_chromium()
    if browser is None:
        raise FairauditError(
            "PDF needs headless Chromium: install it (Debian: apt-get install chromium) or set "
            "FAIRAUDIT_CHROMIUM to its path"
        )
    target = Path(out) if out is not None else run_dir / "report.pdf"
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as profile:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(handle)
        try:
            completed = subprocess.run(
                [
                    browser,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--print-to-pdf={temporary}",
                    html.resolve().as_uri(),
                ],
                capture_output=True,
                timeout=180,
                check=False,
            )
            with open(temporary, "rb") as produced:
                is_pdf = produced.read(5) == b"%PDF-"
            if completed.returncode != 0 or not is_pdf:
                raise FairauditError(
                    f"{html}: Chromium could not print the report to PDF "
                    f"(exit {completed.returncode})"
                )
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
    logger.info("wrote %s in %.1f s", target, time.perf_counter() - started)
    return target
