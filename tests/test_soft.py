"""Tests of fairaudit.soft against hand computations, hard-group rates and plain masks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from fairaudit.exceptions import InputError, SmallGroupWarning, UndefinedMetricWarning
from fairaudit.soft import (
    SENSITIVITY_COLUMNS,
    SOFT_RATE_COLUMNS,
    threshold_sensitivity,
    weighted_group_rates,
)


def cell(table: pd.DataFrame, group: str, metric: str) -> pd.Series:
    return table.set_index(["group", "metric"]).loc[(group, metric)]


def hand_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "p": [0.9, 0.8, 0.2, 0.1, 0.5, 0.7],
            "gold": [0, 0, 0, 0, 1, 1],
            "flagged": [1, 0, 1, 0, 1, 0],
        },
        index=[f"m{i}" for i in range(1, 7)],
    )


def test_weighted_rates_by_hand() -> None:
    with pytest.warns(SmallGroupWarning):
        table = weighted_group_rates(hand_frame(), membership="p", gold="gold", flagged="flagged")
    assert tuple(table.columns) == SOFT_RATE_COLUMNS

    # Gold non-harmful: m1..m4 with p = 0.9, 0.8, 0.2, 0.1; flagged m1 and m3.
    # AAE: (0.9 + 0.2) / (0.9 + 0.8 + 0.2 + 0.1) = 1.1 / 2.0.
    aae = cell(table, "aae", "false_positive_rate")
    assert aae["estimate"] == pytest.approx(0.55)
    assert aae["weight_sum"] == pytest.approx(2.0)
    assert aae["weighted_count"] == pytest.approx(1.1)
    # Kish: 2.0**2 / (0.81 + 0.64 + 0.04 + 0.01) = 4 / 1.5.
    assert aae["effective_n"] == pytest.approx(4 / 1.5)
    low, high = proportion_confint(0.55 * 4 / 1.5, 4 / 1.5, method="wilson")
    assert (aae["ci_low"], aae["ci_high"]) == pytest.approx((low, high), abs=1e-12)

    # SAE weights 0.1, 0.2, 0.8, 0.9: (0.1 + 0.8) / 2.0.
    sae = cell(table, "sae", "false_positive_rate")
    assert sae["estimate"] == pytest.approx(0.45)
    assert sae["effective_n"] == pytest.approx(4 / 1.5)

    difference = cell(table, "difference", "false_positive_rate")
    assert difference["estimate"] == pytest.approx(0.10)
    # Newcombe's hybrid interval from the two Wilson intervals, written out.
    expected_low = 0.10 - math.sqrt((0.55 - low) ** 2 + (sae["ci_high"] - 0.45) ** 2)
    expected_high = 0.10 + math.sqrt((high - 0.55) ** 2 + (0.45 - sae["ci_low"]) ** 2)
    assert difference["ci_low"] == pytest.approx(expected_low)
    assert difference["ci_high"] == pytest.approx(expected_high)
    assert difference["interval_method"] == "newcombe_kish_effective_n"

    # Gold harmful m5 (p 0.5, flagged), m6 (p 0.7, missed): AAE FNR 0.7 / 1.2, SAE 0.3 / 0.8.
    assert cell(table, "aae", "false_negative_rate")["estimate"] == pytest.approx(0.7 / 1.2)
    assert cell(table, "sae", "false_negative_rate")["estimate"] == pytest.approx(0.3 / 0.8)
    # Flag rate (m1, m3, m5 flagged): AAE (0.9 + 0.2 + 0.5) / 3.2, SAE (0.1 + 0.8 + 0.5) / 2.8.
    assert cell(table, "aae", "flag_rate")["estimate"] == pytest.approx(1.6 / 3.2)
    assert cell(table, "sae", "flag_rate")["estimate"] == pytest.approx(1.4 / 2.8)


def test_zero_one_membership_equals_hard_rates() -> None:
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            "is_aae": rng.integers(0, 2, n),
            "gold": rng.integers(0, 2, n),
            "flagged": rng.integers(0, 2, n),
        }
    )
    table = weighted_group_rates(frame, membership="is_aae", gold="gold", flagged="flagged")

    for group, value in (("aae", 1), ("sae", 0)):
        rows = frame[frame["is_aae"] == value]
        negatives = rows[rows["gold"] == 0]
        positives = rows[rows["gold"] == 1]
        expected = {
            "false_positive_rate": (int(negatives["flagged"].sum()), len(negatives)),
            "false_negative_rate": (int((positives["flagged"] == 0).sum()), len(positives)),
            "flag_rate": (int(rows["flagged"].sum()), len(rows)),
        }
        for metric, (count, total) in expected.items():
            row = cell(table, group, metric)
            assert row["estimate"] == pytest.approx(count / total, abs=1e-12)
            assert row["effective_n"] == pytest.approx(total)
            assert row["n_rows"] == total
            low, high = proportion_confint(count, total, method="wilson")
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-12)

    # With hard groups the difference interval is statsmodels' Newcombe interval.
    aae_neg = frame[(frame["is_aae"] == 1) & (frame["gold"] == 0)]
    sae_neg = frame[(frame["is_aae"] == 0) & (frame["gold"] == 0)]
    low, high = confint_proportions_2indep(
        aae_neg["flagged"].sum(),
        len(aae_neg),
        sae_neg["flagged"].sum(),
        len(sae_neg),
        method="newcomb",
        compare="diff",
    )
    difference = cell(table, "difference", "false_positive_rate")
    assert (difference["ci_low"], difference["ci_high"]) == pytest.approx((low, high), abs=1e-12)


def test_membership_out_of_range_names_ids() -> None:
    frame = hand_frame()
    frame.loc["m3", "p"] = 1.2
    with pytest.raises(InputError, match="m3"):
        weighted_group_rates(frame, membership="p", gold="gold", flagged="flagged")


def test_undefined_rate_is_nan_with_reason() -> None:
    frame = hand_frame()
    frame["gold"] = 0
    with pytest.warns(UndefinedMetricWarning, match="no_positives"):
        with pytest.warns(SmallGroupWarning):
            table = weighted_group_rates(frame, membership="p", gold="gold", flagged="flagged")
    row = cell(table, "aae", "false_negative_rate")
    assert math.isnan(row["estimate"]) and row["undefined_reason"] == "no_positives"
    assert cell(table, "difference", "false_negative_rate")["undefined_reason"] == (
        "aae_no_positives"
    )


def sensitivity_frame(seed: int = 7, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Scores on a 0.05 grid put many messages exactly on the cuts, which is the hard case.
    score = np.round(rng.uniform(0, 1, n) * 20) / 20
    gold = rng.random(n) < 0.3
    flagged = rng.random(n) < np.where(gold, 0.7, 0.1 + 0.15 * score)
    return pd.DataFrame({"dialect_score": score, "gold": gold, "flagged": flagged})


def test_sensitivity_matches_plain_masks() -> None:
    frame = sensitivity_frame()
    table = threshold_sensitivity(
        frame, score_column="dialect_score", gold="gold", flagged="flagged"
    )
    assert tuple(table.columns) == SENSITIVITY_COLUMNS
    assert len(table) == 10
    assert table["threshold"].tolist() == pytest.approx([0.5 + 0.05 * i for i in range(10)])

    score = frame["dialect_score"]
    for row in table.itertuples():
        t = round(row.threshold, 10)
        if t == 0.5:
            aae, sae = score > 0.5, score < 0.5
        else:
            # Decimal comparison on the 0.05 grid, free of floating-point noise.
            cents = (score * 100).round().astype(int)
            aae = cents >= round(t * 100)
            sae = cents <= round((1 - t) * 100)
        negatives = ~frame["gold"]
        fp_aae = int((aae & negatives & frame["flagged"]).sum())
        fp_sae = int((sae & negatives & frame["flagged"]).sum())
        n_aae, n_sae = int((aae & negatives).sum()), int((sae & negatives).sum())
        assert (row.n_treated, row.n_control) == (int(aae.sum()), int(sae.sum()))
        assert row.n_excluded == len(frame) - aae.sum() - sae.sum()
        assert (row.negatives_treated, row.negatives_control) == (n_aae, n_sae)
        assert (row.false_positives_treated, row.false_positives_control) == (fp_aae, fp_sae)
        assert row.difference == pytest.approx(fp_aae / n_aae - fp_sae / n_sae, abs=1e-12)
        low, high = confint_proportions_2indep(
            fp_aae, n_aae, fp_sae, n_sae, method="newcomb", compare="diff"
        )
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert table.loc[0, "treated_rule"] == "score > 0.5"
    assert table.loc[1, "treated_rule"] == "score >= 0.55"
    assert table.loc[1, "control_rule"] == "score <= 0.45"


def test_sensitivity_continuous_scores_match_masks() -> None:
    rng = np.random.default_rng(11)
    frame = sensitivity_frame()
    frame["dialect_score"] = rng.beta(0.7, 0.7, len(frame))
    thresholds = [0.5, 0.62, 0.8, 0.99]
    table = threshold_sensitivity(
        frame,
        score_column="dialect_score",
        gold="gold",
        flagged="flagged",
        thresholds=thresholds,
        alpha=0.1,
    )
    for t, row in zip(thresholds, table.itertuples(), strict=True):
        score = frame["dialect_score"]
        aae = score >= t if t > 0.5 else score > t
        sae = score <= 1 - t if t > 0.5 else score < t
        negatives = ~frame["gold"]
        expected = (aae & negatives & frame["flagged"]).sum() / (aae & negatives).sum() - (
            sae & negatives & frame["flagged"]
        ).sum() / (sae & negatives).sum()
        assert row.difference == pytest.approx(expected, abs=1e-12)
        assert row.alpha == 0.1


def test_sensitivity_empty_group_is_undefined() -> None:
    frame = pd.DataFrame(
        {"dialect_score": [0.1, 0.2, 0.55, 0.6], "gold": 0, "flagged": [0, 1, 1, 1]}
    )
    with pytest.warns(UndefinedMetricWarning, match="0.7"):
        table = threshold_sensitivity(
            frame,
            score_column="dialect_score",
            gold="gold",
            flagged="flagged",
            thresholds=[0.55, 0.7],
        )
    assert table.loc[0, "difference"] == pytest.approx(1.0 - 0.5)
    assert math.isnan(table.loc[1, "difference"])
    assert table.loc[1, "undefined_reason"] == "treated_no_negatives"
    with pytest.raises(ValueError, match="0.5, 1"):
        threshold_sensitivity(
            frame, score_column="dialect_score", gold="gold", flagged="flagged", thresholds=[0.4]
        )


def test_no_warning_on_clean_large_input() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threshold_sensitivity(
            sensitivity_frame(), score_column="dialect_score", gold="gold", flagged="flagged"
        )
