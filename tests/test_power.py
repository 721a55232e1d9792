"""Tests of fairaudit.power against statsmodels' power functions and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from fairaudit.disparity import compare_groups
from fairaudit.exceptions import SmallGroupWarning
from fairaudit.power import POWER_COLUMNS, minimum_detectable_difference, power_table
from tests.cases import case_dir

pytestmark = pytest.mark.filterwarnings("error::fairaudit.exceptions.FairauditWarning")


@pytest.mark.parametrize(
    ("n", "n_reference", "rate", "alpha"),
    [(1000, 1000, 0.1, 0.05), (150, 600, 0.2, 0.01), (40, 40, 0.0, 0.05)],
)
def test_difference_has_the_requested_power(
    n: int, n_reference: int, rate: float, alpha: float
) -> None:
    h, up, down = minimum_detectable_difference(n, n_reference, rate, alpha=alpha, power=0.8)
    # Cohen's h of the detectable rates, and the power of the test at that h, independently.
    assert proportion_effectsize(rate + up, rate) == pytest.approx(h)
    achieved = NormalIndPower().power(h, nobs1=n, alpha=alpha, ratio=n_reference / n)
    assert achieved == pytest.approx(0.8, abs=1e-4)  # root-finder tolerance
    if rate == 0:
        assert down == math.inf
    else:
        assert proportion_effectsize(rate, rate - down) == pytest.approx(h)


def test_hand_value_for_equal_groups() -> None:
    # n = 1000 each, alpha 0.05, power 0.8: h = (1.959964 + 0.841621) * sqrt(2 / 1000).
    h, up, _ = minimum_detectable_difference(1000, 1000, 0.1)
    assert h == pytest.approx((1.959964 + 0.841621) * math.sqrt(2 / 1000), rel=1e-5)
    assert up == pytest.approx(math.sin(math.asin(math.sqrt(0.1)) + h / 2) ** 2 - 0.1)


def test_case_12_is_flagged_as_low_power() -> None:
    frame = pd.read_csv(case_dir("12") / "input.csv", index_col="id")
    comparisons = compare_groups(
        frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        reference="sae",
        metrics=["false_positive_rate"],
        alpha=0.01,
    )
    with pytest.warns(SmallGroupWarning, match="aae/false_positive_rate"):
        table = power_table(comparisons)
    assert tuple(table.columns) == POWER_COLUMNS
    row = table.iloc[0]
    # For the false positive rate the n is each group's gold non-harmful count: 14 and 14.
    assert (row["n"], row["n_reference"]) == (14, 14)
    h = NormalIndPower().solve_power(nobs1=14, ratio=1.0, alpha=0.01, power=0.8)
    assert row["cohens_h"] == pytest.approx(h)
    assert row["alpha"] == 0.01 and bool(row["low_power"])
    assert row["minimum_detectable_difference"] == pytest.approx(row["mdd_increase"])


def test_large_groups_are_not_low_power() -> None:
    rng = np.random.default_rng(1)
    n = 6000
    frame = pd.DataFrame(
        {
            "g": rng.choice(["aae", "sae"], size=n),
            "gold": (rng.random(n) < 0.3).astype(int),
            "flag": (rng.random(n) < 0.2).astype(int),
        }
    )
    comparisons = compare_groups(frame, group="g", gold="gold", flagged="flag", reference="sae")
    table = power_table(comparisons, max_mdd=0.1)
    assert not table["low_power"].any()
    precision = table[table["metric"] == "precision"].iloc[0]
    assert precision["minimum_detectable_difference"] == precision["mdd_decrease"]
    with pytest.warns(SmallGroupWarning):
        strict = power_table(comparisons, max_mdd=0.01)
    assert strict["low_power"].all()
