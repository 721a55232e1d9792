"""Benchmark the marker layer: prefiltered ``annotate`` vs a plain per-row ``re`` loop.

Resamples tweets from Davidson et al. (2017) (``labeled_data.csv``, column ``tweet``) to ``--n``
utterances, runs :func:`fairaudit.markers.annotate` and the plain loop
(:func:`fairaudit.markers.annotate_plain`: every pattern of every marker on every row) over the
same definitions, checks that both give identical spans, and prints utterances per second and
the speed-up.

Usage::

    .venv/bin/python benchmarks/bench_markers.py --n 200000
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import pandas as pd

from fairaudit.markers import annotate, annotate_plain, load_marker_set

logger = logging.getLogger("bench_markers")

DAVIDSON = Path("/work/shared/data/davidson-2017/labeled_data.csv")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and log the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="utterances (resampled)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DAVIDSON)
    parser.add_argument(
        "--plain-n",
        type=int,
        default=None,
        help="rows for the plain loop (default: all --n rows)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    tweets = pd.read_csv(args.data, keep_default_na=False)["tweet"].astype(str)
    sample = tweets.sample(n=args.n, replace=True, random_state=args.seed).reset_index(drop=True)
    sample.index = pd.Index([f"t{i}" for i in range(len(sample))], dtype=object)
    marker_set = load_marker_set()

    started = time.perf_counter()
    spans = annotate(sample, marker_set)
    fast_seconds = time.perf_counter() - started

    plain_n = args.n if args.plain_n is None else min(args.plain_n, args.n)
    subset = sample.iloc[:plain_n]
    started = time.perf_counter()
    plain = annotate_plain(subset, marker_set)
    plain_seconds = time.perf_counter() - started

    fast_subset = spans[spans["id"].isin(set(subset.index))].reset_index(drop=True)
    identical = fast_subset.equals(plain.reset_index(drop=True))

    fast_rate = args.n / fast_seconds
    plain_rate = plain_n / plain_seconds
    logger.info(
        "python %s, %d markers, %s spans",
        platform.python_version(),
        len(marker_set.markers),
        f"{len(spans):,}",
    )
    logger.info(
        "annotate (prefilter):  %s utterances in %.2f s = %s utt/s",
        f"{args.n:,}",
        fast_seconds,
        f"{fast_rate:,.0f}",
    )
    logger.info(
        "plain per-row re loop: %s utterances in %.2f s = %s utt/s",
        f"{plain_n:,}",
        plain_seconds,
        f"{plain_rate:,.0f}",
    )
    logger.info(
        "speed-up: %.1fx; identical spans on the shared rows: %s",
        fast_rate / plain_rate,
        identical,
    )
    counts = spans["marker"].value_counts()
    logger.info("spans per marker: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
