from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairaudit.config import GroupRule
from fairaudit.dialect import annotate_dialect, assign_groups
from fairaudit.twitteraae import TwitterAAEModel, tokenize


def _frame(p_aa: list[float], p_white: list[float]) -> pd.DataFrame:
    index = [f"u{i}" for i in range(len(p_aa))]
    return pd.DataFrame({"p_aa": p_aa, "p_white": p_white}, index=index)


def test_group_rule_by_hand() -> None:
    frame = _frame(
        [0.6, 0.3, 0.2, np.nan, 0.1, 0.1, np.nan], [0.2, 0.3, 0.6, np.nan, 0.4, 0.1, np.nan]
    )
    markers = pd.DataFrame(
        {"markers_strong": [0, 0, 0, 1, 1, 0, 0], "markers_total": [0, 0, 0, 1, 1, 2, 0]},
        index=frame.index,
    )
    table = assign_groups(frame, markers, rule=GroupRule())
    # By hand: twitteraae_score = p_aa / (p_aa + p_white); marker_score = 1 - 0.5^strong 0.9^weak;
    # dialect_score = 1 - (1 - t)(1 - m), the marker score alone without t.
    np.testing.assert_allclose(
        table["twitteraae_score"].to_numpy()[[0, 1, 2, 4, 5]], [0.75, 0.5, 0.25, 0.2, 0.5]
    )
    np.testing.assert_allclose(table["marker_score"], [0, 0, 0, 0.5, 0.5, 1 - 0.81, 0])
    expected = [0.75, 0.5, 0.25, 0.5, 1 - 0.8 * 0.5, 1 - 0.5 * 0.81, np.nan]
    np.testing.assert_allclose(table["dialect_score"], expected)
    assert table["dialect_group"].astype(str).tolist() == [
        "aae",  # 0.75
        "uncertain",  # 0.5: in the band
        "sae",  # 0.25
        "uncertain",  # no estimate, one strong marker: 0.5
        "aae",  # 0.6
        "uncertain",  # 0.595
        "uncertain",  # no evidence at all
    ]


def test_thresholds_and_weights_are_configurable() -> None:
    frame = _frame([0.55, np.nan], [0.45, np.nan])
    markers = pd.DataFrame({"markers_strong": [0, 3], "markers_total": [0, 3]}, index=frame.index)
    rule = GroupRule(aae_threshold=0.55, sae_threshold=0.2, strong_marker_weight=0.0)
    table = assign_groups(frame, markers, rule=rule)
    assert table["dialect_group"].astype(str).tolist() == ["aae", "uncertain"]


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
    twitteraae_a = expected[0] / (expected[0] + expected[3])
    own = table.loc[["m1", "m2", "m3"]]
    strong = own["markers_strong"].sum()
    weak = own["markers_total"].sum() - strong
    assert strong >= 1  # finna
    marker_a = 1 - 0.5**strong * 0.9**weak
    score_a = 1 - (1 - twitteraae_a) * (1 - marker_a)
    for key in ("m1", "m2", "m3"):
        assert table.loc[key, "dialect_score"] == pytest.approx(score_a, abs=1e-9)
        assert table.loc[key, "dialect_group"] == table.loc["m1", "dialect_group"]
    # Speaker a has a strong marker (finna): pooled evidence moves the whole speaker.
    assert table.loc["m2", "dialect_group"] == table.loc["m3", "unit_dialect_group"]
    # No speaker: the message keeps its own group.
    assert table.loc["m5", "dialect_group"] == table.loc["m5", "utterance_dialect_group"]
