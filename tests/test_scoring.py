from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from fairaudit import scoring
from fairaudit.config import AuditSubsetConfig, ColumnMapping, ModelConfig
from fairaudit.corpus import read_corpus
from fairaudit.exceptions import ConfigError, InputError, InSampleWarning, ModelError
from fairaudit.scoring import (
    DAVIDSON_SHA256,
    HateSonarScorer,
    ProfanityCheckScorer,
    ScoringResult,
    in_sample_warning,
    locale_available,
    score_corpus,
)
from tests.cases import case_dir

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


# ----------------------------------------------------------------------------------------------
# Label/score lists (case 05), given files, callables, replies, the cache, polarity, in-sample

CASE05_P_HATE = {
    "q01": 0.83,
    "q02": 0.61,
    "q03": 0.27,
    "q04": 0.74,
    "q05": 0.09,
    "q06": 0.14,
    "q07": 0.06,
    "q08": 0.88,
    "q09": 0.33,
    "q10": 0.04,
}


def _case05(label: str = "hate", **options: object) -> tuple[pd.DataFrame, ScoringResult]:
    corpus = read_corpus(
        case_dir("05") / "input.jsonl",
        ColumnMapping(
            id="id", text="text", gold_label="gold_toxic", keep=("dialect_group", "model_output")
        ),
    )
    model = ModelConfig(
        name="example-hate-classifier",
        kind="label_scores",
        column="model_output",
        score=label,
        softmax=True,
        threshold=0.5,
        **options,
    )
    return corpus, score_corpus(corpus, [model], file="input.jsonl")


def test_case05_label_scores_by_exact_label() -> None:
    corpus, result = _case05()
    scores = result.scores.set_index("id")
    assert scores["score"].to_dict() == pytest.approx(CASE05_P_HATE)
    assert (scores["head"] == "P('hate')").all()

    frame = corpus[["dialect_group", "gold_toxic"]].join(scores[["flagged"]])
    negatives = frame[~frame["gold_toxic"].astype(bool)]
    positives = frame[frame["gold_toxic"].astype(bool)]
    fpr = negatives.groupby("dialect_group")["flagged"].mean().to_dict()
    fnr = (~positives["flagged"]).groupby(positives["dialect_group"]).mean().to_dict()
    flag_rate = frame.groupby("dialect_group")["flagged"].mean().to_dict()
    assert fpr == {"aae": 0.5, "sae": 0.0}  # "first entry" gives 1.0, 1.0
    assert fnr == {"aae": 0.0, "sae": 0.0}  # substring "hate" in "nothate" gives 1.0, 1.0
    assert flag_rate == pytest.approx({"aae": 0.6, "sae": 0.2})
    note = " ".join(result.notes["example-hate-classifier"])
    assert "label 'hate' by exact match" in note and "['hate', 'nothate']" in note


def test_case05_absent_harmful_label_is_an_error_listing_the_labels() -> None:
    with pytest.raises(
        InputError, match=r"'toxic' is not among the labels found \['hate', 'nothate'\]"
    ):
        _case05("toxic")
    # A label that is only a substring of another one is absent too.
    with pytest.raises(InputError, match="'hat' is not among"):
        _case05("hat")


def test_label_lists_that_do_not_sum_to_one_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        'id,text,out\na,x,"[{""label"": ""toxic"", ""score"": 0.7}, '
        '{""label"": ""ok"", ""score"": 0.3}]"\n'
        'b,y,"[{""label"": ""ok"", ""score"": 0.5}, {""label"": ""toxic"", ""score"": 0.6}]"\n'
    )
    corpus = read_corpus(path, ColumnMapping(id="id", text="text", keep=("out",)))
    model = {"name": "m", "kind": "label_scores", "column": "out", "score": "toxic"}
    result = score_corpus(corpus, [ModelConfig(**model)])  # not declared softmax: fine
    assert result.scores["score"].tolist() == [0.7, 0.6]
    with pytest.raises(InputError, match=r"do not sum to 1.*\['b'\]"):
        score_corpus(corpus, [ModelConfig(**model, softmax=True)])


def test_case14_fixture_scores_through_a_column_model_and_a_file(tmp_path: Path) -> None:
    source = case_dir("14") / "input.csv"
    corpus = read_corpus(
        source, ColumnMapping(id="id", text="text", gold_label="gold_toxic", keep=("score",))
    )
    model = ModelConfig(name="fixture", kind="column", column="score", threshold=0.5)
    flagged = score_corpus(corpus, [model]).scores.set_index("id")["flagged"]
    assert flagged.mean() == pytest.approx(10 / 23)
    expected = ["x03", "x05", "x09", "x10", "x13", "x17", "x18", "x19", "x22", "x23"]
    assert flagged[flagged].index.tolist() == expected

    # The same scores from a separate file, joined on id, in another order.
    table = pd.read_csv(source, dtype=str)[["id", "score"]].iloc[::-1]
    table.to_csv(tmp_path / "scores.csv", index=False)
    bare = read_corpus(source, ColumnMapping(id="id", text="text"))
    from_file = ModelConfig(
        name="fixture", kind="column", column="score", file=str(tmp_path / "scores.csv")
    )
    joined = score_corpus(bare, [from_file]).scores.set_index("id")["flagged"]
    pd.testing.assert_series_equal(joined, flagged)


def test_names_are_scored_exactly_as_given(callables: str, tmp_path: Path) -> None:
    corpus = read_corpus(case_dir("14") / "input.csv", ColumnMapping(id="id", text="text"))
    model = ModelConfig(name="echo", kind="callable", callable=f"{callables}:record_texts")
    score_corpus(corpus, [model], cache_dir=tmp_path)
    module = importlib.import_module(callables)
    assert sorted(module.SEEN) == sorted(corpus["text"])
    assert any("Hassan" in t for t in module.SEEN) and any("Dickson" in t for t in module.SEEN)


def test_given_file_with_missing_or_duplicated_ids(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, "a,x,0,0.2,1\nb,y,1,0.5,0\n")
    (tmp_path / "s.csv").write_text("id,p\na,0.1\nz,0.3\n")
    model = ModelConfig(name="m", kind="column", column="p", file=str(tmp_path / "s.csv"))
    with pytest.raises(InputError, match=r"1 corpus id\(s\) have no score.*\['b'\]"):
        score_corpus(corpus, [model])
    (tmp_path / "s.csv").write_text("id,p\na,0.1\nb,0.3\nb,0.4\nz,1\n")
    with pytest.raises(InputError, match=r"duplicated ids.*\['b'\]"):
        score_corpus(corpus, [model])
    (tmp_path / "s.csv").write_text("id,p\na,0.1\nb,0.3\nz,1\n")
    result = score_corpus(corpus, [model])
    assert result.scores["score"].tolist() == [0.1, 0.3]
    assert any("1 id(s) in s.csv are not in the corpus" in n for n in result.notes["m"])


CALLABLES = """
SEEN = []
CALLS = []


def record_texts(texts):
    SEEN.extend(texts)
    return [0.1] * len(texts)


def length_score(texts):
    CALLS.append(len(texts))
    return [min(len(t), 100) / 100 for t in texts]


def boom(texts):
    if any("BOOM" in t for t in texts):
        raise RuntimeError("cannot score this")
    return [0.5] * len(texts)


def short(texts):
    return [0.5] * (len(texts) - 1)


def out_of_range(texts):
    return [2.0 if "x" in t else 0.5 for t in texts]
"""


@pytest.fixture(scope="session")
def callables(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("callables")
    (folder / "fairaudit_test_callables.py").write_text(CALLABLES)
    sys.path.insert(0, str(folder))
    return "fairaudit_test_callables"


def _texts_corpus(texts: list[str], **columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(
        {"text": texts, "row": range(1, len(texts) + 1), **columns},
        index=pd.Index([f"m{i}" for i in range(len(texts))], name="id", dtype=object),
    )


def test_callable_scores_each_distinct_text_once_and_caches(
    callables: str, tmp_path: Path
) -> None:
    module = importlib.import_module(callables)
    texts = ["short", "a longer message here", "short", "x" * 300]
    model = ModelConfig(name="len", kind="callable", callable=f"{callables}:length_score")
    module.CALLS.clear()
    first = score_corpus(_texts_corpus(texts), [model], cache_dir=tmp_path)
    assert first.scores["score"].tolist() == pytest.approx([0.05, 0.21, 0.05, 1.0])
    assert module.CALLS == [3]
    second = score_corpus(_texts_corpus(texts), [model], cache_dir=tmp_path)
    assert module.CALLS == [3]  # nothing scored twice
    assert second.provenance["len"]["texts_from_cache"] == 3
    pd.testing.assert_frame_equal(first.scores, second.scores)


def test_an_interrupted_run_resumes_from_whole_shards(
    callables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "_SHARD_TEXTS", 2)
    texts = ["aa", "bb", "cc", "dd", "BOOM", "ff"]
    model = ModelConfig(name="b", kind="callable", callable=f"{callables}:boom", batch_size=1)
    with pytest.raises(ModelError, match=r"model 'b'.*cannot score this.*\['m4'"):
        score_corpus(_texts_corpus(texts), [model], cache_dir=tmp_path)
    fixed = ["aa", "bb", "cc", "dd", "ee", "ff"]
    result = score_corpus(_texts_corpus(fixed), [model], cache_dir=tmp_path)
    assert result.provenance["b"]["texts_from_cache"] == 4
    assert result.provenance["b"]["texts_scored_now"] == 2


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("short", r"returned 2 scores for 3 texts"),
        ("out_of_range", r"outside \[0, 1\], ids \['m1'\]"),
        ("boom", r"raised RuntimeError: cannot score this"),
        ("missing_function", r"cannot import callable"),
    ],
)
def test_a_callable_that_fails_is_a_model_error(
    callables: str, tmp_path: Path, function: str, message: str
) -> None:
    model = ModelConfig(name="c", kind="callable", callable=f"{callables}:{function}")
    corpus = _texts_corpus(["ok", "x marks", "BOOM"])
    with pytest.raises(ModelError, match=r"model 'c'.*" + message):
        score_corpus(corpus, [model], cache_dir=tmp_path)
    assert not any(tmp_path.glob("*/shard-*.npz"))

    optional = ModelConfig(
        name="c", kind="callable", callable=f"{callables}:{function}", optional=True
    )
    result = score_corpus(corpus, [optional], cache_dir=tmp_path)
    assert result.scores.empty and "c" in result.skipped


def test_replies_are_scored(callables: str, tmp_path: Path) -> None:
    model = ModelConfig(
        name="r", kind="callable", callable=f"{callables}:length_score", reply_column="reply"
    )
    corpus = _texts_corpus(["hi", "hello"], reply=["x" * 10, "x" * 40])
    result = score_corpus(corpus, [model], use_cache=False)
    assert result.scores["score"].tolist() == [0.1, 0.4]
    with pytest.raises(ModelError, match=r"empty text\(s\) in column 'reply', ids \['m1'\]"):
        score_corpus(_texts_corpus(["hi", "hello"], reply=["ok", ""]), [model], use_cache=False)


def test_hatesonar_cache_hit_equals_fresh_scores(tmp_path: Path) -> None:
    corpus = _texts_corpus(TEXTS)
    model = ModelConfig(name="h", kind="hatesonar", score="neither", complement=True)
    fresh = score_corpus(corpus, [model], use_cache=False)
    first = score_corpus(corpus, [model], cache_dir=tmp_path)
    second = score_corpus(corpus, [model], cache_dir=tmp_path)
    assert second.provenance["h"]["texts_scored_now"] == 0
    pd.testing.assert_frame_equal(fresh.scores, first.scores)
    pd.testing.assert_frame_equal(fresh.scores, second.scores)
    wide = second.head_scores.pivot(index="id", columns="head", values="score")
    np.testing.assert_allclose(wide.sum(axis=1), 1, atol=1e-5)


def test_score_polarity_must_match_the_gold_labels() -> None:
    corpus = _texts_corpus(["a"], score=[0.3])
    model = ModelConfig(name="s", kind="column", column="score", probability_of=(2,))
    with pytest.raises(ConfigError, match=r"probability of gold label\(s\) \['2'\].*\['0', '1'\]"):
        score_corpus(corpus, [model], positive_labels=(0, 1))
    fine = ModelConfig(name="s", kind="column", column="score", probability_of=(1, 0))
    result = score_corpus(corpus, [fine], positive_labels=(0, 1))
    assert "matching corpus.positive_labels" in result.notes["s"][0]


def test_in_sample_warning_for_davidson() -> None:
    sonar = ModelConfig(name="h", kind="hatesonar", score="neither", complement=True)
    split = AuditSubsetConfig(test_size=0.3, random_state=42)
    other = AuditSubsetConfig(test_size=0.3, random_state=0)
    assert "trained on 70%" in in_sample_warning(sonar, DAVIDSON_SHA256, None)
    assert "trained on 70%" in in_sample_warning(sonar, DAVIDSON_SHA256, other)
    assert in_sample_warning(sonar, DAVIDSON_SHA256, split) is None
    assert in_sample_warning(sonar, "0" * 64, None) is None
    profanity = ModelConfig(name="p", kind="profanity_check")
    assert "even on a held-out subset" in in_sample_warning(profanity, DAVIDSON_SHA256, split)
    corpus = _texts_corpus(["hello"])
    with pytest.warns(InSampleWarning, match="trained on 70%"):
        result = score_corpus(corpus, [sonar], use_cache=False, corpus_sha256=DAVIDSON_SHA256)
    assert any(n.startswith("in-sample:") for n in result.notes["h"])


def test_configuration_names_the_audited_score() -> None:
    with pytest.raises(ValueError, match="detoxify needs score"):
        ModelConfig(name="d", kind="detoxify", checkpoint="original")
    with pytest.raises(ValueError, match="label_scores needs score"):
        ModelConfig(name="l", kind="label_scores", column="out")
    with pytest.raises(ValueError, match='callable needs callable: "package.module:function"'):
        ModelConfig(name="c", kind="callable", callable="no_colon")
