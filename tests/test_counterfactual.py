"""Tests of fairaudit.counterfactual on case 14 (names and identity terms) and by hand."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fairaudit.counterfactual import (
    FALSE_POSITIVE_COLUMNS,
    SLOT_RATE_COLUMNS,
    TEMPLATE_COLUMNS,
    counterfactual_report,
    counterfactual_token_fairness_gap,
)
from fairaudit.exceptions import InputError, UndefinedMetricWarning
from tests.cases import case_dir

THRESHOLD = 0.5


@pytest.fixture(scope="module")
def case14() -> pd.DataFrame:
    frame = pd.read_csv(case_dir("14") / "input.csv", index_col="id")
    frame["flagged"] = frame["score"] >= THRESHOLD
    return frame


def report(frame: pd.DataFrame):
    return counterfactual_report(
        frame,
        template="template_id",
        slot_value="slot_value",
        slot_kind="slot_kind",
        score="score",
        flagged="flagged",
        gold="gold_toxic",
    )


def test_case14_templates(case14: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = report(case14)
    templates = result.templates.set_index("template")
    assert tuple(result.templates.columns) == TEMPLATE_COLUMNS

    expected = {
        "T1": (0.59, ("Hassan", "Dickson"), 0.342000, 10),
        "T2": (0.53, ("Cassandra", "Dickson"), 0.312000, 10),
        "T3": (0.56, ("Hassan",), 0.310000, 10),
        "T4": (0.65, ("Black", "Muslim", "gay"), 0.331667, 6),
        "T5": (0.62, ("Muslim", "gay"), 0.321667, 6),
    }
    assert list(templates.index) == list(expected)
    for name, (spread, flagged_values, gap, pairs) in expected.items():
        row = templates.loc[name]
        assert row["score_range"] == pytest.approx(spread, abs=1e-9)
        assert bool(row["decision_flips"]) is True
        assert row["flagged_slot_values"] == flagged_values
        assert row["ctf_gap"] == pytest.approx(gap, abs=5e-7)
        assert row["n_pairs"] == pairs
        assert row["undefined_reason"] is None


def test_case14_rates_and_false_positives(case14: pd.DataFrame) -> None:
    result = report(case14)
    assert tuple(result.slot_values.columns) == SLOT_RATE_COLUMNS
    values = result.slot_values.set_index("slot")
    expected_values = {
        "Emily": 0.0,
        "Jordan": 0.0,
        "white": 0.0,
        "Cassandra": 1 / 3,
        "Black": 0.5,
        "Hassan": 2 / 3,
        "Dickson": 2 / 3,
        "Muslim": 1.0,
        "gay": 1.0,
    }
    for name, rate in expected_values.items():
        assert values.loc[name, "false_positive_rate"] == pytest.approx(rate, abs=1e-9)
    assert values.loc["overall", "false_positive_rate"] == pytest.approx(10 / 23)
    assert values.loc["overall", "false_positives"] == 10
    assert values.loc["overall", "negatives"] == 23

    kinds = result.slot_kinds.set_index("slot")
    assert kinds.loc["name", "false_positive_rate"] == pytest.approx(5 / 15)
    assert kinds.loc["name", "negatives"] == 15
    assert kinds.loc["identity_term", "false_positive_rate"] == pytest.approx(5 / 8)
    assert kinds.loc["identity_term", "negatives"] == 8

    false_positives = result.false_positives
    assert tuple(false_positives.columns) == FALSE_POSITIVE_COLUMNS
    assert false_positives["id"].tolist() == "x03 x05 x09 x10 x13 x17 x18 x19 x22 x23".split()
    # Every score at or above the threshold is in the list (all 23 texts are non-toxic).
    assert set(false_positives["id"]) == set(case14.index[case14["score"] >= THRESHOLD])


def test_case14_texts_untouched(case14: pd.DataFrame) -> None:
    before = case14.copy()
    report(case14)
    pd.testing.assert_frame_equal(case14, before)


def test_gap_by_hand_and_by_pairs() -> None:
    # CASE.md hand check: T1's ten pairwise differences sum to 3.42.
    gap, pairs = counterfactual_token_fairness_gap([0.03, 0.04, 0.57, 0.41, 0.62])
    assert (gap, pairs) == (pytest.approx(0.342), 10)

    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 20):
        scores = rng.random(n)
        brute = np.mean([abs(a - b) for a, b in itertools.combinations(scores, 2)])
        assert counterfactual_token_fairness_gap(scores)[0] == pytest.approx(brute, abs=1e-12)
    one = counterfactual_token_fairness_gap([0.4])
    assert math.isnan(one[0]) and one[1] == 0


def test_without_gold_or_kind() -> None:
    frame = pd.DataFrame(
        {
            "template": ["A", "A", "B"],
            "slot": ["x", "y", "x"],
            "score": [0.2, 0.7, 0.9],
            "flagged": [0, 1, 1],
        },
        index=["m1", "m2", "m3"],
    )
    with pytest.warns(UndefinedMetricWarning, match="fewer_than_two_variants"):
        result = counterfactual_report(
            frame, template="template", slot_value="slot", score="score", flagged="flagged"
        )
    assert result.false_positives is None and result.slot_kinds is None
    values = result.slot_values.set_index("slot")
    assert values.loc["x", "flag_rate"] == 0.5
    assert values.loc["x", "undefined_reason"] == "no_gold_labels"
    templates = result.templates.set_index("template")
    assert templates.loc["A", "ctf_gap"] == pytest.approx(0.5)
    assert math.isnan(templates.loc["B", "ctf_gap"])
    assert bool(templates.loc["B", "decision_flips"]) is False


def test_repeated_slot_value_is_an_error(case14: pd.DataFrame) -> None:
    frame = pd.concat([case14, case14.loc[["x03"]].rename(index={"x03": "x99"})])
    with pytest.raises(InputError, match="x99"):
        report(frame)


def test_reserved_slot_value(case14: pd.DataFrame) -> None:
    frame = case14.copy()
    frame.loc["x01", "slot_value"] = "overall"
    with pytest.raises(InputError, match="reserved"):
        report(frame)
