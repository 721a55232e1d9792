"""Monte Carlo checks of compare_groups' multiple-testing control and power.

Under no true disparity (every group draws from the same rates) the Holm-corrected family of
comparisons must reject anything in at most 5 % of data sets, within Monte Carlo error; with a
planted false positive rate disparity the comparison must be found almost always.
"""

from __future__ import annotations

import gc
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fairaudit.disparity import compare_groups

GROUPS = ("sae", "aae", "mixed", "other")
METRICS = ["false_positive_rate", "false_negative_rate", "flag_rate"]


@pytest.fixture(autouse=True)
def no_forced_garbage_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    # statsmodels' Holm branch calls gc.collect() on every call, which costs ~0.1 s in a
    # large test process; skipping it changes no number and keeps the simulation fast.
    monkeypatch.setattr(gc, "collect", lambda *args, **kwargs: 0)


def draw(rng: np.random.Generator, fpr: dict[str, float], n_per_group: int) -> pd.DataFrame:
    group = np.repeat(GROUPS, n_per_group)
    gold = rng.random(group.size) < 0.4
    rate = np.where(gold, 0.7, np.vectorize(fpr.get)(group))  # true positive rate 0.7
    flagged = rng.random(group.size) < rate
    return pd.DataFrame({"g": group, "gold": gold.astype(int), "flag": flagged.astype(int)})


def rejections(frame: pd.DataFrame) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-group and degenerate caveats are irrelevant
        table = compare_groups(
            frame, group="g", gold="gold", flagged="flag", reference="sae", metrics=METRICS
        )
    return table


def test_holm_controls_the_family_wise_error_rate() -> None:
    rng = np.random.default_rng(20260401)
    simulations = 400
    null = dict.fromkeys(GROUPS, 0.15)
    any_rejection = 0
    raw_rejection = 0
    for _ in range(simulations):
        table = rejections(draw(rng, null, 150))
        assert len(table) == 9  # 3 groups x 3 metrics: one family
        any_rejection += bool(table["significant"].fillna(False).any())
        raw_rejection += bool((table["p_value"] < 0.05).any())
    fwer = any_rejection / simulations
    se = math.sqrt(0.05 * 0.95 / simulations)
    assert fwer <= 0.05 + 2 * se, fwer
    # Without the correction the family-wise error is far above 5 %: the check has teeth.
    assert raw_rejection / simulations > 0.15


@pytest.mark.parametrize("planted", [0.30])
def test_a_planted_disparity_is_found(planted: float) -> None:
    rng = np.random.default_rng(20260402)
    simulations = 100
    rates = dict.fromkeys(GROUPS, 0.15) | {"aae": planted}
    found = 0
    false_alarm = 0
    for _ in range(simulations):
        table = rejections(draw(rng, rates, 400)).set_index(["group", "metric"])
        found += bool(table.loc[("aae", "false_positive_rate"), "significant"])
        others = table.drop(index="aae", level="group")
        false_alarm += bool(others["significant"].fillna(False).any())
    # 240 gold non-harmful messages per group: power about 0.9 at Holm's 0.05 / 9.
    assert found / simulations >= 0.8
    assert false_alarm / simulations <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / simulations)
