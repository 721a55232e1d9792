"""Tests of fairaudit.report and fairaudit.figures on a small hand-made run folder.

Every expected number below is typed in from the hand-made tables, not taken from the code's
own output.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from fairaudit import figures
from fairaudit.exceptions import InputError
from fairaudit.report import write_report

NAN = float("nan")
EXPECTED_FILES = {
    "manifest.json",
    "utterances.parquet",
    "group_metrics.parquet",
    "comparisons.parquet",
    "weights.parquet",
}
SCRIPT_NOTE = "trained on <script>alert(1)</script> 70% of the corpus"


def _group_metric(
    model, group, metric, estimate, low, high, n, count, *, reason=None, small=False
):
    return {
        "model": model,
        "group": group,
        "metric": metric,
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "n": n,
        "count": count,
        "interval_method": "wilson",
        "alpha": 0.05,
        "undefined_reason": reason,
        "small_group": small,
    }


def _comparison(
    model, group, estimate, reference_estimate, difference, low, high, ratio, p, p_adj
):
    return {
        "model": model,
        "group": group,
        "reference": "sae",
        "metric": "false_positive_rate",
        "estimate": estimate,
        "reference_estimate": reference_estimate,
        "difference": difference,
        "ci_low": low,
        "ci_high": high,
        "ratio": ratio,
        "n": 520,
        "n_reference": 1200,
        "method": "two-proportion z-test",
        "p_value": p,
        "p_adjusted": p_adj,
        "correction": "holm",
        "significant": p_adj < 0.05,
        "alpha": 0.05,
        "undefined_reason": None,
    }


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run-2024-demo"
    run.mkdir()
    manifest = {
        "fairaudit_version": "0.1.0",
        "run_name": "demo-audit",
        "started_at": "2024-05-01T10:00:00Z",
        "finished_at": "2024-05-01T10:04:12Z",
        "alpha": 0.05,
        "config": {"weights": {"scheme": "balance group x label"}},
        "inputs": [{"path": "data/davidson.csv", "sha256": "ab" * 32, "bytes": 2_546_446}],
        "packages": {"pandas": "2.2.2", "plotly": "5.22.0"},
        "seed": 20240501,
        "timings": {"annotate": 3.14, "score": 12.5},
        "corpus": {
            "rows_read": 1900,
            "rows_audited": 1818,
            "audit_subset": "hatesonar held-out 30%: rows unseen in training",
        },
        "join": {"hatesonar": {"scored": 1818, "missing_scores": 0, "unjoined_ids_sample": []}},
        "models": [
            {
                "name": "hatesonar",
                "kind": "sklearn",
                "score_definition": "1 - P(neither)",
                "threshold": 0.5,
                "positive_meaning": "hate speech or offensive",
                "notes": [SCRIPT_NOTE],
            },
            {
                "name": "toy",
                "kind": "given",
                "score_definition": "P(toxic)",
                "threshold": 0.7,
                "positive_meaning": "toxic",
                "notes": [],
            },
        ],
        "dialect": {
            "group_rule": "aae if p_aa >= 0.8, sae if p_white >= 0.8, else uncertain",
            "level": "utterance",
            "counts": {"aae": 600, "sae": 1200, "other": 90, "uncertain": 10},
        },
        "reference_group": "sae",
        "warnings": ["group 'uncertain' has only 8 gold non-toxic items"],
        "headline": {
            model: {
                "metric": "false_positive_rate",
                "worst_group": "aae",
                "gap": gap,
                "excluded_small_groups": ["uncertain"],
            }
            for model, gap in (("hatesonar", 0.211), ("toy", 0.011))
        },
    }
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    groups = ["aae"] * 6 + ["sae"] * 12 + ["other"] + ["uncertain"]
    pd.DataFrame(
        {
            "id": [f"u{i}" for i in range(len(groups))],
            "dialect_group": groups,
            "p_aa": 0.5,
            "in_audit": [i % 5 != 0 for i in range(len(groups))],
            "gold_toxic": pd.array([i % 2 == 0 for i in range(len(groups))], dtype="boolean"),
            "marker_habitual_be": 0,
        }
    ).to_parquet(run / "utterances.parquet")

    fpr, fnr = "false_positive_rate", "false_negative_rate"
    pd.DataFrame(
        [
            _group_metric("hatesonar", "aae", fpr, 0.412, 0.371, 0.455, 520, 214),
            _group_metric("hatesonar", "sae", fpr, 0.201, 0.178, 0.226, 1200, 241),
            _group_metric("hatesonar", "other", fpr, 0.300, 0.214, 0.403, 90, 27),
            _group_metric("hatesonar", "uncertain", fpr, 0.250, 0.071, 0.591, 8, 2, small=True),
            _group_metric("hatesonar", "overall", fpr, 0.268, 0.248, 0.289, 1818, 487),
            _group_metric("hatesonar", "aae", fnr, 0.050, 0.030, 0.082, 80, 4),
            _group_metric("hatesonar", "sae", fnr, 0.120, 0.080, 0.176, 100, 12),
            _group_metric(
                "hatesonar", "other", fnr, NAN, NAN, NAN, 0, 0, reason="only one class in group"
            ),
            _group_metric("toy", "aae", fpr, 0.105, 0.082, 0.133, 520, 55),
            _group_metric("toy", "sae", fpr, 0.094, 0.079, 0.112, 1200, 113),
            _group_metric("toy", "uncertain", fpr, 0.125, 0.022, 0.471, 8, 1, small=True),
        ]
    ).to_parquet(run / "group_metrics.parquet")

    pd.DataFrame(
        [
            _comparison(
                "hatesonar", "aae", 0.412, 0.201, 0.211, 0.164, 0.258, 2.05, 1.2e-15, 3.6e-15
            ),
            _comparison("toy", "aae", 0.105, 0.094, 0.011, -0.017, 0.039, 1.12, 0.44, 0.88),
        ]
    ).to_parquet(run / "comparisons.parquet")

    pd.DataFrame(
        {
            "id": ["u0", "u1", "u2", "u3", "u4"],
            "sample_weight": [2.0, 2.0, 1.0, 1.0, 1.0],
            "copies": [2, 2, 1, 1, 1],
            "group": ["aae", "aae", "sae", "sae", "sae"],
            "label": [False, False, False, True, False],
        }
    ).to_parquet(run / "weights.parquet")
    return run


class _Tables(HTMLParser):
    """Collect the text of each table cell, per table class, and the summary paragraphs."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.summaries: dict[str, str] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._summary: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("class") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "p" and "summary" in (attrs.get("class") or "").split():
            self._summary = attrs["data-model"]
            self.summaries[self._summary] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "p":
            self._summary = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._summary is not None:
            self.summaries[self._summary] += data


def _parse(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def _rows(table: list[list[str]]) -> list[dict[str, str]]:
    header, *body = table
    return [dict(zip(header, row, strict=True)) for row in body]


def test_report_is_written_to_the_run_folder_and_standalone(run_dir: Path) -> None:
    path = write_report(run_dir)

    assert path == run_dir / "report.html"
    html = path.read_text(encoding="utf-8")
    assert '<script src="http' not in html
    assert "<script src=" not in html and 'src="http' not in html
    assert not re.search(r"<link[^>]+href=\"http", html)
    assert html.count("Copyright 2012-") == 1  # plotly.js embedded once
    assert html.count('class="plotly-graph-div"') == 3  # dialect counts, FPR, FNR


def test_report_header_names_alpha_models_and_provenance(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")

    assert re.search(r'<dd id="alpha">\s*0\.05\s*</dd>', html)
    assert "demo-audit" in html
    assert "1 - P(neither)" in html and "0.5" in html
    assert "ab" * 32 in html
    assert "hatesonar held-out 30%: rows unseen in training" in html
    assert "aae if p_aa &gt;= 0.8" in html


def test_group_table_shows_formatted_estimates_and_undefined_reason(run_dir: Path) -> None:
    parsed = _parse(write_report(run_dir).read_text(encoding="utf-8"))
    rows = _rows(parsed.tables["group-metrics"])

    by_key = {(r["Model"], r["Metric"], r["Group"]): r for r in rows}
    aae = by_key[("hatesonar", "False positive rate", "aae")]
    assert aae["Estimate [interval]"] == "0.412 [0.371, 0.455]"
    assert aae["n"] == "520"
    undefined = by_key[("hatesonar", "False negative rate", "other")]
    assert undefined["Estimate [interval]"] == "n/a – only one class in group"
    assert by_key[("hatesonar", "False positive rate", "uncertain")]["Small group"] == "yes"
    assert by_key[("hatesonar", "False positive rate", "aae")]["Small group"] == "no"
    # "overall" comes after the dialect groups.
    fpr_groups = [
        r["Group"] for r in rows if r["Model"] == "hatesonar" and "positive" in r["Metric"]
    ]
    assert fpr_groups[-1] == "overall"


def test_comparison_table_shows_difference_ratio_and_both_p_values(run_dir: Path) -> None:
    parsed = _parse(write_report(run_dir).read_text(encoding="utf-8"))
    rows = {r["Model"]: r for r in _rows(parsed.tables["comparisons"])}

    assert rows["hatesonar"]["Difference [interval]"] == "0.211 [0.164, 0.258]"
    assert rows["hatesonar"]["Ratio"] == "2.05"
    assert rows["hatesonar"]["p (raw)"] == "1.2e-15"
    assert rows["hatesonar"]["p (adjusted)"] == "3.6e-15"
    assert rows["hatesonar"]["Correction"] == "Holm"
    assert rows["hatesonar"]["Significant"] == "yes (α = 0.05)"
    assert rows["toy"]["Difference [interval]"] == "0.011 [-0.017, 0.039]"
    assert rows["toy"]["p (adjusted)"] == "0.880"
    assert rows["toy"]["Significant"] == "no (α = 0.05)"


_SENTENCE = re.compile(
    r"flagged (?P<a>[\d.]+)% \[(?P<a_low>[\d.]+)%, (?P<a_high>[\d.]+)%\] of AAE-aligned messages "
    r"vs (?P<b>[\d.]+)% \[(?P<b_low>[\d.]+)%, (?P<b_high>[\d.]+)%\] of white-aligned \(SAE\) "
    r"messages; difference (?P<d>[-+][\d.]+) percentage points "
    r"\[(?P<d_low>[-+][\d.]+), (?P<d_high>[-+][\d.]+)\], p_adjusted = (?P<p>\S+) "
    r"\(two-proportion z-test, Holm-adjusted\)\."
)


@pytest.mark.parametrize("model", ["hatesonar", "toy"])
def test_summary_numbers_equal_the_tables(run_dir: Path, model: str) -> None:
    parsed = _parse(write_report(run_dir).read_text(encoding="utf-8"))
    summary = " ".join(parsed.summaries[model].split())
    match = _SENTENCE.search(summary)
    assert match, summary

    groups = {
        r["Group"]: r["Estimate [interval]"]
        for r in _rows(parsed.tables["group-metrics"])
        if r["Model"] == model and r["Metric"] == "False positive rate"
    }
    comparison = {r["Model"]: r for r in _rows(parsed.tables["comparisons"])}[model]

    def as_table(*percents: str) -> list[str]:
        return [f"{float(p) / 100:.3f}" for p in percents]

    a, a_low, a_high = as_table(match["a"], match["a_low"], match["a_high"])
    b, b_low, b_high = as_table(match["b"], match["b_low"], match["b_high"])
    d, d_low, d_high = as_table(match["d"], match["d_low"], match["d_high"])
    assert groups["aae"] == f"{a} [{a_low}, {a_high}]"
    assert groups["sae"] == f"{b} [{b_low}, {b_high}]"
    assert comparison["Difference [interval]"] == f"{d} [{d_low}, {d_high}]"
    assert comparison["p (adjusted)"] == match["p"]
    assert "uncertain (n = 8)" in summary


def test_summary_says_whether_the_difference_is_significant(run_dir: Path) -> None:
    parsed = _parse(write_report(run_dir).read_text(encoding="utf-8"))

    hatesonar = " ".join(parsed.summaries["hatesonar"].split())
    toy = " ".join(parsed.summaries["toy"].split())
    assert "41.2% [37.1%, 45.5%]" in hatesonar
    assert "+21.1 percentage points [+16.4, +25.8]" in hatesonar
    assert "is statistically significant at α = 0.05 after Holm adjustment" in hatesonar
    assert "is not statistically significant at α = 0.05" in toy


def test_caveats_include_warnings_and_escaped_model_notes(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")

    assert "group &#39;uncertain&#39; has only 8 gold non-toxic items" in html
    assert "trained on &lt;script&gt;alert(1)&lt;/script&gt; 70% of the corpus" in html
    assert "<script>alert(1)" not in html


def test_weights_section_summarises_per_group_and_label(run_dir: Path) -> None:
    parsed = _parse(write_report(run_dir).read_text(encoding="utf-8"))
    rows = {(r["Group"], r["Label"]): r for r in _rows(parsed.tables["weights"])}

    assert rows[("aae", "False")]["Items"] == "2"
    assert rows[("aae", "False")]["Total copies"] == "4"
    # Kish (1965): (2+2+1+1+1)^2 / (4+4+1+1+1) = 49 / 11.
    assert rows[("all", "all")]["Kish effective n"] == f"{49 / 11:,.1f}"


def test_write_is_atomic_and_leaves_no_temporary_files(run_dir: Path, tmp_path: Path) -> None:
    write_report(run_dir)
    assert {p.name for p in run_dir.iterdir()} == EXPECTED_FILES | {"report.html"}

    out = tmp_path / "elsewhere" / "audit.html"
    assert write_report(run_dir, out=out) == out
    assert [p.name for p in out.parent.iterdir()] == ["audit.html"]


def test_failed_write_keeps_the_old_report_and_no_temporary_file(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (run_dir / "report.html").write_text("old report", encoding="utf-8")

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("fairaudit.report.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(run_dir)

    assert (run_dir / "report.html").read_text(encoding="utf-8") == "old report"
    assert {p.name for p in run_dir.iterdir()} == EXPECTED_FILES | {"report.html"}


def test_missing_manifest_raises_input_error_naming_the_file(run_dir: Path) -> None:
    (run_dir / "manifest.json").unlink()

    with pytest.raises(InputError, match="manifest.json") as raised:
        write_report(run_dir)
    assert raised.value.file == str(run_dir / "manifest.json")
    assert not (run_dir / "report.html").exists()


def test_missing_column_raises_input_error_naming_file_and_column(run_dir: Path) -> None:
    table = pd.read_parquet(run_dir / "comparisons.parquet").drop(columns="p_adjusted")
    table.to_parquet(run_dir / "comparisons.parquet")

    with pytest.raises(InputError, match="comparisons.parquet.*p_adjusted"):
        write_report(run_dir)


def test_fpr_figure_does_not_plot_undefined_values_as_zero(run_dir: Path) -> None:
    group_metrics = pd.read_parquet(run_dir / "group_metrics.parquet")

    figure = figures.fpr_by_group_figure(group_metrics, metric="false_negative_rate")

    (trace,) = figure.data
    points = dict(zip(trace.x, trace.y, strict=True))
    assert points["other"] is None
    assert points["aae"] == pytest.approx(0.050)
    upper = dict(zip(trace.x, trace.error_y.array, strict=True))
    lower = dict(zip(trace.x, trace.error_y.arrayminus, strict=True))
    assert upper["aae"] == pytest.approx(0.082 - 0.050)
    assert lower["aae"] == pytest.approx(0.050 - 0.030)
    tick = dict(zip(figure.layout.xaxis.tickvals, figure.layout.xaxis.ticktext, strict=True))
    assert "n/a – only one class in group" in tick["other"].replace("<br>", " ")
    assert "n = 80" in dict(zip(trace.x, trace.hovertext, strict=True))["aae"]


def test_dialect_counts_figure_splits_audited_items(run_dir: Path) -> None:
    utterances = pd.read_parquet(run_dir / "utterances.parquet")

    figure = figures.dialect_counts_figure(utterances, group_order=["aae", "sae"])

    audited, not_audited = figure.data
    assert list(audited.x) == ["aae", "sae", "other", "uncertain"]
    # Ids u0, u5, u10, u15 are not audited (every fifth): two aae (u0, u5), two sae.
    assert list(audited.y) == [4, 10, 1, 1]
    assert list(not_audited.y) == [2, 2, 0, 0]


@pytest.mark.parametrize(
    ("estimate", "low", "high", "reason", "expected"),
    [
        (0.4124, 0.3712, 0.4549, None, "0.412 [0.371, 0.455]"),
        (0.5, NAN, NAN, None, "0.500"),
        (NAN, NAN, NAN, "no_gold_toxic_items", "n/a – no gold toxic items"),
        (NAN, NAN, NAN, None, "n/a"),
    ],
)
def test_format_estimate(estimate, low, high, reason, expected) -> None:
    assert figures.format_estimate(estimate, low, high, undefined_reason=reason) == expected
