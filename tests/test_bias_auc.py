"""Tests of fairaudit.bias_auc against independent references and the shared trap case 02.

References: ``sklearn.metrics.roc_auc_score`` on each restricted set, fairlearn ``MetricFrame``,
``scipy.stats.mannwhitneyu``, a plain O(m n) implementation of DeLong et al. (1988) written
here from the paper's formulas, a published worked example (Hanley and McNeil, 1982), Monte
Carlo simulation, a naive threshold loop with ``sklearn.metrics.confusion_matrix`` and
hand-computed calibration tables.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import confusion_matrix, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from fairaudit.bias_auc import (
    AUC_COMPARISON_COLUMNS,
    BIAS_AUC_COLUMNS,
    CALIBRATION_BIN_COLUMNS,
    CALIBRATION_SUMMARY_COLUMNS,
    SWEEP_COLUMNS,
    bias_aucs,
    calibration_by_group,
    compare_bias_aucs,
    delong_auc_variance,
    delong_test_paired,
    delong_test_unpaired,
    threshold_sweep,
)
from fairaudit.exceptions import InputError, SmallGroupWarning, UndefinedMetricWarning
from tests.cases import case_dir

# Any fairaudit warning a test does not expect with pytest.warns is a failure.
pytestmark = pytest.mark.filterwarnings("error::fairaudit.exceptions.FairauditWarning")

COLUMNS = {"group": "dialect_group", "gold": "gold_toxic", "score": "score"}


def read_case_02() -> pd.DataFrame:
    return pd.read_csv(case_dir("02") / "input.csv", index_col="id")


def quiet_bias_aucs(frame: pd.DataFrame, **options: object) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallGroupWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return bias_aucs(frame, **options)  # type: ignore[arg-type]


def value(table: pd.DataFrame, group: str, metric: str, column: str = "estimate") -> object:
    row = table[(table["group"] == group) & (table["metric"] == metric)]
    assert len(row) == 1
    return row.iloc[0][column]


def synthetic(n: int, *, seed: int, groups: int = 3, rounding: int | None = 2) -> pd.DataFrame:
    """Scores with ties (rounded), three groups with different base rates and shifts."""
    rng = np.random.default_rng(seed)
    names = np.array(["aae", "sae", "other"][:groups])
    shares = np.array([0.3, 0.5, 0.2][:groups])
    group = rng.choice(names, size=n, p=shares / shares.sum())
    gold = rng.random(n) < np.where(group == "aae", 0.2, 0.35)
    shift = np.where(group == "aae", 0.4, 0.0)
    score = 1 / (1 + np.exp(-(1.5 * gold - 0.8 + shift + rng.normal(size=n))))
    if rounding is not None:
        score = np.round(score, rounding)
    return pd.DataFrame({"dialect_group": group, "gold_toxic": gold.astype(int), "score": score})


# --------------------------------------------------------------------------------------------
# An independent DeLong, written from the 1988 paper with explicit pair loops
# --------------------------------------------------------------------------------------------


def psi(x: float, y: float) -> float:
    return 1.0 if x > y else 0.5 if x == y else 0.0


def naive_components(gold: np.ndarray, score: np.ndarray) -> tuple[list[float], list[float]]:
    """V10 of every positive and V01 of every negative, by loops over all pairs."""
    positives = [s for s, g in zip(score, gold, strict=True) if g]
    negatives = [s for s, g in zip(score, gold, strict=True) if not g]
    v10 = [sum(psi(x, y) for y in negatives) / len(negatives) for x in positives]
    v01 = [sum(psi(x, y) for x in positives) / len(positives) for y in negatives]
    return v10, v01


def naive_covariance(a: list[float], b: list[float]) -> float:
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    return sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True)) / (len(a) - 1)


def naive_delong(gold: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    v10, v01 = naive_components(gold, score)
    auc = sum(v10) / len(v10)
    variance = naive_covariance(v10, v10) / len(v10) + naive_covariance(v01, v01) / len(v01)
    return auc, variance


def naive_paired(gold: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """z and two-sided p of DeLong's paired test, from the 2x2 matrix S = S10/m + S01/n."""
    v10_a, v01_a = naive_components(gold, a)
    v10_b, v01_b = naive_components(gold, b)
    m, n = len(v10_a), len(v01_a)
    s = {
        (i, j): naive_covariance(p, q) / m + naive_covariance(r, t) / n
        for i, (p, r) in enumerate([(v10_a, v01_a), (v10_b, v01_b)])
        for j, (q, t) in enumerate([(v10_a, v01_a), (v10_b, v01_b)])
    }
    difference = sum(v10_a) / m - sum(v10_b) / m
    z = difference / math.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    return z, 2 * (1 - stats.norm.cdf(abs(z)))


# --------------------------------------------------------------------------------------------
# Case 02
# --------------------------------------------------------------------------------------------


def test_case_02_bias_aucs_values_and_reasons() -> None:
    frame = read_case_02()
    with pytest.warns(UndefinedMetricWarning) as undefined, pytest.warns(SmallGroupWarning):
        table = bias_aucs(frame, **COLUMNS)

    assert list(table.columns) == list(BIAS_AUC_COLUMNS)
    assert value(table, "sae", "subgroup_auc") == pytest.approx(0.9375)
    assert value(table, "aae", "bpsn_auc") == pytest.approx(0.875)
    assert value(table, "sae", "bnsp_auc") == pytest.approx(0.875)
    assert value(table, "overall", "roc_auc") == pytest.approx(0.9)
    for group, metric in [("aae", "subgroup_auc"), ("sae", "bpsn_auc"), ("aae", "bnsp_auc")]:
        assert math.isnan(value(table, group, metric))
        assert value(table, group, metric, "undefined_reason") == "single_class"
        assert math.isnan(value(table, group, metric, "ci_low"))
    assert "aae/subgroup_auc (single_class)" in str(undefined[0].message)

    # Counts of the case table: n / negatives / positives.
    assert value(table, "aae", "subgroup_auc", "n") == 6
    assert value(table, "aae", "subgroup_auc", "negatives") == 6
    assert value(table, "sae", "subgroup_auc", "positives") == 4
    assert value(table, "aae", "bpsn_auc", "n") == 10
    assert value(table, "overall", "roc_auc", "negatives") == 10
    # No made-up number anywhere: every estimate is NaN or strictly inside (0, 1) here.
    aucs = table[table["metric"].str.endswith("auc")]
    assert not aucs["estimate"].isin([0.0, 0.5, 1.0]).any()
    assert set(table["interval_method"]) == {"delong"}
    assert table.loc[table["estimate"].notna(), "undefined_reason"].isna().all()


def test_case_02_aeg_and_reasons() -> None:
    table = quiet_bias_aucs(read_case_02(), **COLUMNS)
    aae_negatives = [0.41, 0.66, 0.12, 0.73, 0.35, 0.58]
    sae_negatives = [0.05, 0.31, 0.52, 0.09]
    u = stats.mannwhitneyu(aae_negatives, sae_negatives, alternative="two-sided").statistic
    assert value(table, "aae", "negative_aeg") == pytest.approx(0.5 - u / 24)
    assert value(table, "sae", "negative_aeg") == pytest.approx(-(0.5 - u / 24))
    assert value(table, "aae", "positive_aeg", "undefined_reason") == "no_group_positives"
    assert value(table, "sae", "positive_aeg", "undefined_reason") == "no_background_positives"


def test_case_02_threshold_sweep_matches_case_table() -> None:
    sweep = threshold_sweep(read_case_02(), **COLUMNS, thresholds=[0.5])
    assert list(sweep.columns) == list(SWEEP_COLUMNS)

    def at(group: str, metric: str, column: str = "estimate") -> object:
        return value(sweep, group, metric, column)

    assert at("aae", "false_positive_rate") == pytest.approx(0.5)
    assert at("sae", "false_positive_rate") == pytest.approx(0.25)
    assert at("overall", "false_positive_rate") == pytest.approx(0.4)
    assert math.isnan(at("aae", "false_negative_rate"))
    assert at("aae", "false_negative_rate", "undefined_reason") == "no_positives"
    assert at("sae", "false_negative_rate") == pytest.approx(0.25)
    assert at("overall", "false_negative_rate") == pytest.approx(0.25)
    for group in ("aae", "sae", "overall"):
        assert at(group, "flag_rate") == pytest.approx(0.5)


def test_case_02_comparison_keeps_undefined_as_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare_bias_aucs(read_case_02(), **COLUMNS, reference="sae")
    assert list(table.columns) == list(AUC_COMPARISON_COLUMNS)
    subgroup = table[table["metric"] == "subgroup_auc"].iloc[0]
    assert subgroup["undefined_reason"] == "single_class"
    assert math.isnan(subgroup["p_value"])
    bpsn = table[table["metric"] == "bpsn_auc"].iloc[0]
    assert bpsn["estimate"] == pytest.approx(0.875)
    assert bpsn["undefined_reason"] == "reference_single_class"
    assert set(table["correction"]) == {"none"}


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_delong_variance_matches_pair_loops_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    gold = rng.random(n) < 0.4
    gold[:2], gold[2:4] = True, False
    score = rng.integers(0, 6, size=n) + gold * rng.integers(0, 3, size=n)  # many ties

    result = delong_auc_variance(gold, score)
    auc, variance = naive_delong(gold, score.astype(float))
    assert result.estimate == pytest.approx(auc, abs=1e-12)
    assert result.estimate == pytest.approx(roc_auc_score(gold, score), abs=1e-12)
    assert result.variance == pytest.approx(variance, rel=1e-10)
    assert result.standard_error == pytest.approx(math.sqrt(variance), rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_delong_paired_matches_pair_loops_with_ties(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(30, 120))
    gold = rng.random(n) < 0.5
    gold[:2], gold[2:4] = True, False
    a = np.round(gold * 0.8 + rng.normal(size=n), 1)
    b = np.round(a * 0.5 + rng.normal(size=n), 1)  # correlated with a

    result = delong_test_paired(gold, a, b)
    z, p = naive_paired(gold, a, b)
    assert result.method == "delong_paired"
    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-7, abs=1e-12)
    assert result.difference == pytest.approx(roc_auc_score(gold, a) - roc_auc_score(gold, b))
    half = stats.norm.ppf(0.975) * result.standard_error
    assert result.ci_low == pytest.approx(result.difference - half)
    assert 0 < result.correlation < 1


@pytest.mark.parametrize("seed", range(3))
def test_delong_unpaired_is_sum_of_pair_loop_variances(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    gold_a, gold_b = rng.random(40) < 0.5, rng.random(70) < 0.3
    gold_a[:2], gold_a[2:4], gold_b[:2], gold_b[2:4] = True, False, True, False
    score_a = np.round(gold_a + rng.normal(size=40), 1)
    score_b = np.round(0.3 * gold_b + rng.normal(size=70), 1)

    result = delong_test_unpaired(gold_a, score_a, gold_b, score_b, alpha=0.1)
    auc_a, var_a = naive_delong(gold_a, score_a)
    auc_b, var_b = naive_delong(gold_b, score_b)
    z = (auc_a - auc_b) / math.sqrt(var_a + var_b)
    assert result.method == "delong_unpaired"
    assert result.statistic == pytest.approx(z, rel=1e-9)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert result.ci_high - result.ci_low == pytest.approx(
        2 * stats.norm.ppf(0.95) * math.sqrt(var_a + var_b)
    )
    assert result.correlation == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=4)), min_size=4, max_size=40
    )
)
def test_delong_variance_property(pairs: list[tuple[bool, int]]) -> None:
    gold = np.array([g for g, _ in pairs])
    score = np.array([s for _, s in pairs], dtype=float)
    result = delong_auc_variance(gold, score)
    if gold.sum() < 2 or (~gold).sum() < 2:
        assert result.variance_undefined_reason is not None
        return
    auc, variance = naive_delong(gold, score)
    assert result.estimate == pytest.approx(auc, abs=1e-12)
    if variance > 1e-15:
        assert result.variance == pytest.approx(variance, rel=1e-9, abs=1e-15)
    else:
        assert result.variance_undefined_reason == "zero_variance"


def test_published_example_hanley_mcneil_1982() -> None:
    # Table 1 of Hanley and McNeil (1982): CT ratings 1-5 of 58 normal and 51 abnormal cases.
    # Published: AUC 0.893 and SE 0.032 (their exponential approximation, not DeLong's), so the
    # AUC is checked to the published 3 decimals and DeLong's SE only for agreement to 0.003.
    score = np.concatenate(
        [
            np.repeat(np.arange(1, 6), [33, 6, 6, 11, 2]),
            np.repeat(np.arange(1, 6), [3, 2, 2, 11, 33]),
        ]
    )
    gold = np.r_[np.zeros(58), np.ones(51)]
    result = delong_auc_variance(gold, score)
    assert round(result.estimate, 3) == 0.893
    assert result.standard_error == pytest.approx(0.032, abs=0.003)
    assert result.standard_error == pytest.approx(math.sqrt(naive_delong(gold, score)[1]))


def test_delong_standard_error_matches_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    m, n, repeats = 40, 60, 800
    aucs, errors, differences, difference_errors = [], [], [], []
    gold = np.r_[np.ones(m, dtype=bool), np.zeros(n, dtype=bool)]
    for _ in range(repeats):
        latent = rng.normal(size=m + n) + gold * 1.0
        a = np.round(latent, 1)
        b = np.round(latent + rng.normal(size=m + n), 1)
        single = delong_auc_variance(gold, a)
        paired = delong_test_paired(gold, a, b)
        aucs.append(single.estimate)
        errors.append(single.standard_error)
        differences.append(paired.difference)
        difference_errors.append(paired.standard_error)
    assert np.std(aucs, ddof=1) == pytest.approx(np.sqrt(np.mean(np.square(errors))), rel=0.1)
    assert np.std(differences, ddof=1) == pytest.approx(
        np.sqrt(np.mean(np.square(difference_errors))), rel=0.1
    )


def test_overlapping_bpsn_difference_matches_monte_carlo() -> None:
    """Two BPSN AUCs share the third group's positives; the stratified variance must hold."""
    differences, errors, methods = [], [], set()
    for repeat in range(300):
        frame = synthetic(600, seed=10_000 + repeat, rounding=2)
        table = compare_bias_aucs(
            frame, **COLUMNS, reference="sae", metrics=("bpsn_auc",), min_negatives=0
        )
        row = table[table["group"] == "aae"].iloc[0]
        differences.append(row["difference"])
        errors.append(row["standard_error"])
        methods.add(row["method"])
    assert methods == {"delong_overlapping"}
    assert np.std(differences, ddof=1) == pytest.approx(
        np.sqrt(np.mean(np.square(errors))), rel=0.15
    )


def test_delong_undefined_cases() -> None:
    single = delong_auc_variance([0, 0, 0], [0.1, 0.2, 0.3])
    assert single.undefined_reason == "single_class" and math.isnan(single.estimate)
    one_positive = delong_auc_variance([1, 0, 0], [0.9, 0.2, 0.3])
    assert one_positive.estimate == 1.0
    assert one_positive.variance_undefined_reason == "too_few_for_variance"
    assert one_positive.confidence_interval() == (pytest.approx(math.nan, nan_ok=True),) * 2
    separated = delong_auc_variance([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.3])
    assert separated.variance_undefined_reason == "zero_variance"
    test = delong_test_unpaired([0, 0], [0.1, 0.2], [1, 0, 1, 0], [0.9, 0.1, 0.7, 0.3])
    assert test.undefined_reason == "auc_a_single_class"
    with pytest.raises(ValueError, match="missing"):
        delong_auc_variance([1, 0], [0.5, float("nan")])
    with pytest.raises(ValueError, match="score_b"):
        delong_test_paired([1, 0], [0.5, 0.2], [0.5])


# --------------------------------------------------------------------------------------------
# Bias AUCs against scikit-learn and fairlearn on restricted sets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_bias_aucs_match_sklearn_on_restricted_sets(seed: int) -> None:
    frame = synthetic(3000, seed=seed)
    table = bias_aucs(frame, **COLUMNS)
    gold = frame["gold_toxic"].to_numpy(dtype=bool)
    score = frame["score"].to_numpy()
    for name in ("aae", "other", "sae"):
        member = frame["dialect_group"].to_numpy() == name
        sets = {
            "subgroup_auc": member,
            "bpsn_auc": (member & ~gold) | (~member & gold),
            "bnsp_auc": (member & gold) | (~member & ~gold),
        }
        for metric, rows in sets.items():
            expected = roc_auc_score(gold[rows], score[rows])
            assert value(table, name, metric) == pytest.approx(expected, abs=1e-12)
            assert value(table, name, metric, "n") == rows.sum()
            assert value(table, name, metric, "positives") == (gold & rows).sum()
            reference = delong_auc_variance(gold[rows], score[rows])
            low, high = reference.confidence_interval()
            assert value(table, name, metric, "ci_low") == pytest.approx(low)
            assert value(table, name, metric, "ci_high") == pytest.approx(high)
        for metric, in_class in (("positive_aeg", gold), ("negative_aeg", ~gold)):
            inside, outside = score[member & in_class], score[~member & in_class]
            u = stats.mannwhitneyu(inside, outside, alternative="two-sided").statistic
            expected = 0.5 - u / (inside.size * outside.size)
            assert value(table, name, metric) == pytest.approx(expected, abs=1e-12)
    assert value(table, "overall", "roc_auc") == pytest.approx(roc_auc_score(gold, score))

    per_group = MetricFrame(
        metrics=roc_auc_score,
        y_true=gold,
        y_pred=score,
        sensitive_features=frame["dialect_group"],
    ).by_group
    for name, expected in per_group.items():
        assert value(table, str(name), "subgroup_auc") == pytest.approx(expected, abs=1e-12)


def test_bias_aucs_overlapping_markers_match_sklearn() -> None:
    frame = synthetic(2000, seed=5)
    rng = np.random.default_rng(5)
    frame["habitual_be"] = rng.random(len(frame)) < 0.2
    frame["copula_absence"] = frame["habitual_be"] | (rng.random(len(frame)) < 0.1)
    table = bias_aucs(
        frame,
        group=["habitual_be", "copula_absence"],
        gold="gold_toxic",
        score="score",
        subgroups="overlapping",
    )
    gold = frame["gold_toxic"].to_numpy(dtype=bool)
    score = frame["score"].to_numpy()
    assert list(table["group"].unique()) == ["habitual_be", "copula_absence", "overall"]
    for marker in ("habitual_be", "copula_absence"):
        member = frame[marker].to_numpy()
        bpsn = (member & ~gold) | (~member & gold)
        assert value(table, marker, "subgroup_auc") == pytest.approx(
            roc_auc_score(gold[member], score[member])
        )
        assert value(table, marker, "bpsn_auc") == pytest.approx(
            roc_auc_score(gold[bpsn], score[bpsn])
        )


def test_small_groups_warn_and_are_marked() -> None:
    frame = synthetic(400, seed=3)
    with pytest.warns(SmallGroupWarning, match="'other'"):
        table = bias_aucs(frame, **COLUMNS, min_negatives=70)
    assert table.loc[table["group"] == "other", "small_group"].all()
    assert not table.loc[table["group"] == "sae", "small_group"].any()


def test_bias_aucs_input_errors() -> None:
    frame = read_case_02()
    with pytest.raises(InputError, match="missing column"):
        bias_aucs(frame, group="dialect", gold="gold_toxic", score="score")
    broken = frame.copy()
    broken.loc["s03", "dialect_group"] = np.nan
    with pytest.raises(InputError, match="s03"):
        bias_aucs(broken, **COLUMNS)
    broken = frame.copy()
    broken.loc["s04", "score"] = np.nan
    with pytest.raises(InputError, match="s04"):
        bias_aucs(broken, **COLUMNS)
    broken = frame.copy()
    broken["dialect_group"] = "overall"
    with pytest.raises(InputError, match="reserved"):
        bias_aucs(broken, **COLUMNS)
    with pytest.raises(ValueError, match="alpha"):
        bias_aucs(frame, **COLUMNS, alpha=1.5)


# --------------------------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------------------------


def test_compare_subgroup_auc_is_unpaired_delong_of_the_two_groups() -> None:
    frame = synthetic(3000, seed=21)
    table = compare_bias_aucs(frame, **COLUMNS, reference="sae", alpha=0.1)
    row = table[(table["group"] == "aae") & (table["metric"] == "subgroup_auc")].iloc[0]
    aae = frame[frame["dialect_group"] == "aae"]
    sae = frame[frame["dialect_group"] == "sae"]
    expected = delong_test_unpaired(
        aae["gold_toxic"], aae["score"], sae["gold_toxic"], sae["score"], alpha=0.1
    )
    assert row["method"] == "delong_unpaired"
    assert row["p_value"] == pytest.approx(expected.p_value)
    assert row["ci_low"] == pytest.approx(expected.ci_low)
    assert row["difference"] == pytest.approx(
        roc_auc_score(aae["gold_toxic"], aae["score"])
        - roc_auc_score(sae["gold_toxic"], sae["score"])
    )
    assert set(table["group"]) == {"aae", "other"}


def test_compare_bpsn_with_two_groups_is_unpaired() -> None:
    frame = synthetic(2000, seed=22, groups=2)
    table = compare_bias_aucs(frame, **COLUMNS, reference="sae")
    row = table[table["metric"] == "bpsn_auc"].iloc[0]
    gold = frame["gold_toxic"].to_numpy(dtype=bool)
    is_aae = frame["dialect_group"].to_numpy() == "aae"
    first = (is_aae & ~gold) | (~is_aae & gold)
    expected = delong_test_unpaired(
        gold[first], frame["score"][first], gold[~first], frame["score"][~first]
    )
    assert row["method"] == "delong_unpaired"
    assert row["statistic"] == pytest.approx(expected.statistic)


def test_compare_unknown_reference() -> None:
    with pytest.raises(InputError, match="reference group 'white'"):
        compare_bias_aucs(read_case_02(), **COLUMNS, reference="white")


# --------------------------------------------------------------------------------------------
# Threshold sweep and calibration
# --------------------------------------------------------------------------------------------


def test_threshold_sweep_matches_naive_confusion_matrix_loop() -> None:
    frame = synthetic(1500, seed=31)  # scores rounded to 0.01, so many equal the thresholds
    thresholds = np.round(np.arange(0.05, 0.951, 0.05), 2)
    sweep = threshold_sweep(frame, **COLUMNS)
    indexed = sweep.set_index(["group", "threshold", "metric"])
    for name in ("aae", "other", "sae", "overall"):
        rows = frame if name == "overall" else frame[frame["dialect_group"] == name]
        for threshold in thresholds:
            flagged = (rows["score"] >= threshold).astype(int)
            tn, fp, fn, tp = confusion_matrix(rows["gold_toxic"], flagged, labels=[0, 1]).ravel()
            expected = {
                "flag_rate": ((tp + fp), len(rows)),
                "false_positive_rate": (fp, fp + tn),
                "false_negative_rate": (fn, fn + tp),
                "precision": (tp, tp + fp),
            }
            for metric, (count, n) in expected.items():
                row = indexed.loc[(name, threshold, metric)]
                assert (row["count"], row["n"]) == (count, n)
                if n:
                    assert row["estimate"] == pytest.approx(count / n)
                    low, high = proportion_confint(count, n, method="wilson")
                    assert (row["ci_low"], row["ci_high"]) == (
                        pytest.approx(low),
                        pytest.approx(high),
                    )
                else:
                    assert math.isnan(row["estimate"]) and row["undefined_reason"] is not None


def test_calibration_matches_hand_computation() -> None:
    frame = pd.DataFrame(
        {
            "dialect_group": ["aae"] * 5 + ["sae"] * 3,
            "gold_toxic": [0, 1, 1, 0, 1, 0, 0, 1],
            "score": [0.1, 0.3, 0.45, 0.6, 1.0, 0.2, 0.5, 0.55],
        }
    )
    result = calibration_by_group(frame, **COLUMNS, bins=2)
    assert list(result.bins.columns) == list(CALIBRATION_BIN_COLUMNS)
    assert list(result.summary.columns) == list(CALIBRATION_SUMMARY_COLUMNS)
    bins = result.bins.set_index(["group", "bin"])
    # aae: bin 0 = [0, 0.5) holds 0.1, 0.3, 0.45 (2 positives); bin 1 = [0.5, 1] holds 0.6, 1.0.
    assert bins.loc[("aae", 0), "n"] == 3
    assert bins.loc[("aae", 0), "mean_score"] == pytest.approx((0.1 + 0.3 + 0.45) / 3)
    assert bins.loc[("aae", 0), "observed_rate"] == pytest.approx(2 / 3)
    assert bins.loc[("aae", 1), "observed_rate"] == pytest.approx(1 / 2)
    # sae: 0.5 sits on the edge and goes to the upper bin.
    assert bins.loc[("sae", 1), "n"] == 2
    low, high = proportion_confint(2, 3, method="wilson")
    assert bins.loc[("aae", 0), "ci_low"] == pytest.approx(low)
    summary = result.summary.set_index("group")
    brier = (0.1**2 + 0.7**2 + 0.55**2 + 0.6**2 + 0.0**2) / 5
    assert summary.loc["aae", "brier_score"] == pytest.approx(brier)
    ece = 3 / 5 * abs(2 / 3 - 0.85 / 3) + 2 / 5 * abs(1 / 2 - 0.8)
    assert summary.loc["aae", "expected_calibration_error"] == pytest.approx(ece)
    sae_ece = 1 / 3 * abs(0 - 0.2) + 2 / 3 * abs(1 / 2 - 0.525)
    assert summary.loc["sae", "expected_calibration_error"] == pytest.approx(sae_ece)
    assert summary.loc["overall", "n"] == 8


def test_calibration_empty_bins_and_bad_scores() -> None:
    result = calibration_by_group(read_case_02(), **COLUMNS, bins=10)
    empty = result.bins[result.bins["n"] == 0]
    assert (empty["undefined_reason"] == "empty_bin").all()
    assert empty["observed_rate"].isna().all()
    frame = read_case_02()
    frame.loc["s01", "score"] = 1.2
    with pytest.raises(InputError, match="outside"):
        calibration_by_group(frame, **COLUMNS)
    with pytest.raises(ValueError, match="bins"):
        calibration_by_group(read_case_02(), **COLUMNS, bins=0)
