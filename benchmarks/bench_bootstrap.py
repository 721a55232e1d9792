"""Benchmark count-based bootstrap intervals against fairlearn ``MetricFrame(n_boot=...)``.

Builds synthetic messages (3 groups, 2 models, conversations nested in groups with a
conversation effect on flagging), then times in one process:

- :func:`fairaudit.bootstrap.cell_counts` (counting once, with the conversation column);
- :func:`fairaudit.bootstrap.bootstrap_metrics` with 1,000 stratified and 1,000 clustered
  replicates (4 rates per model and group, differences, ratios and bootstrap p-values against
  the reference group, both models);
- fairlearn ``MetricFrame`` on false positive rate, false negative rate and selection rate of
  the first model, without and with ``n_boot`` replicates (row resampling).

It prints the seconds per replicate of each and their ratio, and checks that fairlearn's
intervals lie where percentile intervals from the same number of replicates of the count-based
bootstrap fall (the Monte Carlo spread of a 20-replicate interval is large, so the check is
against that spread, estimated from 500 sets of 20 count-based replicates).

Usage::

    .venv/bin/python benchmarks/bench_bootstrap.py --n 1000000 --clusters 100000
"""

from __future__ import annotations

import argparse
import logging
import platform
import time

import fairlearn
import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
)

from fairaudit.bootstrap import (
    bootstrap_counts,
    bootstrap_metrics,
    cell_counts,
    metrics_from_cells,
)

logger = logging.getLogger("bench_bootstrap")

GROUPS = np.array(["aae", "other", "sae"])
FAIRLEARN_METRICS = {
    "false_positive_rate": false_positive_rate,
    "false_negative_rate": false_negative_rate,
    "flag_rate": selection_rate,
}


def synthetic(n: int, n_clusters: int, seed: int) -> pd.DataFrame:
    """Messages in conversations nested in 3 groups, flagged by 2 correlated models."""
    rng = np.random.default_rng(seed)
    cluster_group = rng.integers(0, 3, size=n_clusters)
    conversation = rng.integers(0, n_clusters, size=n)
    group = cluster_group[conversation]
    effect = rng.normal(scale=0.8, size=n_clusters)[conversation]
    gold = rng.random(n) < 0.3
    logit = -1.4 + 0.5 * (group == 0) + 2.2 * gold + effect
    return pd.DataFrame(
        {
            "group": GROUPS[group],
            "gold": gold,
            "model_a": rng.random(n) < 1 / (1 + np.exp(-logit)),
            "model_b": rng.random(n) < 1 / (1 + np.exp(-(logit - 0.3 * (group == 0)))),
            "conversation": conversation,
        }
    )


def timed(label: str, function, *args, **kwargs):  # noqa: ANN001, ANN201 - benchmark helper
    started = time.perf_counter()
    result = function(*args, **kwargs)
    seconds = time.perf_counter() - started
    logger.info("%-58s %8.2f s", label, seconds)
    return result, seconds


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and log the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="messages")
    parser.add_argument("--clusters", type=int, default=100_000, help="conversations")
    parser.add_argument("--n-boot", type=int, default=1000, help="count-based replicates")
    parser.add_argument("--fairlearn-boot", type=int, default=20, help="MetricFrame n_boot")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("fairaudit").setLevel(logging.WARNING)

    frame = synthetic(args.n, args.clusters, args.seed)
    logger.info(
        "python %s, numpy %s, pandas %s, fairlearn %s; %s messages, %s conversations, "
        "3 groups, 2 models",
        platform.python_version(),
        np.__version__,
        pd.__version__,
        fairlearn.__version__,
        f"{args.n:,}",
        f"{args.clusters:,}",
    )

    counts, count_seconds = timed(
        "cell_counts (2 models, with conversations)",
        cell_counts,
        frame,
        group="group",
        gold="gold",
        flagged=["model_a", "model_b"],
        cluster="conversation",
    )
    stratified, stratified_seconds = timed(
        f"bootstrap_metrics stratified, {args.n_boot} replicates",
        bootstrap_metrics,
        counts,
        method="stratified",
        n_boot=args.n_boot,
        reference="sae",
        seed=args.seed,
    )
    clustered, clustered_seconds = timed(
        f"bootstrap_metrics clustered, {args.n_boot} replicates",
        bootstrap_metrics,
        counts,
        method="clustered",
        n_boot=args.n_boot,
        reference="sae",
        seed=args.seed,
    )
    logger.info(
        "total from the frame: stratified %.2f s (target 5 s), clustered %.2f s (target 30 s)",
        count_seconds + stratified_seconds,
        count_seconds + clustered_seconds,
    )

    fairlearn_args = {
        "metrics": FAIRLEARN_METRICS,
        "y_true": frame["gold"],
        "y_pred": frame["model_a"],
        "sensitive_features": frame["group"],
    }
    _, plain_seconds = timed(
        "fairlearn MetricFrame, no bootstrap (model_a)", MetricFrame, **fairlearn_args
    )
    frame_boot, boot_seconds = timed(
        f"fairlearn MetricFrame, n_boot={args.fairlearn_boot} (model_a)",
        MetricFrame,
        **fairlearn_args,
        n_boot=args.fairlearn_boot,
        ci_quantiles=[0.025, 0.975],
        random_state=args.seed,
    )

    # Per replicate and per model: fairaudit's replicates cover 2 models and 4 metrics plus the
    # comparisons, fairlearn's 1 model and 3 metrics, so the ratio understates the gain.
    fairlearn_per_replicate = max(boot_seconds - plain_seconds, 0.0) / args.fairlearn_boot
    ours = {"stratified": stratified_seconds, "clustered": clustered_seconds}
    for method, seconds in ours.items():
        per_replicate = seconds / args.n_boot / len(counts.models)
        logger.info(
            "%-10s per replicate and model: fairaudit %.3g ms, fairlearn %.3g s -> %s x faster",
            method,
            1e3 * per_replicate,
            fairlearn_per_replicate,
            f"{fairlearn_per_replicate / per_replicate:,.0f}",
        )

    # Agreement: where do fairlearn's 20-replicate interval ends fall among the ends of 500
    # count-based 20-replicate intervals (stratified; row resampling differs only in letting
    # group sizes vary, a second-order effect at these sizes)?
    n_sets = 500
    sets = bootstrap_counts(
        counts, method="stratified", n_boot=n_sets * args.fairlearn_boot, seed=args.seed + 1
    )
    sets = sets[:, 0].reshape(n_sets, args.fairlearn_boot, len(counts.groups), 4)
    low_ci, high_ci = frame_boot.by_group_ci
    logger.info(
        "%-20s %-6s %-19s %-19s %-19s %s",
        "metric",
        "group",
        "fairaudit 1000 rep",
        "fairlearn 20 rep",
        "fairaudit 20 rep*",
        "fairlearn ends' ranks",
    )
    ranks = []
    for metric in FAIRLEARN_METRICS:
        numerator, denominator = metrics_from_cells(sets, metric)
        rates = numerator / denominator
        ends = np.quantile(rates, [0.025, 0.975], axis=1)  # (2, n_sets, G)
        for g, group in enumerate(counts.groups):
            ours_row = stratified[
                (stratified["model"] == "model_a")
                & (stratified["group"] == group)
                & (stratified["metric"] == metric)
                & (stratified["kind"] == "rate")
            ].iloc[0]
            theirs = (low_ci.loc[group, metric], high_ci.loc[group, metric])
            rank = [float(np.mean(ends[i, :, g] < theirs[i])) for i in range(2)]
            ranks.extend(rank)
            logger.info(
                "%-20s %-6s [%.4f, %.4f]    [%.4f, %.4f]    [%.4f, %.4f]    %.2f, %.2f",
                metric,
                group,
                ours_row["ci_low"],
                ours_row["ci_high"],
                *theirs,
                *np.median(ends[:, :, g], axis=1),
                *rank,
            )
    inside = np.mean([0.005 <= r <= 0.995 for r in ranks])
    logger.info(
        "* median over %d sets of %d count-based replicates. Ranks: share of those sets whose "
        "interval end lies below fairlearn's; %.0f%% of fairlearn's %d ends fall inside the "
        "central 99%% of the Monte Carlo spread.",
        n_sets,
        args.fairlearn_boot,
        100 * inside,
        len(ranks),
    )
    width_ratio = (clustered["ci_high"] - clustered["ci_low"]) / (
        stratified["ci_high"] - stratified["ci_low"]
    )
    rates = (stratified["kind"] == "rate").to_numpy()
    logger.info(
        "clustered / stratified interval width on rates: median %.2f (range %.2f-%.2f)",
        float(np.nanmedian(width_ratio[rates])),
        float(np.nanmin(width_ratio[rates])),
        float(np.nanmax(width_ratio[rates])),
    )


if __name__ == "__main__":
    main()
