from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.config import GroupRule
from fairaudit.dialect import annotate_dialect, assign_groups
from fairaudit.twitteraae import TwitterAAEModel, tokenize


def _frame(p_aa: list[float], p_white: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"p_aa": p_aa, "p_white": p_white}, index=[f"u{i}" for i in range(len(p_aa))]
    )


def test_group_rule_by_hand() -> None:
    frame = _frame([0.6, 0.3, 0.2, np.nan, 0.1, 0.1], [0.2, 0.3, 0.6, np.nan, 0.4, 0.1])
    strong = pd.Series([0, 0, 0, 1, 1, 0], index=frame.index)
    score, group = assign_groups(frame, strong, rule=GroupRule())
    # 0.75 -> aae; 0.5 -> uncertain band; 0.25 -> sae; no estimate + marker -> aae;
    # 0.2 (sae range) + marker -> uncertain; 0.5 no marker -> uncertain.
    np.testing.assert_allclose(score.to_numpy()[[0, 1, 2, 4]], [0.75, 0.5, 0.25, 0.2])
    assert group.astype(str).tolist() == [
        "aae",
        "uncertain",
        "sae",
        "aae",
        "uncertain",
        "uncertain",
    ]


def test_thresholds_are_configurable_and_markers_can_be_ignored() -> None:
    frame = _frame([0.55, np.nan], [0.45, np.nan])
    strong = pd.Series([0, 3], index=frame.index)
    rule = GroupRule(aae_threshold=0.55, sae_threshold=0.2, strong_marker_evidence=False)
    _, group = assign_groups(frame, strong, rule=rule)
    assert group.astype(str).tolist() == ["aae", "uncertain"]


@pytest.fixture(scope="module")
def twitteraae_dir(data_dir: Path) -> Path:
    return data_dir / "twitteraae"


def test_text_that_is_not_english_is_never_aae(twitteraae_dir: Path) -> None:
    texts = pd.Series(
        {
            "es": "no sé qué hacer con mi vida, estoy cansada de todo",
            "fr": "je ne sais pas ce que tu veux dire mon ami",
            "de": "ich weiß nicht was du meinst, das ist gut",
            "zh": "我不知道你在说什么",
            "emoji": "😂😂😂",
            "digits": "12345 678",
            # Spanish with a word that a marker rule might read as AAE ("dem", "be").
            "es_marker": "que pasa con ella, dem no be aqui para la fiesta",
            "aae": "she be working late every day and he finna leave",
        }
    )
    layer = annotate_dialect(
        texts, rule=GroupRule(), twitteraae_dir=twitteraae_dir, use_markers=True
    )
    groups = layer.utterances["dialect_group"].astype(str)
    language = layer.utterances["language"].astype(str)
    assert language[["es", "fr", "de", "es_marker"]].eq("non_english").all()
    assert language[["zh", "emoji", "digits"]].eq("no_text").all()
    assert groups.drop("aae").eq("uncertain").all()
    assert groups["aae"] == "aae"


def test_speaker_pooling_equals_twitteraae_on_all_tokens(twitteraae_dir: Path) -> None:
    texts = pd.Series(
        {
            "m1": "lol yall wildin fr",
            "m2": "I went to the store today",
            "m3": "we finna go to the movies tonight",
            "m4": "the meeting has been moved to tuesday afternoon",
            "m5": "no speaker here, she be tripping",
        }
    )
    speakers = pd.Series({"m1": "a", "m2": "a", "m3": "a", "m4": "b", "m5": None})
    layer = annotate_dialect(
        texts,
        rule=GroupRule(),
        twitteraae_dir=twitteraae_dir,
        use_markers=True,
        units=speakers,
        level="speaker",
    )
    table = layer.utterances
    model = TwitterAAEModel.load(twitteraae_dir)
    tokens_a = [t for key in ("m1", "m2", "m3") for t in tokenize(texts[key])]
    expected = model.proportions_from_tokens(tokens_a)
    assert expected is not None
    score_a = expected[0] / (expected[0] + expected[3])
    for key in ("m1", "m2", "m3"):
        assert table.loc[key, "dialect_score"] == pytest.approx(score_a, abs=1e-9)
        assert table.loc[key, "dialect_group"] == table.loc["m1", "dialect_group"]
    # Speaker a has a strong marker (finna): pooled evidence moves the whole speaker.
    assert table.loc["m2", "dialect_group"] == table.loc["m3", "unit_dialect_group"]
    # No speaker: the message keeps its own group.
    assert table.loc["m5", "dialect_group"] == table.loc["m5", "utterance_dialect_group"]
