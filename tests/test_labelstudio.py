"""Label Studio / Prodigy exchange: offset conventions, selection, export and import.

Reference values come from independent computations (UTF-16 encoding lengths, ``str.replace``
on line endings, the hand-checked tables of case 07 and the exports captured from a live Label
Studio in ``tests/data/labelstudio/``), never from the module's own earlier output. No running
Label Studio is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fairaudit.exceptions import InputError
from fairaudit.labelstudio import (
    OFFSET_CONVENTIONS,
    export_tasks,
    from_label_studio_offsets,
    import_annotations,
    import_prodigy,
    labeling_config,
    select_items,
    to_label_studio_offsets,
)
from tests.cases import case_dir

DATA = Path(__file__).parent / "data" / "labelstudio"


def _reference_offset(text: str, offset: int, convention: str) -> int:
    """An independent count: encode or normalise the prefix and measure it."""
    prefix = text[:offset]
    if convention.endswith("_crlf_collapsed"):
        prefix = prefix.replace("\r\n", "\n")
    if convention.startswith("utf16"):
        return len(prefix.encode("utf-16-le", "surrogatepass")) // 2
    return len(prefix)


def _splits_crlf(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def _accept_predictions(path: Path, annotator: int = 7) -> None:
    """Turn each task's predictions into an annotation, as an annotator accepting them does."""
    tasks = json.loads(path.read_text(encoding="utf-8"))
    for number, task in enumerate(tasks, start=1):
        task["id"] = number
        task["annotations"] = [
            {"id": 100 + number, "completed_by": annotator, "result": p["result"]}
            for p in task.pop("predictions")
        ]
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")


def _rule_spans(rows: list[tuple[str, str, int, int, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["id", "marker", "start", "end", "text"])
    frame["source"] = "rule"
    return frame


# --------------------------------------------------------------------------------------------
# Case 07: \r\n offsets from the browser
# --------------------------------------------------------------------------------------------

CASE_07_CORRECT = {
    "1": ("finna", 23, 28, "finna"),
    "2": ("habitual_be", 10, 12, "be"),
    "3": ("habitual_stay", 24, 28, "stay"),
    "4": ("negative_concord", 3, 16, "ain't\r\nnobody"),
}
CASE_07_STORED = {"1": (21, 26), "2": (8, 10), "3": (24, 28), "4": (3, 15)}


def _case_07_texts() -> pd.Series:
    path = case_dir("07") / "input.jsonl"
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pd.Series({str(t["id"]): t["data"]["text"] for t in tasks})


def test_case_07_import_maps_collapsed_offsets_back_to_the_original_text() -> None:
    result = import_annotations(case_dir("07") / "input.jsonl")
    texts = _case_07_texts()

    assert result.rejected.empty
    assert result.repaired == 3
    assert result.detected_convention == "codepoint_crlf_collapsed"
    got = {row.id: (row.marker, row.start, row.end, row.text) for row in result.spans.itertuples()}
    assert got == CASE_07_CORRECT
    for row in result.spans.itertuples():
        assert texts[row.id][row.start : row.end] == row.text
        assert row.source == "imported"
    # The stored text keeps its line endings.
    assert "\r\n" in result.spans.loc[result.spans["id"] == "4", "text"].item()


def test_case_07_round_trip_writes_collapsed_offsets_and_reads_the_same_spans(
    tmp_path: Path,
) -> None:
    first = import_annotations(case_dir("07") / "input.jsonl")
    texts = _case_07_texts()
    utterances = pd.DataFrame({"text": texts})

    out = export_tasks(
        utterances,
        first.spans,
        marker_set_version="1.0.0",
        convention=first.detected_convention,
        path=tmp_path / "tasks.json",
    )
    tasks = json.loads(out.read_text(encoding="utf-8"))
    written = {
        t["data"]["id"]: (
            t["predictions"][0]["result"][0]["value"]["start"],
            t["predictions"][0]["result"][0]["value"]["end"],
        )
        for t in tasks
    }
    assert written == CASE_07_STORED
    assert all(
        t["meta"]["fairaudit"]["offset_convention"] == "codepoint_crlf_collapsed" for t in tasks
    )
    assert tasks[3]["predictions"][0]["result"][0]["value"]["text"] == "ain't\nnobody"
    assert tasks[3]["data"]["text"] == texts["4"]

    _accept_predictions(out)
    second = import_annotations(out, texts=texts)
    assert second.repaired == 0
    columns = ["id", "marker", "start", "end", "text"]
    pd.testing.assert_frame_equal(second.spans[columns], first.spans[columns])
    assert set(second.spans["source"]) == {"human:7"}


# --------------------------------------------------------------------------------------------
# Offset conversions
# --------------------------------------------------------------------------------------------

_PIECES = [
    "a",
    "b",
    "é",
    " ",
    "\n",
    "\r",
    "\r\n",
    "\r\n",
    "🍗",
    "😂",
    "e\u0301",
    "\u0301",
    "👩\u200d👩\u200d👧",
    "👍🏾",
    "🇺🇸",
    "中",
    "\ud800",
    "\U0010ffff",
    "ain't",
    "finna",
]
_TEXT_IN_FILES = st.one_of(
    st.lists(st.sampled_from([p for p in _PIECES if p != "\ud800"]), max_size=20).map("".join),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
)
_TEXT = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=20).map("".join),
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(text=_TEXT, data=st.data(), convention=st.sampled_from(OFFSET_CONVENTIONS))
def test_offsets_match_an_independent_count_and_invert(
    text: str, data: st.DataObject, convention: str
) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    if convention.endswith("_crlf_collapsed") and (
        _splits_crlf(text, start) or _splits_crlf(text, end)
    ):
        with pytest.raises(InputError, match="splits"):
            to_label_studio_offsets(text, start, end, convention=convention)
        return

    outside = to_label_studio_offsets(text, start, end, convention=convention)
    assert outside == (
        _reference_offset(text, start, convention),
        _reference_offset(text, end, convention),
    )
    assert from_label_studio_offsets(text, *outside, convention=convention) == (start, end)


def test_known_offsets_for_emoji_and_crlf() -> None:
    text = "🍗 finna\r\neat 👩\u200d👩\u200d👧 fr"
    start = text.index("eat")
    # Counted by hand: 🍗 is 1 code point and 2 UTF-16 units; \r\n is 2, or 1 collapsed.
    assert to_label_studio_offsets(text, start, start + 3, convention="codepoint") == (9, 12)
    assert to_label_studio_offsets(text, start, start + 3, convention="utf16") == (10, 13)
    assert to_label_studio_offsets(
        text, start, start + 3, convention="codepoint_crlf_collapsed"
    ) == (8, 11)
    assert to_label_studio_offsets(text, start, start + 3, convention="utf16_crlf_collapsed") == (
        9,
        12,
    )
    # A ZWJ family is 5 code points and 8 UTF-16 units.
    family = text.index("👩")
    assert family == 13
    assert to_label_studio_offsets(text, family, family + 5, convention="utf16") == (14, 22)


def test_conversion_is_vectorised_over_the_spans_of_one_text() -> None:
    text = "😂😂 he be\r\nlike 🍗"
    starts, ends = np.array([0, 3, 6, 8]), np.array([2, 5, 8, 15])
    got_start, got_end = to_label_studio_offsets(text, starts, ends, convention="utf16")
    assert list(got_start) == [_reference_offset(text, s, "utf16") for s in starts]
    assert list(got_end) == [_reference_offset(text, e, "utf16") for e in ends]
    back = from_label_studio_offsets(text, got_start, got_end, convention="utf16")
    assert list(back[0]) == list(starts) and list(back[1]) == list(ends)


def test_half_an_emoji_and_out_of_range_offsets_are_errors() -> None:
    with pytest.raises(InputError, match="surrogate"):
        from_label_studio_offsets("🍗x", 1, 3, convention="utf16")
    with pytest.raises(InputError, match="outside"):
        to_label_studio_offsets("abc", 0, 4, convention="codepoint")
    with pytest.raises(InputError, match="outside"):
        from_label_studio_offsets("a\r\nb", 0, 4, convention="codepoint_crlf_collapsed")
    with pytest.raises(InputError, match="unknown offset convention"):
        to_label_studio_offsets("abc", 0, 1, convention="bytes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Export then import gives back the same spans
# --------------------------------------------------------------------------------------------


@st.composite
def _texts_with_spans(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str, int, int, str]]]:
    # Lone surrogates cannot be written as UTF-8, so they never reach a Label Studio file.
    texts = draw(st.lists(_TEXT_IN_FILES.filter(lambda t: len(t) > 0), min_size=1, max_size=4))
    spans = []
    for number, text in enumerate(texts):
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.integers(0, len(text) - 1))
            end = draw(st.integers(start + 1, len(text)))
            marker = draw(st.sampled_from(["habitual_be", "finna", "aint"]))
            spans.append((f"u{number}", marker, start, end, text[start:end]))
    return texts, spans


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=_texts_with_spans(), convention=st.sampled_from(OFFSET_CONVENTIONS))
@example(  # a lone \r before a \r\n pair: the collapsed span text keeps a real "\r\n"
    case=(["a", "aaaa\r\r\n"], [("u1", "finna", 0, 7, "aaaa\r\r\n")]),
    convention="codepoint_crlf_collapsed",
)
def test_export_then_import_gives_back_the_same_spans(
    case: tuple[list[str], list[tuple[str, str, int, int, str]]],
    convention: str,
    tmp_path: Path,
) -> None:
    texts, rows = case
    if convention.endswith("_crlf_collapsed"):
        assume(
            not any(
                _splits_crlf(texts[int(i[1:])], s) or _splits_crlf(texts[int(i[1:])], e)
                for i, _, s, e, _ in rows
            )
        )
    corpus = pd.Series(texts, index=[f"u{k}" for k in range(len(texts))])
    spans = _rule_spans(rows)
    path = tmp_path / f"tasks-{convention}.json"

    export_tasks(
        pd.DataFrame({"text": corpus}),
        spans,
        marker_set_version="1.0.0",
        convention=convention,  # type: ignore[arg-type]
        path=path,
    )
    _accept_predictions(path)
    result = import_annotations(path, texts=corpus)

    assert result.rejected.empty
    assert result.repaired == 0
    key = ["id", "start", "end", "marker"]
    expected = spans.sort_values(key).reset_index(drop=True)[
        ["id", "marker", "start", "end", "text"]
    ]
    got = result.spans.sort_values(key).reset_index(drop=True)[
        ["id", "marker", "start", "end", "text"]
    ]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    for row in result.spans.itertuples():
        assert corpus[row.id][row.start : row.end] == row.text


def test_export_writes_label_studio_tasks_with_predictions(tmp_path: Path) -> None:
    text = "🍗 she be\r\nfinna eat"
    spans = _rule_spans([("9", "habitual_be", 6, 8, "be"), ("9", "finna", 10, 15, "finna")])
    out = export_tasks(
        pd.DataFrame({"text": [text]}, index=[9]),
        spans,
        marker_set_version="2.3.1",
        convention="utf16",
        path=tmp_path / "sub" / "tasks.json",
    )
    (task,) = json.loads(out.read_text(encoding="utf-8"))
    assert task["data"] == {"text": text, "id": "9"}
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "2.3.1"
    values = [(r["from_name"], r["to_name"], r["type"], r["value"]) for r in prediction["result"]]
    assert values == [
        (
            "marker",
            "text",
            "labels",
            {"start": 7, "end": 9, "text": "be", "labels": ["habitual_be"]},
        ),
        (
            "marker",
            "text",
            "labels",
            {"start": 11, "end": 16, "text": "finna", "labels": ["finna"]},
        ),
    ]
    assert task["meta"]["fairaudit"] == {
        "offset_convention": "utf16",
        "marker_set_version": "2.3.1",
    }
    assert not list(out.parent.glob(".*.tmp"))


def test_export_refuses_a_span_whose_text_does_not_match(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="row 1"):
        export_tasks(
            pd.DataFrame({"text": ["he be"]}, index=["1"]),
            _rule_spans([("1", "habitual_be", 2, 4, "be")]),
            marker_set_version="1.0.0",
            path=tmp_path / "tasks.json",
        )
    assert not (tmp_path / "tasks.json").exists()


def test_labeling_config_has_one_label_per_marker() -> None:
    config = labeling_config(["habitual_be", "finna"])
    assert '<Labels name="marker" toName="text">' in config
    assert '<Label value="habitual_be"/>' in config and '<Label value="finna"/>' in config
    assert '<Text name="text" value="$text"/>' in config


# --------------------------------------------------------------------------------------------
# Rejection
# --------------------------------------------------------------------------------------------


def test_a_task_whose_offsets_do_not_match_is_rejected_and_the_rest_imported(
    tmp_path: Path,
) -> None:
    tasks = [
        {
            "id": 11,
            "data": {"text": "we finna go", "id": "a"},
            "annotations": [
                {
                    "completed_by": 3,
                    "result": [
                        {
                            "type": "labels",
                            "value": {"start": 3, "end": 8, "text": "finna", "labels": ["finna"]},
                        }
                    ],
                }
            ],
        },
        {
            "id": 12,
            "data": {"text": "she be tripping", "id": "b"},
            "annotations": [
                {
                    "completed_by": 3,
                    "result": [
                        {
                            "type": "labels",
                            "value": {
                                "start": 4,
                                "end": 6,
                                "text": "be",
                                "labels": ["habitual_be"],
                            },
                        },
                        {
                            "type": "labels",
                            "value": {
                                "start": 0,
                                "end": 5,
                                "text": "stay",
                                "labels": ["habitual_stay"],
                            },
                        },
                    ],
                }
            ],
        },
        {
            "id": 13,
            "data": {"text": "no annotations"},
            "annotations": [{"was_cancelled": True, "result": []}],
        },
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks), encoding="utf-8")

    result = import_annotations(path)

    assert result.rejected_tasks == [12]
    assert result.rejected["id"].tolist() == ["b"]
    assert "'stay'" in result.rejected["reason"].item()
    assert result.spans[
        ["id", "marker", "start", "end", "text", "source", "annotator"]
    ].values.tolist() == [["a", "finna", 3, 8, "finna", "human:3", "3"]]


def test_a_task_not_in_the_corpus_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(
        json.dumps([{"id": 5, "data": {"text": "x", "id": "zz"}, "annotations": []}]),
        encoding="utf-8",
    )
    result = import_annotations(path, texts=pd.Series({"a": "x"}))
    assert result.rejected_tasks == [5]
    assert result.spans.empty


def test_an_unreadable_export_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"id": 1, "data": ', encoding="utf-8")
    with pytest.raises(InputError, match="export.json"):
        import_annotations(path)


# --------------------------------------------------------------------------------------------
# Prodigy
# --------------------------------------------------------------------------------------------


def test_prodigy_spans_are_code_point_offsets(tmp_path: Path) -> None:
    text = "🍗🍗 he finna\r\neat"
    lines = [
        {
            "text": text,
            "meta": {"id": "p1"},
            "_annotator_id": "aae-2024-ann1",
            "answer": "accept",
            "spans": [{"start": 6, "end": 11, "token_start": 2, "token_end": 2, "label": "finna"}],
        },
        {
            "text": "he be",
            "meta": {"id": "p2"},
            "answer": "reject",
            "spans": [{"start": 3, "end": 5, "label": "habitual_be"}],
        },
        {
            "text": "he be",
            "meta": {"id": "p3"},
            "answer": "accept",
            "spans": [{"start": 2, "end": 5, "text": "be", "label": "habitual_be"}],
        },
    ]
    path = tmp_path / "prodigy.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")

    result = import_prodigy(path)

    assert result.spans.values.tolist() == [
        ["p1", "finna", 6, 11, "finna", "human:aae-2024-ann1", "aae-2024-ann1"]
    ]
    assert result.rejected_tasks == [3]


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------


@pytest.fixture
def utterances() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": [f"t{k}" for k in range(8)],
            "dialect_score": [0.10, 0.35, 0.58, 0.63, np.nan, 0.90, 0.95, 0.50],
            "markers_strong": [2, 1, 0, 0, 3, 0, 0, 1],
            "markers_total": [3, 1, 0, 1, 3, 0, 0, 1],
        },
        index=pd.Index([f"u{k}" for k in range(8)], name="id"),
    )


def test_random_selection_is_seeded(utterances: pd.DataFrame) -> None:
    first = select_items(utterances, strategy="random", n=5, seed=1)
    assert first.equals(select_items(utterances, strategy="random", n=5, seed=1))
    assert len(first) == 5 and first.is_unique and set(first) <= set(utterances.index)
    others = {tuple(select_items(utterances, strategy="random", n=5, seed=s)) for s in range(10)}
    assert len(others) > 1
    assert len(select_items(utterances, strategy="random", n=50, seed=1)) == 8


def test_uncertainty_orders_by_distance_to_the_threshold(utterances: pd.DataFrame) -> None:
    chosen = select_items(utterances, strategy="uncertainty", n=4, seed=0, threshold=0.6)
    # |score - 0.6|: u2 0.02, u3 0.03, u7 0.10, u1 0.25, u5 0.30, ...; u4 (NaN) never.
    assert chosen.tolist() == ["u2", "u3", "u7", "u1"]
    everything = select_items(utterances, strategy="uncertainty", n=100, seed=0)
    assert "u4" not in everything and len(everything) == 7


def test_uncertainty_ties_are_broken_by_the_seed() -> None:
    frame = pd.DataFrame(
        {"text": list("abcdef"), "dialect_score": [0.5, 0.7, 0.5, 0.7, 0.5, 0.7]},
        index=list("abcdef"),
    )
    runs = {tuple(select_items(frame, strategy="uncertainty", n=6, seed=s)) for s in range(12)}
    assert len(runs) > 1
    assert select_items(frame, strategy="uncertainty", n=6, seed=3).equals(
        select_items(frame, strategy="uncertainty", n=6, seed=3)
    )


def test_disagreement_definition_and_order(utterances: pd.DataFrame) -> None:
    chosen = select_items(utterances, strategy="disagreement", n=10, seed=0)
    # Rules AAE, model SAE (strong >= 1, score <= 0.4): u0 (strength 0.90), u1 (0.65).
    # Model AAE, no markers (total == 0, score >= 0.8): u6 (0.95), u5 (0.90).
    # Not: u7 (score 0.5), u4 (NaN), u3 (a weak marker), u2 (score 0.58).
    assert chosen.tolist() == ["u6", "u0", "u5", "u1"]
    assert select_items(utterances, strategy="disagreement", n=2, seed=0).tolist() == ["u6", "u0"]


def test_selection_rejects_bad_options(utterances: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="strategy"):
        select_items(utterances, strategy="active", n=2, seed=0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="markers_strong"):
        select_items(utterances[["text", "dialect_score"]], strategy="disagreement", n=2, seed=0)
    with pytest.raises(InputError, match="threshold"):
        select_items(utterances, strategy="uncertainty", n=2, seed=0, threshold=1.5)


# --------------------------------------------------------------------------------------------
# Exports captured from a live Label Studio 1.23.2 (see docs/labelstudio.md)
# --------------------------------------------------------------------------------------------


def test_label_studio_stores_imported_predictions_verbatim() -> None:
    sent = json.loads((DATA / "ls-1.23.2-import.json").read_text(encoding="utf-8"))
    stored = json.loads((DATA / "ls-1.23.2-predictions-api.json").read_text(encoding="utf-8"))
    for task, prediction in zip(sent, stored, strict=True):
        # Offsets, text and labels come back exactly as sent: nothing is reinterpreted.
        assert prediction["result"] == task["predictions"][0]["result"]
        assert prediction["model_version"] == task["predictions"][0]["model_version"]


def test_captured_label_studio_export_is_reimported_exactly() -> None:
    export = DATA / "ls-1.23.2-export.json"
    tasks = json.loads(export.read_text(encoding="utf-8"))
    texts = pd.Series({t["data"]["id"]: t["data"]["text"] for t in tasks})
    # The export keeps \r\n and the task meta written by fairaudit.
    assert "\r\n" in texts["emoji"] and "\r\n\r\n" in texts["zwj"]
    assert tasks[0]["meta"]["fairaudit"]["offset_convention"] == "codepoint"

    result = import_annotations(export, texts=texts)

    assert result.rejected.empty
    # Offsets counted by hand on the task texts (code points; 🍗, 😂 and each ZWJ part count 1).
    assert result.spans[["id", "marker", "start", "end", "text", "source"]].values.tolist() == [
        ["emoji", "finna", 9, 14, "finna", "human:1"],
        ["emoji", "habitual_be", 24, 26, "be", "human:1"],
        ["zwj", "habitual_be", 12, 14, "be", "human:1"],
        ["zwj", "negative_concord", 28, 41, "ain't\r\nnobody", "human:1"],
        ["combining", "habitual_be", 6, 8, "be", "human:1"],
        ["combining", "finna", 20, 25, "finna", "human:1"],
        # Imported with UTF-16 offsets (11, 16) and (26, 28): repaired to code points.
        ["emoji-utf16", "finna", 9, 14, "finna", "human:1"],
        ["emoji-utf16", "habitual_be", 24, 26, "be", "human:1"],
    ]
    assert result.repaired == 2
    assert result.conventions == {"codepoint": 6, "utf16": 2}
    assert result.detected_convention == "codepoint"


def test_export_matches_what_was_sent_to_the_live_label_studio(tmp_path: Path) -> None:
    sent = json.loads((DATA / "ls-1.23.2-import.json").read_text(encoding="utf-8"))[:3]
    texts = pd.Series({t["data"]["id"]: t["data"]["text"] for t in sent})
    rows = []
    for task in sent:
        text = task["data"]["text"]
        for item in task["predictions"][0]["result"]:
            s, e = item["value"]["start"], item["value"]["end"]
            rows.append((task["data"]["id"], item["value"]["labels"][0], s, e, text[s:e]))

    out = export_tasks(
        pd.DataFrame({"text": texts}),
        _rule_spans(rows),
        marker_set_version="1.0.0",
        convention="codepoint",
        path=tmp_path / "tasks.json",
    )
    written = json.loads(out.read_text(encoding="utf-8"))
    for ours, theirs in zip(written, sent, strict=True):
        assert ours["data"] == theirs["data"]
        assert ours["meta"] == theirs["meta"]
        values = sorted(
            (r["value"]["start"], r["value"]["end"]) for r in ours["predictions"][0]["result"]
        )
        expected = sorted(
            (r["value"]["start"], r["value"]["end"]) for r in theirs["predictions"][0]["result"]
        )
        assert values == expected
