"""Benchmark bias AUCs with DeLong intervals against scikit-learn plus a bootstrap.

Builds ``--n`` synthetic messages in three dialect groups (scores rounded to 0.001, so with
ties), times :func:`fairaudit.bias_auc.bias_aucs` (15 group metrics and the overall AUC, each
with a DeLong interval), and times the usual alternative: ``sklearn.metrics.roc_auc_score``
called once per AUC on its restricted set (the 10 AUCs; the AEGs are AUCs too) plus a
percentile bootstrap of ``--bootstrap`` resamples of the same AUCs for intervals. Also times
:func:`~fairaudit.bias_auc.compare_bias_aucs`, :func:`~fairaudit.bias_auc.threshold_sweep` and
:func:`~fairaudit.bias_auc.calibration_by_group`, and checks that the estimates agree.

Usage::

    .venv/bin/python benchmarks/bench_bias_auc.py --n 1000000
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
import warnings

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import roc_auc_score

from fairaudit.bias_auc import (
    bias_aucs,
    calibration_by_group,
    compare_bias_aucs,
    threshold_sweep,
)

logger = logging.getLogger("bench_bias_auc")


def synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(np.array(["aae", "sae", "other"]), size=n, p=[0.3, 0.5, 0.2])
    gold = rng.random(n) < np.where(group == "aae", 0.2, 0.35)
    shift = np.where(group == "aae", 0.4, 0.0)
    score = 1 / (1 + np.exp(-(1.5 * gold - 0.8 + shift + rng.normal(size=n))))
    return pd.DataFrame(
        {"dialect_group": group, "gold_toxic": gold.astype(int), "score": np.round(score, 3)}
    )


def restricted_sets(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Labels and scores of every AUC of the table, restricted the plain way."""
    gold = frame["gold_toxic"].to_numpy(dtype=bool)
    score = frame["score"].to_numpy()
    sets: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for name in ("aae", "other", "sae"):
        member = frame["dialect_group"].to_numpy() == name
        for metric, rows in (
            ("subgroup_auc", member),
            ("bpsn_auc", (member & ~gold) | (~member & gold)),
            ("bnsp_auc", (member & gold) | (~member & ~gold)),
        ):
            sets[name, metric] = gold[rows], score[rows]
        for metric, in_class in (("positive_aeg", gold), ("negative_aeg", ~gold)):
            sets[name, metric] = member[in_class], score[in_class]
    sets["overall", "roc_auc"] = gold, score
    return sets


def sklearn_with_bootstrap(
    sets: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], *, resamples: int, seed: int
) -> tuple[dict[tuple[str, str], float], float, float]:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    estimates = {key: float(roc_auc_score(y, s)) for key, (y, s) in sets.items()}
    point_seconds = time.perf_counter() - started
    for y, s in sets.values():
        draws = []
        for _ in range(resamples):
            index = rng.integers(0, y.size, size=y.size)
            draws.append(roc_auc_score(y[index], s[index]))
        np.percentile(draws, [2.5, 97.5])
    return estimates, point_seconds, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="messages")
    parser.add_argument("--bootstrap", type=int, default=20, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.simplefilter("ignore")

    frame = synthetic(options.n, options.seed)
    columns = {"group": "dialect_group", "gold": "gold_toxic", "score": "score"}

    started = time.perf_counter()
    table = bias_aucs(frame, **columns)
    fairaudit_seconds = time.perf_counter() - started

    sets = restricted_sets(frame)
    estimates, point_seconds, baseline_seconds = sklearn_with_bootstrap(
        sets, resamples=options.bootstrap, seed=options.seed
    )
    largest = 0.0
    for (name, metric), expected in estimates.items():
        got = table.loc[(table["group"] == name) & (table["metric"] == metric), "estimate"].item()
        largest = max(largest, abs(got - (0.5 - expected if metric.endswith("aeg") else expected)))

    timings = {}
    for label, call in (
        ("compare_bias_aucs", lambda: compare_bias_aucs(frame, **columns, reference="sae")),
        ("threshold_sweep", lambda: threshold_sweep(frame, **columns)),
        ("calibration_by_group", lambda: calibration_by_group(frame, **columns)),
    ):
        started = time.perf_counter()
        call()
        timings[label] = time.perf_counter() - started

    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )
    print(f"n = {options.n:,} messages, 3 groups, {len(table)} rows in the table")
    print(f"bias_aucs with DeLong intervals: {fairaudit_seconds:.2f} s")
    print(
        f"sklearn roc_auc_score per AUC ({len(sets)} AUCs), point estimates: {point_seconds:.2f} s"
    )
    print(
        f"sklearn per AUC + bootstrap of {options.bootstrap}: {baseline_seconds:.2f} s "
        f"(ratio {baseline_seconds / fairaudit_seconds:.1f}x)"
    )
    print(f"largest |estimate difference| against sklearn: {largest:.2e}")
    for label, seconds in timings.items():
        print(f"{label}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
