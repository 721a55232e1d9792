"""Tests of fairaudit.report and fairaudit.figures on a small hand-made run folder.

Every expected number below is typed in from the hand-made tables, not taken from the code's
own output.
"""

from __future__ import annotations

import json
import re
from html import unescape
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
LOCALE_NOTE = "hatesonar text normaliser locale: en_US.UTF-8"
IN_SAMPLE_NOTE = "in-sample: toy was trained on the whole corpus, held-out rows included."


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
                "notes": [SCRIPT_NOTE, LOCALE_NOTE],
            },
            {
                "name": "toy",
                "kind": "given",
                "score_definition": "P(toxic)",
                "threshold": 0.7,
                "positive_meaning": "toxic",
                "notes": [IN_SAMPLE_NOTE, "warning: scores were clipped to [0, 1]"],
            },
        ],
        "dialect": {
            "group_rule": "aae if p_aa >= 0.8, sae if p_white >= 0.8, else uncertain",
            "level": "utterance",
            "counts": {"aae": 600, "sae": 1200, "other": 90, "uncertain": 10},
            "counts_all_rows": {"aae": 2000, "sae": 4000, "other": 300, "uncertain": 33},
        },
        "reference_group": "sae",
        "weights": {"scheme": "kamiran_calders", "normalize": True, "rows_weighted": 24783},
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
            _group_metric("toy", "aae", "mean_score", 0.301, 0.280, 0.322, 520, None),
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
    html = write_report(run_dir).read_text(encoding="utf-8")
    parsed = _parse(html)
    header, *_ = parsed.tables["comparisons"]
    rows = {r["Model"]: r for r in _rows(parsed.tables["comparisons"])}

    assert rows["hatesonar"]["Estimate vs reference"] == "0.412 vs 0.201"
    assert rows["hatesonar"]["Difference [interval]"] == "0.211 [0.164, 0.258]"
    assert rows["hatesonar"]["Ratio"] == "2.05"
    assert rows["hatesonar"]["n vs reference"] == "520 vs 1,200"
    assert rows["hatesonar"]["p (raw)"] == "1.2e-15"
    assert rows["hatesonar"]["p (adjusted)"] == "3.6e-15"
    assert rows["hatesonar"]["Significant"] == "yes"
    assert rows["toy"]["Difference [interval]"] == "0.011 [-0.017, 0.039]"
    assert rows["toy"]["p (adjusted)"] == "0.8800"
    assert rows["toy"]["Significant"] == "no"
    # The reference, correction and alpha are the same in every row: named once, in the caption.
    assert not {"Reference", "Correction", "α"} & set(header)
    caption = re.search(r'<table class="comparisons">\s*<caption>(.*?)</caption>', html, re.S)
    assert caption, "the comparisons table has no caption"
    caption_text = " ".join(caption.group(1).split())
    assert "reference group sae" in caption_text
    assert "Holm-adjusted" in caption_text
    assert "α = 0.05" in caption_text
    # Numbers stay on one line.
    assert re.search(r'<td class="num">0\.211 \[0\.164, 0\.258\]</td>', html)
    assert "td.num { white-space: nowrap; }" in html


def test_comparison_table_keeps_varying_correction_as_a_column(run_dir: Path) -> None:
    comparisons = pd.read_parquet(run_dir / "comparisons.parquet")
    comparisons.loc[1, "correction"] = "bonferroni"

    table = figures.comparison_table(comparisons)

    assert list(table["Correction"]) == ["Holm", "Bonferroni"]
    assert "α" not in table.columns
    assert "Holm" not in figures.comparison_caption(comparisons)


def _ratio_undefined_tables(split: bool) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A reference group with no false positives: the ratio is undefined, the difference not."""
    fpr = "false_positive_rate"
    group_metrics = pd.DataFrame(
        [
            _group_metric("m", "aae", fpr, 0.333, 0.121, 0.646, 9, 3),
            _group_metric("m", "sae", fpr, 0.0, 0.0, 0.277, 10, 0),
        ]
    )
    comparison = _comparison("m", "aae", 0.333, 0.0, 0.333, -0.034, 0.646, NAN, 0.087, 0.087)
    if split:
        comparison["ratio_undefined_reason"] = "zero_denominator"
    else:
        comparison["undefined_reason"] = "zero_denominator"
    manifest = {"models": [{"name": "m"}], "reference_group": "sae", "alpha": 0.05}
    return manifest, group_metrics, pd.DataFrame([comparison])


@pytest.mark.parametrize("split", [True, False], ids=["ratio_undefined_reason", "old_table"])
def test_undefined_ratio_does_not_hide_a_defined_difference(split: bool) -> None:
    manifest, group_metrics, comparisons = _ratio_undefined_tables(split)

    (summary,) = figures.headline_summaries(manifest, group_metrics, comparisons)
    (row,) = figures.comparison_table(comparisons).to_dict("records")

    assert "cannot be estimated" not in summary.text
    assert "difference +33.3 percentage points [-3.4, +64.6]" in summary.text
    assert "p_adjusted = 0.0870" in summary.text
    assert row["Difference [interval]"] == "0.333 [-0.034, 0.646]"
    assert row["Ratio"] == "n/a – zero denominator"
    assert row["Significant"] == "no"


def test_undefined_difference_is_still_reported_as_such() -> None:
    manifest, group_metrics, comparisons = _ratio_undefined_tables(split=True)
    comparisons.loc[0, ["difference", "ci_low", "ci_high", "p_value", "p_adjusted"]] = NAN
    comparisons["significant"] = pd.array([pd.NA], dtype="boolean")
    comparisons.loc[0, "undefined_reason"] = "zero_expected_count"

    (summary,) = figures.headline_summaries(manifest, group_metrics, comparisons)
    (row,) = figures.comparison_table(comparisons).to_dict("records")

    assert "the difference cannot be estimated (n/a – zero expected count)" in summary.text
    assert row["Difference [interval]"] == "n/a – zero expected count"
    assert row["Significant"] == "n/a – zero expected count"


@pytest.mark.parametrize(
    ("p_value", "expected"),
    [
        (0.88, "0.8800"),
        (0.0047, "0.0047"),
        (0.00469, "0.0047"),
        (1e-4, "0.0001"),
        (9.5e-5, "9.5e-05"),
        (1.244846e-13, "1.2e-13"),
        (6.1e-247, "6.1e-247"),
        (1e-300, "1.0e-300"),
        (3.2e-309, "< 1e-300"),
        (0.0, "< 1e-300"),
        (NAN, "n/a"),
    ],
)
def test_format_p_value_uses_the_command_line_rule(p_value: float, expected: str) -> None:
    assert figures.format_p_value(p_value) == expected


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


def _note_items(html: str, text: str) -> list[str]:
    """The class attribute of each list item that holds the given note."""
    return [
        m.group(1) or ""
        for m in re.finditer(r"<li(?: class=\"([^\"]*)\")?>((?:(?!</li>).)*)</li>", html, re.S)
        if text in m.group(2)
    ]


def test_only_in_sample_and_warning_notes_are_styled_as_caveats(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")

    assert _note_items(html, LOCALE_NOTE) == [""]
    assert _note_items(html, "alert(1)") == [""]
    assert _note_items(html, "warning: scores were clipped") == ["caveat"]
    assert _note_items(html, "toy was trained on the whole corpus") == ["caveat"]


def _summary_box(html: str, model: str) -> str:
    start = html.index(f'<div class="summary-box" data-model="{model}">')
    return html[start : html.index("</div>", start)]


def test_summary_box_names_in_sample_caveat_and_audit_subset(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")

    toy, hatesonar = _summary_box(html, "toy"), _summary_box(html, "hatesonar")
    assert re.search(r'class="caveat in-sample">.*toy was trained on the whole corpus', toy)
    assert "toy was trained" not in hatesonar
    for box in (toy, hatesonar):
        assert "hatesonar held-out 30%: rows unseen in training" in box
    assert "locale" not in hatesonar


def test_configuration_wraps_instead_of_cutting_lines(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")

    assert '<pre class="config">' in html
    assert re.search(r"pre\.config \{[^}]*white-space: pre-wrap", html)


def test_group_counts_table_labels_audited_and_all_rows(run_dir: Path) -> None:
    parsed = _parse(write_report(run_dir).read_text(encoding="utf-8"))
    rows = {r["Group"]: r for r in _rows(parsed.tables["group-counts"])}

    assert rows["aae – AAE-aligned"] == {
        "Group": "aae – AAE-aligned",
        "Utterances audited": "600",
        "All rows": "2,000",
    }
    assert rows["total"]["Utterances audited"] == "1,900"
    assert rows["total"]["All rows"] == "6,333"


def test_count_of_a_mean_score_is_a_plain_dash(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")
    rows = _rows(_parse(html).tables["group-metrics"])

    (mean,) = [r for r in rows if r["Metric"] == "Mean score"]
    assert mean["Count"] == "—"
    assert '<td class="num">—</td>' in html
    undefined = [r for r in rows if r["Estimate [interval]"].startswith("n/a")]
    assert undefined and '<td class="num na">n/a – only one class in group</td>' in html


_OWN = {"aae": "north", "sae": "south", "other": "east", "uncertain": "west"}


@pytest.fixture
def own_groups_run(run_dir: Path) -> Path:
    """The hand-made run with the user's own groups, renamed from the dialect groups."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    dialect = manifest["dialect"]
    dialect["group_rule"] = "groups from the corpus column 'region'"
    for key in ("counts", "counts_all_rows"):
        dialect[key] = {_OWN[g]: n for g, n in dialect[key].items()}
    manifest["reference_group"] = "south"
    for headline in manifest["headline"].values():
        headline["worst_group"] = "north"
        headline["excluded_small_groups"] = ["west"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    for name, columns in (
        ("utterances", ["dialect_group"]),
        ("group_metrics", ["group"]),
        ("comparisons", ["group", "reference"]),
        ("weights", ["group"]),
    ):
        table = pd.read_parquet(run_dir / f"{name}.parquet")
        for column in columns:
            table[column] = table[column].replace(_OWN)
        table.to_parquet(run_dir / f"{name}.parquet")
    return run_dir


def _visible_text(html: str) -> str:
    html = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    html = re.sub(r'<pre class="config">.*?</pre>', "", html, flags=re.S)
    return html


def test_own_groups_are_named_as_they_are(own_groups_run: Path) -> None:
    html = write_report(own_groups_run).read_text(encoding="utf-8")
    parsed = _parse(html)

    text = _visible_text(html)
    assert "AAE" not in text and "white-aligned" not in text and "SAE" not in text
    summary = " ".join(parsed.summaries["hatesonar"].split())
    assert "flagged 41.2% [37.1%, 45.5%] of north messages vs 20.1% [17.8%, 22.6%] of south" in (
        summary
    )
    assert "reference group south" in text
    assert "Utterances per group" in html and "Utterances per dialect group" not in html
    groups = [r["Group"] for r in _rows(parsed.tables["group-counts"])]
    assert groups == ["north", "south", "east", "west", "total"]


def test_own_groups_counts_figure_uses_the_dialect_group_column(own_groups_run: Path) -> None:
    utterances = pd.read_parquet(own_groups_run / "utterances.parquet")
    utterances["utterance_dialect_group"] = "aae"

    figure = figures.dialect_counts_figure(utterances, group_noun="group")

    assert set(figure.data[0].x) == {"north", "south", "east", "west"}
    assert figure.layout.title.text == "Utterances per group"


def test_weights_section_summarises_per_group_and_label(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")
    parsed = _parse(html)
    rows = {(r["Group"], r["Label"]): r for r in _rows(parsed.tables["weights"])}

    assert set(rows) == {
        ("aae", "non-toxic"),
        ("sae", "non-toxic"),
        ("sae", "toxic"),
        ("all", "all"),
    }
    assert rows[("aae", "non-toxic")]["Items"] == "2"
    assert rows[("aae", "non-toxic")]["Total copies"] == "4"
    assert "Kish effective n" not in parsed.tables["weights"][0]
    # Kish (1965), (sum w)^2 / sum w^2: aae 4^2 / 8 = 2, sae 3^2 / 3 = 3, all 49 / 11.
    kish = {r["Group"]: r["Kish effective n"] for r in _rows(parsed.tables["weights-kish"])}
    assert kish == {"aae": "2.0", "sae": "3.0", "all": f"{49 / 11:,.1f}"}

    section = html[html.index('<section id="weights">') :]
    section = section[: section.index("</section>")]
    assert "Weights normalised to mean 1." in section
    assert "24,783 rows weighted." in section
    assert "normalize" not in section and "rows_weighted" not in section


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

    monkeypatch.setattr("fairaudit.runfolder.os.replace", fail)
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


# --- optional tables: bias AUCs, controls, label bias, robustness, reweighting A/B ---------

FIRTH_SEPARATION = "quasi-complete separation: dialect_group=aae, all 8 flagged"
VERDICT = (
    "The aae-vs-sae false positive rate gap shrank by 36.2 percentage points, from 31.7 to "
    "-4.5 points."
)
OPTIONAL_SECTIONS = ("bias-auc", "controls", "label-bias", "robustness", "reweighting-ab")


def _bias_auc(model, group, metric, estimate, low, high, n, pos, neg, reason=None):
    return {
        "model": model, "group": group, "metric": metric, "estimate": estimate,
        "ci_low": low, "ci_high": high, "n": n, "positives": pos, "negatives": neg,
        "interval_method": "delong", "alpha": 0.05, "undefined_reason": reason,
        "interval_undefined_reason": None, "small_group": False,
    }  # fmt: skip


def _regression(model, spec, term, group, odds, low, high, **extra):
    row = {
        "model": model, "specification": spec, "term": term, "group": group,
        "reference": "sae", "log_odds_ratio": NAN, "std_error": NAN, "ci_low": NAN,
        "ci_high": NAN, "odds_ratio": odds, "odds_ratio_ci_low": low,
        "odds_ratio_ci_high": high, "p_value": 1e-6, "significant": True,
        "method": "ml_wald", "interval_method": "wald", "covariance": "nonrobust",
        "lr_statistic": 20.0, "lr_p_value": 1e-6, "attenuation": NAN,
        "controls": "profanity_terms, identity_terms" if spec == "with_controls" else None,
        "n": 1818, "n_clusters": None, "converged": True, "separation": None,
        "alpha": 0.05, "note": None,
    }  # fmt: skip
    row.update(extra)
    return row


def _write_optional_tables(run: Path) -> None:
    """Small hand-made optional tables; every expected value below is typed in from them."""
    pd.DataFrame(
        [
            _bias_auc("hatesonar", "aae", "subgroup_auc", 0.980, 0.972, 0.987, 4009, 3805, 204),
            _bias_auc("hatesonar", "aae", "bpsn_auc", 0.934, 0.919, 0.950, 2573, 2369, 204),
            _bias_auc("hatesonar", "sae", "bpsn_auc", 0.993, 0.991, 0.995, 5836, 5007, 829),
            _bias_auc(
                "hatesonar",
                "other",
                "subgroup_auc",
                NAN,
                NAN,
                NAN,
                7,
                7,
                0,
                reason="only one class in group",
            ),
        ]
    ).to_parquet(run / "bias_auc.parquet")
    pd.DataFrame(
        [
            {
                "model": "hatesonar", "group": "aae", "reference": "sae", "metric": "bpsn_auc",
                "estimate": 0.934, "reference_estimate": 0.993, "difference": -0.059,
                "standard_error": 0.008, "ci_low": -0.074, "ci_high": -0.043,
                "statistic": -7.41, "p_value": 1.3e-13, "method": "delong_overlapping",
                "interval_method": "delong", "correction": "none", "alpha": 0.05, "n": 2573,
                "n_reference": 5836, "undefined_reason": None, "small_group": False,
            }
        ]
    ).to_parquet(run / "bias_auc_comparisons.parquet")  # fmt: skip
    pd.DataFrame(
        [
            {
                "model": "hatesonar", "group": "aae", "reference": "sae", "strata": "gold_toxic",
                "n_strata": 2, "n": 4009, "n_reference": 1996, "pooled_odds_ratio": 8.4248,
                "ci_low": 6.4455, "ci_high": 11.0119,
                "interval_method": "robins_breslow_greenland",
                "method": "cochran_mantel_haenszel", "statistic": 329.08, "p_value": 0.0,
                "p_adjusted": 0.0, "correction": "holm", "significant": True,
                "breslow_day_statistic": 6.08, "breslow_day_p_value": 0.0137,
                "homogeneity_rejected": True, "alpha": 0.05, "undefined_reason": None,
            }
        ]
    ).to_parquet(run / "cmh.parquet")  # fmt: skip
    firth = {"method": "firth_penalised_lr", "separation": FIRTH_SEPARATION}
    pd.DataFrame(
        [
            _regression("hatesonar", "without_controls", "dialect_group[aae]", "aae", 8.3339,
                        6.3964, 10.8582),
            _regression("hatesonar", "without_controls", "gold_toxic", None, 207.8, 161.3, 267.7),
            _regression("hatesonar", "with_controls", "dialect_group[aae]", "aae", 4.10, 3.00,
                        5.60, attenuation=0.334),
            _regression("hatesonar", "with_controls", "profanity_terms", None, 1.9, 1.5, 2.4),
            _regression("toy", "without_controls", "dialect_group[aae]", "aae", 2.50, 1.20,
                        5.20, **firth),
            _regression("toy", "with_controls", "dialect_group[aae]", "aae", 2.90, 1.30, 6.40,
                        attenuation=-0.162, **firth),
        ]
    ).to_parquet(run / "regression.parquet")  # fmt: skip
    pd.DataFrame(
        {
            "group": ["overall", "aae", "sae"],
            "n_items": [24783, 13345, 6657],
            "n_with_votes": [24783, 13345, 6657],
            "n_votes": [80383, 43941, 21037],
            "majority_harmful": [20620, 12722, 3812],
            "majority_harmful_share": [0.8320, 0.9533, 0.5726],
            "ci_low": [0.8273, 0.9496, 0.5607],
            "ci_high": [0.8366, 0.9568, 0.5845],
            "interval_method": "wilson",
            "majority_ties": [17, 3, 10],
            "harmful_vote_share": [0.8307, 0.9416, 0.5855],
            "harmful_split_share": [0.1218, 0.0842, 0.1971],
            "split_vote_share": [0.2946, 0.2672, 0.3553],
            "krippendorff_alpha": [0.5428, 0.3096, 0.6062],
            "generalised_fleiss_kappa": [0.5406, 0.3069, 0.6069],
            "n_agreement_items": [24783, 13345, 6657],
            "reference": "sae",
            "difference": [NAN, 0.3807, NAN],
            "difference_ci_low": [NAN, 0.3683, NAN],
            "difference_ci_high": [NAN, 0.3931, NAN],
            "difference_interval_method": "newcombe",
            "harmful_categories": "hate_speech, offensive_language",
            "majority_rule": "harmful by majority: harmful votes > half of the item's votes",
            "alpha": 0.05,
            "undefined_reason": None,
        }
    ).to_parquet(run / "label_bias.parquet")
    pd.DataFrame(
        {
            "group": ["aae", "sae", "difference"],
            "metric": "false_positive_rate",
            "estimate": [0.1160, 0.0609, 0.0550],
            "ci_low": [0.0966, 0.0484, 0.0302],
            "ci_high": [0.1386, 0.0765, 0.0809],
            "interval_method": ["wilson_kish_effective_n"] * 2 + ["newcombe_kish_effective_n"],
            "weight_sum": [439.8, 820.2, NAN],
            "weighted_count": [51.0, 50.0, NAN],
            "effective_n": [894.6, 1127.6, NAN],
            "n_rows": 1260,
            "alpha": 0.05,
            "undefined_reason": None,
            "small_group": False,
            "model": "hatesonar",
        }
    ).to_parquet(run / "soft_metrics.parquet")
    pd.DataFrame(
        {
            "threshold": [0.5, 0.6, 0.9],
            "treated_rule": ["score > 0.5", "score >= 0.6", "score >= 0.9"],
            "control_rule": ["score < 0.5", "score <= 0.4", "score <= 0.1"],
            "n_treated": [4747, 4009, 400],
            "n_control": [2686, 1998, 90],
            "n_excluded": [0, 1426, 6943],
            "negatives_treated": [300, 204, 0],
            "negatives_control": [960, 831, 20],
            "false_positives_treated": [53, 41, 0],
            "false_positives_control": [48, 39, 1],
            "fpr_treated": [0.1767, 0.2010, NAN],
            "fpr_control": [0.0500, 0.0469, 0.05],
            "difference": [0.1267, 0.1540, NAN],
            "ci_low": [0.0846, 0.1021, NAN],
            "ci_high": [0.1754, 0.2156, NAN],
            "interval_method": "newcombe",
            "alpha": 0.05,
            "undefined_reason": [None, None, "no gold non-harmful items in the treated group"],
            "small_group": False,
            "model": "hatesonar",
        }
    ).to_parquet(run / "threshold_sensitivity.parquet")
    pd.DataFrame(
        {
            "model": "hatesonar",
            "group": ["aae", "sae"],
            "reference": "sae",
            "metric": "false_positive_rate",
            "n": [204, 40],
            "n_reference": 829,
            "reference_estimate": 0.0470,
            "cohens_h": [0.219, 0.5],
            "mdd_increase": [0.0568, 0.1420],
            "mdd_decrease": [0.0352, 0.0400],
            "minimum_detectable_difference": [0.0568, 0.1420],
            "power": 0.8,
            "alpha": 0.05,
            "low_power": [False, True],
            "max_mdd": 0.1,
            "power_method": "normal_cohens_h",
            "undefined_reason": None,
        }
    ).to_parquet(run / "power.parquet")
    pd.DataFrame(
        {
            "model": "hatesonar",
            "group": ["aae", "aae", "sae", "sae"],
            "threshold": [0.3, 0.5, 0.3, 0.5],
            "metric": "false_positive_rate",
            "estimate": [0.52, 0.20, 0.21, 0.05],
            "ci_low": [0.45, 0.15, 0.18, 0.04],
            "ci_high": [0.59, 0.26, 0.24, 0.06],
            "n": [204, 204, 829, 829],
            "count": [106, 41, 174, 39],
            "interval_method": "wilson",
            "alpha": 0.05,
            "undefined_reason": None,
        }
    ).to_parquet(run / "threshold_sweep.parquet")
    pd.DataFrame(
        {
            "model": "hatesonar",
            "group": ["aae", "aae", "sae"],
            "bin": [0, 9, 0],
            "bin_low": [0.0, 0.9, 0.0],
            "bin_high": [0.1, 1.0, 0.1],
            "n": [29, 3000, 0],
            "positives": [3, 2970, 0],
            "mean_score": [0.0546, 0.97, NAN],
            "observed_rate": [0.1034, 0.99, NAN],
            "ci_low": [0.0358, 0.986, NAN],
            "ci_high": [0.2639, 0.993, NAN],
            "interval_method": "wilson",
            "alpha": 0.05,
            "undefined_reason": [None, None, "empty bin"],
        }
    ).to_parquet(run / "calibration.parquet")
    pd.DataFrame(
        {
            "model": "hatesonar",
            "group": ["aae", "sae"],
            "n": [4009, 1996],
            "positives": [3805, 1167],
            "brier_score": [0.018036, 0.069677],
            "expected_calibration_error": [0.006705, 0.034939],
            "bins": 10,
            "binning": "equal_width",
            "undefined_reason": None,
        }
    ).to_parquet(run / "calibration_summary.parquet")
    pd.DataFrame(
        {
            "group": ["aae", "overall"],
            "n": [13345, 24783],
            "ess_before": [13345.0, 24783.0],
            "ess_unclipped": [10029.4892, 19784.4262],
            "ess_after": [10029.4892, 19784.4262],
            "ess_fraction": [0.751554, 0.798306],
        }
    ).to_parquet(run / "weights_effective_sample_size.parquet")
    pd.DataFrame(
        {
            "scheme": ["kamiran_calders", "group_balance"],
            "fpr_gap_a": [0.317285, 0.317285],
            "fpr_gap_b": [-0.045005, 0.326551],
            "fpr_gap_change": [-0.36229, 0.009266],
            "fpr_gap_ci_low": [-0.426324, -0.017112],
            "fpr_gap_ci_high": [-0.301069, 0.032566],
            "fpr_gap_p_adjusted": [0.027972, 0.931069],
            "fpr_aae_a": [0.617647, 0.617647],
            "fpr_aae_b": [0.514706, 0.593137],
            "fpr_aae_mcnemar_p_adjusted": [0.005185, 0.539461],
            "fpr_sae_a": [0.300362, 0.300362],
            "fpr_sae_b": [0.55971, 0.266586],
            "fpr_sae_mcnemar_p_adjusted": [0.0, 0.000001],
            "roc_auc_a": [0.974774, 0.974774],
            "roc_auc_b": [0.969556, 0.97545],
            "roc_auc_change": [-0.005218, 0.000676],
            "roc_auc_ci_low": [-0.006863, 0.000289],
            "roc_auc_non_inferior": [True, True],
            "macro_f1_a": [0.843009, 0.843009],
            "macro_f1_b": [0.770765, 0.854355],
            "macro_f1_change": [-0.072243, 0.011346],
            "macro_f1_ci_low": [-0.084695, 0.007244],
            "macro_f1_non_inferior": [False, True],
            "min_ess_fraction": [0.741008, 0.836657],
        }
    ).to_parquet(run / "ab_summary.parquet")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["ab_test"] = {
        "verdicts": {"kamiran_calders": VERDICT, "group_balance": "The gap did not change."},
        "split": {"n_rows": 24783, "n_heldout": 7435},
        "note": "reference fine-tune (TF-IDF + logistic regression)",
    }
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    comparisons = pd.read_parquet(run / "comparisons.parquet")
    comparisons["p_adjusted_bh"] = [2.4e-15, 0.44]
    comparisons["ratio_ci_low"] = [1.62, 0.85]
    comparisons["ratio_ci_high"] = [2.60, 1.48]
    comparisons["ratio_interval_method"] = "katz_log"
    comparisons["odds_ratio"] = [2.79, 1.13]
    comparisons["odds_ratio_ci_low"] = [2.18, 0.82]
    comparisons["odds_ratio_ci_high"] = [3.57, 1.56]
    comparisons["odds_ratio_method"] = "woolf_logit"
    comparisons["four_fifths_ratio"] = [0.736, 0.988]
    comparisons["four_fifths_violated"] = pd.array([True, False], dtype="boolean")
    comparisons["four_fifths_note"] = (
        "computed on the favourable outcome (not flagged), among gold non-harmful messages"
    )
    comparisons.to_parquet(run / "comparisons.parquet")


@pytest.fixture
def full_run(run_dir: Path) -> Path:
    _write_optional_tables(run_dir)
    return run_dir


def _section(html: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert found, f"no section {section_id}"
    return unescape(found.group(1))


def test_run_without_optional_tables_shows_none_of_their_sections(run_dir: Path) -> None:
    html = write_report(run_dir).read_text(encoding="utf-8")

    for section_id in (*OPTIONAL_SECTIONS, "pairs-templates"):
        assert f'id="{section_id}"' not in html
        assert f'href="#{section_id}"' not in html
    header, *_ = _parse(html).tables["comparisons"]
    assert not {"p (BH)", "Four-fifths ratio", "Odds ratio [interval]"} & set(header)


def test_full_run_shows_every_optional_section_standalone(full_run: Path) -> None:
    html = write_report(full_run).read_text(encoding="utf-8")

    for section_id in OPTIONAL_SECTIONS:
        assert f'<section id="{section_id}">' in html
        assert f'href="#{section_id}"' in html
    assert html.count("Copyright 2012-") == 1  # plotly.js still embedded once
    assert "<script src=" not in html and 'src="http' not in html
    # dialect counts, FPR, FNR + group threshold + score sweep + reliability diagram
    assert html.count('class="plotly-graph-div"') == 6
    for div_id in ("threshold-sensitivity", "threshold-sweep-0", "calibration-0"):
        assert f'id="figure-{div_id}"' in html
    assert write_report(full_run).read_text(encoding="utf-8") == html  # deterministic


def test_bias_auc_tables_show_delong_intervals_and_undefined_reasons(full_run: Path) -> None:
    parsed = _parse(write_report(full_run).read_text(encoding="utf-8"))
    rows = {(r["Group"], r["Metric"]): r for r in _rows(parsed.tables["bias-auc"])}

    assert rows[("aae", "BPSN AUC")]["Estimate [interval]"] == "0.934 [0.919, 0.950]"
    assert rows[("aae", "BPSN AUC")]["n"] == "2,573"
    assert rows[("aae", "BPSN AUC")]["Interval method"] == "DeLong"
    assert rows[("other", "Subgroup AUC")]["Estimate [interval]"] == (
        "n/a – only one class in group"
    )
    (comparison,) = _rows(parsed.tables["bias-auc-comparisons"])
    assert comparison["Difference [interval]"] == "-0.059 [-0.074, -0.043]"
    assert comparison["Estimate vs reference"] == "0.934 vs 0.993"
    assert comparison["n vs reference"] == "2,573 vs 5,836"
    assert comparison["Test"] == "DeLong (overlapping samples)"
    assert comparison["p (raw)"] == "1.3e-13"


def test_controls_section_shows_cmh_regression_and_generated_sentence(full_run: Path) -> None:
    html = write_report(full_run).read_text(encoding="utf-8")
    parsed = _parse(html)
    section = " ".join(_section(html, "controls").split())

    (cmh,) = _rows(parsed.tables["cmh"])
    assert cmh["Pooled odds ratio [interval]"] == "8.42 [6.45, 11.01]"
    assert cmh["Breslow–Day p"] == "0.0137"
    assert cmh["Odds ratios differ by stratum"] == "yes"
    rows = {r["Model"]: r for r in _rows(parsed.tables["regression"])}
    assert rows["hatesonar"]["Odds ratio without controls [interval]"] == "8.33 [6.40, 10.86]"
    assert rows["hatesonar"]["Odds ratio with controls [interval]"] == "4.10 [3.00, 5.60]"
    assert rows["hatesonar"]["Attenuation"] == "33.4%"
    assert rows["toy"]["Attenuation"] == "-16.2%"
    assert FIRTH_SEPARATION in rows["toy"]["Notes"]
    assert "Firth" in rows["toy"]["Notes"]
    assert (
        "controlling for profanity and identity terms, the odds ratio of being flagged for aae "
        "(against sae, at equal gold label) falls from 8.33 [6.40, 10.86] to 4.10 [3.00, 5.60]; "
        "the controls account for 33.4% of the log odds ratio." in section
    )
    assert "rises from 2.50 [1.20, 5.20] to 2.90 [1.30, 6.40]" in section
    assert FIRTH_SEPARATION in section
    # every coefficient, the controls' too, is one click away
    terms = _rows(parsed.tables["regression-terms"])
    assert {"gold_toxic", "profanity_terms"} <= {r["Term"] for r in terms}


def test_label_bias_section_compares_majority_share_and_agreement(full_run: Path) -> None:
    html = write_report(full_run).read_text(encoding="utf-8")
    section = " ".join(_section(html, "label-bias").split())
    rows = {r["Group"]: r for r in _rows(_parse(html).tables["label-bias"])}

    assert (
        "The annotators' majority called 95.3% [95.0%, 95.7%] of aae messages harmful vs "
        "57.3% [56.1%, 58.5%] of sae messages (difference +38.1 points [+36.8, +39.3])." in section
    )
    assert "lower on aae messages (Krippendorff's α 0.310 vs 0.606)" in section
    assert rows["aae"]["Majority harmful [interval]"] == "0.953 [0.950, 0.957]"
    assert rows["aae"]["Difference vs reference [interval]"] == "0.381 [0.368, 0.393]"
    assert rows["sae"]["Difference vs reference [interval]"] == "—"
    assert rows["aae"]["Votes"] == "43,941"


def test_robustness_section_shows_sensitivity_soft_power_and_calibration(
    full_run: Path,
) -> None:
    html = write_report(full_run).read_text(encoding="utf-8")
    parsed = _parse(html)

    sensitivity = {r["Threshold"]: r for r in _rows(parsed.tables["threshold-sensitivity"])}
    assert sensitivity["0.5"]["Difference [interval]"] == "0.127 [0.085, 0.175]"
    assert sensitivity["0.9"]["Difference [interval]"] == (
        "n/a – no gold non-harmful items in the treated group"
    )
    soft = {r["Group"]: r for r in _rows(parsed.tables["soft-metrics"])}
    assert soft["aae"]["Estimate [interval]"] == "0.116 [0.097, 0.139]"
    assert soft["difference"]["Estimate [interval]"] == "0.055 [0.030, 0.081]"
    assert soft["aae"]["Kish effective n"] == "894.6"
    power = {r["Group"]: r for r in _rows(parsed.tables["power"])}
    assert power["aae"]["Minimum detectable difference"] == "0.057"
    assert power["aae"]["Low power"] == "no"
    assert power["sae"]["Low power"] == "yes – MDD above 0.1"
    calibration = {r["Group"]: r for r in _rows(parsed.tables["calibration-summary"])}
    assert calibration["aae"]["Brier score"] == "0.0180"
    assert calibration["sae"]["ECE"] == "0.0349"
    # the sweep marks the model's operating threshold from the manifest
    assert "operating threshold 0.5" in html


def test_threshold_sensitivity_figure_has_a_band_and_skips_undefined_points(
    full_run: Path,
) -> None:
    sensitivity = pd.read_parquet(full_run / "threshold_sensitivity.parquet")

    figure = figures.threshold_sensitivity_figure(sensitivity)

    band, line = figure.data
    assert band.fill == "toself"
    assert list(band.y) == [0.1754, 0.2156, 0.1021, 0.0846]
    assert list(line.x) == [0.5, 0.6]  # 0.9 is undefined, not plotted as 0
    assert list(line.y) == [0.1267, 0.1540]


def test_calibration_figure_leaves_out_empty_bins(full_run: Path) -> None:
    calibration = pd.read_parquet(full_run / "calibration.parquet")

    figure = figures.calibration_figure(calibration, model="hatesonar")

    by_name = {trace.name: trace for trace in figure.data}
    assert list(by_name["aae"].y) == [0.1034, 0.99]
    assert list(by_name["sae"].y) == []
    assert list(by_name["perfect calibration"].x) == [0, 1]


def test_reweighting_section_shows_summary_verdicts_and_ess(full_run: Path) -> None:
    html = write_report(full_run).read_text(encoding="utf-8")
    parsed = _parse(html)
    section = " ".join(_section(html, "reweighting-ab").split())

    assert VERDICT in section
    assert "7,435 of 24,783" in section
    summary = {r["Quantity"]: r for r in _rows(parsed.tables["ab-summary"])}
    assert summary["FPR gap A → B"]["kamiran_calders"] == "0.317 → -0.045"
    assert summary["Gap change [interval]"]["kamiran_calders"] == "-0.362 [-0.426, -0.301]"
    assert summary["Gap change p (adjusted)"]["kamiran_calders"] == "0.0280"
    assert summary["Gap change p (adjusted)"]["group_balance"] == "0.9311"
    assert summary["FPR aae A → B"]["kamiran_calders"] == "0.618 → 0.515"
    assert summary["ROC AUC change (lower bound)"]["kamiran_calders"] == "-0.005 (≥ -0.007)"
    assert summary["Macro F1 non-inferior"]["kamiran_calders"] == "no"
    assert summary["Macro F1 non-inferior"]["group_balance"] == "yes"
    ess = {r["Group"]: r for r in _rows(parsed.tables["weights-ess"])}
    assert ess["aae"]["ESS after"] == "10,029.5"
    assert ess["overall"]["ESS fraction"] == "0.798"


def test_comparisons_show_bh_beside_holm_and_four_fifths_in_caption(full_run: Path) -> None:
    html = write_report(full_run).read_text(encoding="utf-8")
    parsed = _parse(html)
    header, *_ = parsed.tables["comparisons"]
    rows = {r["Model"]: r for r in _rows(parsed.tables["comparisons"])}

    assert header.index("p (BH)") == header.index("p (adjusted)") + 1
    assert rows["hatesonar"]["p (adjusted)"] == "3.6e-15"
    assert rows["hatesonar"]["p (BH)"] == "2.4e-15"
    assert rows["toy"]["p (BH)"] == "0.4400"
    assert rows["hatesonar"]["Ratio"] == "2.05 [1.62, 2.60]"
    assert rows["hatesonar"]["Odds ratio [interval]"] == "2.79 [2.18, 3.57]"
    assert rows["hatesonar"]["Four-fifths ratio"] == "0.736 – below 0.8"
    assert rows["toy"]["Four-fifths ratio"] == "0.988"
    caption = re.search(r'<table class="comparisons">\s*<caption>(.*?)</caption>', html, re.S)
    caption_text = " ".join(caption.group(1).split())
    assert "Benjamini–Hochberg" in caption_text
    assert "four-fifths rule" in caption_text
    assert "among gold non-harmful messages" in caption_text


def test_only_the_sections_of_present_tables_are_shown(full_run: Path) -> None:
    for name in (
        "bias_auc", "bias_auc_comparisons", "cmh", "regression", "soft_metrics",
        "threshold_sensitivity", "power", "threshold_sweep", "calibration",
        "calibration_summary", "ab_summary", "weights_effective_sample_size",
    ):  # fmt: skip
        (full_run / f"{name}.parquet").unlink()
    manifest = json.loads((full_run / "manifest.json").read_text(encoding="utf-8"))
    del manifest["ab_test"]
    (full_run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    html = write_report(full_run).read_text(encoding="utf-8")

    assert '<section id="label-bias">' in html
    for section_id in ("bias-auc", "controls", "robustness", "reweighting-ab"):
        assert f'id="{section_id}"' not in html
    assert html.count('class="plotly-graph-div"') == 3


def test_optional_table_lacking_a_column_is_named_not_fatal(full_run: Path) -> None:
    pd.read_parquet(full_run / "cmh.parquet").drop(columns="pooled_odds_ratio").to_parquet(
        full_run / "cmh.parquet"
    )

    html = write_report(full_run).read_text(encoding="utf-8")

    assert "n/a – cmh cannot be shown (cmh lacks the column(s) pooled_odds_ratio)" in html
    assert 'class="regression"' in html  # the rest of the section is still there


def test_paired_and_counterfactual_tables_are_shown_when_present(run_dir: Path) -> None:
    pd.DataFrame(
        {
            "statistic": ["flip_rate"],
            "estimate": [NAN],
            "ci_low": [NAN],
            "ci_high": [NAN],
            "n_pairs": [12],
            "p_value": [0.0312],
            "undefined_reason": ["no discordant pairs"],
        }
    ).to_parquet(run_dir / "paired.parquet")
    pd.DataFrame({"template": ["I am a {x} person"], "n": [4], "ctf_gap": [0.125]}).to_parquet(
        run_dir / "counterfactual_templates.parquet"
    )

    html = write_report(run_dir).read_text(encoding="utf-8")
    parsed = _parse(html)

    assert '<section id="pairs-templates">' in html
    (paired,) = _rows(parsed.tables["paired"])
    assert paired["estimate"] == "n/a – no discordant pairs"
    assert paired["p value"] == "0.0312"
    (template,) = _rows(parsed.tables["counterfactual-templates"])
    assert template["ctf gap"] == "0.125"
