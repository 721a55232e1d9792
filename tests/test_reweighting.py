"""Tests of fairaudit.reweighting: case 03 values and the properties Kamiran-Calders promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairaudit.exceptions import UndefinedMetricWarning
from fairaudit.reweighting import REWEIGHTING_COLUMNS, kamiran_calders
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
