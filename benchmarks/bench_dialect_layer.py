"""Benchmark the whole dialect layer: 25 markers + TwitterAAE + language screen + groups.

Resamples Davidson et al. (2017) tweets to ``--n`` utterances and runs
:func:`fairaudit.dialect.annotate_dialect` as the pipeline does. In the same run, a plain per-row
``re`` loop over the same marker definitions (:func:`fairaudit.markers.annotate_plain`) runs on
``--plain-n`` rows and is extrapolated per utterance, so the ratio is measured on this machine
at this moment. Peak memory is the maximum resident set size of this process and of its forked
workers.

The resampled corpus holds only the ~25,000 distinct Davidson tweets, and the layer processes
each distinct text once (markers and TwitterAAE), so the default figure mostly measures the
per-row bookkeeping. ``--no-dedup`` switches that off to measure the cost of distinct texts.

Usage::

    .venv/bin/python benchmarks/bench_dialect_layer.py --n 1000000
    .venv/bin/python benchmarks/bench_dialect_layer.py --n 1000000 --no-dedup
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import pandas as pd

import fairaudit.markers
import fairaudit.twitteraae
from fairaudit.config import GroupRule, resolve_data_dir
from fairaudit.dialect import annotate_dialect
from fairaudit.markers import annotate_plain, load_marker_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--plain-n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-dedup",
        action="store_true",
        help="match and infer every row even when texts repeat (the resampled corpus holds "
        "only ~25,000 distinct tweets; this measures the per-row cost of distinct texts)",
    )
    args = parser.parse_args()
    if args.no_dedup:
        fairaudit.markers._DEDUPLICATE_MAX_SHARE = 0.0
        fairaudit.twitteraae._DEDUPLICATE_MAX_SHARE = 0.0

    data = resolve_data_dir(None, base=Path.cwd())
    tweets = pd.read_csv(data / "davidson-2017" / "labeled_data.csv", keep_default_na=False)
    sample = (
        tweets["tweet"]
        .astype(str)
        .sample(n=args.n, replace=True, random_state=args.seed)
        .reset_index(drop=True)
    )
    sample.index = pd.Index([f"t{i}" for i in range(len(sample))], dtype=object)

    started = time.perf_counter()
    layer = annotate_dialect(
        sample, rule=GroupRule(), twitteraae_dir=data / "twitteraae", use_markers=True
    )
    layer_seconds = time.perf_counter() - started

    subset = sample.iloc[: args.plain_n]
    started = time.perf_counter()
    annotate_plain(subset, load_marker_set())
    plain_per_row = (time.perf_counter() - started) / len(subset)

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    distinct = sample.nunique()
    print(
        f"utterances: {args.n:,} ({distinct:,} distinct texts, "
        f"{'deduplication off' if args.no_dedup else 'each distinct text processed once'}); "
        f"spans: {len(layer.spans):,}"
    )
    print(
        "stage seconds: "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in layer.seconds.items())
    )
    print(f"whole layer: {layer_seconds:.2f} s wall = {args.n / layer_seconds:,.0f} utterances/s")
    print(
        f"plain per-row re loop (markers only, {args.plain_n:,} rows): "
        f"{1 / plain_per_row:,.0f} utterances/s -> {plain_per_row * args.n:.1f} s for {args.n:,}"
    )
    ratio = plain_per_row * args.n / layer_seconds
    print(f"ratio (plain markers-only loop / whole layer): {ratio:.1f}x")
    print(f"peak resident memory: this process {own:.2f} GB, largest worker {children:.2f} GB")
    groups = layer.utterances["dialect_group"].value_counts().to_dict()
    print(f"groups: {groups}")


if __name__ == "__main__":
    main()
