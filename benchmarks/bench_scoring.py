"""Benchmark scoring: texts per second of each model, and the cache-hit path against scoring.

Takes the first ``--n`` tweets of Davidson et al. (2017) (``labeled_data.csv``, column
``tweet``), scores them with hatesonar, alt-profanity-check and Detoxify on a tiny checkpoint
(the two-layer BERT the tests build, in Detoxify's own format, loaded offline) through
:func:`fairaudit.scoring.score_corpus` with an empty cache folder (cold: every distinct text
scored and written to the cache), then again with the same folder (warm: every score read from
the cache), and once without the cache. Prints texts per second of the three runs and the
ratios; checks that all three give identical scores. Each run includes loading the model.

Usage::

    .venv/bin/python benchmarks/bench_scoring.py --n 10000
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairaudit.config import ModelConfig
from fairaudit.scoring import score_corpus

logger = logging.getLogger("bench_scoring")

DAVIDSON = Path("/work/shared/data/davidson-2017/labeled_data.csv")
REPOSITORY = Path(__file__).resolve().parents[1]


def _tiny_detoxify(folder: Path, *, max_positions: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(REPOSITORY))
    from tests.test_detoxify import build_tiny_checkpoint

    return build_tiny_checkpoint(folder, max_positions=max_positions)


def _best_of(repeats: int, run: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and log the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="tweets (the first n)")
    parser.add_argument("--data", type=Path, default=DAVIDSON)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for Detoxify")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-positions", type=int, default=128, help="tiny BERT positions")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs; the best is kept")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("fairaudit").setLevel(logging.WARNING)

    tweets = pd.read_csv(args.data, keep_default_na=False)["tweet"].astype(str).iloc[: args.n]
    corpus = pd.DataFrame(
        {"text": tweets.to_numpy(dtype=object), "row": np.arange(1, len(tweets) + 1)},
        index=pd.Index([f"t{i}" for i in range(len(tweets))], name="id", dtype=object),
    )
    distinct = corpus["text"].nunique()

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        checkpoint, config_dir = _tiny_detoxify(folder / "tiny", max_positions=args.max_positions)
        models = [
            ModelConfig(name="hatesonar", kind="hatesonar", score="neither", complement=True),
            ModelConfig(name="profanity_check", kind="profanity_check"),
            ModelConfig(
                name="detoxify_tiny",
                kind="detoxify",
                score="toxicity",
                checkpoint_path=str(checkpoint),
                huggingface_config_path=str(config_dir),
                device="cpu",
                batch_size=args.batch_size,
                threads=args.threads,
            ),
        ]
        logger.info(
            "Python %s, %s, %d texts (%d distinct), torch threads %d",
            platform.python_version(),
            platform.machine(),
            len(corpus),
            distinct,
            args.threads,
        )
        logger.info(
            "%-16s %13s %13s %13s %9s %9s",
            "model",
            "cold cache",
            "no cache",
            "cache hit",
            "hit/cold",
            "hit/none",
        )
        for model in models:
            cache_dir = folder / f"cache-{model.name}"
            cold_seconds, cold = _best_of(
                1,
                lambda m=model, c=cache_dir: score_corpus(
                    corpus, [m], cache_dir=c, progress=False
                ),
            )
            uncached_seconds, uncached = _best_of(
                1,
                lambda m=model: score_corpus(corpus, [m], use_cache=False, progress=False),
            )
            warm_seconds, warm = _best_of(
                args.repeats,
                lambda m=model, c=cache_dir: score_corpus(
                    corpus, [m], cache_dir=c, progress=False
                ),
            )
            assert warm.provenance[model.name]["texts_scored_now"] == 0  # type: ignore[union-attr]
            pd.testing.assert_frame_equal(cold.scores, warm.scores)  # type: ignore[union-attr]
            pd.testing.assert_frame_equal(uncached.scores, cold.scores)  # type: ignore[union-attr]
            logger.info(
                "%-16s %9.0f t/s %9.0f t/s %9.0f t/s %8.0fx %8.0fx",
                model.name,
                len(corpus) / cold_seconds,
                len(corpus) / uncached_seconds,
                len(corpus) / warm_seconds,
                cold_seconds / warm_seconds,
                uncached_seconds / warm_seconds,
            )


if __name__ == "__main__":
    main()
