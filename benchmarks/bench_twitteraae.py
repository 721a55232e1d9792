"""Benchmark TwitterAAE inference: vectorised ``predict`` against a naive per-message loop.

Resamples the Davidson et al. (2017) tweets, with replacement, to ``--n`` texts, times
:meth:`fairaudit.twitteraae.TwitterAAEModel.predict` on all of them (tokenising and inference
timed apart), and times a naive loop (:func:`~fairaudit.twitteraae.tokenize` then
:meth:`~fairaudit.twitteraae.TwitterAAEModel.proportions_from_tokens`, one message at a time)
on a smaller subsample, extrapolated per message. Both run in the same process.

Usage::

    .venv/bin/python benchmarks/bench_twitteraae.py --n 100000

The data folder is ``$FAIRAUDIT_DATA`` or ``../shared/data`` beside the project.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.twitteraae import TwitterAAEModel, tokenize

logger = logging.getLogger("bench_twitteraae")


def data_folder() -> Path:
    """The shared data folder: ``$FAIRAUDIT_DATA`` or ``../shared/data`` beside the project."""
    configured = os.environ.get("FAIRAUDIT_DATA")
    if configured:
        return Path(configured)
    return (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="texts for predict")
    parser.add_argument(
        "--naive-n", type=int, default=5_000, help="texts for the naive per-message loop"
    )
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    folder = data_folder()
    started = time.perf_counter()
    model = TwitterAAEModel.load(folder / "twitteraae")
    load_seconds = time.perf_counter() - started

    tweets = pd.read_csv(folder / "davidson-2017" / "labeled_data.csv", index_col=0)["tweet"]
    rng = np.random.default_rng(options.seed)
    texts = tweets.iloc[rng.integers(0, len(tweets), size=options.n)].reset_index(drop=True)
    naive_texts = texts.iloc[: min(options.naive_n, options.n)].tolist()

    # Vectorised: the public call, and its two stages timed apart.
    started = time.perf_counter()
    result = model.predict(texts)
    predict_seconds = time.perf_counter() - started

    values = texts.tolist()
    started = time.perf_counter()
    encoded = model._encode(values)
    encode_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model._infer(encoded, alpha=1.0, passes=4)
    infer_seconds = time.perf_counter() - started

    # Naive: one message at a time, then the same texts through predict for agreement.
    started = time.perf_counter()
    naive = [model.proportions_from_tokens(tokenize(text)) for text in naive_texts]
    naive_seconds = time.perf_counter() - started
    started = time.perf_counter()
    naive_tokenize = [tokenize(text) for text in naive_texts]
    naive_tokenize_seconds = time.perf_counter() - started
    del naive_tokenize

    expected = np.array([np.full(4, np.nan) if p is None else p for p in naive])
    observed = result.iloc[: len(naive_texts), :4].to_numpy()
    max_difference = float(np.nanmax(np.abs(observed - expected)))
    same_missing = bool(np.array_equal(np.isnan(observed), np.isnan(expected)))

    naive_per_text = naive_seconds / len(naive_texts)
    naive_extrapolated = naive_per_text * options.n
    naive_inference_extrapolated = (
        (naive_seconds - naive_tokenize_seconds) / len(naive_texts) * options.n
    )
    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}")
    print(f"load: {load_seconds:.2f} s ({len(model.vocabulary):,} words)")
    print(
        f"predict: {options.n:,} texts in {predict_seconds:.2f} s = "
        f"{options.n / predict_seconds:,.0f} texts/s"
    )
    print(
        f"  tokenise+lookup {encode_seconds:.2f} s ({options.n / encode_seconds:,.0f} texts/s), "
        f"inference {infer_seconds:.2f} s ({options.n / infer_seconds:,.0f} texts/s)"
    )
    print(
        f"naive loop: {len(naive_texts):,} texts in {naive_seconds:.2f} s = "
        f"{1 / naive_per_text:,.0f} texts/s (tokenize alone {naive_tokenize_seconds:.2f} s); "
        f"extrapolated to {options.n:,}: {naive_extrapolated:.1f} s"
    )
    print(
        f"speed-up predict vs naive: {naive_extrapolated / predict_seconds:.1f}x; "
        f"inference alone vs naive inference: {naive_inference_extrapolated / infer_seconds:.1f}x"
    )
    print(
        f"agreement on the naive subsample: max |difference| {max_difference:.2e}, "
        f"same no-estimate rows: {same_missing}"
    )


if __name__ == "__main__":
    main()
