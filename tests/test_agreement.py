"""Tests of fairaudit.agreement against independent references and the shared trap cases.

References: the values in cases 09 and 10 (CASE.md), and scikit-learn ``cohen_kappa_score``,
statsmodels ``fleiss_kappa`` and the ``krippendorff`` package called directly on the same data
(Krippendorff's alpha through its ``reliability_data`` path, independent of the value counts
fairaudit builds).
"""

from __future__ import annotations

import doctest
import itertools
import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

import fairaudit.agreement as agreement
from fairaudit.agreement import (
    ALL_ANNOTATORS,
    MARKER_AGREEMENT_COLUMNS,
    REASON_CONSTANT_RATERS,
    REASON_ONE_CATEGORY,
    REASON_UNEQUAL_RATERS,
    VOTE_AGREEMENT_COLUMNS,
    cohen_kappa,
    fleiss_kappa_from_counts,
    krippendorff_alpha_from_counts,
    marker_agreement,
    randolph_kappa,
    vote_agreement,
)
from fairaudit.exceptions import InputError, UndefinedMetricWarning
from tests.cases import case_dir

# Unexpected fairaudit warnings and any RuntimeWarning (0/0 leaking to the user) are failures.
pytestmark = [
    pytest.mark.filterwarnings("error::fairaudit.exceptions.FairauditWarning"),
    pytest.mark.filterwarnings("error::RuntimeWarning"),
]

TOL = 5e-7  # the cases print six decimals


def read_case(prefix: str) -> pd.DataFrame:
    return pd.read_csv(case_dir(prefix) / "input.csv", index_col="id")


def row(table: pd.DataFrame, **where: object) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    assert mask.sum() == 1, where
    return table.loc[mask].iloc[0]


def two_rater_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Item-by-category counts (0, 1) of the case 10 raters."""
    return pd.DataFrame(
        {
            "0": (frame["rater_a"] == 0).astype(int) + (frame["rater_b"] == 0).astype(int),
            "1": (frame["rater_a"] == 1).astype(int) + (frame["rater_b"] == 1).astype(int),
        }
    )


# --------------------------------------------------------------------------------------------
# Case 09: unequal numbers of votes per item
# --------------------------------------------------------------------------------------------

CASE_09 = {
    # slice: (items used, items total, pairable values, alpha, kappa, P_bar, P_e)
    "overall": (15, 16, 56, 0.380315, 0.346667, 0.673333, 0.500000),
    "aae": (7, 8, 27, 0.157407, 0.035714, 0.523810, 0.506173),
    "sae": (8, 8, 29, 0.596154, 0.604097, 0.804167, 0.505351),
}


def test_case_09_vote_agreement_values() -> None:
    case = read_case("09")
    table = vote_agreement(case[["votes_toxic", "votes_nontoxic"]], groups=case["dialect_group"])

    assert tuple(table.columns) == VOTE_AGREEMENT_COLUMNS
    assert list(table["group"].unique()) == ["overall", "aae", "sae"]
    for group, (used, total, pairable, alpha, kappa, p_bar, p_e) in CASE_09.items():
        alpha_row = row(table, group=group, statistic="krippendorff_alpha")
        assert alpha_row["estimate"] == pytest.approx(alpha, abs=TOL)
        kappa_row = row(table, group=group, statistic="generalised_fleiss_kappa")
        assert kappa_row["estimate"] == pytest.approx(kappa, abs=TOL)
        assert kappa_row["observed_agreement"] == pytest.approx(p_bar, abs=TOL)
        assert kappa_row["expected_agreement"] == pytest.approx(p_e, abs=TOL)
        assert kappa_row["method"].startswith("generalised Fleiss' kappa for unequal raters")
        assert "P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))" in kappa_row["method"]
        for statistic_row in (alpha_row, kappa_row):
            assert statistic_row["n"] == used
            assert statistic_row["n_total"] == total
            assert statistic_row["n_pairable"] == pairable
            assert statistic_row["undefined_reason"] is None
    for group in ("overall", "aae"):
        assert row(table, group=group, statistic="krippendorff_alpha")["excluded_ids"] == ("v08",)
    assert row(table, group="sae", statistic="krippendorff_alpha")["excluded_ids"] == ()


def test_case_09_split_vote_share_counts_non_unanimous_items() -> None:
    case = read_case("09")
    table = vote_agreement(case[["votes_toxic", "votes_nontoxic"]], groups=case["dialect_group"])

    # By hand from the input: aae split items v01 v02 v03 v04 v05 (of 7 used); sae v13 v14 v16.
    assert row(table, group="aae", statistic="split_vote_share")["estimate"] == 5 / 7
    assert row(table, group="sae", statistic="split_vote_share")["estimate"] == 3 / 8
    assert row(table, group="overall", statistic="split_vote_share")["estimate"] == 8 / 15


def test_case_09_equal_raters_match_statsmodels() -> None:
    case = read_case("09")
    counts = case[["votes_toxic", "votes_nontoxic"]]
    five = counts.loc[counts.sum(axis=1) == 5]
    assert len(five) == 5

    result = fleiss_kappa_from_counts(five)

    reference = fleiss_kappa(five.to_numpy(), method="fleiss")
    assert result.estimate == pytest.approx(reference, abs=1e-12)
    assert result.estimate == pytest.approx(0.439103, abs=TOL)
    assert "statsmodels" in result.method and "5 per item" in result.method


def test_case_09_statsmodels_trap_and_not_applicable_label() -> None:
    counts = read_case("09")[["votes_toxic", "votes_nontoxic"]]
    with pytest.raises(AssertionError):
        fleiss_kappa(counts.to_numpy(), method="fleiss")  # the reported failure

    result = fleiss_kappa_from_counts(counts, unequal_raters="not applicable")

    assert math.isnan(result.estimate)
    assert result.reason == REASON_UNEQUAL_RATERS == "not applicable (unequal raters)"
    assert result.n_items == 15 and result.n_excluded == 1


def test_case_09_alpha_matches_krippendorff_reliability_data() -> None:
    counts = read_case("09")[["votes_toxic", "votes_nontoxic"]]
    # One coder slot per vote: coder k gave item i a value when item i has more than k votes.
    width = int(counts.sum(axis=1).max())
    reliability = np.full((width, len(counts)), np.nan)
    for item, (toxic, nontoxic) in enumerate(counts.itertuples(index=False)):
        reliability[: toxic + nontoxic, item] = [1] * toxic + [0] * nontoxic

    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")

    assert krippendorff_alpha_from_counts(counts).estimate == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Case 10: one or both raters constant
# --------------------------------------------------------------------------------------------

CASE_10 = {
    # slice: (n, cohen, fleiss, randolph, percent agreement)
    "aae": (8, 0.0, -0.230769, 0.25, 0.625),
    "sae": (6, None, None, 1.0, 1.0),
    "all": (14, 0.0, -0.12, 0.571429, 0.785714),
}


def case_10_slice(name: str) -> pd.DataFrame:
    case = read_case("10")
    return case if name == "all" else case.loc[case["dialect_group"] == name]


@pytest.mark.parametrize("name", list(CASE_10))
def test_case_10_values(name: str) -> None:
    n, cohen, fleiss, randolph, percent = CASE_10[name]
    frame = case_10_slice(name)
    assert len(frame) == n
    counts = two_rater_counts(frame)

    estimate, reason = cohen_kappa(frame["rater_a"], frame["rater_b"], labels=[0, 1])
    fleiss_result = fleiss_kappa_from_counts(counts)
    randolph_result = randolph_kappa(counts)

    if cohen is None:
        assert math.isnan(estimate)
        assert reason == REASON_CONSTANT_RATERS
        assert reason == "both raters used one category; expected agreement = 1"
        assert math.isnan(fleiss_result.estimate)
        assert fleiss_result.reason == REASON_ONE_CATEGORY
        assert "expected agreement = 1" in fleiss_result.reason
    else:
        assert estimate == cohen  # exactly 0.0: defined, not NaN, not approximately
        assert reason is None
        assert fleiss_result.estimate == pytest.approx(fleiss, abs=TOL)
        assert fleiss_result.reason is None
    assert randolph_result.estimate == pytest.approx(randolph, abs=TOL)
    assert randolph_result.reason is None
    # For two raters P-bar is the percent agreement.
    assert fleiss_result.observed_agreement == pytest.approx(percent, abs=TOL)


@pytest.mark.parametrize("name", ["aae", "all"])
def test_case_10_cohen_matches_sklearn(name: str) -> None:
    frame = case_10_slice(name)
    reference = cohen_kappa_score(frame["rater_a"], frame["rater_b"], labels=[0, 1])
    assert cohen_kappa(frame["rater_a"], frame["rater_b"]).estimate == reference == 0.0


def test_case_10_through_marker_agreement() -> None:
    case = read_case("10")
    spans = pd.DataFrame(
        [
            {"id": item, "marker": "toxic", "start": 0, "end": 1, "text": "x", "source": source}
            for rater, source in (("rater_a", "human:a"), ("rater_b", "human:b"))
            for item in case.index[case[rater] == 1]
        ],
        columns=["id", "marker", "start", "end", "text", "source"],
    )
    sae = list(case.index[case["dialect_group"] == "sae"])
    aae = list(case.index[case["dialect_group"] == "aae"])

    # No rule spans here, so rater a (constant 0) against the rules is 0/0 too.
    with pytest.warns(UndefinedMetricWarning, match="toxic/cohen_kappa/human:a/rule"):
        aae_table = marker_agreement(spans, {"a": aae, "b": aae}, markers=["toxic"])
    with pytest.warns(UndefinedMetricWarning, match="toxic/cohen_kappa/human:a/human:b"):
        sae_table = marker_agreement(
            spans.loc[spans["id"].isin(sae)], {"a": sae, "b": sae}, markers=["toxic"]
        )

    assert row(aae_table, statistic="cohen_kappa", rater_b="human:b")["estimate"] == 0.0
    assert row(aae_table, statistic="fleiss_kappa")["estimate"] == pytest.approx(
        -0.230769, abs=TOL
    )
    cohen = row(sae_table, statistic="cohen_kappa", rater_b="human:b")
    assert math.isnan(cohen["estimate"]) and cohen["undefined_reason"] == REASON_CONSTANT_RATERS
    assert row(sae_table, statistic="percent_agreement", rater_b="human:b")["estimate"] == 1.0
    assert math.isnan(row(sae_table, statistic="fleiss_kappa")["estimate"])


# --------------------------------------------------------------------------------------------
# Random data against the reference implementations
# --------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=40),
)
def test_cohen_kappa_matches_sklearn(pairs: list[tuple[int, int]]) -> None:
    a = [first for first, _ in pairs]
    b = [second for _, second in pairs]

    estimate, reason = cohen_kappa(a, b, labels=[0, 1, 2])

    if len(set(a)) == 1 and set(a) == set(b):
        assert math.isnan(estimate) and reason == REASON_CONSTANT_RATERS
    else:
        assert reason is None
        assert estimate == pytest.approx(cohen_kappa_score(a, b, labels=[0, 1, 2]), abs=1e-12)


def test_fleiss_and_randolph_match_statsmodels_on_random_equal_raters() -> None:
    rng = np.random.default_rng(20240917)
    for _ in range(50):
        ratings = rng.integers(0, rng.integers(2, 5), size=(rng.integers(5, 60), 4))
        table, _ = aggregate_raters(ratings)
        if (table.sum(axis=0) > 0).sum() < 2:
            continue

        assert fleiss_kappa_from_counts(table).estimate == pytest.approx(
            fleiss_kappa(table, method="fleiss"), abs=1e-12
        )
        assert randolph_kappa(table).estimate == pytest.approx(
            fleiss_kappa(table, method="randolph"), abs=1e-12
        )


def test_fleiss_equal_raters_from_multinomial_votes_matches_statsmodels() -> None:
    rng = np.random.default_rng(7)
    table = rng.multinomial(6, [0.5, 0.3, 0.2], size=40)

    result = fleiss_kappa_from_counts(table)
    assert result.estimate == pytest.approx(fleiss_kappa(table), abs=1e-12)
    assert result.n_pairable == 240


def test_krippendorff_alpha_matches_package_on_random_unequal_coders() -> None:
    rng = np.random.default_rng(11)
    for _ in range(30):
        reliability = rng.integers(0, 3, size=(5, 40)).astype(float)
        reliability[rng.random(reliability.shape) < 0.4] = np.nan
        counts = np.stack(
            [(reliability == value).sum(axis=0) for value in (0.0, 1.0, 2.0)], axis=1
        )
        expected = krippendorff.alpha(
            reliability_data=reliability,
            value_domain=[0.0, 1.0, 2.0],
            level_of_measurement="nominal",
        )

        result = krippendorff_alpha_from_counts(counts)

        assert result.estimate == pytest.approx(expected, abs=1e-12)
        assert result.n_items == int((counts.sum(axis=1) >= 2).sum())
        assert result.n_pairable == int(counts[counts.sum(axis=1) >= 2].sum())
        # The reported components reproduce alpha (nominal: (A_o - A_e) / (1 - A_e)).
        assert (result.observed_agreement - result.expected_agreement) / (
            1 - result.expected_agreement
        ) == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Marker agreement on a synthetic span table
# --------------------------------------------------------------------------------------------

MARKERS = ["habitual_be", "finna", "copula_absence"]


def synthetic_markers(
    seed: int, *, equal: bool
) -> tuple[pd.DataFrame, dict[str, list[str]], dict[str, pd.DataFrame]]:
    """Random presence of three markers for the rules and three annotators.

    Returns the span table, the item lists and, per rater, the item-by-marker presence frame
    (the reference from which the spans were generated).
    """
    rng = np.random.default_rng(seed)
    ids = [f"u{number:03d}" for number in range(60)]
    if equal:
        items = {"alice": ids, "bob": ids, "carol": ids}
    else:
        items = {
            "alice": ids[:45],
            "bob": ids[15:],
            "carol": list(rng.choice(ids, size=40, replace=False)),
        }
    truth = rng.random((len(ids), len(MARKERS))) < 0.3
    presence: dict[str, pd.DataFrame] = {}
    for rater in ["rule", *items]:
        noise = rng.random(truth.shape) < 0.2
        presence[rater] = pd.DataFrame(truth ^ noise, index=ids, columns=MARKERS)
    records = []
    for rater, frame in presence.items():
        source = "rule" if rater == "rule" else f"human:{rater}"
        seen = ids if rater == "rule" else items[rater]
        for item in seen:
            for marker in MARKERS:
                if frame.loc[item, marker]:
                    # Two spans of one marker in one item count once.
                    for start in range(int(rng.integers(1, 3))):
                        records.append((item, marker, start, start + 2, "xx", source))
    spans = pd.DataFrame(records, columns=["id", "marker", "start", "end", "text", "source"])
    return spans, items, presence


def test_marker_agreement_pairwise_kappa_matches_sklearn() -> None:
    spans, items, presence = synthetic_markers(1, equal=False)

    table = marker_agreement(spans, items, markers=MARKERS)

    assert tuple(table.columns) == MARKER_AGREEMENT_COLUMNS
    annotators = ["human:alice", "human:bob", "human:carol"]
    pairs = [*itertools.combinations(annotators, 2), *((name, "rule") for name in annotators)]
    for marker in MARKERS:
        for rater_a, rater_b in pairs:
            names = [name.removeprefix("human:") for name in (rater_a, rater_b)]
            common = sorted(
                set.intersection(*(set(items.get(n, presence[n].index)) for n in names))
            )
            a = presence[names[0]].loc[common, marker].astype(int)
            b = presence[names[1]].loc[common, marker].astype(int)
            found = row(
                table, marker=marker, statistic="cohen_kappa", rater_a=rater_a, rater_b=rater_b
            )
            assert found["n"] == len(common)
            assert found["estimate"] == pytest.approx(
                cohen_kappa_score(a, b, labels=[0, 1]), abs=1e-12
            )
            agree = row(
                table,
                marker=marker,
                statistic="percent_agreement",
                rater_a=rater_a,
                rater_b=rater_b,
            )
            assert agree["estimate"] == pytest.approx(float((a == b).mean()), abs=1e-12)


def test_marker_agreement_unequal_raters_fleiss_not_applicable_alpha_matches_package() -> None:
    spans, items, presence = synthetic_markers(2, equal=False)

    table = marker_agreement(spans, items, markers=MARKERS)

    universe = sorted(set().union(*map(set, items.values())))
    for marker in MARKERS:
        fleiss = row(table, marker=marker, statistic="fleiss_kappa")
        assert math.isnan(fleiss["estimate"])
        assert fleiss["undefined_reason"] == REASON_UNEQUAL_RATERS
        assert fleiss["rater_a"] == ALL_ANNOTATORS and fleiss["n"] == len(universe)

        reliability = np.full((len(items), len(universe)), np.nan)
        for coder, (name, seen) in enumerate(items.items()):
            for position, item in enumerate(universe):
                if item in seen:
                    reliability[coder, position] = float(presence[name].loc[item, marker])
        expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
        alpha = row(table, marker=marker, statistic="krippendorff_alpha")
        assert alpha["estimate"] == pytest.approx(expected, abs=1e-12)
        assert alpha["n"] == int(((~np.isnan(reliability)).sum(axis=0) >= 2).sum())


def test_marker_agreement_equal_raters_fleiss_matches_statsmodels() -> None:
    spans, items, presence = synthetic_markers(3, equal=True)

    table = marker_agreement(spans, items, markers=MARKERS)

    ids = items["alice"]
    for marker in MARKERS:
        ratings = np.column_stack([presence[name].loc[ids, marker].astype(int) for name in items])
        counts, _ = aggregate_raters(ratings)
        found = row(table, marker=marker, statistic="fleiss_kappa")
        assert found["estimate"] == pytest.approx(fleiss_kappa(counts), abs=1e-12)
        assert found["n"] == len(ids)


def test_marker_agreement_items_without_spans_count_as_absent() -> None:
    spans = pd.DataFrame(
        {
            "id": ["a", "b", "a"],
            "marker": ["m", "m", "m"],
            "start": [0, 0, 0],
            "end": [1, 1, 1],
            "text": ["x", "x", "x"],
            "source": ["human:ann", "human:ann", "rule"],
        }
    )
    table = marker_agreement(spans, {"ann": ["a", "b", "c", "d"]}, markers=["m"])

    found = row(table, statistic="cohen_kappa", rater_a="human:ann", rater_b="rule")
    reference = cohen_kappa_score([1, 1, 0, 0], [1, 0, 0, 0], labels=[0, 1])
    assert found["n"] == 4 and found["estimate"] == pytest.approx(reference, abs=1e-12)


def test_marker_agreement_marker_without_spans_is_undefined_with_reason() -> None:
    spans, items, _ = synthetic_markers(4, equal=True)
    with pytest.warns(UndefinedMetricWarning, match="absent_marker/cohen_kappa"):
        table = marker_agreement(spans, items, markers=["absent_marker"])

    kappas = table.loc[table["statistic"].isin(["cohen_kappa", "fleiss_kappa"])]
    assert kappas["estimate"].isna().all()
    assert set(kappas["undefined_reason"]) == {REASON_CONSTANT_RATERS, REASON_ONE_CATEGORY}
    assert (table.loc[table["statistic"] == "percent_agreement", "estimate"] == 1.0).all()


@pytest.mark.parametrize(
    ("source", "item", "match"),
    [
        ("model", "u000", "neither 'rule' nor"),
        ("human:zed", "u000", "no item list"),
        ("human:alice", "u059", "not in the item list"),
    ],
)
def test_marker_agreement_bad_spans_raise_input_error(source: str, item: str, match: str) -> None:
    spans, items, _ = synthetic_markers(5, equal=False)
    bad = pd.DataFrame(
        [{"id": item, "marker": "finna", "start": 0, "end": 1, "text": "x", "source": source}]
    )
    with pytest.raises(InputError, match=match):
        marker_agreement(pd.concat([spans, bad], ignore_index=True), items, markers=MARKERS)


# --------------------------------------------------------------------------------------------
# Vote agreement: input errors and degenerate slices
# --------------------------------------------------------------------------------------------


def test_vote_agreement_input_errors_name_row_and_column() -> None:
    case = read_case("09")
    with pytest.raises(InputError, match="column 'text'"):
        vote_agreement(case[["votes_toxic", "text"]])
    bad = case[["votes_toxic", "votes_nontoxic"]].astype(float)
    bad.loc["v03", "votes_toxic"] = 1.5
    with pytest.raises(InputError, match="row v03, column 'votes_toxic'"):
        vote_agreement(bad)
    with pytest.raises(InputError, match="same item ids"):
        vote_agreement(
            case[["votes_toxic", "votes_nontoxic"]], groups=case["dialect_group"].iloc[:-1]
        )


def test_vote_agreement_unanimous_slice_is_undefined_not_one() -> None:
    votes = pd.DataFrame(
        {"toxic": [0, 0, 3, 1], "nontoxic": [3, 4, 0, 2]}, index=["a", "b", "c", "d"]
    )
    groups = pd.Series(["x", "x", "y", "y"], index=votes.index)

    with pytest.warns(UndefinedMetricWarning, match="x/krippendorff_alpha"):
        table = vote_agreement(votes, groups=groups)

    alpha = row(table, group="x", statistic="krippendorff_alpha")
    kappa = row(table, group="x", statistic="generalised_fleiss_kappa")
    assert (
        math.isnan(alpha["estimate"]) and "expected disagreement = 0" in alpha["undefined_reason"]
    )
    assert math.isnan(kappa["estimate"]) and kappa["undefined_reason"] == REASON_ONE_CATEGORY
    assert row(table, group="x", statistic="split_vote_share")["estimate"] == 0.0


# --------------------------------------------------------------------------------------------
# Real data: Davidson et al. (2017), 3-class crowd votes
# --------------------------------------------------------------------------------------------


def test_davidson_overall_krippendorff_alpha(davidson_csv) -> None:
    data = pd.read_csv(davidson_csv, index_col=0)
    votes = data[["hate_speech", "offensive_language", "neither"]]
    assert (votes.sum(axis=1) == data["count"]).all()

    table = vote_agreement(votes)

    expected = krippendorff.alpha(value_counts=votes.to_numpy(), level_of_measurement="nominal")
    alpha = row(table, group="overall", statistic="krippendorff_alpha")
    print(
        "\nDavidson 2017 overall Krippendorff alpha (nominal, 3 classes) = "
        f"{alpha['estimate']:.6f} on {alpha['n']} tweets, {alpha['n_pairable']} pairable votes"
    )
    assert alpha["estimate"] == pytest.approx(expected, abs=1e-12)
    assert alpha["n"] == len(votes) and alpha["n_pairable"] == int(data["count"].sum())
    assert alpha["estimate"] == pytest.approx(0.542799, abs=TOL)


def test_docstring_examples() -> None:
    failures, _ = doctest.testmod(agreement, verbose=False)
    assert failures == 0
