from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from fairaudit.config import ColumnMapping, ModelConfig
from fairaudit.corpus import read_corpus
from fairaudit.exceptions import InputError
from fairaudit.scoring import HateSonarScorer, ProfanityCheckScorer, locale_available, score_corpus

TEXTS = [
    "hello there, have a nice day",
    "you are a stupid bitch",
    "I hate all of them, they should die",
    "we finna eat 🍗\nwho coming",
    "&amp; RT @someone: that's trash lol",
]


def _sonar_api_probabilities(tmp_path: Path, texts: list[str]) -> np.ndarray:
    """hatesonar's own API (Sonar.ping), on its model file with a locale this machine has."""
    from hatesonar import Sonar
    from hatesonar.api import DEFAULT_MODEL_FILE

    model = onnx.load(str(DEFAULT_MODEL_FILE))
    for node in model.graph.node:
        if node.op_type == "StringNormalizer":
            node.attribute.append(onnx.helper.make_attribute("locale", "C.UTF-8"))
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    sonar = Sonar(model_file=path)
    rows = []
    for text in texts:
        classes = {c["class_name"]: c["confidence"] for c in sonar.ping(text)["classes"]}
        rows.append([classes["hate_speech"], classes["offensive_language"], classes["neither"]])
    return np.array(rows)


def test_hatesonar_scores_equal_its_own_api(tmp_path: Path) -> None:
    expected = _sonar_api_probabilities(tmp_path, TEXTS)
    scorer = HateSonarScorer("hatesonar", "neither", complement=True)
    np.testing.assert_allclose(scorer.probabilities(TEXTS), expected, atol=1e-6)
    np.testing.assert_allclose(scorer.score(TEXTS), 1 - expected[:, 2], atol=1e-6)
    np.testing.assert_allclose(expected.sum(axis=1), 1, atol=1e-5)
    assert scorer.score(TEXTS)[1] > 0.5 > scorer.score(TEXTS)[0]


@pytest.mark.skipif(
    not locale_available("en_US.UTF-8"), reason="needs en_US.UTF-8 to compare the two locales"
)
def test_c_utf8_normaliser_gives_the_shipped_model_output(davidson_csv: Path) -> None:
    texts = pd.read_csv(davidson_csv, keep_default_na=False)["tweet"].tolist()[:3000]
    shipped = HateSonarScorer("a", "neither", normaliser_locale="en_US.UTF-8")
    fallback = HateSonarScorer("b", "neither", normaliser_locale="C.UTF-8")
    np.testing.assert_array_equal(shipped.probabilities(texts), fallback.probabilities(texts))


def test_profanity_check_matches_the_package() -> None:
    from profanity_check import predict_prob

    np.testing.assert_allclose(
        ProfanityCheckScorer("p").score(TEXTS), predict_prob(TEXTS), atol=1e-12
    )


def _corpus(tmp_path: Path, rows: str) -> pd.DataFrame:
    path = tmp_path / "c.csv"
    path.write_text("id,text,gold,score,decision\n" + rows)
    return read_corpus(
        path, ColumnMapping(id="id", text="text", gold_label="gold", keep=("score", "decision"))
    )


def test_given_scores_and_decisions(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, "a,x,0,0.2,1\nb,y,1,0.5,0\nc,z,1,0.9,true\n")
    result = score_corpus(
        corpus,
        [
            ModelConfig(name="s", kind="column", column="score", threshold=0.5),
            ModelConfig(name="d", kind="decision", column="decision"),
        ],
    )
    table = result.scores.set_index(["model", "id"])
    assert table.loc["s", "flagged"].tolist() == [False, True, True]
    assert table.loc["d", "flagged"].tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("rows", "column", "kind", "message"),
    [
        ("a,x,0,0.2,1\nb,y,1,high,0\n", "score", "column", "row 2.*outside"),
        ("a,x,0,0.2,1\nb,y,1,1.5,0\n", "score", "column", "outside"),
        ("a,x,0,0.2,1\nb,y,1,0.5,maybe\n", "decision", "decision", "0/1 or true/false"),
        ("a,x,0,0.2,1\n", "absent", "column", "not in the corpus"),
    ],
)
def test_bad_given_scores_are_named(
    tmp_path: Path, rows: str, column: str, kind: str, message: str
) -> None:
    corpus = _corpus(tmp_path, rows)
    with pytest.raises(InputError, match=message):
        score_corpus(corpus, [ModelConfig(name="m", kind=kind, column=column)], file="c.csv")
