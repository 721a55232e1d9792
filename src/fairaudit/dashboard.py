"""A Dash dashboard for fairness reviewers, built from one or two run folders.

Takes the run folders that ``fairaudit run`` writes (read with :func:`fairaudit.report.load_run`)
and returns a :class:`dash.Dash` app with three tabs: an overview (run header, false positive rate
by group, group metrics and comparisons), before/after (the reweighting A/B loop of a run folder,
or run A against run B when two folders are given) and robustness and labels (threshold
sensitivity, label bias, bias AUC, each shown only when its table exists). A model selector
filters the figures and tables by model.

Every figure and table comes from :mod:`fairaudit.figures`, the module the HTML report uses, so
the dashboard and the report show the same numbers. All views are built once at start-up; the
one callback only looks up the view for the chosen tab and model, so nothing is recomputed on
the request path. The page needs no network: Dash serves its own JavaScript and plotly.js.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from fairaudit import figures
from fairaudit.report import RunFolder, load_run

__all__ = ["ALL_MODELS", "TABS", "create_app", "serve"]

logger = logging.getLogger(__name__)

# The model selector's value for "no filter".
ALL_MODELS = "__all__"

TABS: dict[str, str] = {
    "overview": "Overview",
    "before-after": "Before/after",
    "robustness": "Robustness and labels",
}

_GRAPH_CONFIG = {"displaylogo": False, "responsive": True}

# Columns of the figures module's display tables that hold numbers; kept on one line.
_NUMBER_MARKERS = ("[interval]", "→", "p (", "Ratio", "Count", "Gap ", "Change ")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
.page { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 1.5rem; margin: 8px 0 4px; }
h2 { font-size: 1.2rem; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 20px 0 6px; }
.run-header { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 16px;
              margin: 8px 0; }
.run-header dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px;
                 margin: 6px 0; }
.run-header dt { font-weight: 600; }
.run-header dd { margin: 0; }
.selector { display: flex; align-items: center; gap: 12px; margin: 12px 0; }
.selector label { font-weight: 600; }
.selector .dash-dropdown { min-width: 280px; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid #ddd; border-radius: 6px; }
table.display { border-collapse: collapse; font-size: 0.85rem; width: 100%; }
table.display th, table.display td { padding: 4px 8px; border-bottom: 1px solid #eee;
                                     text-align: left; vertical-align: top; }
table.display th { background: #f3f3f3; position: sticky; top: 0; }
table.display td.num { white-space: nowrap; font-variant-numeric: tabular-nums; }
.caption { color: #555; font-size: 0.85rem; margin: 4px 0 8px; }
.verdict { background: #fff; border-left: 4px solid #0072B2; padding: 8px 12px; margin: 8px 0; }
.note { color: #555; font-style: italic; }
.problem { color: #a33; }
"""

_INDEX = (
    """<!DOCTYPE html>
<html>
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <style>"""
    + _STYLE
    + """</style>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
)


@dataclass(frozen=True)
class _Run:
    """A loaded run folder and the name the dashboard gives it (``"A"``, ``"B"``)."""

    label: str
    folder: RunFolder


# --- small display pieces -----------------------------------------------------------------


def _table(frame: pd.DataFrame, *, table_id: str | None = None) -> html.Div:
    """A display table (strings from :mod:`fairaudit.figures`) as a plain HTML table."""
    columns = [str(c) for c in frame.columns]
    numeric = [any(marker in c for marker in _NUMBER_MARKERS) or c == "n" for c in columns]
    header = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td("" if pd.isna(v) else str(v), className="num" if is_num else None)
                    for v, is_num in zip(row, numeric, strict=True)
                ]
            )
            for row in frame.itertuples(index=False)
        ]
    )
    table = html.Table([header, body], className="display")
    return (
        html.Div(table, className="table-wrap", id=table_id)
        if table_id
        else html.Div(table, className="table-wrap")
    )


def _graph(figure: go.Figure, graph_id: str) -> dcc.Graph:
    return dcc.Graph(id=graph_id, figure=figure.to_dict(), config=_GRAPH_CONFIG)


def _note(text: str) -> html.P:
    return html.P(text, className="note")


class _Sections:
    """Builds one piece of a view; a table the builder cannot show becomes a visible note."""

    def build(self, name: str, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("cannot show %s: %s", name, error)
            return html.P(f"n/a – {name} cannot be shown ({error})", className="problem")


def _only_model(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    if model == ALL_MODELS or "model" not in frame.columns:
        return frame
    return frame[frame["model"].astype(str) == model]


def _model_order(manifest: Mapping[str, Any]) -> list[str]:
    return [str(m["name"]) for m in manifest.get("models") or [] if m.get("name")]


def _group_order(manifest: Mapping[str, Any]) -> list[str]:
    counts = (manifest.get("dialect") or {}).get("counts") or {}
    reference = manifest.get("reference_group")
    first = [] if figures.uses_own_groups(manifest) else ["aae"]
    order = first + [str(g) for g in counts] + ([str(reference)] if reference else [])
    return list(dict.fromkeys(order))


def _group_noun(manifest: Mapping[str, Any]) -> str:
    return "group" if figures.uses_own_groups(manifest) else "dialect group"


def _verdicts(manifest: Mapping[str, Any]) -> dict[str, str]:
    ab_test = manifest.get("ab_test")
    verdicts = ab_test.get("verdicts") if isinstance(ab_test, Mapping) else None
    if not isinstance(verdicts, Mapping):
        return {}
    return {str(k): str(v) for k, v in verdicts.items() if v}


# --- the run header -----------------------------------------------------------------------


def _run_header(run: _Run) -> html.Div:
    manifest = run.folder.manifest
    corpus = manifest.get("corpus") or {}
    models = manifest.get("models") or []
    model_lines = [
        html.Li(
            f"{m.get('name')}: score {m.get('score_definition') or 'n/a'}"
            f" ({m.get('positive_meaning') or 'meaning not stated'}), flagged at score ≥ "
            f"{m['threshold']:g}"
            if isinstance(m.get("threshold"), int | float)
            else f"{m.get('name')}: score {m.get('score_definition') or 'n/a'}, threshold n/a"
        )
        for m in models
        if m.get("name")
    ]
    alpha = manifest.get("alpha")
    audited = corpus.get("rows_audited")
    subset = corpus.get("audit_subset") or "all audited rows (no held-out subset stated)"
    entries: list[tuple[str, Any]] = [
        ("Folder", str(run.folder.path)),
        (
            "α",
            f"{alpha:g} ({(1 - alpha) * 100:g}% intervals)" if isinstance(alpha, float) else "n/a",
        ),
        ("Reference group", str(manifest.get("reference_group") or "n/a")),
        ("Audit subset", str(subset)),
        ("Rows audited", f"{int(audited):,}" if isinstance(audited, int | float) else "n/a"),
        ("Models (audited score, threshold)", html.Ul(model_lines) if model_lines else "n/a"),
        ("Finished", str(manifest.get("finished_at") or "n/a")),
    ]
    details: list[Any] = []
    for term, value in entries:
        details += [html.Dt(term), html.Dd(value)]
    name = manifest.get("run_name") or run.folder.path.name
    return html.Div(
        [html.H3(f"Run {run.label}: {name}"), html.Dl(details)],
        className="run-header",
        id=f"run-header-{run.label}",
    )


# --- the three tabs -----------------------------------------------------------------------


def _overview(run: _Run, model: str, *, single: bool) -> list[Any]:
    folder = run.folder
    manifest = folder.manifest
    order = {"group_order": _group_order(manifest), "model_order": _model_order(manifest)}
    group_metrics = _only_model(folder.group_metrics, model)
    comparisons = _only_model(folder.comparisons, model)
    suffix = "" if single else f"-{run.label}"
    sections = _Sections()
    children: list[Any] = [_run_header(run)]
    if group_metrics.empty:
        children.append(_note(f"Run {run.label} has no rows for the model {model}."))
        return children
    children += [
        sections.build(
            "false positive rate figure",
            lambda: _graph(
                figures.fpr_by_group_figure(
                    group_metrics, group_noun=_group_noun(manifest), **order
                ),
                f"fpr-figure{suffix}",
            ),
        ),
        html.H3("Group metrics"),
        html.P(
            "Each metric per group with its interval; an undefined value reads “n/a – reason”.",
            className="caption",
        ),
        sections.build(
            "group metrics",
            lambda: _table(
                figures.group_table(group_metrics, **order), table_id=f"group-table{suffix}"
            ),
        ),
        html.H3("Comparisons with the reference group"),
        sections.build(
            "comparison caption",
            lambda: html.P(figures.comparison_caption(comparisons), className="caption"),
        ),
        sections.build(
            "comparisons",
            lambda: _table(
                figures.comparison_table(comparisons, **order),
                table_id=f"comparison-table{suffix}",
            ),
        ),
    ]
    return children


def _verdict_block(run: _Run) -> list[Any]:
    verdicts = _verdicts(run.folder.manifest)
    if not verdicts:
        return []
    return [
        html.H3(f"Verdicts (run {run.label})"),
        html.Div(
            [
                html.Div([html.B(f"{scheme}: "), html.Span(text)], className="verdict")
                for scheme, text in verdicts.items()
            ],
            id=f"verdicts-{run.label}",
        ),
    ]


def _reweighting_ab(run: _Run) -> list[Any]:
    """The reweighting A/B loop stored in one run folder (``ab_summary``, ``ab_comparison``)."""
    tables = run.folder.tables
    manifest = run.folder.manifest
    sections = _Sections()
    ab_test = manifest.get("ab_test") if isinstance(manifest.get("ab_test"), Mapping) else {}
    children: list[Any] = [
        html.H2(f"Reweighting A/B in run {run.label}"),
        html.P(
            "Model A is trained unweighted, model B with each scheme's weights; both are "
            "compared on the same held-out rows. The model selector does not apply here.",
            className="caption",
        ),
    ]
    if (ab_test or {}).get("note"):
        children.append(_note(str(ab_test["note"])))
    children += _verdict_block(run)
    if "ab_summary" in tables:
        children += [
            html.H3("Gap and cost per scheme"),
            sections.build(
                "ab_summary",
                lambda: _table(
                    figures.ab_summary_table(tables["ab_summary"]), table_id="ab-summary"
                ),
            ),
        ]
    if "ab_comparison" in tables:
        comparison = tables["ab_comparison"]
        group_order = _group_order(manifest)
        fpr = comparison[comparison["metric"].astype(str) == "false_positive_rate"]
        children += [
            sections.build(
                "ab_comparison figure",
                lambda: _graph(
                    figures.ab_change_figure(comparison, group_order=group_order),
                    "ab-change-figure",
                ),
            ),
            html.H3("False positive rate per group, A → B"),
            sections.build(
                "ab_comparison",
                lambda: _table(
                    figures.ab_comparison_table(fpr, group_order=group_order),
                    table_id="ab-fpr-table",
                ),
            ),
            html.Details(
                [
                    html.Summary("Every A/B comparison (all metrics)"),
                    sections.build(
                        "ab_comparison",
                        lambda: _table(
                            figures.ab_comparison_table(comparison, group_order=group_order)
                        ),
                    ),
                ]
            ),
        ]
    return children


def _run_pair(run_a: _Run, run_b: _Run, model: str) -> list[Any]:
    """Run A against run B: each run's per-group rates and gaps, side by side."""
    manifest = run_a.folder.manifest
    labels = (run_a.label, run_b.label)
    order = {"group_order": _group_order(manifest)}
    sections = _Sections()
    group_metrics = figures.run_pair_group_metrics(
        _only_model(run_a.folder.group_metrics, model),
        _only_model(run_b.folder.group_metrics, model),
        labels=labels,
    )
    return [
        html.H2(f"Run {run_a.label} against run {run_b.label}"),
        html.P(
            f"A = {run_a.folder.path}; B = {run_b.folder.path}. Each run's estimates keep their "
            "own intervals; the two audits are not paired, so the change of the gap is a "
            "difference of point estimates without an interval.",
            className="caption",
        ),
        sections.build(
            "false positive rate figure A/B",
            lambda: _graph(
                figures.fpr_by_group_figure(
                    group_metrics, group_noun=_group_noun(manifest), **order
                ),
                "pair-fpr-figure",
            ),
        ),
        html.H3("False positive rate gap to the reference group, A and B"),
        sections.build(
            "gap table A/B",
            lambda: _table(
                figures.run_pair_gap_table(
                    _only_model(run_a.folder.comparisons, model),
                    _only_model(run_b.folder.comparisons, model),
                    labels=labels,
                    model_order=_model_order(manifest),
                    **order,
                ),
                table_id="pair-gap-table",
            ),
        ),
        html.H3("False positive rate per group, A and B"),
        sections.build(
            "group metrics A/B",
            lambda: _table(
                figures.group_table(group_metrics, metric="false_positive_rate", **order),
                table_id="pair-group-table",
            ),
        ),
    ]


def _before_after(runs: Sequence[_Run], model: str) -> list[Any]:
    children: list[Any] = []
    if len(runs) == 2:
        children += _run_pair(runs[0], runs[1], model)
    for run in runs:
        if "ab_summary" in run.folder.tables or "ab_comparison" in run.folder.tables:
            children += _reweighting_ab(run)
        elif len(runs) == 2:
            children += _verdict_block(run)
    if not children:
        children.append(
            _note(
                "This run folder holds no A/B comparison (no ab_summary or ab_comparison "
                "table). Run the reweighting loop, or start the dashboard with two run "
                "folders (A and B) to compare them."
            )
        )
    return children


def _robustness(run: _Run, model: str, *, single: bool) -> list[Any]:
    tables = run.folder.tables
    manifest = run.folder.manifest
    order = {"group_order": _group_order(manifest), "model_order": _model_order(manifest)}
    suffix = "" if single else f"-{run.label}"
    sections = _Sections()
    children: list[Any] = [] if single else [html.H2(f"Run {run.label}")]
    shown = False
    if "threshold_sensitivity" in tables:
        shown = True
        frame = _only_model(tables["threshold_sensitivity"], model)
        children += [
            html.H3("Threshold sensitivity"),
            sections.build(
                "threshold_sensitivity",
                lambda: _graph(
                    figures.threshold_sensitivity_figure(frame, model_order=order["model_order"]),
                    f"threshold-sensitivity-figure{suffix}",
                ),
            ),
            sections.build(
                "threshold_sensitivity",
                lambda: _table(
                    figures.threshold_sensitivity_table(frame, model_order=order["model_order"]),
                    table_id=f"threshold-sensitivity-table{suffix}",
                ),
            ),
        ]
    if "label_bias" in tables:
        shown = True
        frame = tables["label_bias"]
        sentence = sections.build(
            "label_bias sentence",
            lambda: figures.label_bias_sentence(
                frame, reference=manifest.get("reference_group") or None
            ),
        )
        children += [
            html.H3("Label bias (annotator votes; the same for every model)"),
            html.P(sentence, className="caption") if isinstance(sentence, str) else None,
            sections.build(
                "label_bias",
                lambda: _table(
                    figures.label_bias_table(frame, group_order=order["group_order"]),
                    table_id=f"label-bias-table{suffix}",
                ),
            ),
        ]
    if "bias_auc" in tables:
        shown = True
        frame = _only_model(tables["bias_auc"], model)
        children += [
            html.H3("Bias AUC (threshold-free)"),
            sections.build(
                "bias_auc",
                lambda: _table(
                    figures.bias_auc_table(frame, **order), table_id=f"bias-auc-table{suffix}"
                ),
            ),
        ]
    if "bias_auc_comparisons" in tables:
        shown = True
        frame = _only_model(tables["bias_auc_comparisons"], model)
        children += [
            html.H3("Bias AUC against the reference group"),
            sections.build(
                "bias_auc_comparisons",
                lambda: _table(figures.bias_auc_comparison_table(frame, **order)),
            ),
        ]
    if not shown:
        children.append(
            _note(
                f"Run {run.label} has none of the tables threshold_sensitivity, label_bias "
                "or bias_auc."
            )
        )
    return [c for c in children if c is not None]


# --- the app ------------------------------------------------------------------------------


def _models(runs: Sequence[_Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        names += _model_order(run.folder.manifest)
        names += [str(m) for m in run.folder.group_metrics["model"].dropna()]
    return list(dict.fromkeys(names))


def _build_views(runs: Sequence[_Run], models: Sequence[str]) -> dict[tuple[str, str], Any]:
    """Every (tab, model) view, built once."""
    single = len(runs) == 1
    views: dict[tuple[str, str], Any] = {}
    for model in [ALL_MODELS, *models]:
        overview: list[Any] = []
        robustness: list[Any] = []
        for run in runs:
            overview += _overview(run, model, single=single)
            robustness += _robustness(run, model, single=single)
        views[("overview", model)] = html.Div(overview, id="view-overview")
        views[("before-after", model)] = html.Div(
            _before_after(runs, model), id="view-before-after"
        )
        views[("robustness", model)] = html.Div(robustness, id="view-robustness")
    return views


def create_app(run_dirs: Sequence[str | Path], *, title: str = "fairaudit dashboard") -> dash.Dash:
    """Build the dashboard for one run folder, or for two (run A and run B).

    Parameters
    ----------
    run_dirs
        One or two run folders written by ``fairaudit run``. With two, the before/after tab
        compares the first (A) with the second (B).
    title
        The page title.

    Returns
    -------
    dash.Dash
        The app, with every view already built; serve it with ``app.run(...)`` or
        :func:`serve`. Its JavaScript is served locally, so the page works offline.

    Raises
    ------
    ValueError
        If no run folder or more than two are given.
    fairaudit.exceptions.InputError
        If a run folder, its manifest or a required table is missing or unreadable.
    """
    if not 1 <= len(run_dirs) <= 2:
        raise ValueError(f"expected one or two run folders, got {len(run_dirs)}")
    started = time.perf_counter()
    runs = [_Run(label, load_run(path)) for label, path in zip("AB", run_dirs, strict=False)]
    models = _models(runs)
    views = _build_views(runs, models)
    logger.info(
        "built the dashboard for %d run folder(s), %d model(s), %d views in %.1f s",
        len(runs),
        len(models),
        len(views),
        time.perf_counter() - started,
    )

    app = dash.Dash(
        __name__,
        title=title,
        serve_locally=True,
        include_assets_files=False,
        update_title=None,
    )
    app.index_string = _INDEX
    names = [r.folder.manifest.get("run_name") or r.folder.path.name for r in runs]
    app.layout = html.Div(
        [
            html.H1("Dialect bias audit: " + " vs ".join(str(n) for n in names)),
            html.Div(
                [
                    html.Label("Model", htmlFor="model-selector"),
                    dcc.Dropdown(
                        id="model-selector",
                        options=[{"label": "All models", "value": ALL_MODELS}]
                        + [{"label": m, "value": m} for m in models],
                        value=ALL_MODELS,
                        clearable=False,
                        searchable=False,
                    ),
                ],
                className="selector",
            ),
            dcc.Tabs(
                id="tabs",
                value="overview",
                children=[
                    dcc.Tab(label=label, value=value, id=f"tab-{value}")
                    for value, label in TABS.items()
                ],
            ),
            html.Div(views[("overview", ALL_MODELS)], id="tab-content"),
        ],
        className="page",
    )

    @app.callback(
        Output("tab-content", "children"), Input("tabs", "value"), Input("model-selector", "value")
    )
    def _show(tab: str | None, model: str | None) -> Any:
        return views.get((tab or "overview", model or ALL_MODELS)) or _note(
            f"n/a – no view for the tab {tab!r} and the model {model!r}"
        )

    return app


def serve(
    run_dirs: Sequence[str | Path],
    host: str = "127.0.0.1",
    port: int = 8050,
    *,
    debug: bool = False,
) -> None:
    """Build the dashboard for the run folders and serve it until interrupted.

    Parameters
    ----------
    run_dirs
        One or two run folders (A, and optionally B).
    host, port
        Where to listen; the default host answers only on this machine.
    debug
        Dash's debug mode (reloads on change, shows errors in the page).
    """
    app = create_app(run_dirs)
    logger.info("serving the dashboard on http://%s:%d/", host, port)
    app.run(host=host, port=port, debug=debug)
