"""Tests of fairaudit.reweighting: case 03 values and the properties Kamiran-Calders promises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.exceptions import FairauditError, InputError, UndefinedMetricWarning
from fairaudit.reweighting import (
    ESS_COLUMNS,
    REWEIGHTING_COLUMNS,
    EffectiveSampleSizeWarning,
    _clip_and_normalize,
    clip_weights,
    compute_weights,
    effective_sample_size_table,
    export_weights,
    kamiran_calders,
    kish_effective_sample_size,
    normalize_weights,
    stochastic_copies,
    weight_training_corpus,
)
from tests.cases import case_dir

# Any fairaudit warning a test does not expect with pytest.warns is a failure.
pytestmark = pytest.mark.filterwarnings("error::fairaudit.exceptions.FairauditWarning")

# CASE.md of case 03: w(g, y) = n_g * n_y / (n * n_gy).
CASE_03_WEIGHTS = {
    ("aae", 1): 8 * 10 / (26 * 5),
    ("aae", 0): 8 * 16 / (26 * 3),
    ("sae", 1): 10 * 10 / (26 * 2),
    ("sae", 0): 10 * 16 / (26 * 8),
    ("mixed", 1): 6 * 10 / (26 * 3),
    ("mixed", 0): 6 * 16 / (26 * 3),
    ("unk", 0): 2 * 16 / (26 * 2),
}


def read_case_03() -> pd.DataFrame:
    return pd.read_csv(
        case_dir("03") / "input.csv",
        keep_default_na=False,
        na_values={"dialect_group": [""]},
        index_col="id",
    )


def weighted_positive_rate(weights: pd.DataFrame) -> pd.Series:
    weighted = weights["sample_weight"] * weights["label"]
    return (
        weighted.groupby(weights["group"]).sum() / weights.groupby("group")["sample_weight"].sum()
    )


def case_03_weights(*, normalize: bool, seed: int = 0) -> pd.DataFrame:
    frame = read_case_03()
    with pytest.warns(UndefinedMetricWarning, match="'unk'.*independent"):
        return kamiran_calders(
            frame["dialect_group"], frame["gold_toxic"], normalize=normalize, seed=seed
        )


def test_case_03_raw_weights_per_cell() -> None:
    weights = case_03_weights(normalize=False)
    assert tuple(weights.columns) == REWEIGHTING_COLUMNS
    assert len(weights) == 26
    assert weights.index.tolist() == weights["id"].tolist()
    assert weights.loc["r01", "id"] == "r01"
    for row in weights.itertuples():
        assert row.sample_weight == pytest.approx(CASE_03_WEIGHTS[(row.group, row.label)])
    assert weights["sample_weight"].sum() == pytest.approx(25.230769, abs=1e-6)
    assert weights["sample_weight"].mean() == pytest.approx(0.970414, abs=1e-6)
    assert np.isfinite(weights["sample_weight"]).all()
    assert weights.groupby(["group", "label"]).ngroups == 7


def test_case_03_multigroup_independence_not_binary_collapse() -> None:
    rates = weighted_positive_rate(case_03_weights(normalize=False))
    for group in ("aae", "sae", "mixed"):
        assert rates[group] == pytest.approx(10 / 26)
    assert rates["aae"] != pytest.approx(0.510204, abs=1e-4)
    assert rates["unk"] == 0.0


def test_case_03_normalised_weights_keep_ratios() -> None:
    raw = case_03_weights(normalize=False)
    normalised = case_03_weights(normalize=True)
    assert normalised["sample_weight"].mean() == pytest.approx(1.0)
    ratio = normalised["sample_weight"] / raw["sample_weight"]
    np.testing.assert_allclose(ratio, ratio.iloc[0])
    assert ratio.iloc[0] == pytest.approx(26 / 25.230769230769234)


@pytest.fixture
def random_table() -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(7)
    n = 500
    groups = rng.choice(["aae", "sae", "mixed", "unknown"], size=n, p=[0.35, 0.4, 0.15, 0.1])
    labels = rng.choice(["hate", "offensive", "neither"], size=n)
    index = pd.Index([f"t{i:03d}" for i in range(n)])
    return pd.Series(groups, index=index), pd.Series(labels, index=index)


def test_weighted_table_is_exactly_independent(random_table: tuple[pd.Series, pd.Series]) -> None:
    groups, labels = random_table
    weights = kamiran_calders(groups, labels, normalize=False)
    table = pd.crosstab(
        weights["group"], weights["label"], values=weights["sample_weight"], aggfunc="sum"
    )
    total = table.to_numpy().sum()
    independent = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    np.testing.assert_allclose(table.to_numpy(), independent, rtol=1e-12)
    # Marginals are those of the data: sum over a group equals its size, as for each label.
    np.testing.assert_allclose(table.sum(axis=1), groups.value_counts()[table.index])
    np.testing.assert_allclose(table.sum(axis=0), labels.value_counts()[table.columns])


def test_stochastic_rounding_is_unbiased(random_table: tuple[pd.Series, pd.Series]) -> None:
    groups, labels = random_table
    draws = np.array(
        [kamiran_calders(groups, labels, seed=seed)["copies"].to_numpy() for seed in range(400)]
    )
    weights = kamiran_calders(groups, labels)["sample_weight"].to_numpy()
    assert (draws >= np.floor(weights)).all() and (draws <= np.ceil(weights)).all()
    # Per row, copies are floor(w) + Bernoulli(frac(w)); the mean over 400 seeds is within
    # 5 standard errors of w (standard error at most 0.5 / sqrt(400) = 0.025).
    np.testing.assert_allclose(draws.mean(axis=0), weights, atol=5 * 0.5 / np.sqrt(400))
    assert draws.sum(axis=1).mean() == pytest.approx(weights.sum(), rel=0.01)


def test_copies_are_reproducible_with_a_seed(random_table: tuple[pd.Series, pd.Series]) -> None:
    groups, labels = random_table
    first = kamiran_calders(groups, labels, seed=3)["copies"]
    second = kamiran_calders(groups, labels, seed=3)["copies"]
    pd.testing.assert_series_equal(first, second)


def test_missing_group_or_label_gets_no_weight(caplog: pytest.LogCaptureFixture) -> None:
    index = ["a", "b", "c", "d", "e", "f"]
    groups = pd.Series(["aae", "aae", None, "sae", "sae", "sae"], index=index)
    labels = pd.Series([1, 0, 1, 1, 0, np.nan], index=index)
    with caplog.at_level("INFO", logger="fairaudit.reweighting"):
        weights = kamiran_calders(groups, labels, normalize=False)
    assert weights["id"].tolist() == ["a", "b", "d", "e"]
    assert weights.attrs["excluded_ids"] == ["c", "f"]
    assert "2 message(s)" in caplog.text
    # Remaining table is 2x2 with one message per cell: w = 2 * 2 / (4 * 1) = 1.
    np.testing.assert_allclose(weights["sample_weight"], 1.0)


# --------------------------------------------------------------------------------------------
# Schemes with options (compute_weights), training corpora and export
# --------------------------------------------------------------------------------------------


def test_compute_weights_kamiran_calders_equals_aif360_formula_on_case_03() -> None:
    frame = read_case_03()
    with pytest.warns(UndefinedMetricWarning, match="'unk'"):
        result = compute_weights(
            frame["dialect_group"],
            frame["gold_toxic"],
            scheme="kamiran_calders",
            normalize=False,
            ess_warn_below=0.0,
        )
    weights = result.weights
    assert tuple(weights.columns) == REWEIGHTING_COLUMNS
    assert result.excluded_ids == ()
    for row in weights.itertuples():
        assert row.sample_weight == pytest.approx(CASE_03_WEIGHTS[(row.group, row.label)])


def test_compute_weights_table_is_exactly_independent(
    random_table: tuple[pd.Series, pd.Series],
) -> None:
    groups, labels = random_table
    weights = compute_weights(groups, labels, scheme="kamiran_calders").weights
    table = pd.crosstab(
        weights["group"], weights["label"], values=weights["sample_weight"], aggfunc="sum"
    ).to_numpy()
    np.testing.assert_allclose(
        table, np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum(), rtol=1e-12
    )


def test_group_balance_by_hand() -> None:
    groups = pd.Series(["aae"] * 6 + ["sae"] * 3 + ["uncertain"] * 1, index=list("abcdefghij"))
    result = compute_weights(groups, scheme="group_balance", normalize=False, ess_warn_below=0)
    # w = n / (G * n_g) = 10 / (3 * n_g)
    expected = {"aae": 10 / 18, "sae": 10 / 9, "uncertain": 10 / 3}
    for row in result.weights.itertuples():
        assert row.sample_weight == pytest.approx(expected[row.group])
    totals = result.weights.groupby("group")["sample_weight"].sum()
    np.testing.assert_allclose(totals, 10 / 3)


def test_error_targeted_by_hand() -> None:
    index = [f"m{i}" for i in range(8)]
    groups = pd.Series(["aae", "aae", "aae", "aae", "sae", "sae", "sae", "sae"], index=index)
    gold = pd.Series([0, 0, 1, 1, 0, 0, 1, 1], index=index)
    flagged = pd.Series([1, 0, 1, 0, 1, 0, 1, 0], index=index)
    result = compute_weights(
        groups,
        gold,
        scheme="error_targeted",
        flagged=flagged,
        strength=2.0,
        normalize=False,
        ess_warn_below=0,
    )
    # Only m0 is an aae gold non-toxic item the model flags: 1 + 2 = 3; the sae false
    # positive m4 keeps weight 1.
    np.testing.assert_allclose(result.weights["sample_weight"], [3, 1, 1, 1, 1, 1, 1, 1])
    assert result.parameters["strength"] == 2.0
    normalised = compute_weights(
        groups, gold, scheme="error_targeted", flagged=flagged, strength=2.0, ess_warn_below=0
    )
    np.testing.assert_allclose(normalised.weights["sample_weight"], np.r_[3, [1] * 7] / 1.25)


def test_error_targeted_without_false_positives_warns() -> None:
    groups = pd.Series(["aae", "aae", "sae"])
    gold = pd.Series([0, 1, 0])
    flagged = pd.Series([0, 1, 1])
    with pytest.warns(UndefinedMetricWarning, match="none of group 'aae'"):
        result = compute_weights(groups, gold, scheme="error_targeted", flagged=flagged)
    np.testing.assert_allclose(result.weights["sample_weight"], 1.0)


def test_kish_effective_sample_size_by_hand() -> None:
    assert kish_effective_sample_size(np.array([1.0, 2.0, 3.0])) == pytest.approx(36 / 14)
    assert kish_effective_sample_size(np.full(7, 0.3)) == pytest.approx(7)
    groups = np.array(["a", "a", "a", "b", "b"])
    weights = np.array([1.0, 2.0, 3.0, 4.0, 4.0])
    table = effective_sample_size_table(groups, weights, warn_below=0)
    assert tuple(table.columns) == ESS_COLUMNS
    by_group = table.set_index("group")
    assert by_group.loc["a", "ess_after"] == pytest.approx(36 / 14)
    assert by_group.loc["b", "ess_after"] == pytest.approx(2.0)
    assert by_group.loc["overall", "ess_after"] == pytest.approx(14**2 / 46)
    assert by_group.loc["a", "ess_before"] == 3
    assert by_group.loc["a", "ess_fraction"] == pytest.approx(36 / 14 / 3)


def test_ess_collapse_warns() -> None:
    groups = pd.Series(["aae"] * 10 + ["sae"] * 10)
    gold = pd.Series([0] * 20)
    flagged = pd.Series([1] + [0] * 19)
    with pytest.warns(EffectiveSampleSizeWarning) as caught:
        result = compute_weights(
            groups, gold, scheme="error_targeted", flagged=flagged, strength=99.0
        )
    messages = [str(w.message) for w in caught]
    assert any("'aae'" in m and "of 10 messages" in m for m in messages)
    assert not any("'sae'" in m for m in messages)
    aae = result.effective_sample_size.set_index("group").loc["aae"]
    # weights 100 and nine 1s: ESS = 109^2 / (100^2 + 9)
    assert aae["ess_after"] == pytest.approx(109**2 / 10009)


def test_clipping_and_normalising_preserve_order() -> None:
    rng = np.random.default_rng(11)
    raw = rng.lognormal(sigma=1.5, size=400)
    order = np.argsort(raw, kind="mergesort")
    for clipped in (
        clip_weights(raw, max_weight=2.0),
        normalize_weights(raw),
        _final_weights(raw, max_weight=3.0),
    ):
        assert (np.diff(clipped[order]) >= -1e-12).all()
    final = _final_weights(raw, max_weight=3.0)
    assert final.max() <= 3.0 + 1e-9
    assert final.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(normalize_weights(raw) * raw.mean(), raw)


def _final_weights(raw: np.ndarray, *, max_weight: float) -> np.ndarray:
    """Clip and normalise as compute_weights does (repeated until both hold)."""
    final, _ = _clip_and_normalize(raw, max_weight=max_weight, normalize=True)
    return final


def test_compute_weights_clips_after_normalising(
    random_table: tuple[pd.Series, pd.Series],
) -> None:
    groups, labels = random_table
    result = compute_weights(groups, labels, scheme="kamiran_calders", max_weight=1.2)
    weights = result.weights["sample_weight"]
    assert weights.max() <= 1.2 + 1e-9
    assert weights.mean() == pytest.approx(1.0)
    assert result.parameters["weights_clipped"] > 0
    ess = result.effective_sample_size.set_index("group")
    assert (ess["ess_after"] >= ess["ess_unclipped"] - 1e-9).all()


def test_compute_weights_copies_unbiased_and_seeded(
    random_table: tuple[pd.Series, pd.Series],
) -> None:
    groups, labels = random_table
    results = [compute_weights(groups, labels, seed=seed) for seed in range(400)]
    weights = results[0].weights["sample_weight"].to_numpy()
    draws = np.array([r.weights["copies"].to_numpy() for r in results])
    np.testing.assert_allclose(draws.mean(axis=0), weights, atol=5 * 0.5 / np.sqrt(400))

    # The record rebuilds the stream of the copies.
    record = results[7].seeds
    stream = np.random.default_rng(
        np.random.SeedSequence(
            record["entropy"], spawn_key=tuple(record["streams"]["copies"]["spawn_key"])
        )
    )
    np.testing.assert_array_equal(
        stochastic_copies(weights, stream), results[7].weights["copies"].to_numpy()
    )


def test_unknown_scheme_and_missing_inputs() -> None:
    groups = pd.Series(["aae", "sae"])
    with pytest.raises(ValueError, match="unknown scheme"):
        compute_weights(groups, scheme="magic")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="needs gold labels"):
        compute_weights(groups, scheme="kamiran_calders")
    with pytest.raises(InputError, match="flags"):
        compute_weights(groups, pd.Series([0, 1]), scheme="error_targeted")


@pytest.fixture
def audit_run(tmp_path: Path) -> Path:
    folder = tmp_path / "audit-run"
    folder.mkdir()
    (folder / "manifest.json").write_text(
        json.dumps({"run_name": "davidson-2017-demo", "seed": 5, "finished_at": "now"})
    )
    return folder


@pytest.fixture
def training_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["t1", "t2", "t3", "t4", "t5", "t6"],
            "dialect_group": ["aae", "aae", "aae", "sae", "sae", "sae"],
            "gold_toxic": [True, True, False, False, False, True],
            "flagged": [True, True, True, False, True, True],
        }
    )


def test_weight_training_corpus_records_the_audit_run(
    audit_run: Path, training_table: pd.DataFrame
) -> None:
    result = weight_training_corpus(
        training_table,
        audit_run=audit_run,
        scheme="error_targeted",
        flagged_column="flagged",
        strength=1.0,
        ess_warn_below=0,
    )
    assert result.source["audit_run"]["run_name"] == "davidson-2017-demo"
    assert result.source["audit_run"]["run_folder"] == str(audit_run.resolve())
    assert len(result.source["audit_run"]["manifest_sha256"]) == 64
    assert result.source["training_rows"] == 6
    assert result.weights.loc["t3", "sample_weight"] > result.weights.loc["t5", "sample_weight"]
    with pytest.raises(InputError, match="no manifest"):
        weight_training_corpus(training_table, audit_run=audit_run / "nowhere")


def test_export_weights_round_trips(
    audit_run: Path, training_table: pd.DataFrame, tmp_path: Path
) -> None:
    result = weight_training_corpus(
        training_table, audit_run=audit_run / "manifest.json", ess_warn_below=0
    )
    out = export_weights(result, tmp_path / "weights")
    expected = result.weights.reset_index(drop=True)
    parquet = pd.read_parquet(out / "weights.parquet")
    csv = pd.read_csv(out / "weights.csv", dtype={"id": str})
    jsonl = pd.read_json(out / "weights.jsonl", lines=True, dtype={"id": str})
    for table in (parquet, csv, jsonl):
        assert table["id"].tolist() == expected["id"].tolist()
        np.testing.assert_allclose(table["sample_weight"], expected["sample_weight"])
        assert table["copies"].tolist() == expected["copies"].tolist()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "fairaudit-weights"
    assert manifest["scheme"] == "kamiran_calders"
    assert manifest["source"]["audit_run"]["run_name"] == "davidson-2017-demo"
    assert manifest["seeds"]["streams"]["copies"]["spawn_key"] == [0]
    assert manifest["rows_weighted"] == 6
    assert set(manifest["files"]) >= {"weights.parquet", "weights.csv", "weights.jsonl"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".weights")]
    with pytest.raises(FairauditError, match="already exists"):
        export_weights(result, out)
