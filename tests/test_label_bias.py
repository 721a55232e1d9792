"""Tests of fairaudit.label_bias on a hand-made vote table and on Davidson et al. (2017)."""

from __future__ import annotations

from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from fairaudit.exceptions import InputError
from fairaudit.label_bias import LABEL_BIAS_COLUMNS, label_bias_table
from fairaudit.markers import annotate, load_marker_set

DAVIDSON_VOTES = ["hate_speech", "offensive_language", "neither"]


def hand_votes() -> tuple[pd.DataFrame, pd.Series]:
    votes = pd.DataFrame(
        [[0, 3, 0], [1, 1, 1], [0, 1, 2], [0, 0, 3], [0, 2, 2], [3, 0, 0]],
        columns=DAVIDSON_VOTES,
        index=[f"i{k}" for k in range(1, 7)],
    )
    groups = pd.Series(["aae", "aae", "aae", "sae", "sae", "sae"], index=votes.index)
    return votes, groups


def test_hand_table() -> None:
    votes, groups = hand_votes()
    table = label_bias_table(votes, groups, reference="sae").set_index("group")
    assert tuple(table.reset_index().columns) == LABEL_BIAS_COLUMNS
    assert list(table.index) == ["overall", "aae", "sae"]

    # aae: i1 (3 of 3 harmful), i2 (2 of 3) are harmful by majority, i3 (1 of 3) is not.
    aae = table.loc["aae"]
    assert aae["majority_harmful"] == 2 and aae["majority_harmful_share"] == pytest.approx(2 / 3)
    low, high = proportion_confint(2, 3, method="wilson")
    assert (aae["ci_low"], aae["ci_high"]) == pytest.approx((low, high))
    assert aae["majority_ties"] == 0
    assert aae["harmful_vote_share"] == pytest.approx(6 / 9)
    assert aae["harmful_split_share"] == pytest.approx(2 / 3)
    assert aae["split_vote_share"] == pytest.approx(2 / 3)
    assert aae["harmful_categories"] == ("hate_speech", "offensive_language")

    # sae: i6 (3 hate votes) is harmful, i5 (2 of 4) a tie, i4 not; i6 is unanimous.
    sae = table.loc["sae"]
    assert sae["majority_harmful"] == 1 and sae["majority_ties"] == 1
    assert sae["harmful_vote_share"] == pytest.approx(5 / 10)
    assert sae["harmful_split_share"] == pytest.approx(1 / 3)
    assert sae["split_vote_share"] == pytest.approx(1 / 3)

    overall = table.loc["overall"]
    assert overall["majority_harmful_share"] == pytest.approx(3 / 6)
    assert overall["harmful_vote_share"] == pytest.approx(11 / 19)
    assert overall["n_votes"] == 19

    for name, rows in (("aae", votes.iloc[:3]), ("sae", votes.iloc[3:]), ("overall", votes)):
        expected = krippendorff.alpha(value_counts=rows.to_numpy(), level_of_measurement="nominal")
        assert table.loc[name, "krippendorff_alpha"] == pytest.approx(expected, abs=1e-12)

    low, high = confint_proportions_2indep(2, 3, 1, 3, method="newcomb", compare="diff")
    assert aae["difference"] == pytest.approx(1 / 3)
    assert (aae["difference_ci_low"], aae["difference_ci_high"]) == pytest.approx((low, high))
    assert np.isnan(sae["difference"]) and np.isnan(overall["difference"])


def test_harmful_must_be_named_for_unknown_columns() -> None:
    votes, groups = hand_votes()
    renamed = votes.set_axis(["a", "b", "c"], axis=1)
    with pytest.raises(InputError, match="harmful"):
        label_bias_table(renamed, groups)
    table = label_bias_table(renamed, groups, harmful=["a", "b"])
    assert table["majority_harmful"].tolist() == [3, 2, 1]
    with pytest.raises(InputError, match="reference"):
        label_bias_table(votes, groups, reference="xyz")


def test_case_vote_columns_and_missing_group() -> None:
    votes = pd.DataFrame(
        {"votes_toxic": [2, 0, 1, 3], "votes_nontoxic": [1, 3, 2, 0]},
        index=["a", "b", "c", "d"],
    )
    groups = pd.Series(["aae", "sae", None, "sae"], index=votes.index)
    table = label_bias_table(votes, groups).set_index("group")
    assert list(table.index) == ["overall", "<missing>", "aae", "sae"]
    assert table.loc["sae", "majority_harmful_share"] == pytest.approx(0.5)
    assert table.loc["<missing>", "majority_harmful"] == 0


@pytest.fixture(scope="module")
def davidson(davidson_csv: Path) -> pd.DataFrame:
    data = pd.read_csv(davidson_csv, index_col=0)
    data.index = data.index.astype(str)
    spans = annotate(data["tweet"].astype(str), load_marker_set())
    marked = data.index.isin(spans["id"].unique())
    data["group"] = np.where(marked, "aae_marker", "no_marker")
    return data


def test_davidson(davidson: pd.DataFrame) -> None:
    votes = davidson[DAVIDSON_VOTES]
    table = label_bias_table(votes, davidson["group"], reference="no_marker").set_index("group")

    harmful = votes["hate_speech"] + votes["offensive_language"]
    for name in ("overall", "aae_marker", "no_marker"):
        rows = davidson if name == "overall" else davidson[davidson["group"] == name]
        h = harmful.loc[rows.index]
        n = rows["count"]
        assert table.loc[name, "n_items"] == len(rows)
        assert table.loc[name, "majority_harmful"] == int((2 * h > n).sum())
        assert table.loc[name, "majority_ties"] == int((2 * h == n).sum())
        assert table.loc[name, "harmful_vote_share"] == pytest.approx(h.sum() / n.sum())
        assert table.loc[name, "harmful_split_share"] == pytest.approx(((h > 0) & (h < n)).mean())
        expected = krippendorff.alpha(
            value_counts=votes.loc[rows.index].to_numpy(), level_of_measurement="nominal"
        )
        assert table.loc[name, "krippendorff_alpha"] == pytest.approx(expected, abs=1e-12)
        # The majority rule pools hate and offensive votes; Davidson's class is the plurality.
        plurality = rows["class"].isin([0, 1]).mean()
        print(
            f"\n{name}: n={len(rows)} majority harmful="
            f"{table.loc[name, 'majority_harmful_share']:.4f} "
            f"[{table.loc[name, 'ci_low']:.4f}, {table.loc[name, 'ci_high']:.4f}] "
            f"(Davidson class 0/1: {plurality:.4f}), ties={table.loc[name, 'majority_ties']}, "
            f"split={table.loc[name, 'split_vote_share']:.4f}, "
            f"alpha={table.loc[name, 'krippendorff_alpha']:.4f}"
        )
    assert table.loc["overall", "krippendorff_alpha"] == pytest.approx(0.542799, abs=1e-6)
    diff = table.loc["aae_marker"]
    print(
        f"aae_marker - no_marker majority harmful: {diff['difference']:.4f} "
        f"[{diff['difference_ci_low']:.4f}, {diff['difference_ci_high']:.4f}]"
    )
    assert diff["difference_ci_low"] < diff["difference"] < diff["difference_ci_high"]
