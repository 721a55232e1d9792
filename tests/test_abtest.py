"""Tests of fairaudit.abtest against plain loops, scikit-learn and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from fairaudit.abtest import (
    AB_COLUMNS,
    UnpairedItemsWarning,
    ab_verdict,
    bootstrap_indices,
    paired_ab_comparison,
    train_reference_model,
)
from fairaudit.exceptions import InputError

pytestmark = pytest.mark.filterwarnings("error::fairaudit.exceptions.FairauditWarning")

CONTRACT = (
    "group",
    "metric",
    "estimate_a",
    "estimate_b",
    "change",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "method",
)


def make_frames(n: int = 300, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    group = rng.choice(["aae", "sae", "uncertain"], size=n, p=[0.4, 0.4, 0.2])
    gold = rng.random(n) < 0.5
    # Scores rounded to one decimal, so ties occur and must count one half.
    score_a = np.round(
        np.clip(0.3 * gold + 0.25 * (group == "aae") + rng.random(n) * 0.6, 0, 1), 1
    )
    score_b = np.round(
        np.clip(0.3 * gold + 0.05 * (group == "aae") + rng.random(n) * 0.6, 0, 1), 1
    )
    base = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(n)],
            "dialect_group": group,
            "gold_toxic": gold,
            "conversation_id": rng.integers(0, 60, size=n),
        }
    )
    frame_a = base.assign(score=score_a, flagged=score_a >= 0.5)
    frame_b = base.assign(score=score_b, flagged=score_b >= 0.5)
    return frame_a, frame_b


def loop_metrics(frame: pd.DataFrame) -> dict[tuple[str, str], float]:
    """The metrics of one model on one (resampled) frame, one at a time with scikit-learn."""
    out: dict[tuple[str, str], float] = {}
    gold = frame["gold_toxic"].to_numpy()
    flag = frame["flagged"].to_numpy()
    score = frame["score"].to_numpy()
    group = frame["dialect_group"].to_numpy()

    def auc(mask: np.ndarray) -> float:
        if len(set(gold[mask])) < 2:
            return np.nan
        return roc_auc_score(gold[mask], score[mask])

    for name in ("aae", "sae", "uncertain"):
        g = group == name
        out[(name, "false_positive_rate")] = flag[g & ~gold].mean()
        out[(name, "subgroup_auc")] = auc(g)
        out[(name, "bpsn_auc")] = auc((g & ~gold) | (~g & gold))
    out[("aae-sae", "false_positive_rate_gap")] = (
        out[("aae", "false_positive_rate")] - out[("sae", "false_positive_rate")]
    )
    out[("overall", "roc_auc")] = auc(np.ones(len(gold), bool))
    out[("overall", "macro_f1")] = f1_score(gold, flag, average="macro")
    return out


def test_columns_and_point_estimates_match_sklearn() -> None:
    frame_a, frame_b = make_frames()
    table = paired_ab_comparison(
        frame_a, frame_b, group="dialect_group", gold="gold_toxic", n_boot=20, seed=1
    )
    assert tuple(table.columns[:10]) == CONTRACT
    assert tuple(table.columns) == AB_COLUMNS
    rows = table.set_index(["group", "metric"])
    for frame, column in ((frame_a, "estimate_a"), (frame_b, "estimate_b")):
        for key, value in loop_metrics(frame).items():
            assert rows.loc[key, column] == pytest.approx(value, abs=1e-12), key
    np.testing.assert_allclose(table["change"], table["estimate_b"] - table["estimate_a"])


def test_paired_bootstrap_matches_a_plain_loop() -> None:
    frame_a, frame_b = make_frames()
    n_boot, seed, alpha = 60, 17, 0.1
    table = paired_ab_comparison(
        frame_a,
        frame_b,
        group="dialect_group",
        gold="gold_toxic",
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    ).set_index(["group", "metric"])
    indices = bootstrap_indices(len(frame_a), n_boot=n_boot, seed=seed)
    changes: dict[tuple[str, str], list[float]] = {}
    for rows in indices:
        # The same resampled items for A and B: that is the pairing.
        metrics_a = loop_metrics(frame_a.iloc[rows])
        metrics_b = loop_metrics(frame_b.iloc[rows])
        for key in metrics_a:
            changes.setdefault(key, []).append(metrics_b[key] - metrics_a[key])
    for key, values in changes.items():
        valid = np.array(values)[~np.isnan(values)]
        low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
        assert table.loc[key, "ci_low"] == pytest.approx(low, abs=1e-12), key
        assert table.loc[key, "ci_high"] == pytest.approx(high, abs=1e-12), key
        assert table.loc[key, "n_boot_valid"] == valid.size


def test_cluster_bootstrap_matches_a_plain_loop() -> None:
    frame_a, frame_b = make_frames()
    n_boot, seed = 40, 5
    table = paired_ab_comparison(
        frame_a,
        frame_b,
        group="dialect_group",
        gold="gold_toxic",
        n_boot=n_boot,
        seed=seed,
        cluster="conversation_id",
    ).set_index(["group", "metric"])
    codes, uniques = pd.factorize(frame_a["conversation_id"].astype(object))
    members = [np.flatnonzero(codes == c) for c in range(len(uniques))]
    indices = bootstrap_indices(len(uniques), n_boot=n_boot, seed=seed)
    changes = []
    for drawn in indices:
        rows = np.concatenate([members[c] for c in drawn])
        a = loop_metrics(frame_a.iloc[rows])[("overall", "roc_auc")]
        b = loop_metrics(frame_b.iloc[rows])[("overall", "roc_auc")]
        changes.append(b - a)
    low, high = np.quantile(changes, [0.025, 0.975])
    assert table.loc[("overall", "roc_auc"), "ci_low"] == pytest.approx(low, abs=1e-12)
    assert table.loc[("overall", "roc_auc"), "ci_high"] == pytest.approx(high, abs=1e-12)
    assert "conversation_id" in table.loc[("overall", "roc_auc"), "method"]


def test_mcnemar_and_holm_match_statsmodels() -> None:
    frame_a, frame_b = make_frames()
    table = paired_ab_comparison(
        frame_a, frame_b, group="dialect_group", gold="gold_toxic", n_boot=20, seed=1
    )
    rows = table.set_index(["group", "metric"])
    negatives = (frame_a["dialect_group"] == "aae") & ~frame_a["gold_toxic"]
    crosstab = pd.crosstab(
        frame_a.loc[negatives, "flagged"], frame_b.loc[negatives, "flagged"]
    ).reindex(index=[True, False], columns=[True, False], fill_value=0)
    expected = mcnemar(crosstab.to_numpy(), exact=True).pvalue
    assert rows.loc[("aae", "false_positive_rate"), "p_value"] == pytest.approx(expected)
    assert "McNemar exact" in rows.loc[("aae", "false_positive_rate"), "method"]
    tested = table["p_value"].notna()
    holm = multipletests(table.loc[tested, "p_value"], method="holm")[1]
    np.testing.assert_allclose(table.loc[tested, "p_adjusted"], holm)


def test_restricts_to_shared_items_and_reports_the_count() -> None:
    frame_a, frame_b = make_frames()
    only_a = frame_a.iloc[:250]
    shifted_b = frame_b.iloc[30:]
    with pytest.warns(UnpairedItemsWarning, match="220 shared items"):
        table = paired_ab_comparison(
            only_a, shifted_b, group="dialect_group", gold="gold_toxic", n_boot=30, seed=2
        )
    assert table.attrs["n_shared"] == 220
    assert table.attrs["n_only_a"] == 30
    assert table.attrs["n_only_b"] == 50
    explicit = paired_ab_comparison(
        frame_a.iloc[30:250],
        frame_b.iloc[30:250],
        group="dialect_group",
        gold="gold_toxic",
        n_boot=30,
        seed=2,
    )
    pd.testing.assert_frame_equal(table, explicit, check_like=False)


def test_no_shared_items_is_an_input_error() -> None:
    frame_a, frame_b = make_frames()
    with pytest.raises(InputError, match="share no item"):
        paired_ab_comparison(
            frame_a.iloc[:100], frame_b.iloc[100:], group="dialect_group", gold="gold_toxic"
        )


def test_disagreeing_gold_labels_are_an_input_error() -> None:
    frame_a, frame_b = make_frames()
    frame_b = frame_b.assign(gold_toxic=~frame_b["gold_toxic"])
    with pytest.raises(InputError, match="different gold labels"):
        paired_ab_comparison(frame_a, frame_b, group="dialect_group", gold="gold_toxic")


def test_non_inferiority_uses_the_margin() -> None:
    frame_a, _ = make_frames()
    table = paired_ab_comparison(
        frame_a, frame_a.copy(), group="dialect_group", gold="gold_toxic", n_boot=20, seed=1
    )
    rows = table.set_index(["group", "metric"])
    # Identical models: every change and interval is 0, so B is non-inferior at any margin.
    assert rows.loc[("overall", "roc_auc"), "non_inferior"]
    assert rows.loc[("overall", "macro_f1"), "non_inferior"]
    assert rows["non_inferior"].isna().sum() == len(rows) - 2


def test_verdict_is_built_from_the_numbers() -> None:
    frame_a, frame_b = make_frames()
    table = paired_ab_comparison(
        frame_a, frame_b, group="dialect_group", gold="gold_toxic", n_boot=200, seed=4
    )
    gap = table.set_index(["group", "metric"]).loc[("aae-sae", "false_positive_rate_gap")]
    verdict = ab_verdict(table)
    assert f"from {100 * gap['estimate_a']:.1f} to {100 * gap['estimate_b']:.1f} points" in verdict
    assert "ROC AUC" in verdict and "macro F1" in verdict
    assert ("shrank" in verdict) == (gap["ci_high"] < 0 and gap["estimate_a"] > 0)


def test_reference_model_uses_sample_weight() -> None:
    texts = ["you are great", "you are awful", "great day", "awful day", "so great", "so awful"]
    labels = [0, 1, 0, 1, 0, 1]
    plain = train_reference_model(texts * 5, labels * 5, seed=0)
    again = train_reference_model(texts * 5, labels * 5, seed=0)
    weighted = train_reference_model(
        texts * 5, labels * 5, sample_weight=np.tile([5.0, 1, 1, 1, 1, 1], 5), seed=0
    )
    probe = ["you are"]
    assert plain.predict_proba(probe)[0, 1] == again.predict_proba(probe)[0, 1]
    assert weighted.predict_proba(probe)[0, 1] < plain.predict_proba(probe)[0, 1]


def test_bootstrap_p_has_no_resampling_floor() -> None:
    # A planted, large change in the aae FPR gap: its p must not stop at 2 / (n_boot + 1),
    # or a Holm correction would rank a large effect behind a small one.
    frame_a, _ = make_frames(n=2000, seed=5)
    frame_b = frame_a.copy()
    aae_negatives = (frame_b["dialect_group"] == "aae") & ~frame_b["gold_toxic"]
    frame_b.loc[aae_negatives, "flagged"] = False
    n_boot = 200
    table = paired_ab_comparison(
        frame_a, frame_b, group="dialect_group", gold="gold_toxic", n_boot=n_boot, seed=2
    )
    gap = table[table["metric"] == "false_positive_rate_gap"].iloc[0]
    assert gap["change"] < -0.2
    assert gap["p_value"] < 2 / (n_boot + 1)
    assert gap["ci_high"] < 0
