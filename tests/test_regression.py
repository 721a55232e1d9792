"""Tests of fairaudit.regression against statsmodels, scipy and hand-worked values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import optimize, stats
from scipy.special import expit
from statsmodels.stats.contingency_tables import StratifiedTable

from fairaudit.disparity import compare_groups
from fairaudit.exceptions import DegenerateDataWarning, InputError
from fairaudit.regression import (
    CMH_COLUMNS,
    REGRESSION_COLUMNS,
    cmh_test,
    detect_separation,
    firth_logit,
    flag_regression,
)
from tests.cases import case_dir

pytestmark = pytest.mark.filterwarnings("error::fairaudit.exceptions.FairauditWarning")

OPTIONS = {"group": "dialect_group", "gold": "gold_toxic", "flagged": "flagged"}


def read_case(prefix: str) -> pd.DataFrame:
    return pd.read_csv(case_dir(prefix) / "input.csv", index_col="id")


@pytest.fixture
def confounded() -> pd.DataFrame:
    """AAE messages carry more profanity, and profanity (not dialect) drives flagging."""
    rng = np.random.default_rng(7)
    n = 3000
    group = rng.choice(["aae", "sae", "mixed"], size=n, p=[0.4, 0.4, 0.2])
    gold = rng.random(n) < 0.3
    profanity = rng.poisson(np.where(group == "aae", 1.5, 0.4))
    identity = rng.poisson(0.3, size=n)
    author = rng.integers(0, 300, size=n)
    eta = -2.0 + 2.0 * gold + 0.9 * profanity + 0.3 * identity + 0.15 * (group == "aae")
    flagged = rng.random(n) < expit(eta)
    return pd.DataFrame(
        {
            "dialect_group": group,
            "gold_toxic": gold.astype(int),
            "flagged": flagged.astype(int),
            "profanity": profanity,
            "identity": identity,
            "author": author,
        },
        index=[f"m{i}" for i in range(n)],
    )


# ------------------------------------------------------------------------------------------
# Cochran-Mantel-Haenszel
# ------------------------------------------------------------------------------------------


def strata_of(frame: pd.DataFrame, group: str, reference: str) -> list[np.ndarray]:
    tables = []
    for gold in (0, 1):
        part = frame[frame["gold_toxic"] == gold]
        g, r = part[part["dialect_group"] == group], part[part["dialect_group"] == reference]
        tables.append(
            np.array(
                [
                    [g["flagged"].sum(), (1 - g["flagged"]).sum()],
                    [r["flagged"].sum(), (1 - r["flagged"]).sum()],
                ],
                dtype=float,
            )
        )
    return tables


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_cmh_matches_hand_formulas_and_statsmodels(confounded: pd.DataFrame, alpha: float) -> None:
    table = cmh_test(confounded, **OPTIONS, reference="sae", alpha=alpha)
    assert tuple(table.columns) == CMH_COLUMNS
    assert table["group"].tolist() == ["aae", "mixed"]
    for row in table.itertuples():
        tables = strata_of(confounded, row.group, "sae")
        # Mantel-Haenszel odds ratio and CMH chi-square, by hand.
        numerator = sum(t[0, 0] * t[1, 1] / t.sum() for t in tables)
        denominator = sum(t[0, 1] * t[1, 0] / t.sum() for t in tables)
        assert row.pooled_odds_ratio == pytest.approx(numerator / denominator)
        expected = sum(t[0].sum() * t[:, 0].sum() / t.sum() for t in tables)
        variance = sum(
            t[0].sum()
            * t[1].sum()
            * t[:, 0].sum()
            * t[:, 1].sum()
            / (t.sum() ** 2 * (t.sum() - 1))
            for t in tables
        )
        observed = sum(t[0, 0] for t in tables)
        statistic = (observed - expected) ** 2 / variance
        assert row.statistic == pytest.approx(statistic)
        assert row.p_value == pytest.approx(stats.chi2.sf(statistic, 1))
        reference = StratifiedTable(tables)
        assert (row.ci_low, row.ci_high) == pytest.approx(
            reference.oddsratio_pooled_confint(alpha=alpha)
        )
        breslow_day = reference.test_equal_odds()
        assert row.breslow_day_statistic == pytest.approx(breslow_day.statistic)
        assert row.breslow_day_p_value == pytest.approx(breslow_day.pvalue)
        assert row.n_strata == 2
    _, holm, _, _ = sm.stats.multipletests(table["p_value"], method="holm")
    np.testing.assert_allclose(table["p_adjusted"], holm)
    assert (table["alpha"] == alpha).all()


def test_cmh_single_stratum_equals_pearson_times_n_minus_one_over_n() -> None:
    # Case 12: one stratum (all gold 0), table [[7, 7], [1, 13]]; CMH = chi2 * (N - 1) / N.
    frame = read_case("12")
    row = cmh_test(frame, **OPTIONS, reference="sae").iloc[0]
    chi2 = stats.chi2_contingency([[7, 7], [1, 13]], correction=False).statistic
    assert row["statistic"] == pytest.approx(chi2 * 27 / 28)
    assert row["pooled_odds_ratio"] == pytest.approx(13.0)
    assert row["n_strata"] == 1
    assert math.isnan(row["breslow_day_statistic"]) and pd.isna(row["homogeneity_rejected"])


def test_cmh_infinite_odds_ratio_is_nan_with_reason() -> None:
    row = cmh_test(read_case("18"), **OPTIONS, reference="sae").iloc[0]
    assert math.isnan(row["pooled_odds_ratio"])
    assert row["undefined_reason"] == "infinite_pooled_odds_ratio"
    assert row["p_value"] < 0.001


# ------------------------------------------------------------------------------------------
# Logistic regression without separation
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_regression_matches_statsmodels_with_clusters(
    confounded: pd.DataFrame, alpha: float
) -> None:
    table = flag_regression(
        confounded,
        **OPTIONS,
        reference="sae",
        controls=["profanity", "identity"],
        cluster="author",
        alpha=alpha,
    )
    assert tuple(table.columns) == REGRESSION_COLUMNS
    assert table["model"].unique().tolist() == ["without_controls", "with_controls"]
    assert table["separation"].isna().all()
    assert (table["method"] == "ml_wald").all() and (table["covariance"] == "cluster").all()
    groups = pd.factorize(confounded["author"])[0]
    formulas = {
        "without_controls": "flagged ~ C(dialect_group, Treatment('sae')) + gold_toxic",
        "with_controls": "flagged ~ C(dialect_group, Treatment('sae')) + gold_toxic"
        " + profanity + identity",
    }
    for model, formula in formulas.items():
        fit = smf.glm(formula, confounded, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": groups}
        )
        rows = table[table["model"] == model].set_index("term")
        intervals = fit.conf_int(alpha=alpha)
        for level in ("aae", "mixed"):
            name = f"C(dialect_group, Treatment('sae'))[T.{level}]"
            row = rows.loc[f"dialect_group[{level}]"]
            assert row["log_odds_ratio"] == pytest.approx(fit.params[name], rel=1e-8)
            assert row["std_error"] == pytest.approx(fit.bse[name], rel=1e-8)
            assert row["p_value"] == pytest.approx(fit.pvalues[name], rel=1e-8)
            assert (row["ci_low"], row["ci_high"]) == pytest.approx(
                tuple(intervals.loc[name]), rel=1e-8
            )
            assert row["odds_ratio"] == pytest.approx(math.exp(fit.params[name]))
        # Likelihood-ratio test of each group term: refit without that indicator.
        reduced = confounded.assign(aae=(confounded["dialect_group"] == "aae").astype(int))
        rest = formula.replace("C(dialect_group, Treatment('sae'))", "aae")
        lr = 2 * (
            fit.llf
            - smf.glm(rest, reduced[reduced.columns], family=sm.families.Binomial()).fit().llf
        )
        assert rows.loc["dialect_group[mixed]", "lr_statistic"] == pytest.approx(lr, rel=1e-6)


def test_controls_explain_the_dialect_effect(confounded: pd.DataFrame) -> None:
    table = flag_regression(
        confounded, **OPTIONS, reference="sae", controls=["profanity", "identity"]
    )
    aae = table[table["term"] == "dialect_group[aae]"].set_index("model")
    unadjusted = aae.loc["without_controls", "log_odds_ratio"]
    adjusted = aae.loc["with_controls", "log_odds_ratio"]
    assert unadjusted > 0.8 and adjusted < 0.5
    assert aae.loc["with_controls", "attenuation"] == pytest.approx(1 - adjusted / unadjusted)
    assert math.isnan(aae.loc["without_controls", "attenuation"])
    assert aae.loc["with_controls", "controls"] == "profanity, identity"
    assert (table["covariance"] == "nonrobust").all()


def test_missing_control_is_an_input_error(confounded: pd.DataFrame) -> None:
    frame = confounded.astype({"profanity": float})
    frame.loc["m5", "profanity"] = np.nan
    with pytest.raises(InputError, match="column 'profanity'.*m5|m5.*profanity"):
        flag_regression(frame, **OPTIONS, reference="sae", controls=["profanity"])
    with pytest.raises(InputError, match="missing column"):
        flag_regression(confounded, **OPTIONS, reference="sae", controls=["swearing"])


# ------------------------------------------------------------------------------------------
# Separation (case 18)
# ------------------------------------------------------------------------------------------


def penalised_loglik(beta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    eta = x @ beta
    p = expit(eta)
    information = x.T @ (x * (p * (1 - p))[:, None])
    return float(np.sum(y * eta - np.logaddexp(0, eta)) + 0.5 * np.linalg.slogdet(information)[1])


def test_case_18_separation_is_named_and_firth_replaces_wald() -> None:
    frame = read_case("18")
    message = "quasi-complete separation: dialect_group=aae, all 8 flagged"
    with pytest.warns(DegenerateDataWarning, match=message):
        table = flag_regression(frame, **OPTIONS, reference="sae")
    row = table.iloc[0]
    assert row["term"] == "dialect_group[aae]"
    assert row["separation"] == message
    assert row["method"] == "firth_penalised_lr"
    assert row["interval_method"] == "profile_penalised_likelihood"
    assert row["log_odds_ratio"] == pytest.approx(4.679040, abs=1e-6)
    assert row["odds_ratio"] == pytest.approx(107.666667, abs=1e-5)
    assert row["lr_statistic"] == pytest.approx(18.451639, abs=1e-5)
    assert row["lr_p_value"] == pytest.approx(0.000017, abs=1e-6)
    assert row["note"] == "gold_toxic is constant and left out"

    # The Wald p of the separated ML fit (about 0.9988) is never reported.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = sm.add_constant((frame["dialect_group"] == "aae").astype(float))
        wald = sm.GLM(frame["flagged"], x, family=sm.families.Binomial()).fit()
    assert wald.pvalues.iloc[1] > 0.99
    assert row["p_value"] < 0.001 and bool(row["significant"])

    # Fisher's exact test from compare_groups, as in the case.
    fisher = compare_groups(frame, **OPTIONS, reference="sae", metrics=["flag_rate"])
    assert fisher["p_value"].item() == pytest.approx(0.000411, abs=1e-6)
    assert fisher["p_value"].item() == pytest.approx(stats.fisher_exact([[8, 0], [1, 9]]).pvalue)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_case_18_firth_inference_matches_direct_optimisation(alpha: float) -> None:
    frame = read_case("18")
    with pytest.warns(DegenerateDataWarning):
        row = flag_regression(frame, **OPTIONS, reference="sae", alpha=alpha).iloc[0]
    x = np.column_stack([np.ones(len(frame)), (frame["dialect_group"] == "aae").to_numpy(float)])
    y = frame["flagged"].to_numpy(float)

    best = optimize.minimize(lambda b: -penalised_loglik(b, x, y), np.zeros(2), method="BFGS")
    assert best.x == pytest.approx([-1.845827, 4.679040], abs=1e-4)

    def profile(b1: float) -> float:
        fit = optimize.minimize_scalar(lambda b0: -penalised_loglik(np.array([b0, b1]), x, y))
        return -fit.fun

    maximum = -best.fun
    statistic = 2 * (maximum - profile(0.0))
    assert row["p_value"] == pytest.approx(stats.chi2.sf(statistic, 1), rel=1e-4)
    critical = stats.chi2.ppf(1 - alpha, 1)
    low = optimize.brentq(lambda b: 2 * (maximum - profile(b)) - critical, -5, 4.679)
    high = optimize.brentq(lambda b: 2 * (maximum - profile(b)) - critical, 4.679, 30)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-4)


def test_firth_equals_haldane_anscombe_in_the_saturated_model() -> None:
    design = pd.DataFrame({"intercept": 1.0, "aae": [1.0] * 8 + [0.0] * 10})
    fit = firth_logit(design, np.array([1] * 8 + [1] + [0] * 9))
    assert fit.converged
    assert fit.params["aae"] == pytest.approx(math.log(8.5 * 9.5 / (0.5 * 1.5)), abs=1e-8)
    assert fit.params["intercept"] == pytest.approx(math.log(1.5 / 9.5), abs=1e-8)


def test_separation_along_a_numeric_control_is_found_by_linear_programming() -> None:
    x = pd.DataFrame({"intercept": 1.0, "profanity": [0, 0, 1, 1, 2, 3, 4, 5.0]})
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    assert detect_separation(x, y) == "separation found by linear programming"
    overlapping = np.array([0, 1, 0, 1, 0, 1, 1, 0])
    assert detect_separation(x, overlapping) is None


def test_separated_control_switches_to_firth() -> None:
    rng = np.random.default_rng(3)
    n = 200
    group = rng.choice(["aae", "sae"], size=n)
    profanity = rng.poisson(1.0, size=n)
    flagged = (profanity >= 2).astype(int)  # profanity separates being flagged
    frame = pd.DataFrame(
        {
            "dialect_group": group,
            "gold_toxic": rng.integers(0, 2, size=n),
            "flagged": flagged,
            "profanity": profanity,
        }
    )
    with pytest.warns(DegenerateDataWarning, match="with_controls: separation found"):
        table = flag_regression(frame, **OPTIONS, reference="sae", controls=["profanity"])
    methods = table.drop_duplicates("model").set_index("model")["method"]
    assert methods["without_controls"] == "ml_wald"
    assert methods["with_controls"] == "firth_penalised_lr"


def test_cmh_p_value_keeps_its_tail_for_large_statistics() -> None:
    # Two strata, a very strong association: 1 - cdf would underflow to 0.
    rows = []
    for gold in (0, 1):
        rows += [("aae", gold, 1)] * 400 + [("aae", gold, 0)] * 20
        rows += [("sae", gold, 1)] * 20 + [("sae", gold, 0)] * 400
    frame = pd.DataFrame(rows, columns=["g", "gold", "flag"])
    table = cmh_test(frame, group="g", gold="gold", flagged="flag", reference="sae")
    row = table.iloc[0]
    # The Mantel-Haenszel statistic by hand over the two identical 2x2 strata.
    a, b, c, d = 400, 20, 20, 400
    n = a + b + c + d
    expected_a = (a + b) * (a + c) / n
    variance = (a + b) * (c + d) * (a + c) * (b + d) / (n**2 * (n - 1))
    statistic = (2 * (a - expected_a)) ** 2 / (2 * variance)
    assert row["statistic"] == pytest.approx(statistic, rel=1e-9)
    assert row["p_value"] == pytest.approx(stats.chi2.sf(statistic, 1), rel=1e-9)
    assert 0 < row["p_value"] < 1e-100
