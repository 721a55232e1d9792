"""End to end: the CLI and the pipeline on the real Davidson data and on the trap cases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from fairaudit.cli import app
from tests.cases import case_dir

runner = CliRunner()

REQUIRED = {
    "utterances.parquet": {"id", "dialect_group", "p_aa", "p_hispanic", "p_asian", "p_white"},
    "spans.parquet": {"id", "marker", "start", "end", "text"},
    "group_metrics.parquet": {"model", "group", "metric", "estimate", "ci_low", "ci_high", "n"},
    "comparisons.parquet": {
        "model",
        "group",
        "reference",
        "metric",
        "difference",
        "p_value",
        "p_adjusted",
        "method",
    },
    "weights.parquet": {"id", "sample_weight", "copies"},
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("runs") / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)], env={"FAIRAUDIT_DATA": str(data_dir)})
    assert result.exit_code == 0, result.output
    (out.parent / "demo_output.txt").write_text(result.output)
    return out


def test_demo_writes_the_contracted_run_folder(demo_run: Path) -> None:
    assert (demo_run / "manifest.json").is_file()
    assert (demo_run / "report.html").is_file()
    for name, columns in REQUIRED.items():
        table = pd.read_parquet(demo_run / name)
        assert columns <= set(table.columns), (name, columns - set(table.columns))
    utterances = pd.read_parquet(demo_run / "utterances.parquet")
    assert len(utterances) == 24_783
    assert utterances["id"].map(type).eq(str).all()
    spans = pd.read_parquet(demo_run / "spans.parquet").merge(
        utterances[["id"]], on="id", how="left", indicator=True
    )
    assert (spans["_merge"] == "both").all()
    assert not list(demo_run.parent.glob(".demo.partial-*"))


def test_demo_fpr_agrees_with_fairlearn_and_statsmodels(
    demo_run: Path, davidson_csv: Path
) -> None:
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert manifest["corpus"]["rows_audited"] == 7_435
    utterances = pd.read_parquet(demo_run / "utterances.parquet").set_index("id")
    scores = pd.read_parquet(demo_run / "scores.parquet")
    metrics = pd.read_parquet(demo_run / "group_metrics.parquet")
    for model in ("hatesonar", "profanity_check"):
        flagged = scores[scores["model"] == model].set_index("id")["flagged"]
        audit = utterances[utterances["in_audit"]]
        y_true = audit["gold_toxic"].astype(bool).to_numpy()
        y_pred = flagged.loc[audit.index].to_numpy()
        frame = MetricFrame(
            metrics={"fpr": false_positive_rate},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=audit["dialect_group"].astype(str).to_numpy(),
        )
        ours = metrics[(metrics["model"] == model) & (metrics["metric"] == "false_positive_rate")]
        ours = ours.set_index("group")
        for group, expected in frame.by_group["fpr"].items():
            assert ours.loc[group, "estimate"] == pytest.approx(expected, abs=1e-12)
            negatives = int((~y_true & (audit["dialect_group"].astype(str) == group)).sum())
            positives = int(
                (~y_true & y_pred & (audit["dialect_group"].astype(str) == group).to_numpy()).sum()
            )
            low, high = proportion_confint(positives, negatives, alpha=0.05, method="wilson")
            assert ours.loc[group, "n"] == negatives
            assert ours.loc[group, "ci_low"] == pytest.approx(low, abs=1e-12)
            assert ours.loc[group, "ci_high"] == pytest.approx(high, abs=1e-12)


def test_demo_weights_make_group_and_label_independent(demo_run: Path) -> None:
    weights = pd.read_parquet(demo_run / "weights.parquet")
    utterances = pd.read_parquet(demo_run / "utterances.parquet")
    table = weights.merge(utterances[["id", "dialect_group", "gold_toxic"]], on="id")
    assert np.isclose(table["sample_weight"].mean(), 1.0)
    overall = np.average(table["gold_toxic"].astype(float), weights=table["sample_weight"])
    for _, cell in table.groupby("dialect_group"):
        rate = np.average(cell["gold_toxic"].astype(float), weights=cell["sample_weight"])
        assert rate == pytest.approx(overall, abs=1e-9)


def test_report_is_standalone(demo_run: Path) -> None:
    html = (demo_run / "report.html").read_text()
    assert '<script src="http' not in html
    assert "held-out" in html or "unseen" in html


def _given_config(tmp_path: Path, corpus: Path, **extra: str) -> Path:
    text = f"""
name: case
corpus:
  path: {corpus}
  columns: {{id: id, text: text, gold_label: gold_toxic, group: dialect_group, keep: [score]}}
dialect: {{twitteraae: false, markers: false, missing_group: {extra.get("missing", "error")}}}
models:
  - {{name: given, kind: column, column: score, threshold: 0.5}}
audit: {{reference_group: sae, min_negatives: 1}}
"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_case_01_strict_mode_stops_and_writes_nothing(tmp_path: Path) -> None:
    config = _given_config(tmp_path, case_dir("01") / "input.csv")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 2
    assert "input.csv" in result.output and "column 'dialect_group'" in result.output
    assert "m11" in result.output and "m14" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".run.partial-*"))


@pytest.mark.parametrize(
    ("mode", "overall_fpr", "overall_n"), [("keep", 0.5, 10), ("drop", 0.375, 8)]
)
def test_case_01_keep_and_drop(
    tmp_path: Path, mode: str, overall_fpr: float, overall_n: int
) -> None:
    config = _given_config(tmp_path, case_dir("01") / "input.csv", missing=mode)
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = pd.read_parquet(out / "group_metrics.parquet")
    fpr = metrics[metrics["metric"] == "false_positive_rate"].set_index("group")
    assert fpr.loc["overall", "estimate"] == pytest.approx(overall_fpr)
    assert fpr.loc["overall", "n"] == overall_n
    assert fpr.loc["aae", "estimate"] == pytest.approx(0.5)
    assert fpr.loc["sae", "estimate"] == pytest.approx(0.25)
    assert "nan" not in set(fpr.index.astype(str))


def test_missing_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--out", str(tmp_path / "x")], env={"FAIRAUDIT_DATA": str(tmp_path / "no")}
    )
    assert result.exit_code == 2
    assert "FAIRAUDIT_DATA" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_existing_run_folder_is_not_overwritten(tmp_path: Path) -> None:
    config = _given_config(tmp_path, case_dir("01") / "input.csv", missing="keep")
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert (out / "keep.txt").read_text() == "mine"


def test_invalid_config_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    shutil.copy(_given_config(tmp_path, case_dir("01") / "input.csv"), path)
    path.write_text(path.read_text().replace("threshold: 0.5", "threshold: 5"))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "threshold" in result.output and "Traceback" not in result.output


def test_own_groups_are_the_audited_dialect_group(tmp_path: Path) -> None:
    config = _given_config(tmp_path, case_dir("01") / "input.csv", missing="keep")
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(config), "--out", str(out)]).exit_code == 0
    utterances = pd.read_parquet(out / "utterances.parquet").set_index("id")
    given = pd.read_csv(case_dir("01") / "input.csv", keep_default_na=False).set_index("id")
    expected = given["dialect_group"].replace("", None)
    assert utterances["dialect_group"].to_dict() == expected.to_dict()
    manifest = json.loads((out / "manifest.json").read_text())  # strict JSON: no NaN
    assert manifest["dialect"]["group_rule"].startswith("groups from the corpus column")


def test_a_label_outside_the_declared_ones_is_an_error(tmp_path: Path) -> None:
    corpus = tmp_path / "c.csv"
    corpus.write_text("id,text,label,score\na,x,abusive,0.9\nb,y,benign,0.1\nc,z,Abusive ,0.8\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"""
name: typo
corpus:
  path: {corpus}
  columns: {{id: id, text: text, gold_label: label, keep: [score]}}
  positive_labels: [abusive]
dialect: {{twitteraae: false, markers: false}}
models: [{{name: m, kind: column, column: score}}]
"""
    )
    result = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "'Abusive'" in result.output or "Abusive" in result.output
    assert "negative_labels" in result.output and "c.csv" in result.output


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    config = _given_config(tmp_path, case_dir("01") / "input.csv", missing="keep")
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.txt").write_text("years of work")
    result = runner.invoke(app, ["run", str(config), "--out", str(precious), "--overwrite"])
    assert result.exit_code == 2 and "not a fairaudit output folder" in result.output
    assert (precious / "chapter1.txt").read_text() == "years of work"
    # An earlier run folder is replaced.
    run = tmp_path / "run"
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    assert (
        runner.invoke(app, ["run", str(config), "--out", str(run), "--overwrite"]).exit_code == 0
    )
    assert (run / "manifest.json").is_file()


def test_rows_without_gold_label_are_left_out_and_listed(tmp_path: Path) -> None:
    corpus = tmp_path / "c.csv"
    rows = ["id,text,gold,grp,score"]
    for i in range(40):
        gold = "" if i in (3, 7) else str(i % 2)
        rows.append(f"m{i},text {i},{gold},{'aae' if i % 4 < 2 else 'sae'},{(i % 10) / 10}")
    corpus.write_text("\n".join(rows) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"""
name: nogold
corpus:
  path: {corpus}
  columns: {{id: id, text: text, gold_label: gold, group: grp, keep: [score]}}
dialect: {{twitteraae: false, markers: false}}
models: [{{name: m, kind: column, column: score}}]
audit: {{min_negatives: 1}}
"""
    )
    out = tmp_path / "r"
    result = runner.invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpus"]["excluded"]["no_gold_label"] == {"count": 2, "ids": ["m3", "m7"]}
    metrics = pd.read_parquet(out / "group_metrics.parquet")
    overall = metrics[
        (metrics["group"] == "overall") & (metrics["metric"] == "false_positive_rate")
    ]
    # 38 labelled rows; gold 0 on even i: 20 even ids in 0..39, none of them excluded (3, 7 odd).
    assert int(overall["n"].iloc[0]) == 20


def test_compare_two_models_on_the_same_items(demo_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(
        app,
        [
            "compare",
            str(demo_run),
            str(demo_run),
            "--model-a",
            "hatesonar",
            "--model-b",
            "profanity_check",
            "--out",
            str(out),
            "--n-boot",
            "200",
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "ab_comparison.parquet")
    required = {
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
    }
    assert required <= set(table.columns)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_shared"] == 7_435 and manifest["verdict"]
    # FPR of each model on AAE gold negatives, by hand from the run's own tables.
    scores = pd.read_parquet(demo_run / "scores.parquet")
    utterances = pd.read_parquet(demo_run / "utterances.parquet").set_index("id")
    negatives = utterances[utterances["in_audit"] & ~utterances["gold_toxic"].astype(bool)]
    aae = negatives.index[negatives["dialect_group"] == "aae"]
    row = table[(table["group"] == "aae") & (table["metric"] == "false_positive_rate")].iloc[0]
    for model, column in (("hatesonar", "estimate_a"), ("profanity_check", "estimate_b")):
        flags = scores[scores["model"] == model].set_index("id")["flagged"]
        assert row[column] == pytest.approx(flags.loc[aae].mean())


def test_weights_for_a_training_corpus(demo_run: Path, davidson_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "weights"
    result = runner.invoke(
        app, ["weights", str(davidson_csv), "--from", str(demo_run), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    weights = pd.read_parquet(out / "weights.parquet")
    assert len(weights) == 24_783 and np.isclose(weights["sample_weight"].mean(), 1.0)
    again = pd.read_csv(out / "weights.csv", dtype={"id": str})
    assert again["id"].tolist() == weights["id"].tolist()
    label = weights["label"].astype(float)
    overall = np.average(label, weights=weights["sample_weight"])
    for _, cell in weights.assign(label=label).groupby("group"):
        assert np.average(cell["label"], weights=cell["sample_weight"]) == pytest.approx(overall)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["audit_run"]["run_name"] == "davidson-2017-demo"


def test_demo_prints_the_main_finding_from_its_tables(demo_run: Path) -> None:
    output = (demo_run.parent / "demo_output.txt").read_text()
    metrics = pd.read_parquet(demo_run / "group_metrics.parquet")
    fpr = metrics[(metrics["model"] == "hatesonar") & (metrics["metric"] == "false_positive_rate")]
    aae = fpr.set_index("group").loc["aae", "estimate"]
    assert "Main finding:" in output
    assert f"hatesonar: on gold non-toxic items it flags {100 * aae:.1f}% of aae" in output
    assert "Caveats:" in output and "in-sample" in output


def test_case_15_intersectional_cells_through_the_pipeline(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"""
name: intersections
corpus:
  path: {case_dir("15") / "input.csv"}
  columns: {{id: id, text: text, gold_label: gold_toxic, group: dialect_group,
             keep: [flagged, speaker_gender]}}
dialect: {{twitteraae: false, markers: false}}
models: [{{name: given, kind: decision, column: flagged}}]
audit: {{min_negatives: 5, intersect_with: speaker_gender, lexicons: null, bootstrap: 0}}
"""
    )
    out = tmp_path / "r"
    result = runner.invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    cells = pd.read_parquet(out / "intersection_metrics.parquet")
    fpr = cells[cells["metric"] == "false_positive_rate"].set_index("group")
    # CASE.md: Clopper-Pearson 95% intervals, computed there with statsmodels.
    assert fpr.loc["aae×f", "estimate"] == pytest.approx(0.428571, abs=1e-6)
    assert fpr.loc["aae×f", "ci_low"] == pytest.approx(0.098988, abs=1e-6)
    assert fpr.loc["aae×f", "ci_high"] == pytest.approx(0.815948, abs=1e-6)
    assert fpr.loc["aae×nb", "ci_low"] == pytest.approx(0.025, abs=1e-6)
    assert bool(fpr.loc["aae×nb", "small_group"]) and bool(fpr.loc["sae×m", "small_group"])
    assert len(fpr.drop(index="overall")) == 6


def test_pdf_report_in_headless_chromium(demo_run: Path) -> None:
    from pypdf import PdfReader

    result = runner.invoke(app, ["report", str(demo_run), "--pdf"])
    assert result.exit_code == 0, result.output
    pdf = demo_run / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
    metrics = pd.read_parquet(demo_run / "group_metrics.parquet")
    row = metrics[
        (metrics["model"] == "hatesonar")
        & (metrics["metric"] == "false_positive_rate")
        & (metrics["group"] == "aae")
    ].iloc[0]
    assert f"{row['estimate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" in text
    assert "False positive rate by dialect group" in text  # the plotly figure was drawn


def test_compare_and_weights_never_replace_an_audit_run(demo_run: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    shutil.copytree(demo_run, victim)
    result = runner.invoke(
        app,
        [
            "compare",
            str(victim),
            str(demo_run),
            "--out",
            str(victim),
            "--overwrite",
            "--n-boot",
            "100",
        ],
    )
    assert result.exit_code == 2 and "fairaudit-run" in result.output
    assert (victim / "utterances.parquet").is_file()
    corpus = tmp_path / "train.csv"
    corpus.write_text("id,text,label\na,hello there,0\nb,you are a fool,1\n")
    result = runner.invoke(
        app,
        ["weights", str(corpus), "--from", str(victim), "--out", str(victim), "--overwrite"],
    )
    assert result.exit_code == 2
    assert (victim / "utterances.parquet").is_file()


def test_error_targeted_weights_from_given_flags(
    demo_run: Path, davidson_csv: Path, tmp_path: Path
) -> None:
    ids = pd.read_csv(davidson_csv, usecols=[0]).iloc[:, 0].astype(str)
    flagged = np.arange(len(ids)) % 5 == 0
    flags = tmp_path / "flags.csv"
    pd.DataFrame({"id": ids, "flagged": flagged.astype(int)}).to_csv(flags, index=False)
    out = tmp_path / "w"
    result = runner.invoke(
        app,
        [
            "weights",
            str(davidson_csv),
            "--from",
            str(demo_run),
            "--out",
            str(out),
            "--scheme",
            "error_targeted",
            "--flags",
            str(flags),
            "--strength",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    weights = pd.read_parquet(out / "weights.parquet").set_index("id")
    target = (weights["group"] == "aae") & ~weights["label"].astype(bool)
    target &= pd.Series(flagged, index=ids).reindex(weights.index).to_numpy()
    # By hand: 1 + strength on the targeted cell, 1 elsewhere, then normalised to mean 1.
    raw = np.where(target, 4.0, 1.0)
    np.testing.assert_allclose(weights["sample_weight"], raw / raw.mean())
    refused = runner.invoke(
        app,
        [
            "weights",
            str(davidson_csv),
            "--from",
            str(demo_run),
            "--out",
            str(tmp_path / "x"),
            "--scheme",
            "error_targeted",
        ],
    )
    assert refused.exit_code == 2 and "--flags" in refused.output


def test_same_input_and_seed_give_identical_tables(tmp_path: Path) -> None:
    config = _given_config(tmp_path, case_dir("01") / "input.csv", missing="keep")
    first, second = tmp_path / "one", tmp_path / "two"
    for out in (first, second):
        assert runner.invoke(app, ["run", str(config), "--out", str(out)]).exit_code == 0
    tables = sorted(p.name for p in first.glob("*.parquet"))
    assert tables == sorted(p.name for p in second.glob("*.parquet")) and len(tables) > 5
    for name in tables:
        pd.testing.assert_frame_equal(
            pd.read_parquet(first / name), pd.read_parquet(second / name)
        )
    manifest = json.loads((first / "manifest.json").read_text())
    assert {"config", "inputs", "packages", "seed", "timings"} <= set(manifest)
    assert all(len(entry["sha256"]) == 64 for entry in manifest["inputs"])
