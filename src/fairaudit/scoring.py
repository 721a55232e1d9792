"""Model outputs: toxicity scorers behind one small interface, and the long score table.

A scorer takes texts and returns one score per text: the probability of the harmful class that
the configuration names. ``score_corpus`` runs the configured models over a corpus and returns a
long table (``id``, ``model``, ``head``, ``score``, ``flagged``). The pipeline does not know which
model it runs.
"""

from __future__ import annotations

import locale
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from fairaudit.config import ModelConfig
from fairaudit.exceptions import InputError, ModelError

__all__ = [
    "Scorer",
    "HateSonarScorer",
    "ProfanityCheckScorer",
    "build_scorer",
    "score_corpus",
    "locale_available",
]

logger = logging.getLogger(__name__)


class Scorer(Protocol):
    """Texts in, one float per text out (the probability of the audited class)."""

    name: str
    notes: list[str]

    def score(self, texts: Sequence[str]) -> np.ndarray: ...


def locale_available(name: str) -> bool:
    """Whether the C library can construct the named locale on this machine."""
    current = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, name)
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_CTYPE, current)
    return True


@dataclass
class HateSonarScorer:
    """hatesonar's ONNX model (TF-IDF + logistic regression trained on Davidson et al. 2017).

    The model lower-cases text with an ONNX ``StringNormalizer`` whose locale defaults to
    ``en_US.UTF-8``; onnxruntime refuses to start where that locale is not installed (machines
    with only ``C.UTF-8``). Then the same model is loaded with the normaliser's locale set to
    ``C.UTF-8``. The tokenizer that follows keeps only ``[a-zA-Z0-9_]+``, so only the lower-casing
    of ASCII letters reaches the features, which both locales do alike; on all 24,783 Davidson
    tweets the two give identical probabilities (maximum absolute difference 0.0). A note records
    which locale ran.

    Parameters
    ----------
    name
        Model name in the run.
    score
        Class whose probability is audited: ``hate_speech``, ``offensive_language`` or
        ``neither``.
    complement
        Audit ``1 - P(score)`` (``1 - P(neither)`` is "hate or offensive").
    normaliser_locale
        Force a locale for the normaliser; by default ``en_US.UTF-8`` where available, else
        ``C.UTF-8``.
    """

    name: str
    score_class: str
    complement: bool = False
    normaliser_locale: str | None = None
    notes: list[str] = field(default_factory=list)
    classes: tuple[str, ...] = ("hate_speech", "offensive_language", "neither")

    def __post_init__(self) -> None:
        try:
            import onnx
            import onnxruntime
            from hatesonar.api import DEFAULT_MODEL_FILE
        except ImportError as error:
            raise ModelError(
                f"model {self.name!r}: hatesonar is not installed ({error})"
            ) from None
        if self.score_class not in self.classes:
            raise ModelError(
                f"model {self.name!r}: class {self.score_class!r} is not one of {self.classes}"
            )
        chosen = self.normaliser_locale
        if chosen is None:
            chosen = "en_US.UTF-8" if locale_available("en_US.UTF-8") else "C.UTF-8"
        model = onnx.load(str(DEFAULT_MODEL_FILE))
        for node in model.graph.node:
            if node.op_type == "StringNormalizer":
                kept = [a for a in node.attribute if a.name != "locale"]
                del node.attribute[:]
                node.attribute.extend(kept)
                node.attribute.append(onnx.helper.make_attribute("locale", chosen))
        try:
            self._session = onnxruntime.InferenceSession(
                model.SerializeToString(), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise ModelError(f"model {self.name!r}: hatesonar failed to load: {error}") from None
        self.locale = chosen
        self.model_file = str(DEFAULT_MODEL_FILE)
        self.notes.append(f"hatesonar text normaliser locale: {chosen}")

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes``."""
        batch = np.asarray(list(texts), dtype=object)
        _, probabilities = self._session.run(None, {"text": batch})
        return np.array([[row[k] for k in range(3)] for row in probabilities], dtype=np.float64)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        probabilities = self.probabilities(texts)[:, self.classes.index(self.score_class)]
        return 1.0 - probabilities if self.complement else probabilities


@dataclass
class ProfanityCheckScorer:
    """alt-profanity-check: a linear SVM over TF-IDF, calibrated, trained partly on Davidson.

    Its training data included the Davidson et al. 2017 tweets, so its figures on that file are
    in-sample.
    """

    name: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            from profanity_check import predict_prob
        except ImportError as error:
            raise ModelError(
                f"model {self.name!r}: alt-profanity-check is not installed ({error})"
            ) from None
        self._predict_prob = predict_prob

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._predict_prob(list(texts)), dtype=np.float64)


def build_scorer(model: ModelConfig) -> Scorer | None:
    """The scorer for a configured model, or None for given score or decision columns."""
    if model.kind == "hatesonar":
        assert model.score is not None  # guaranteed by ModelConfig validation
        return HateSonarScorer(model.name, model.score, complement=model.complement)
    if model.kind == "profanity_check":
        return ProfanityCheckScorer(model.name)
    return None


def _given_column(corpus: pd.DataFrame, model: ModelConfig, *, file: str | None) -> np.ndarray:
    column = model.column
    assert column is not None
    if column not in corpus.columns:
        raise InputError(
            f"model {model.name!r} reads scores from a column that is not in the corpus "
            "(add it to corpus.columns.keep)",
            file=file,
            column=column,
        )
    raw = corpus[column]
    if model.kind == "decision":
        text = raw.map(lambda v: str(v).strip().lower())
        allowed = {"0", "1", "true", "false", "0.0", "1.0"}
        bad = ~text.isin(allowed)
        if bad.any():
            rows = corpus.loc[bad, "row"].tolist()[:5]
            raise InputError(
                f"model {model.name!r}: decisions must be 0/1 or true/false; "
                f"{int(bad.sum())} other value(s), e.g. {raw[bad].unique()[:5].tolist()}",
                file=file,
                row=", ".join(map(str, rows)),
                column=column,
            )
        return text.isin({"1", "true", "1.0"}).to_numpy(dtype=np.float64)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        rows = corpus.loc[bad, "row"].tolist()[:5]
        raise InputError(
            f"model {model.name!r}: {int(bad.sum())} score(s) missing, non-numeric or outside "
            "[0, 1]",
            file=file,
            row=", ".join(map(str, rows)),
            column=column,
        )
    return values


@dataclass(frozen=True)
class ScoringResult:
    scores: pd.DataFrame
    notes: dict[str, list[str]]
    seconds: dict[str, float]


def score_corpus(
    corpus: pd.DataFrame, models: Sequence[ModelConfig], *, file: str | None = None
) -> ScoringResult:
    """Score every utterance with every model; return the long score table.

    Each model sees the text exactly as stored. ``flagged`` is ``score >= threshold`` (for a
    given decision, the decision itself).
    """
    tables = []
    notes: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    texts = corpus["text"].tolist()
    for model in models:
        started = time.perf_counter()
        scorer = build_scorer(model)
        if scorer is None:
            values = _given_column(corpus, model, file=file)
            notes[model.name] = []
        else:
            values = scorer.score(texts)
            notes[model.name] = list(scorer.notes)
            if values.shape != (len(texts),) or not np.all(np.isfinite(values)):
                raise ModelError(
                    f"model {model.name!r} returned {values.shape} scores with "
                    f"{int((~np.isfinite(values)).sum())} non-finite for {len(texts)} texts"
                )
        if model.in_sample:
            notes[model.name].append(f"in-sample: {model.in_sample}")
        flagged = values >= model.threshold if model.kind != "decision" else values == 1.0
        tables.append(
            pd.DataFrame(
                {
                    "id": corpus.index.to_numpy(dtype=object),
                    "model": model.name,
                    "head": model.score_definition,
                    "score": values,
                    "flagged": flagged,
                }
            )
        )
        seconds[model.name] = time.perf_counter() - started
        logger.info(
            "scored %s texts with %s in %.1f s", f"{len(texts):,}", model.name, seconds[model.name]
        )
    return ScoringResult(pd.concat(tables, ignore_index=True), notes, seconds)
