"""Tests of fairaudit.disparity against independent references and the shared trap cases.

References: fairlearn ``MetricFrame`` for the estimates, statsmodels and scipy called directly
for intervals and tests, hand-counted tables, and the values in the cases' CASE.md files.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import precision_score
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

import fairaudit.disparity as disparity
from fairaudit.disparity import (
    COMPARISON_COLUMNS,
    GROUP_METRIC_COLUMNS,
    binarize_labels,
    compare_groups,
    group_metrics,
    headline,
    roc_auc,
)
from fairaudit.exceptions import (
    DegenerateDataWarning,
    InputError,
    SmallGroupWarning,
    UndefinedMetricWarning,
)
from tests.cases import case_dir

# Any fairaudit warning a test does not expect with pytest.warns is a failure.
pytestmark = pytest.mark.filterwarnings("error::fairaudit.exceptions.FairauditWarning")

RATES = ("false_positive_rate", "false_negative_rate", "flag_rate", "precision")


def read_case(prefix: str, *, group_columns: tuple[str, ...] = ("dialect_group",)) -> pd.DataFrame:
    """Read a case input the way the audit must: only an empty group field is missing."""
    return pd.read_csv(
        case_dir(prefix) / "input.csv",
        keep_default_na=False,
        na_values={column: [""] for column in group_columns},
        index_col="id",
    )


def value(table: pd.DataFrame, group: str, metric: str, column: str = "estimate") -> object:
    row = table[(table["group"] == group) & (table["metric"] == metric)]
    assert len(row) == 1, (group, metric)
    return row[column].iloc[0]


@pytest.fixture
def random_frame() -> pd.DataFrame:
    rng = np.random.default_rng(20260312)
    n = 900
    group = rng.choice(["aae", "sae", "mixed"], size=n, p=[0.4, 0.45, 0.15])
    gold = rng.random(n) < np.where(group == "aae", 0.3, 0.35)
    score = np.clip(rng.normal(np.where(gold, 0.65, 0.35) + (group == "aae") * 0.08, 0.2), 0, 1)
    frame = pd.DataFrame(
        {"dialect_group": group, "gold_toxic": gold.astype(int), "score": score},
        index=[f"m{i:04d}" for i in range(n)],
    )
    frame["flagged"] = frame["score"] >= 0.5
    return frame


def metrics_of(frame: pd.DataFrame, **options: object) -> pd.DataFrame:
    return group_metrics(
        frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        score="score",
        min_negatives=1,
        **options,
    )


# ------------------------------------------------------------------------------------------
# Estimates and intervals against independent references
# ------------------------------------------------------------------------------------------


def test_columns_are_documented(random_frame: pd.DataFrame) -> None:
    table = metrics_of(random_frame)
    assert tuple(table.columns) == GROUP_METRIC_COLUMNS
    assert set(table["metric"]) == set(disparity.METRICS)
    assert table["group"].tolist()[-5:] == ["overall"] * 5


def test_estimates_match_fairlearn_metricframe(random_frame: pd.DataFrame) -> None:
    table = metrics_of(random_frame)
    frame = MetricFrame(
        metrics={
            "false_positive_rate": false_positive_rate,
            "false_negative_rate": false_negative_rate,
            "flag_rate": selection_rate,
            "precision": lambda y, p: precision_score(y, p, zero_division=np.nan),
        },
        y_true=random_frame["gold_toxic"],
        y_pred=random_frame["flagged"].astype(int),
        sensitive_features=random_frame["dialect_group"],
    )
    for metric in frame.by_group.columns:
        for group, expected in frame.by_group[metric].items():
            assert value(table, group, metric) == pytest.approx(expected, abs=1e-12)
        assert value(table, "overall", metric) == pytest.approx(frame.overall[metric], abs=1e-12)

    means = random_frame.groupby("dialect_group")["score"].mean()
    for group, expected in means.items():
        assert value(table, group, "mean_score") == pytest.approx(expected)


def test_denominators_and_numerators_by_hand() -> None:
    # aae: gold 0,0,0,1,1 flagged 1,0,1,1,0 -> FP 2/3, FN 1/2, flagged 3/5, TP 1/3.
    # sae: gold 0,1,1 flagged 0,1,1 -> FP 0/1, FN 0/2, flagged 2/3, TP 2/2.
    frame = pd.DataFrame(
        {
            "g": ["aae"] * 5 + ["sae"] * 3,
            "gold": [0, 0, 0, 1, 1, 0, 1, 1],
            "flag": [1, 0, 1, 1, 0, 0, 1, 1],
        }
    )
    with pytest.warns(SmallGroupWarning, match="'aae' \\(3\\), 'sae' \\(1\\)"):
        table = group_metrics(frame, group="g", gold="gold", flagged="flag", min_negatives=4)
    expected = {
        ("aae", "false_positive_rate"): (2, 3),
        ("aae", "false_negative_rate"): (1, 2),
        ("aae", "flag_rate"): (3, 5),
        ("aae", "precision"): (1, 3),
        ("sae", "false_positive_rate"): (0, 1),
        ("sae", "false_negative_rate"): (0, 2),
        ("sae", "flag_rate"): (2, 3),
        ("sae", "precision"): (2, 2),
        ("overall", "false_positive_rate"): (2, 4),
        ("overall", "false_negative_rate"): (1, 4),
        ("overall", "flag_rate"): (5, 8),
        ("overall", "precision"): (3, 5),
    }
    for (group, metric), (count, n) in expected.items():
        assert value(table, group, metric, "count") == count
        assert value(table, group, metric, "n") == n
        assert value(table, group, metric) == pytest.approx(count / n)
    assert table["small_group"].tolist() == [True] * 8 + [False] * 4


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.2])
@pytest.mark.parametrize(
    ("interval", "statsmodels_method"), [("wilson", "wilson"), ("clopper_pearson", "beta")]
)
def test_intervals_match_statsmodels(
    random_frame: pd.DataFrame, interval: str, statsmodels_method: str, alpha: float
) -> None:
    table = metrics_of(random_frame, interval=interval, alpha=alpha)
    rates = table[table["metric"] != "mean_score"]
    assert (rates["interval_method"] == interval).all()
    assert (table["alpha"] == alpha).all()
    for row in rates.itertuples():
        low, high = proportion_confint(row.count, row.n, alpha=alpha, method=statsmodels_method)
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_mean_score_t_interval_matches_scipy(random_frame: pd.DataFrame, alpha: float) -> None:
    table = metrics_of(random_frame, alpha=alpha)
    for group, scores in random_frame.groupby("dialect_group")["score"]:
        low, high = stats.t.interval(
            1 - alpha, len(scores) - 1, loc=scores.mean(), scale=stats.sem(scores)
        )
        row = table[(table["group"] == group) & (table["metric"] == "mean_score")].iloc[0]
        assert row["interval_method"] == "student_t"
        assert row["n"] == len(scores)
        assert pd.isna(row["count"])
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.booleans(), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_group_counts_add_up_to_overall(rows: list[tuple[str, bool, bool]]) -> None:
    frame = pd.DataFrame(rows, columns=["g", "gold", "flag"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", DegenerateDataWarning)
        table = group_metrics(frame, group="g", gold="gold", flagged="flag", min_negatives=0)
    groups = table[table["group"] != "overall"]
    for metric in RATES:
        per_group = groups[groups["metric"] == metric]
        assert per_group["n"].sum() == value(table, "overall", metric, "n")
        assert per_group["count"].sum() == value(table, "overall", metric, "count")
        undefined = per_group["n"] == 0
        assert per_group.loc[undefined, "estimate"].isna().all()
        assert per_group.loc[undefined, "undefined_reason"].notna().all()
        assert per_group.loc[~undefined, "undefined_reason"].isna().all()


# ------------------------------------------------------------------------------------------
# Comparisons against statsmodels and scipy
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_compare_groups_matches_statsmodels_and_scipy(
    random_frame: pd.DataFrame, alpha: float
) -> None:
    table = compare_groups(
        random_frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        score="score",
        reference="sae",
        alpha=alpha,
    )
    assert tuple(table.columns) == COMPARISON_COLUMNS
    assert sorted(set(table["group"])) == ["aae", "mixed"]
    assert (table["reference"] == "sae").all()
    assert (table["correction"] == "holm").all()

    for row in table[table["metric"] != "mean_score"].itertuples():
        low, high = confint_proportions_2indep(
            row.count,
            row.n,
            row.count_reference,
            row.n_reference,
            method="newcomb",
            compare="diff",
            alpha=alpha,
        )
        assert (row.ci_low, row.ci_high) == pytest.approx((low, high), abs=1e-12)
        assert row.difference == pytest.approx(
            row.count / row.n - row.count_reference / row.n_reference
        )
        assert row.ratio == pytest.approx(
            (row.count / row.n) / (row.count_reference / row.n_reference)
        )
        contingency = np.array(
            [
                [row.count, row.n - row.count],
                [row.count_reference, row.n_reference - row.count_reference],
            ]
        )
        expected = stats.contingency.expected_freq(contingency)
        if (expected < 5).any():
            assert row.method == "fisher_exact"
            assert row.p_value == pytest.approx(stats.fisher_exact(contingency).pvalue)
        else:
            assert row.method == "chi2_pearson"
            assert row.p_value == pytest.approx(
                stats.chi2_contingency(contingency, correction=False).pvalue
            )

    for group in ("aae", "mixed"):
        row = table[(table["group"] == group) & (table["metric"] == "mean_score")].iloc[0]
        result = stats.ttest_ind(
            random_frame.loc[random_frame["dialect_group"] == group, "score"],
            random_frame.loc[random_frame["dialect_group"] == "sae", "score"],
            equal_var=False,
        )
        assert row["method"] == "welch_t"
        assert row["p_value"] == pytest.approx(result.pvalue)
        interval = result.confidence_interval(confidence_level=1 - alpha)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(interval))

    reject, adjusted, _, _ = multipletests(table["p_value"], alpha=alpha, method="holm")
    np.testing.assert_allclose(table["p_adjusted"], adjusted)
    assert table["significant"].tolist() == reject.tolist()
    assert (table["alpha"] == alpha).all()


def test_auto_test_choice_follows_expected_counts() -> None:
    # Large table: every expected count >= 5 -> Pearson chi-square without correction.
    big = pd.DataFrame(
        {
            "g": ["a"] * 40 + ["b"] * 40,
            "gold": [0] * 80,
            "flag": [1] * 20 + [0] * 20 + [1] * 8 + [0] * 32,
        }
    )
    table = compare_groups(
        big, group="g", gold="gold", flagged="flag", reference="b", metrics=["flag_rate"]
    )
    assert table["method"].item() == "chi2_pearson"
    expected_p = stats.chi2_contingency([[20, 20], [8, 32]], correction=False).pvalue
    assert table["p_value"].item() == pytest.approx(expected_p)

    forced = compare_groups(
        big,
        group="g",
        gold="gold",
        flagged="flag",
        reference="b",
        metrics=["flag_rate"],
        test="fisher",
    )
    assert forced["method"].item() == "fisher_exact"
    assert forced["p_value"].item() == pytest.approx(
        stats.fisher_exact([[20, 20], [8, 32]]).pvalue
    )


def test_comparisons_mark_small_groups_and_survive_a_lone_reference() -> None:
    frame = pd.DataFrame(
        {"g": ["a"] * 3 + ["b"] * 40, "gold": [0] * 43, "flag": [1, 0, 0] + [1] * 4 + [0] * 36}
    )
    table = compare_groups(
        frame, group="g", gold="gold", flagged="flag", reference="b", min_negatives=10
    )
    assert table["small_group"].all()
    lone = compare_groups(
        frame[frame["g"] == "b"], group="g", gold="gold", flagged="flag", reference="b"
    )
    assert lone.empty and tuple(lone.columns) == COMPARISON_COLUMNS


def test_unknown_reference_is_an_input_error(random_frame: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="reference group 'AAE' not found"):
        compare_groups(
            random_frame,
            group="dialect_group",
            gold="gold_toxic",
            flagged="flagged",
            reference="AAE",
        )


# ------------------------------------------------------------------------------------------
# Labels
# ------------------------------------------------------------------------------------------


def test_binary_labels_need_no_positive() -> None:
    labels = pd.Series([0, 1, 1, 0], index=["a", "b", "c", "d"])
    assert binarize_labels(labels, positive=None, column="gold").tolist() == [0, 1, 1, 0]
    flags = pd.Series([True, False])
    assert binarize_labels(flags, positive=None, column="flag").tolist() == [True, False]


def test_string_labels_need_an_explicit_positive() -> None:
    labels = pd.Series(["benign", "abusive", "benign"])
    with pytest.raises(InputError, match="'abusive', 'benign'") as error:
        binarize_labels(labels, positive=None, column="gold_label", file="in.csv")
    assert error.value.column == "gold_label"
    assert error.value.file == "in.csv"

    with pytest.raises(InputError, match="does not occur"):
        binarize_labels(labels, positive="toxic", column="gold_label")
    assert binarize_labels(labels, positive="abusive", column="gold_label").tolist() == [
        False,
        True,
        False,
    ]
    several = binarize_labels(
        pd.Series(["hate", "offensive", "neither"]), positive=["hate", "offensive"], column="c"
    )
    assert several.tolist() == [True, True, False]


def test_missing_labels_are_an_input_error() -> None:
    labels = pd.Series([0, None, 1], index=["x1", "x2", "x3"])
    with pytest.raises(InputError, match="x2"):
        binarize_labels(labels, positive=None, column="gold")


# ------------------------------------------------------------------------------------------
# ROC AUC
# ------------------------------------------------------------------------------------------


def test_roc_auc_matches_sklearn_and_single_class_is_nan() -> None:
    result = roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert result.estimate == pytest.approx(0.75)
    assert result.undefined_reason is None

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = roc_auc(np.array([0, 0, 0]), np.array([0.1, 0.2, 0.3]))
    assert math.isnan(single.estimate)
    assert single.undefined_reason == "single_class"
    assert (single.n, single.positives, single.negatives) == (3, 0, 3)


@pytest.mark.parametrize("behaviour", ["raise", "nan_with_warning"])
def test_roc_auc_survives_either_sklearn_behaviour(
    monkeypatch: pytest.MonkeyPatch, behaviour: str
) -> None:
    from sklearn.exceptions import UndefinedMetricWarning as SklearnUndefined

    def fake_roc_auc_score(*args: object, **kwargs: object) -> float:
        if behaviour == "raise":
            raise ValueError("Only one class present in y_true.")
        warnings.warn("Only one class is present in y_true.", SklearnUndefined, stacklevel=2)
        return math.nan

    monkeypatch.setattr(disparity, "roc_auc_score", fake_roc_auc_score)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = roc_auc(np.array([0, 1]), np.array([0.2, 0.8]))
    assert math.isnan(result.estimate)
    assert result.undefined_reason == "single_class"


# ------------------------------------------------------------------------------------------
# Headline
# ------------------------------------------------------------------------------------------


def test_headline_skips_undefined_and_counts_them() -> None:
    frame = pd.DataFrame(
        {
            "g": ["a"] * 6 + ["b"] * 6 + ["c"] * 3,
            "gold": [0, 0, 0, 0, 1, 1] + [0, 0, 0, 0, 0, 1] + [1, 1, 1],
            "flag": [1, 1, 0, 0, 1, 1] + [1, 0, 0, 0, 0, 1] + [1, 1, 0],
        }
    )
    with pytest.warns(UndefinedMetricWarning, match="c/false_positive_rate"):
        table = group_metrics(frame, group="g", gold="gold", flagged="flag", min_negatives=0)
    summary = headline(table)
    assert summary["worst_group"] == "a"
    assert summary["worst_estimate"] == pytest.approx(0.5)
    assert summary["gap"] == pytest.approx(0.5 - 0.2)
    assert summary["undefined_skipped"] == 1
    assert summary["undefined_groups"] == ["c"]
    assert summary["groups_left_out"] == []


# ------------------------------------------------------------------------------------------
# Shared cases
# ------------------------------------------------------------------------------------------


def case_01_metrics(missing_group: str) -> pd.DataFrame:
    frame = read_case("01")
    frame["flagged"] = frame["score"] >= 0.5
    return group_metrics(
        frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        missing_group=missing_group,
        min_negatives=1,
    )


def test_case_01_strict_mode_names_column_count_and_ids() -> None:
    frame = read_case("01")
    assert len(frame) == 14
    assert frame.loc["m08", "text"] == "None"
    with pytest.raises(InputError) as error:
        case_01_metrics("error")
    assert error.value.column == "dialect_group"
    message = str(error.value)
    assert "2 row(s)" in message and "m11" in message and "m14" in message


def test_case_01_keep_mode_has_an_explicit_missing_group() -> None:
    with pytest.warns(UndefinedMetricWarning, match="<missing>/false_negative_rate"):
        table = case_01_metrics("keep")
    assert "nan" not in set(table["group"])
    assert list(dict.fromkeys(table["group"])) == ["aae", "sae", "<missing>", "overall"]

    expected = {
        "aae": (6, 4, 2, 0.5, 2, 0.0, 4 / 6),
        "sae": (6, 4, 1, 0.25, 2, 0.0, 3 / 6),
        "<missing>": (2, 2, 2, 1.0, 0, math.nan, 1.0),
        "overall": (14, 10, 5, 0.5, 4, 0.0, 9 / 14),
    }
    for group, (n, negatives, fp, fpr, positives, fnr, flag) in expected.items():
        assert value(table, group, "flag_rate", "n") == n
        assert value(table, group, "false_positive_rate", "n") == negatives
        assert value(table, group, "false_positive_rate", "count") == fp
        assert value(table, group, "false_positive_rate") == pytest.approx(fpr)
        assert value(table, group, "false_negative_rate", "n") == positives
        assert value(table, group, "flag_rate") == pytest.approx(flag)
        if math.isnan(fnr):
            assert math.isnan(value(table, group, "false_negative_rate"))
            assert value(table, group, "false_negative_rate", "undefined_reason") == "no_positives"
        else:
            assert value(table, group, "false_negative_rate") == pytest.approx(fnr)

    sizes = table[(table["metric"] == "flag_rate") & (table["group"] != "overall")]["n"]
    assert sizes.sum() == 14


def test_case_01_drop_mode_overall_uses_the_same_rows_as_the_groups() -> None:
    table = case_01_metrics("drop")
    assert table.attrs["excluded_ids"] == ["m11", "m14"]
    assert "<missing>" not in set(table["group"])
    assert value(table, "overall", "flag_rate", "n") == 12
    assert value(table, "overall", "false_positive_rate", "n") == 8
    assert value(table, "overall", "false_positive_rate", "count") == 3
    assert value(table, "overall", "false_positive_rate") == pytest.approx(0.375)
    assert value(table, "overall", "false_negative_rate") == pytest.approx(0.0)
    assert value(table, "overall", "flag_rate") == pytest.approx(7 / 12)
    assert value(table, "aae", "false_positive_rate") == pytest.approx(0.5)
    assert value(table, "sae", "false_positive_rate") == pytest.approx(0.25)


def test_case_02_single_class_group() -> None:
    frame = read_case("02")
    frame["flagged"] = frame["score"] >= 0.5
    with pytest.warns(UndefinedMetricWarning, match="aae/false_negative_rate"):
        table = group_metrics(
            frame, group="dialect_group", gold="gold_toxic", flagged="flagged", min_negatives=1
        )
    assert value(table, "aae", "false_positive_rate") == pytest.approx(0.5)
    assert value(table, "sae", "false_positive_rate") == pytest.approx(0.25)
    assert value(table, "overall", "false_positive_rate") == pytest.approx(0.4)
    assert math.isnan(value(table, "aae", "false_negative_rate"))
    assert value(table, "aae", "false_negative_rate", "undefined_reason") == "no_positives"
    assert value(table, "sae", "false_negative_rate") == pytest.approx(0.25)
    assert value(table, "overall", "false_negative_rate") == pytest.approx(0.25)
    for group in ("aae", "sae", "overall"):
        assert value(table, group, "flag_rate") == pytest.approx(0.5)

    aae = frame["dialect_group"] == "aae"
    gold, score = frame["gold_toxic"], frame["score"]
    subgroup_aae = roc_auc(gold[aae], score[aae])
    assert math.isnan(subgroup_aae.estimate) and subgroup_aae.undefined_reason == "single_class"
    assert roc_auc(gold[~aae], score[~aae]).estimate == pytest.approx(0.9375)
    assert roc_auc(gold, score).estimate == pytest.approx(0.9)

    # BPSN: group negatives with background positives; BNSP: group positives with background
    # negatives (Borkan et al. 2019), built here from the definition.
    bpsn_aae = (aae & (gold == 0)) | (~aae & (gold == 1))
    bnsp_aae = (aae & (gold == 1)) | (~aae & (gold == 0))
    assert roc_auc(gold[bpsn_aae], score[bpsn_aae]).estimate == pytest.approx(0.875)
    assert roc_auc(gold[bnsp_aae], score[bnsp_aae]).undefined_reason == "single_class"
    assert math.isnan(roc_auc(gold[bnsp_aae], score[bnsp_aae]).estimate)
    # With two groups, BPSN(sae) is BNSP(aae) and BNSP(sae) is BPSN(aae).
    bpsn_sae = (~aae & (gold == 0)) | (aae & (gold == 1))
    bnsp_sae = (~aae & (gold == 1)) | (aae & (gold == 0))
    assert roc_auc(gold[bpsn_sae], score[bpsn_sae]).undefined_reason == "single_class"
    assert roc_auc(gold[bnsp_sae], score[bnsp_sae]).estimate == pytest.approx(0.875)

    with pytest.warns(UndefinedMetricWarning):
        summary = headline(
            group_metrics(
                frame, group="dialect_group", gold="gold_toxic", flagged="flagged", min_negatives=1
            ),
            metric="false_negative_rate",
        )
    assert summary["undefined_skipped"] == 1
    assert summary["worst_group"] == "sae"


def test_case_04_string_labels_with_explicit_positive() -> None:
    frame = read_case("04")
    with pytest.raises(InputError, match="'abusive', 'benign'"):
        binarize_labels(frame["gold_label"], positive=None, column="gold_label")

    frame["gold"] = binarize_labels(frame["gold_label"], positive="abusive", column="gold_label")
    frame["flagged"] = binarize_labels(
        frame["model_label"], positive="abusive", column="model_label"
    )
    with pytest.raises(InputError, match="gold_label"):
        group_metrics(frame, group="dialect_group", gold="gold_label", flagged="flagged")
    table = group_metrics(
        frame, group="dialect_group", gold="gold", flagged="flagged", min_negatives=1
    )
    expected = {
        "aae": (0.6, 0.0, 0.75, 1.0),
        "sae": (0.2, 1 / 3, 0.375, 0.933333),
        "overall": (0.4, 1 / 6, 0.5625, 0.916667),
    }
    for group, (fpr, fnr, flag, auc) in expected.items():
        assert value(table, group, "false_positive_rate") == pytest.approx(fpr)
        assert value(table, group, "false_negative_rate") == pytest.approx(fnr)
        assert value(table, group, "flag_rate") == pytest.approx(flag)
        rows = frame if group == "overall" else frame[frame["dialect_group"] == group]
        assert roc_auc(rows["gold"], rows["model_score"]).estimate == pytest.approx(auc, abs=1e-6)


@pytest.mark.parametrize(
    ("alpha", "significant", "newcombe", "wilson_aae", "wilson_sae"),
    [
        (0.05, True, (0.092413, 0.667892), (0.267992, 0.732008), (0.012722, 0.314687)),
        (0.01, False, (-0.013048, 0.719005), (0.216479, 0.783521), (0.008442, 0.410018)),
    ],
)
@pytest.mark.parametrize(("test", "p_value"), [("fisher", 0.032850), ("chi2", 0.012074)])
def test_case_12_alpha_drives_every_interval_and_verdict(
    alpha: float,
    significant: bool,
    newcombe: tuple[float, float],
    wilson_aae: tuple[float, float],
    wilson_sae: tuple[float, float],
    test: str,
    p_value: float,
) -> None:
    frame = read_case("12")
    options = {"group": "dialect_group", "gold": "gold_toxic", "flagged": "flagged"}
    with pytest.warns(SmallGroupWarning), pytest.warns(UndefinedMetricWarning):
        table = group_metrics(frame, **options, alpha=alpha)
    assert value(table, "aae", "false_positive_rate") == pytest.approx(0.5)
    assert value(table, "sae", "false_positive_rate") == pytest.approx(1 / 14)
    aae = (value(table, "aae", "false_positive_rate", c) for c in ("ci_low", "ci_high"))
    sae = (value(table, "sae", "false_positive_rate", c) for c in ("ci_low", "ci_high"))
    assert tuple(aae) == pytest.approx(wilson_aae, abs=1e-6)
    assert tuple(sae) == pytest.approx(wilson_sae, abs=1e-6)
    assert (table["alpha"] == alpha).all()

    comparison = compare_groups(
        frame,
        **options,
        reference="sae",
        alpha=alpha,
        test=test,
        metrics=["false_positive_rate"],
    )
    row = comparison.iloc[0]
    assert row["difference"] == pytest.approx(0.428571, abs=1e-6)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(newcombe, abs=1e-6)
    assert row["p_value"] == pytest.approx(p_value, abs=1e-6)
    assert row["p_adjusted"] == pytest.approx(p_value, abs=1e-6)
    assert bool(row["significant"]) is significant
    assert row["alpha"] == alpha
    assert bool(row["ci_low"] > 0) is significant


def test_case_12_auto_picks_fisher_for_small_expected_counts() -> None:
    frame = read_case("12")
    comparison = compare_groups(
        frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        reference="sae",
        metrics=["false_positive_rate"],
    )
    assert comparison["method"].item() == "fisher_exact"


def test_case_15_tiny_cells_exact_intervals_and_headline() -> None:
    frame = read_case("15", group_columns=("dialect_group", "speaker_gender"))
    with (
        pytest.warns(
            SmallGroupWarning, match="'aae×nb' \\(1\\), 'sae×m' \\(3\\), 'sae×nb' \\(2\\)"
        ),
        pytest.warns(UndefinedMetricWarning),
    ):
        table = group_metrics(
            frame,
            group=["dialect_group", "speaker_gender"],
            gold="gold_toxic",
            flagged="flagged",
            interval="clopper_pearson",
            min_negatives=5,
        )
    expected = {
        "aae×f": (8, 7, 3, 0.428571, 0.098988, 0.815948, False),
        "aae×m": (7, 6, 2, 0.333333, 0.043272, 0.777222, False),
        "aae×nb": (1, 1, 1, 1.0, 0.025, 1.0, True),
        "sae×f": (8, 7, 1, 0.142857, 0.003610, 0.578723, False),
        "sae×m": (4, 3, 0, 0.0, 0.0, 0.707598, True),
        "sae×nb": (2, 2, 0, 0.0, 0.0, 0.841886, True),
    }
    fpr = table[(table["metric"] == "false_positive_rate") & (table["group"] != "overall")]
    assert fpr["group"].tolist() == list(expected)
    for cell, (n, negatives, fp, estimate, low, high, small) in expected.items():
        assert value(table, cell, "flag_rate", "n") == n
        assert value(table, cell, "false_positive_rate", "n") == negatives
        assert value(table, cell, "false_positive_rate", "count") == fp
        assert value(table, cell, "false_positive_rate") == pytest.approx(estimate, abs=1e-6)
        interval = (
            value(table, cell, "false_positive_rate", "ci_low"),
            value(table, cell, "false_positive_rate", "ci_high"),
        )
        assert interval == pytest.approx((low, high), abs=1e-6)
        assert interval[0] < interval[1]
        assert bool(value(table, cell, "false_positive_rate", "small_group")) is small

    summary = headline(table)
    assert summary["worst_group"] == "aae×f"
    assert summary["worst_estimate"] == pytest.approx(0.428571, abs=1e-6)
    assert summary["gap"] == pytest.approx(0.285714, abs=1e-6)
    assert sorted(summary["groups_left_out"]) == ["aae×nb", "sae×m", "sae×nb"]


def case_16(attribute: str, reference: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = read_case("16", group_columns=(attribute,))
    frame["flagged"] = frame["score"] >= 0.5
    options = {"group": attribute, "gold": "gold_toxic", "flagged": "flagged", "threshold": 0.5}
    message = "0 of 12 messages flagged at threshold 0.5; threshold-based disparities"
    with pytest.warns(DegenerateDataWarning, match=message), pytest.warns(UndefinedMetricWarning):
        metrics = group_metrics(frame, **options, min_negatives=1)
    with pytest.warns(DegenerateDataWarning, match=message):
        comparison = compare_groups(frame, **options, reference=reference)
    return metrics, comparison


def test_case_16_dialect_group_nothing_flagged() -> None:
    metrics, comparison = case_16("dialect_group", "sae")
    for group, (n, negatives, positives) in {"aae": (6, 3, 3), "sae": (6, 4, 2)}.items():
        assert value(metrics, group, "flag_rate", "n") == n
        assert value(metrics, group, "false_positive_rate", "n") == negatives
        assert value(metrics, group, "false_negative_rate", "n") == positives
        assert value(metrics, group, "flag_rate") == 0.0
        assert value(metrics, group, "false_positive_rate") == 0.0
        assert value(metrics, group, "false_negative_rate") == 1.0
        assert math.isnan(value(metrics, group, "precision"))
        assert value(metrics, group, "precision", "undefined_reason") == "no_predicted_positives"

    def row(metric: str) -> pd.Series:
        return comparison[comparison["metric"] == metric].iloc[0]

    for metric in ("flag_rate", "false_positive_rate"):
        assert math.isnan(row(metric)["ratio"])
        assert row(metric)["ratio_undefined_reason"] == "zero_denominator"
        assert row(metric)["undefined_reason"] is None  # the difference is defined
        assert row(metric)["difference"] == 0.0
    assert row("false_negative_rate")["ratio"] == 1.0
    assert row("false_negative_rate")["difference"] == 0.0
    assert row("false_negative_rate")["undefined_reason"] is None
    assert math.isnan(row("precision")["ratio"]) and math.isnan(row("precision")["difference"])
    assert row("precision")["undefined_reason"] == "no_predicted_positives"
    assert pd.isna(row("precision")["significant"])

    frame = read_case("16")
    for group in ("aae", "sae"):
        rows = frame[frame["dialect_group"] == group]
        assert roc_auc(rows["gold_toxic"], rows["score"]).estimate == 1.0


def test_case_16_speaker_role_is_computed_independently() -> None:
    metrics, comparison = case_16("speaker_role", "reply")
    assert set(metrics["group"]) == {"op", "reply", "overall"}
    assert value(metrics, "op", "flag_rate", "n") == 5
    assert value(metrics, "op", "false_positive_rate", "n") == 5
    assert math.isnan(value(metrics, "op", "false_negative_rate"))
    assert value(metrics, "op", "false_negative_rate", "undefined_reason") == "no_positives"
    assert value(metrics, "reply", "false_negative_rate") == 1.0
    assert value(metrics, "reply", "false_positive_rate", "n") == 2

    def row(metric: str) -> pd.Series:
        return comparison[comparison["metric"] == metric].iloc[0]

    assert (comparison["group"] == "op").all()
    for metric in ("flag_rate", "false_positive_rate"):
        assert math.isnan(row(metric)["ratio"])
        assert row(metric)["ratio_undefined_reason"] == "zero_denominator"
        assert row(metric)["undefined_reason"] is None  # the difference is defined
        assert row(metric)["difference"] == 0.0
    fnr = row("false_negative_rate")
    assert math.isnan(fnr["ratio"]) and math.isnan(fnr["difference"])
    assert fnr["undefined_reason"] == "no_positives"
    assert math.isnan(row("precision")["ratio"])

    frame = read_case("16")
    op = frame[frame["speaker_role"] == "op"]
    reply = frame[frame["speaker_role"] == "reply"]
    assert roc_auc(op["gold_toxic"], op["score"]).undefined_reason == "single_class"
    assert roc_auc(reply["gold_toxic"], reply["score"]).estimate == 1.0


# ------------------------------------------------------------------------------------------
# Effect sizes, four-fifths rule and multiple-testing families
# ------------------------------------------------------------------------------------------


def woolf_by_hand(a: float, b: float, c: float, d: float, alpha: float) -> tuple[float, ...]:
    z = stats.norm.ppf(1 - alpha / 2)
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return math.exp(log_or), math.exp(log_or - z * se), math.exp(log_or + z * se)


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_effect_sizes_match_statsmodels(random_frame: pd.DataFrame, alpha: float) -> None:
    table = compare_groups(
        random_frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        reference="sae",
        alpha=alpha,
    )
    for row in table.itertuples():
        assert row.count > 0 and row.n - row.count > 0  # no zero cell in this frame
        low, high = confint_proportions_2indep(
            row.count,
            row.n,
            row.count_reference,
            row.n_reference,
            compare="ratio",
            method="log",
            alpha=alpha,
        )
        assert (row.ratio_ci_low, row.ratio_ci_high) == pytest.approx((low, high), rel=1e-10)
        assert row.ratio_interval_method == "katz_log"
        two_by_two = Table2x2(
            np.array(
                [
                    [row.count, row.n - row.count],
                    [row.count_reference, row.n_reference - row.count_reference],
                ]
            )
        )
        assert row.odds_ratio == pytest.approx(two_by_two.oddsratio)
        assert (row.odds_ratio_ci_low, row.odds_ratio_ci_high) == pytest.approx(
            two_by_two.oddsratio_confint(alpha=alpha), rel=1e-10
        )
        assert row.odds_ratio_method == "woolf_logit"

    _, bh, _, _ = multipletests(table["p_value"], alpha=alpha, method="fdr_bh")
    np.testing.assert_allclose(table["p_adjusted_bh"], bh)
    assert table["significant_bh"].tolist() == (bh < alpha).tolist()
    assert (table["family"] == "all").all()


def test_case_12_effect_sizes_by_hand() -> None:
    # [[FP, TN] aae, [FP, TN] sae] = [[7, 7], [1, 13]]
    frame = read_case("12")
    for alpha in (0.05, 0.01):
        row = compare_groups(
            frame,
            group="dialect_group",
            gold="gold_toxic",
            flagged="flagged",
            reference="sae",
            alpha=alpha,
            metrics=["false_positive_rate"],
        ).iloc[0]
        z = stats.norm.ppf(1 - alpha / 2)
        se_log_ratio = math.sqrt(1 / 7 - 1 / 14 + 1 / 1 - 1 / 14)
        assert row["ratio"] == pytest.approx(7.0)
        assert (row["ratio_ci_low"], row["ratio_ci_high"]) == pytest.approx(
            (7 * math.exp(-z * se_log_ratio), 7 * math.exp(z * se_log_ratio))
        )
        assert row["odds_ratio"] == pytest.approx(13.0)
        assert (row["odds_ratio_ci_low"], row["odds_ratio_ci_high"]) == pytest.approx(
            woolf_by_hand(7, 7, 1, 13, alpha)[1:]
        )
        # Four-fifths on the favourable outcome: (7/14) / (13/14) = 0.538 < 0.8.
        assert row["four_fifths_ratio"] == pytest.approx(7 / 13)
        assert bool(row["four_fifths_violated"]) is True
        assert "computed on the favourable outcome (not flagged)" in row["four_fifths_note"]


def test_haldane_anscombe_only_when_a_cell_is_zero() -> None:
    # Case 18 table: aae 8 of 8 flagged, sae 1 of 10; log OR with +0.5 is 4.679040.
    frame = read_case("18")
    row = compare_groups(
        frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        reference="sae",
        metrics=["flag_rate"],
    ).iloc[0]
    assert row["odds_ratio_method"] == "woolf_logit_haldane_anscombe"
    assert math.log(row["odds_ratio"]) == pytest.approx(4.679040, abs=1e-6)
    assert row["odds_ratio"] == pytest.approx(107.666667, abs=1e-6)
    low, high = Table2x2(np.array([[8.5, 0.5], [1.5, 9.5]])).oddsratio_confint()
    assert (row["odds_ratio_ci_low"], row["odds_ratio_ci_high"]) == pytest.approx((low, high))
    assert row["p_value"] == pytest.approx(0.000411, abs=1e-6)  # Fisher, as in the case
    assert row["method"] == "fisher_exact"
    # Ratio 8 / 0.1 = 10 with a Katz interval; nobody in aae is favoured: four-fifths ratio 0.
    se = math.sqrt(1 / 8 - 1 / 8 + 1 / 1 - 1 / 10)
    assert (row["ratio_ci_low"], row["ratio_ci_high"]) == pytest.approx(
        (10 * math.exp(-1.959964 * se), 10 * math.exp(1.959964 * se)), rel=1e-6
    )
    assert row["four_fifths_ratio"] == 0.0 and bool(row["four_fifths_violated"])


def test_zero_count_leaves_the_ratio_interval_undefined() -> None:
    frame = pd.DataFrame(
        {"g": ["a"] * 40 + ["b"] * 40, "gold": [0] * 80, "flag": [0] * 40 + [1] * 8 + [0] * 32}
    )
    row = compare_groups(
        frame, group="g", gold="gold", flagged="flag", reference="b", metrics=["flag_rate"]
    ).iloc[0]
    assert row["ratio"] == 0.0
    assert math.isnan(row["ratio_ci_low"]) and math.isnan(row["ratio_ci_high"])
    assert row["ratio_undefined_reason"] == "zero_count"
    assert row["odds_ratio"] == pytest.approx(woolf_by_hand(0.5, 40.5, 8.5, 32.5, 0.05)[0])
    assert row["four_fifths_ratio"] == pytest.approx(1 / 0.8)
    assert bool(row["four_fifths_violated"]) is False


def test_four_fifths_only_for_not_being_flagged(random_frame: pd.DataFrame) -> None:
    table = compare_groups(
        random_frame, group="dialect_group", gold="gold_toxic", flagged="flagged", reference="sae"
    )
    applies = table["metric"].isin(["flag_rate", "false_positive_rate"])
    assert table.loc[applies, "four_fifths_ratio"].notna().all()
    assert table.loc[~applies, "four_fifths_ratio"].isna().all()
    assert table.loc[~applies, "four_fifths_violated"].isna().all()
    for row in table[applies].itertuples():
        assert row.four_fifths_ratio == pytest.approx(
            (1 - row.estimate) / (1 - row.reference_estimate)
        )
        assert row.four_fifths_violated == (row.four_fifths_ratio < 0.8)


@pytest.mark.parametrize("family", ["per_metric", ["false_positive_rate", "false_negative_rate"]])
def test_family_chooses_what_holm_and_bh_run_over(
    random_frame: pd.DataFrame, family: object
) -> None:
    table = compare_groups(
        random_frame,
        group="dialect_group",
        gold="gold_toxic",
        flagged="flagged",
        reference="sae",
        family=family,
    )
    if family == "per_metric":
        assert (table["family"] == table["metric"]).all()
    else:
        primary = table["metric"].isin(family)
        assert (table.loc[primary, "family"] == "primary").all()
        assert (table.loc[~primary, "family"] == "secondary").all()
    for _, members in table.groupby("family"):
        _, holm, _, _ = multipletests(members["p_value"], method="holm")
        _, bh, _, _ = multipletests(members["p_value"], method="fdr_bh")
        np.testing.assert_allclose(members["p_adjusted"], holm)
        np.testing.assert_allclose(members["p_adjusted_bh"], bh)


def test_family_must_name_compared_metrics(random_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not compared"):
        compare_groups(
            random_frame,
            group="dialect_group",
            gold="gold_toxic",
            flagged="flagged",
            reference="sae",
            metrics=["flag_rate"],
            family=["false_positive_rate"],
        )


def test_case_15_intersectional_comparison_marks_small_cells() -> None:
    frame = read_case("15", group_columns=("dialect_group", "speaker_gender"))
    table = compare_groups(
        frame,
        group=["dialect_group", "speaker_gender"],
        gold="gold_toxic",
        flagged="flagged",
        reference="sae×f",
        metrics=["false_positive_rate"],
        min_negatives=5,
    )
    assert table["group"].tolist() == ["aae×f", "aae×m", "aae×nb", "sae×m", "sae×nb"]
    small = dict(zip(table["group"], table["small_group"], strict=True))
    assert small == {
        "aae×f": False,
        "aae×m": False,
        "aae×nb": True,
        "sae×m": True,
        "sae×nb": True,
    }
    aae_f = table[table["group"] == "aae×f"].iloc[0]
    assert (aae_f["count"], aae_f["n"], aae_f["count_reference"], aae_f["n_reference"]) == (
        3,
        7,
        1,
        7,
    )
    assert aae_f["p_value"] == pytest.approx(stats.fisher_exact([[3, 4], [1, 6]]).pvalue)
