"""Tests of fairaudit.bootstrap against independent references.

References: fairlearn ``MetricFrame`` (and scikit-learn's precision) for the estimates,
``pandas.crosstab`` for the counts, plain row- and cluster-resampling loops written here for the
intervals, and simulations with a known true rate for coverage.
"""

from __future__ import annotations

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
from sklearn.metrics import precision_score

from fairaudit.bootstrap import (
    BOOTSTRAP_COLUMNS,
    CELLS,
    bootstrap_counts,
    bootstrap_metrics,
    cell_counts,
    metrics_from_cells,
)
from fairaudit.disparity import OVERALL
from fairaudit.exceptions import InputError, UndefinedMetricWarning

GROUPS = ("aae", "other", "sae")


def _frame(
    rng: np.random.Generator,
    *,
    n: int,
    n_clusters: int | None = None,
    cluster_effect: float = 0.0,
) -> pd.DataFrame:
    """Messages in three groups, two models; clusters nested in groups when asked."""
    if n_clusters is None:
        group = rng.choice(GROUPS, size=n, p=[0.3, 0.3, 0.4])
        conversation = np.arange(n)
        shift = np.zeros(n)
    else:
        cluster_group = rng.choice(GROUPS, size=n_clusters, p=[0.3, 0.3, 0.4])
        conversation = rng.integers(0, n_clusters, size=n)
        group = cluster_group[conversation]
        shift = (cluster_effect * rng.normal(size=n_clusters))[conversation]
    gold = rng.random(n) < 0.35
    logit = -1.2 + 0.6 * (group == "aae") + 2.0 * gold + shift
    flag_a = rng.random(n) < 1 / (1 + np.exp(-logit))
    flag_b = rng.random(n) < 1 / (1 + np.exp(-(logit - 0.4)))
    return pd.DataFrame(
        {
            "group": group,
            "gold": gold,
            "model_a": flag_a.astype(int),
            "model_b": flag_b,
            "conversation": conversation,
        },
        index=pd.Index([f"m{i}" for i in range(n)]),
    )


def _rates(gold: np.ndarray, flagged: np.ndarray) -> dict[str, float]:
    """The four rates written out plainly, NaN when undefined."""
    negatives, positives, n_flagged = (~gold).sum(), gold.sum(), flagged.sum()
    return {
        "false_positive_rate": (flagged & ~gold).sum() / negatives if negatives else np.nan,
        "false_negative_rate": (~flagged & gold).sum() / positives if positives else np.nan,
        "flag_rate": flagged.mean() if gold.size else np.nan,
        "precision": (flagged & gold).sum() / n_flagged if n_flagged else np.nan,
    }


def _rows(result: pd.DataFrame, **where: object) -> pd.DataFrame:
    mask = np.ones(len(result), dtype=bool)
    for column, value in where.items():
        mask &= (result[column] == value).to_numpy()
    return result[mask]


# --------------------------------------------------------------------------------------------
# Counts and estimates
# --------------------------------------------------------------------------------------------


def test_cell_counts_match_crosstab() -> None:
    frame = _frame(np.random.default_rng(1), n=3000, n_clusters=400)
    counts = cell_counts(
        frame, group="group", gold="gold", flagged=["model_a", "model_b"], cluster="conversation"
    )
    assert counts.models == ("model_a", "model_b")
    assert counts.groups == GROUPS
    assert counts.n_rows == 3000
    table = counts.table()
    for model in counts.models:
        expected = pd.crosstab(
            frame["group"], [frame["gold"].astype(int), frame[model].astype(int)]
        )
        for group in GROUPS:
            for cell_index, cell in enumerate(CELLS):
                key = (cell_index // 2, cell_index % 2)
                want = int(expected.loc[group, key]) if key in expected.columns else 0
                got = _rows(table, model=model, group=group, cell=cell)["count"].item()
                assert got == want

    # Per-cluster counts add up to the group counts and every cluster sits in one group.
    per_cluster = counts.cluster_counts.toarray().reshape(counts.n_clusters, 3, -1)
    np.testing.assert_array_equal(per_cluster.sum(axis=0), counts.pattern_counts)
    assert not counts.clusters_span_groups
    first_group = frame.groupby("conversation")["group"].first()
    assert counts.n_clusters == first_group.size
    np.testing.assert_array_equal(
        np.bincount(counts.cluster_group, minlength=3),
        first_group.value_counts().reindex(GROUPS).to_numpy(),
    )


def test_estimates_match_fairlearn_metric_frame() -> None:
    frame = _frame(np.random.default_rng(2), n=5000)
    counts = cell_counts(frame, group="group", gold="gold", flagged=["model_a", "model_b"])
    result = bootstrap_metrics(counts, n_boot=50, reference="sae")
    assert tuple(result.columns) == BOOTSTRAP_COLUMNS

    for model in ("model_a", "model_b"):
        reference = MetricFrame(
            metrics={
                "false_positive_rate": false_positive_rate,
                "false_negative_rate": false_negative_rate,
                "flag_rate": selection_rate,
                "precision": lambda t, p: precision_score(t, p, zero_division=np.nan),
            },
            y_true=frame["gold"].astype(int),
            y_pred=frame[model].astype(int),
            sensitive_features=frame["group"],
        )
        for metric in ("false_positive_rate", "false_negative_rate", "flag_rate", "precision"):
            for group in GROUPS:
                row = _rows(result, model=model, group=group, metric=metric, kind="rate")
                assert row["estimate"].item() == pytest.approx(
                    reference.by_group.loc[group, metric], abs=1e-12
                )
            overall = _rows(result, model=model, group=OVERALL, metric=metric, kind="rate")
            assert overall["estimate"].item() == pytest.approx(reference.overall[metric])
            gap = reference.by_group[metric] - reference.by_group.loc["sae", metric]
            for group in ("aae", "other"):
                row = _rows(result, model=model, group=group, metric=metric, kind="difference")
                assert row["estimate"].item() == pytest.approx(gap[group], abs=1e-12)


def test_result_names_method_sizes_and_seed() -> None:
    frame = _frame(np.random.default_rng(3), n=2000, n_clusters=300)
    counts = cell_counts(
        frame, group="group", gold="gold", flagged="model_a", cluster="conversation"
    )
    stratified = bootstrap_metrics(counts, method="stratified", n_boot=100, seed=7)
    clustered = bootstrap_metrics(counts, n_boot=100, seed=7, reference="sae")
    assert set(stratified["interval_method"]) == {"bootstrap_percentile_stratified"}
    assert set(clustered["interval_method"]) == {"bootstrap_percentile_clustered"}
    assert set(clustered["n_boot"]) == {100} and set(clustered["seed"]) == {"7"}
    assert stratified["n_clusters"].isna().all()
    clusters = frame.groupby("group")["conversation"].nunique()
    rate_rows = _rows(clustered, kind="rate", metric="false_positive_rate")
    for group in GROUPS:
        row = _rows(rate_rows, group=group)
        assert row["n_clusters"].item() == clusters[group]
        assert row["n"].item() == int((~frame.loc[frame["group"] == group, "gold"]).sum())
    assert _rows(rate_rows, group=OVERALL)["n_clusters"].item() == frame["conversation"].nunique()
    differences = _rows(clustered, kind="difference")
    assert set(differences["test_method"]) == {"bootstrap_percentile_inversion"}
    assert set(differences["correction"]) == {"holm"}
    assert (differences["p_adjusted"] >= differences["p_value"]).all()


# --------------------------------------------------------------------------------------------
# Agreement with plain resampling loops
# --------------------------------------------------------------------------------------------


def _assert_intervals_agree(
    fast: np.ndarray, naive: np.ndarray, *, alpha: float = 0.05, label: str = ""
) -> None:
    """Percentile intervals of two independent bootstrap runs agree to Monte Carlo error.

    The standard error of a sample quantile from B replicates is about
    sqrt(q (1 - q) / B) / f(x_q); for a near-normal bootstrap distribution with spread s at
    q = 0.025 that is about 0.042 s at B = 4,000, so two runs differ by about 0.06 s. The
    tolerance is 5 such standard errors.
    """
    spread = naive.std()
    tolerance = 5 * 0.06 * spread * np.sqrt(4000 / naive.size)
    for q in (alpha / 2, 1 - alpha / 2):
        assert abs(np.quantile(fast, q) - np.quantile(naive, q)) < tolerance, (label, q)
    assert fast.std() == pytest.approx(spread, rel=0.1), label


def test_multinomial_bootstrap_agrees_with_row_resampling_loop() -> None:
    frame = _frame(np.random.default_rng(4), n=900)
    counts = cell_counts(frame, group="group", gold="gold", flagged=["model_a", "model_b"])
    n_boot = 4000
    replicates = bootstrap_counts(counts, method="stratified", n_boot=n_boot, seed=11)

    # The plain way: resample the rows of each group with replacement, recompute the rates.
    rng = np.random.default_rng(12)
    gold = frame["gold"].to_numpy()
    flags = {m: frame[m].to_numpy(dtype=bool) for m in ("model_a", "model_b")}
    rows_of = {g: np.flatnonzero(frame["group"].to_numpy() == g) for g in GROUPS}
    naive = {(m, g, metric): [] for m in flags for g in GROUPS for metric in _rates(gold, gold)}
    for _ in range(n_boot):
        for g, rows in rows_of.items():
            drawn = rng.choice(rows, size=rows.size, replace=True)
            for m, flagged in flags.items():
                for metric, value in _rates(gold[drawn], flagged[drawn]).items():
                    naive[(m, g, metric)].append(value)

    for (m, g, metric), values in naive.items():
        numerator, denominator = metrics_from_cells(
            replicates[:, counts.models.index(m), counts.groups.index(g)], metric
        )
        _assert_intervals_agree(
            numerator / denominator, np.asarray(values), label=f"{m}/{g}/{metric}"
        )

    # Group sizes are fixed (stratified) and both models see the same rows (paired).
    sizes = replicates.sum(axis=3)
    np.testing.assert_array_equal(sizes, np.broadcast_to(counts.counts.sum(axis=2), sizes.shape))
    gold_counts = replicates[..., 2] + replicates[..., 3]
    np.testing.assert_array_equal(gold_counts[:, 0], gold_counts[:, 1])


def test_clustered_bootstrap_agrees_with_cluster_resampling_loop() -> None:
    frame = _frame(np.random.default_rng(5), n=3000, n_clusters=240, cluster_effect=1.0)
    counts = cell_counts(
        frame, group="group", gold="gold", flagged=["model_a", "model_b"], cluster="conversation"
    )
    n_boot = 4000
    fast = bootstrap_metrics(counts, method="clustered", n_boot=n_boot, seed=3, reference="sae")
    replicates = bootstrap_counts(counts, method="clustered", n_boot=n_boot, seed=3)

    # The plain way: within each group, draw its conversations with replacement and stack
    # their messages.
    rng = np.random.default_rng(13)
    gold = frame["gold"].to_numpy()
    flagged = frame["model_a"].to_numpy(dtype=bool)
    members = frame.groupby("conversation").indices
    clusters_of = {
        g: np.array(sorted(frame.loc[frame["group"] == g, "conversation"].unique()))
        for g in GROUPS
    }
    naive_fpr = {g: [] for g in GROUPS}
    naive_difference = []
    for _ in range(n_boot):
        for g, clusters in clusters_of.items():
            drawn = rng.choice(clusters, size=clusters.size, replace=True)
            rows = np.concatenate([members[c] for c in drawn])
            naive_fpr[g].append(_rates(gold[rows], flagged[rows])["false_positive_rate"])
        naive_difference.append(naive_fpr["aae"][-1] - naive_fpr["sae"][-1])

    for g in GROUPS:
        cells = replicates[:, 0, counts.groups.index(g)]
        fast_fpr = cells[:, 1] / (cells[:, 0] + cells[:, 1])
        _assert_intervals_agree(fast_fpr, np.asarray(naive_fpr[g]), label=g)
        row = _rows(fast, model="model_a", group=g, metric="false_positive_rate", kind="rate")
        assert row["ci_low"].item() == pytest.approx(np.quantile(fast_fpr, 0.025))
        assert row["ci_high"].item() == pytest.approx(np.quantile(fast_fpr, 0.975))

    fpr_aae = np.divide(*metrics_from_cells(replicates[:, 0, 0], "false_positive_rate"))
    fpr_sae = np.divide(*metrics_from_cells(replicates[:, 0, 2], "false_positive_rate"))
    fast_difference = fpr_aae - fpr_sae
    _assert_intervals_agree(fast_difference, np.asarray(naive_difference), label="difference")


def test_clustered_intervals_are_wider_under_intra_cluster_correlation() -> None:
    frame = _frame(np.random.default_rng(6), n=20_000, n_clusters=400, cluster_effect=2.0)
    counts = cell_counts(
        frame, group="group", gold="gold", flagged="model_a", cluster="conversation"
    )
    iid = bootstrap_metrics(counts, method="stratified", n_boot=1000, reference="sae")
    clustered = bootstrap_metrics(counts, method="clustered", n_boot=1000, reference="sae")
    width_iid = iid["ci_high"] - iid["ci_low"]
    width_clustered = clustered["ci_high"] - clustered["ci_low"]
    fpr = (iid["metric"] == "false_positive_rate").to_numpy()
    # About 50 messages per conversation and a strong conversation effect: a design effect
    # of several, so intervals at least 1.5 times as wide.
    assert (width_clustered[fpr] > 1.5 * width_iid[fpr]).all()


def test_clusters_spanning_groups_are_resampled_together() -> None:
    rng = np.random.default_rng(7)
    frame = _frame(rng, n=2000)
    frame["conversation"] = rng.integers(0, 150, size=len(frame))
    counts = cell_counts(
        frame, group="group", gold="gold", flagged="model_a", cluster="conversation"
    )
    assert counts.clusters_span_groups
    replicates = bootstrap_counts(counts, method="clustered", n_boot=200, seed=1)
    group_sizes = replicates[:, 0].sum(axis=2)
    assert (group_sizes.std(axis=0) > 0).all()  # unstratified: group sizes vary


# --------------------------------------------------------------------------------------------
# Coverage and reproducibility
# --------------------------------------------------------------------------------------------


def test_percentile_interval_covers_true_false_positive_rate() -> None:
    rng = np.random.default_rng(8)
    true_fpr, n_sims, n_negatives = 0.2, 400, 400
    covered = 0
    for sim in range(n_sims):
        gold = np.r_[np.zeros(n_negatives, bool), np.ones(200, bool)]
        flagged = np.where(gold, rng.random(gold.size) < 0.7, rng.random(gold.size) < true_fpr)
        frame = pd.DataFrame({"group": "all", "gold": gold, "flagged": flagged})
        counts = cell_counts(frame, group="group", gold="gold", flagged="flagged")
        result = bootstrap_metrics(counts, n_boot=500, seed=sim, metrics=["false_positive_rate"])
        row = result.iloc[0]
        covered += row["ci_low"] <= true_fpr <= row["ci_high"]
    # 95% nominal; 3 Monte Carlo standard errors of a proportion over 400 simulations.
    margin = 3 * np.sqrt(0.95 * 0.05 / n_sims)
    assert abs(covered / n_sims - 0.95) < margin


def test_clustered_interval_covers_where_iid_does_not() -> None:
    rng = np.random.default_rng(9)
    n_sims, n_clusters, size, true_fpr = 200, 150, 20, 0.2
    logit_shift = 1.5 * rng.normal(size=(n_sims, n_clusters))
    # The true FPR of the population: average over the cluster effect distribution.
    draws = 1.5 * rng.normal(size=2_000_000)
    base = np.log(true_fpr / (1 - true_fpr))
    population_fpr = float(np.mean(1 / (1 + np.exp(-(base + draws)))))
    covered = {"stratified": 0, "clustered": 0}
    for sim in range(n_sims):
        conversation = np.repeat(np.arange(n_clusters), size)
        p = 1 / (1 + np.exp(-(base + logit_shift[sim][conversation])))
        frame = pd.DataFrame(
            {
                "group": "all",
                "gold": False,
                "flagged": rng.random(conversation.size) < p,
                "conversation": conversation,
            }
        )
        counts = cell_counts(
            frame, group="group", gold="gold", flagged="flagged", cluster="conversation"
        )
        for method in covered:
            result = bootstrap_metrics(
                counts, method=method, n_boot=400, seed=sim, metrics=["false_positive_rate"]
            )
            row = result.iloc[0]
            covered[method] += row["ci_low"] <= population_fpr <= row["ci_high"]
    margin = 3 * np.sqrt(0.95 * 0.05 / n_sims)
    assert abs(covered["clustered"] / n_sims - 0.95) < margin
    assert covered["stratified"] / n_sims < 0.8


def test_seeds_reproduce_and_differ() -> None:
    frame = _frame(np.random.default_rng(10), n=1500, n_clusters=200)
    counts = cell_counts(
        frame, group="group", gold="gold", flagged=["model_a", "model_b"], cluster="conversation"
    )
    for method in ("stratified", "clustered"):
        first = bootstrap_metrics(counts, method=method, n_boot=200, seed=5, reference="sae")
        again = bootstrap_metrics(counts, method=method, n_boot=200, seed=5, reference="sae")
        other = bootstrap_metrics(counts, method=method, n_boot=200, seed=6, reference="sae")
        pd.testing.assert_frame_equal(first, again)
        assert not np.allclose(first["ci_low"], other["ci_low"])
        seeded = bootstrap_counts(counts, method=method, n_boot=50, seed=np.random.SeedSequence(5))
        np.testing.assert_array_equal(
            seeded, bootstrap_counts(counts, method=method, n_boot=50, seed=5)
        )
    fresh = bootstrap_metrics(counts, n_boot=20, seed=None)
    entropy = int(fresh["seed"].iloc[0])
    pd.testing.assert_frame_equal(
        bootstrap_metrics(counts, n_boot=20, seed=entropy).drop(columns="seed"),
        fresh.drop(columns="seed"),
    )


# --------------------------------------------------------------------------------------------
# Undefined metrics and bad input
# --------------------------------------------------------------------------------------------


def test_undefined_metrics_are_nan_with_reason() -> None:
    frame = pd.DataFrame(
        {
            "group": ["a"] * 40 + ["b"] * 40,
            "gold": [0] * 40 + [0] * 20 + [1] * 20,
            "flagged": [0, 1] * 20 + [0, 1] * 20,
        }
    )
    counts = cell_counts(frame, group="group", gold="gold", flagged="flagged")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = bootstrap_metrics(counts, n_boot=100, reference="a")
    fnr_a = _rows(result, group="a", metric="false_negative_rate", kind="rate")
    assert np.isnan(fnr_a["estimate"].item()) and np.isnan(fnr_a["ci_low"].item())
    assert fnr_a["undefined_reason"].item() == "no_positives"
    difference = _rows(result, group="b", metric="false_negative_rate", kind="difference")
    assert difference["undefined_reason"].item() == "reference_no_positives"
    assert np.isnan(difference["p_value"].item())
    precision_a = _rows(result, group="a", metric="precision", kind="rate")
    assert precision_a["estimate"].item() == 0.0
    ratio = _rows(result, group="b", metric="precision", kind="ratio")
    assert ratio["undefined_reason"].item() == "zero_denominator"
    fpr_b = _rows(result, group="b", metric="false_positive_rate", kind="rate")
    assert fpr_b["undefined_reason"].item() is None


def test_replicates_where_a_rate_is_undefined_are_reported() -> None:
    frame = pd.DataFrame({"group": "a", "gold": [1] + [0] * 30, "flagged": [1] + [0, 1] * 15})
    counts = cell_counts(frame, group="group", gold="gold", flagged="flagged")
    with pytest.warns(UndefinedMetricWarning, match="undefined in some bootstrap replicates"):
        result = bootstrap_metrics(counts, n_boot=200, metrics=["false_negative_rate"])
    assert result["n_boot_defined"].iloc[0] < 200


def test_bad_input_is_named() -> None:
    frame = _frame(np.random.default_rng(11), n=100, n_clusters=10)
    with pytest.raises(InputError, match="missing column"):
        cell_counts(frame, group="group", gold="gold", flagged="model_c")
    frame.loc["m3", "conversation"] = np.nan
    with pytest.raises(InputError, match="no cluster id"):
        cell_counts(frame, group="group", gold="gold", flagged="model_a", cluster="conversation")
    counts = cell_counts(frame, group="group", gold="gold", flagged="model_a")
    with pytest.raises(ValueError, match="needs counts made with a cluster column"):
        bootstrap_metrics(counts, method="clustered")
    with pytest.raises(InputError, match="reference group"):
        bootstrap_metrics(counts, reference="nope")


def test_group_order_follows_categories_or_sorted_labels() -> None:
    frame = pd.DataFrame({"gold": [0, 1] * 6, "flagged": [1, 0, 0, 1] * 3})
    frame["group"] = pd.Categorical(["z", "a", "m"] * 4, categories=["z", "m", "a", "unused"])
    counts = cell_counts(frame, group="group", gold="gold", flagged="flagged")
    assert counts.groups == ("z", "m", "a")
    frame["group"] = [10, 9, 10] * 4
    counts = cell_counts(frame, group="group", gold="gold", flagged="flagged")
    assert counts.groups == ("10", "9")
    np.testing.assert_array_equal(counts.pattern_counts.sum(axis=1), [8, 4])
