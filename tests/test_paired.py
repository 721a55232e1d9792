"""Tests of fairaudit.paired against a hand-worked example, scipy and statsmodels."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from fairaudit.exceptions import InputError, UndefinedMetricWarning
from fairaudit.paired import PAIRED_COLUMNS, IncompletePairsWarning, paired_comparison


def hand_frame() -> pd.DataFrame:
    # Five complete pairs and one pair (p6) with only the AAE version.
    rows = [
        ("a1", "p1", "aae", 0.55, 1),
        ("s1", "p1", "sae", 0.45, 0),
        ("a2", "p2", "aae", 0.60, 1),
        ("s2", "p2", "sae", 0.40, 0),
        ("a3", "p3", "aae", 0.65, 1),
        ("s3", "p3", "sae", 0.35, 0),
        ("a4", "p4", "aae", 0.45, 0),
        ("s4", "p4", "sae", 0.50, 1),
        ("a5", "p5", "aae", 0.90, 1),
        ("s5", "p5", "sae", 0.50, 1),
        ("a6", "p6", "aae", 0.70, 1),
    ]
    frame = pd.DataFrame(rows, columns=["id", "pair_id", "dialect", "score", "flagged"])
    return frame.set_index("id")


def stat(table: pd.DataFrame, name: str) -> pd.Series:
    return table.set_index("statistic").loc[name]


def run(frame: pd.DataFrame, **options) -> pd.DataFrame:
    return paired_comparison(
        frame, pair="pair_id", variant="dialect", score="score", flagged="flagged", **options
    )


def test_hand_worked_example() -> None:
    with pytest.warns(IncompletePairsWarning, match="p6"):
        table = run(hand_frame())

    assert tuple(table.columns) == PAIRED_COLUMNS
    assert list(table["statistic"]) == [
        "flip_rate",
        "mcnemar_exact",
        "mean_score_shift",
        "wilcoxon_signed_rank",
    ]
    assert (table["n_pairs"] == 5).all() and (table["n_incomplete"] == 1).all()
    assert table["incomplete_pair_ids"].iloc[0] == ("p6",)
    # b: flagged only in AAE (p1, p2, p3); c: only in SAE (p4).
    assert (table["treated_only"] == 3).all() and (table["control_only"] == 1).all()

    # Flip rate 4/5 with the Wilson interval written out: (p + z²/2n ± z√(p(1-p)/n + z²/4n²)) /
    # (1 + z²/n).
    flip = stat(table, "flip_rate")
    z, n, p = stats.norm.ppf(0.975), 5, 0.8
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert flip["estimate"] == pytest.approx(0.8)
    assert flip["ci_low"] == pytest.approx(centre - half, abs=1e-12)
    assert flip["ci_high"] == pytest.approx(centre + half, abs=1e-12)
    assert flip["count"] == 4

    # McNemar exact: 2 * P(Binomial(4, 1/2) <= 1) = 2 * 5/16 = 0.625.
    test = stat(table, "mcnemar_exact")
    assert test["p_value"] == pytest.approx(0.625, abs=1e-12)
    assert test["test_statistic"] == 1
    assert test["estimate"] == pytest.approx((3 - 1) / 5)

    # Differences 0.10, 0.20, 0.30, -0.05, 0.40: mean 0.19, sd sqrt(0.122 / 4).
    shift = stat(table, "mean_score_shift")
    se = math.sqrt(0.122 / 4) / math.sqrt(5)
    t = stats.t.ppf(0.975, 4)
    assert shift["estimate"] == pytest.approx(0.19, abs=1e-12)
    assert shift["ci_low"] == pytest.approx(0.19 - t * se, abs=1e-9)
    assert shift["ci_high"] == pytest.approx(0.19 + t * se, abs=1e-9)
    assert shift["ci_low"] == pytest.approx(-0.026847, abs=1e-6)

    # Signed ranks: -0.05 has rank 1, the rest 2..5, so W- = 1, W+ = 14; exactly 2 of the 32
    # sign patterns give W- <= 1, so the two-sided exact p-value is 4/32 = 0.125.
    wilcoxon = stat(table, "wilcoxon_signed_rank")
    assert wilcoxon["test_statistic"] == 1
    assert wilcoxon["p_value"] == pytest.approx(0.125, abs=1e-12)
    assert "exact" in wilcoxon["method"] and "'wilcox'" in wilcoxon["method"]
    assert table["undefined_reason"].isna().all()


def random_pairs(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    control = rng.uniform(0, 1, n)
    treated = np.clip(control + rng.normal(0.05, 0.15, n), 0, 1)
    treated[: n // 10] = control[: n // 10]  # some zero differences
    frame = pd.DataFrame(
        {
            "pair_id": np.repeat(np.arange(n), 2),
            "dialect": np.tile(["aae", "sae"], n),
            "score": np.column_stack([treated, control]).ravel(),
        }
    )
    frame["flagged"] = (frame["score"] >= 0.5).astype(int)
    return frame.sample(frac=1.0, random_state=seed)


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt"])
@pytest.mark.parametrize("n", [30, 400])
def test_matches_scipy_and_statsmodels(zero_method: str, n: int) -> None:
    frame = random_pairs(n, n)
    table = run(frame, zero_method=zero_method, alpha=0.1)

    wide = frame.pivot(index="pair_id", columns="dialect")
    treated, control = wide[("score", "aae")], wide[("score", "sae")]
    ft, fc = wide[("flagged", "aae")].astype(bool), wide[("flagged", "sae")].astype(bool)
    b, c = int((ft & ~fc).sum()), int((~ft & fc).sum())
    a, d = int((ft & fc).sum()), int((~ft & ~fc).sum())

    expected = mcnemar(np.array([[a, b], [c, d]]), exact=True)
    assert stat(table, "mcnemar_exact")["p_value"] == pytest.approx(expected.pvalue, rel=1e-12)
    low, high = proportion_confint(b + c, n, alpha=0.1, method="wilson")
    flip = stat(table, "flip_rate")
    assert (flip["ci_low"], flip["ci_high"]) == pytest.approx((low, high), abs=1e-12)

    ttest = stats.ttest_rel(treated, control)
    shift = stat(table, "mean_score_shift")
    assert shift["p_value"] == pytest.approx(ttest.pvalue, rel=1e-10)
    ci = ttest.confidence_interval(confidence_level=0.9)
    assert (shift["ci_low"], shift["ci_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)

    differences = (treated - control).to_numpy()
    if zero_method == "wilcox" and n <= 50:
        # At most 50 non-zero differences without ties: the exact null distribution.
        expected_w = stats.wilcoxon(differences[differences != 0], method="exact")
    else:
        expected_w = stats.wilcoxon(differences, zero_method=zero_method, method="asymptotic")
    wilcoxon = stat(table, "wilcoxon_signed_rank")
    assert wilcoxon["p_value"] == pytest.approx(expected_w.pvalue, rel=1e-10)
    assert wilcoxon["test_statistic"] == pytest.approx(expected_w.statistic)
    assert wilcoxon["count"] == n // 10
    assert wilcoxon["n_used"] == (n - n // 10 if zero_method == "wilcox" else n)


def test_duplicate_rows_name_the_pairs() -> None:
    frame = hand_frame()
    extra = pd.DataFrame(
        [{"pair_id": "p2", "dialect": "sae", "score": 0.1, "flagged": 0}], index=["dup"]
    )
    with pytest.raises(InputError, match="p2"):
        run(pd.concat([frame, extra]))


def test_no_discordant_pairs_is_undefined_not_significant() -> None:
    frame = hand_frame()
    frame["flagged"] = 1
    with pytest.warns(UndefinedMetricWarning, match="no_discordant_pairs"):
        with pytest.warns(IncompletePairsWarning):
            table = run(frame)
    test = stat(table, "mcnemar_exact")
    assert math.isnan(test["p_value"]) and test["undefined_reason"] == "no_discordant_pairs"
    assert stat(table, "flip_rate")["estimate"] == 0


def test_identical_scores() -> None:
    frame = hand_frame().drop(index="a6")
    frame["score"] = 0.3
    frame["flagged"] = 0
    with pytest.warns(UndefinedMetricWarning):
        table = run(frame)
    assert stat(table, "wilcoxon_signed_rank")["undefined_reason"] == "all_differences_zero"
    assert stat(table, "mean_score_shift")["undefined_reason"] == "zero_variance"
    assert stat(table, "mean_score_shift")["estimate"] == 0


def test_complete_input_warns_nothing_and_other_variants_are_counted() -> None:
    frame = hand_frame().drop(index="a6")
    extra = pd.DataFrame(
        [{"pair_id": "p1", "dialect": "other", "score": 0.9, "flagged": 1}], index=["o1"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = run(pd.concat([frame, extra]))
    assert table.attrs["n_other_variant_rows"] == 1
    assert (table["n_incomplete"] == 0).all()


def test_missing_column_and_score() -> None:
    with pytest.raises(InputError, match="missing column"):
        paired_comparison(
            hand_frame(), pair="pair", variant="dialect", score="score", flagged="flagged"
        )
    frame = hand_frame()
    frame.loc["a1", "score"] = np.nan
    with pytest.raises(InputError, match="a1"):
        run(frame)
