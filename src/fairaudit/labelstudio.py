"""Exchange marker spans with Label Studio (and read Prodigy) for human review.

fairaudit's spans use Python code-point offsets, end exclusive, and always satisfy
``text[start:end] == span_text``. Annotation tools count differently: JavaScript strings count
astral-plane characters (most emoji) as two UTF-16 code units, and a browser shows ``\\r\\n`` as
one line break. This module

* converts offsets exactly between Python code points and such conventions
  (:func:`to_label_studio_offsets`, :func:`from_label_studio_offsets`);
* chooses utterances for review (:func:`select_items`: random, near the dialect threshold, or where
  the rules and TwitterAAE disagree);
* writes Label Studio tasks with the rule spans as ``predictions`` (:func:`export_tasks`);
* reads a Label Studio JSON export (:func:`import_annotations`) or Prodigy JSONL
  (:func:`import_prodigy`) back as a separate human span layer with annotator ids. It never
  touches the rule layer. A task whose spans do not match its text is rejected by task id and the
  rest is imported.

What a live Label Studio stores and writes, and how it was checked, is in ``docs/labelstudio.md``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, overload

import numpy as np
import pandas as pd

from fairaudit.exceptions import InputError
from fairaudit.runfolder import write_text_atomic

__all__ = [
    "OffsetConvention",
    "OFFSET_CONVENTIONS",
    "LABEL_STUDIO_CONVENTION",
    "HUMAN_SPAN_COLUMNS",
    "ImportResult",
    "to_label_studio_offsets",
    "from_label_studio_offsets",
    "select_items",
    "export_tasks",
    "import_annotations",
    "import_prodigy",
    "labeling_config",
]

logger = logging.getLogger(__name__)

OffsetConvention = Literal[
    "codepoint", "utf16", "codepoint_crlf_collapsed", "utf16_crlf_collapsed"
]
"""How an offset counts characters.

``codepoint``
    Python ``str`` indices: one per Unicode code point (what fairaudit stores).
``utf16``
    JavaScript string indices: astral-plane code points (U+10000 and above) count two.
``codepoint_crlf_collapsed``, ``utf16_crlf_collapsed``
    As above, over the text with every ``\\r\\n`` counted as a single ``\\n`` (the view a browser
    gives of the text).
"""

OFFSET_CONVENTIONS: tuple[str, ...] = get_args(OffsetConvention)

LABEL_STUDIO_CONVENTION: OffsetConvention = "codepoint"
"""The convention of a current Label Studio (checked against 1.x, see ``docs/labelstudio.md``)."""

HUMAN_SPAN_COLUMNS: tuple[str, ...] = (
    "id",
    "marker",
    "start",
    "end",
    "text",
    "source",
    "annotator",
)

_FROM_NAME = "marker"
_TO_NAME = "text"
_META_KEY = "fairaudit"
_STRATEGIES = ("random", "uncertainty", "disagreement")
_SAE_BELOW = 0.4
_AAE_ABOVE = 0.8


# --------------------------------------------------------------------------------------------
# Offset conventions
# --------------------------------------------------------------------------------------------


def _check_convention(convention: str) -> None:
    if convention not in OFFSET_CONVENTIONS:
        raise InputError(
            f"unknown offset convention {convention!r}; expected one of {OFFSET_CONVENTIONS}"
        )


def _collapses_crlf(convention: str) -> bool:
    return convention.endswith("_crlf_collapsed")


def _boundaries(text: str, convention: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ``(outside, valid)`` for every Python boundary ``0..len(text)``, or ``None``.

    ``outside[k]`` is the offset of Python boundary ``k`` in ``convention``; ``valid[k]`` is
    false where ``k`` splits a ``\\r\\n`` pair that the convention counts as one character.
    ``None`` means the two conventions agree on this text (the common, cheap case).
    """
    utf16 = convention.startswith("utf16")
    collapse = _collapses_crlf(convention)
    has_astral = utf16 and not text.isascii() and max(text) > "\uffff"
    has_crlf = collapse and "\r\n" in text
    if not (has_astral or has_crlf):
        return None

    code_points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    width = np.ones(len(code_points), dtype=np.int64)
    if has_astral:
        width[code_points > 0xFFFF] = 2
    valid = np.ones(len(code_points) + 1, dtype=bool)
    if has_crlf:
        # The \r of a \r\n pair takes no room: the pair counts as its \n.
        carriage = (code_points[:-1] == 0x0D) & (code_points[1:] == 0x0A)
        width[:-1][carriage] = 0
        valid[1:-1][carriage] = False
    outside = np.concatenate(([0], np.cumsum(width)))
    return outside, valid


@overload
def to_label_studio_offsets(
    text: str, start: int, end: int, *, convention: OffsetConvention
) -> tuple[int, int]: ...


@overload
def to_label_studio_offsets(
    text: str,
    start: Sequence[int] | np.ndarray,
    end: Sequence[int] | np.ndarray,
    *,
    convention: OffsetConvention,
) -> tuple[np.ndarray, np.ndarray]: ...


def to_label_studio_offsets(
    text: str,
    start: int | Sequence[int] | np.ndarray,
    end: int | Sequence[int] | np.ndarray,
    *,
    convention: OffsetConvention,
) -> tuple[int, int] | tuple[np.ndarray, np.ndarray]:
    """Convert Python code-point offsets into ``convention``.

    Parameters
    ----------
    text
        The full text the offsets refer to, exactly as stored.
    start, end
        Python code-point offsets, end exclusive; scalars, or arrays of the spans of one text
        (converted in one O(len(text)) pass).
    convention
        The target convention (see :data:`OffsetConvention`).

    Returns
    -------
    tuple
        ``(start, end)`` in ``convention``: ints for scalar input, else int64 arrays.

    Raises
    ------
    InputError
        If an offset is outside ``0..len(text)``, a span ends before it starts, or a boundary
        falls between the ``\\r`` and ``\\n`` of a pair the convention counts as one character
        (no offset there exists).
    """
    _check_convention(convention)
    scalar = np.ndim(start) == 0 and np.ndim(end) == 0
    starts = np.atleast_1d(np.asarray(start, dtype=np.int64))
    ends = np.atleast_1d(np.asarray(end, dtype=np.int64))
    _check_span_bounds(starts, ends, len(text), what="Python")

    table = _boundaries(text, convention)
    if table is not None:
        outside, valid = table
        for name, offsets in (("start", starts), ("end", ends)):
            bad = ~valid[offsets]
            if bad.any():
                raise InputError(
                    f"offset {int(offsets[bad][0])} splits a \\r\\n pair, which "
                    f"{convention!r} counts as one character",
                    column=name,
                )
        starts, ends = outside[starts], outside[ends]

    if scalar:
        return int(starts[0]), int(ends[0])
    return starts, ends


@overload
def from_label_studio_offsets(
    text: str, start: int, end: int, *, convention: OffsetConvention
) -> tuple[int, int]: ...


@overload
def from_label_studio_offsets(
    text: str,
    start: Sequence[int] | np.ndarray,
    end: Sequence[int] | np.ndarray,
    *,
    convention: OffsetConvention,
) -> tuple[np.ndarray, np.ndarray]: ...


def from_label_studio_offsets(
    text: str,
    start: int | Sequence[int] | np.ndarray,
    end: int | Sequence[int] | np.ndarray,
    *,
    convention: OffsetConvention,
) -> tuple[int, int] | tuple[np.ndarray, np.ndarray]:
    """Convert offsets in ``convention`` into Python code-point offsets.

    The inverse of :func:`to_label_studio_offsets`: for every representable span,
    ``from_label_studio_offsets(text, *to_label_studio_offsets(text, s, e, convention=c),
    convention=c) == (s, e)``. A collapsed ``\\r\\n`` maps back to both characters.

    Parameters
    ----------
    text
        The full text, exactly as stored (with its original line endings).
    start, end
        Offsets in ``convention``, end exclusive; scalars or arrays.
    convention
        The source convention (see :data:`OffsetConvention`).

    Returns
    -------
    tuple
        ``(start, end)`` as Python code-point offsets: ints for scalar input, else int64 arrays.

    Raises
    ------
    InputError
        If an offset is out of range for the text in that convention, or falls inside a UTF-16
        surrogate pair (half an emoji).
    """
    _check_convention(convention)
    scalar = np.ndim(start) == 0 and np.ndim(end) == 0
    starts = np.atleast_1d(np.asarray(start, dtype=np.int64))
    ends = np.atleast_1d(np.asarray(end, dtype=np.int64))

    table = _boundaries(text, convention)
    if table is None:
        _check_span_bounds(starts, ends, len(text), what=convention)
    else:
        outside, _ = table
        _check_span_bounds(starts, ends, int(outside[-1]), what=convention)
        converted = []
        for name, offsets in (("start", starts), ("end", ends)):
            # The leftmost boundary with this offset: before the \r of a collapsed pair.
            inside = np.searchsorted(outside, offsets, side="left")
            bad = outside[inside] != offsets
            if bad.any():
                raise InputError(
                    f"{convention} offset {int(offsets[bad][0])} falls inside a surrogate pair",
                    column=name,
                )
            converted.append(inside.astype(np.int64))
        starts, ends = converted

    if scalar:
        return int(starts[0]), int(ends[0])
    return starts, ends


def _check_span_bounds(starts: np.ndarray, ends: np.ndarray, length: int, *, what: str) -> None:
    if starts.shape != ends.shape:
        raise InputError("start and end must have the same length")
    for name, offsets in (("start", starts), ("end", ends)):
        bad = (offsets < 0) | (offsets > length)
        if bad.any():
            raise InputError(
                f"{what} offset {int(offsets[bad][0])} is outside the text (length {length})",
                column=name,
            )
    backwards = ends < starts
    if backwards.any():
        raise InputError(
            f"span ends ({int(ends[backwards][0])}) before it starts "
            f"({int(starts[backwards][0])})",
            column="end",
        )


# --------------------------------------------------------------------------------------------
# Choosing items for review
# --------------------------------------------------------------------------------------------


def select_items(
    utterances: pd.DataFrame,
    *,
    strategy: Literal["random", "uncertainty", "disagreement"],
    n: int,
    seed: int,
    threshold: float = 0.6,
) -> pd.Index:
    """Choose up to ``n`` utterances for human review.

    Parameters
    ----------
    utterances
        One row per utterance, indexed by id, with columns ``text``, ``dialect_score``
        (TwitterAAE ``p_aa / (p_aa + p_white)``, NaN where undefined), ``markers_strong`` and
        ``markers_total`` (rule span counts).
    strategy
        ``"random"``: a seeded simple random sample.
        ``"uncertainty"``: the utterances whose dialect score is nearest ``threshold`` (the score
        above which the audit assigns the AAE group), nearest first; rows with a NaN score are
        never chosen.
        ``"disagreement"``: the utterances where the rules and TwitterAAE disagree: at least one
        strong marker while the score is at most 0.4, or no marker at all while the score is at
        least 0.8. Ordered by the strength of the disagreement, the model's confidence against
        the rules (``1 - score`` in the first case, ``score`` in the second), then by the number
        of strong markers; NaN scores never disagree.
    n
        How many to choose; fewer are returned when fewer qualify.
    seed
        Seed of the random sample, and of the order among exact ties in the other strategies.
    threshold
        The group threshold on the dialect score, in (0, 1).

    Returns
    -------
    pandas.Index
        The chosen ids, in review order.

    Raises
    ------
    InputError
        If a column is missing or an option is out of range.
    """
    if strategy not in _STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; expected one of {_STRATEGIES}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InputError(f"n must be a non-negative integer, got {n!r}")
    if not 0.0 < threshold < 1.0:
        raise InputError(f"threshold must lie in (0, 1), got {threshold!r}")
    needed = {"random": ["text"], "uncertainty": ["dialect_score"]}.get(
        strategy, ["dialect_score", "markers_strong", "markers_total"]
    )
    missing = [c for c in needed if c not in utterances.columns]
    if missing:
        raise InputError(f"utterances lack the column(s) {missing} needed by {strategy!r}")

    # A seeded shuffle first, then a stable sort: ties fall in a reproducible random order.
    rng = np.random.default_rng(seed)
    shuffled = utterances.iloc[rng.permutation(len(utterances))]

    if strategy == "random":
        chosen = shuffled.index[:n]
    elif strategy == "uncertainty":
        score = pd.to_numeric(shuffled["dialect_score"], errors="coerce")
        distance = (score - threshold).abs().dropna()
        chosen = distance.sort_values(kind="stable").index[:n]
    else:
        score = pd.to_numeric(shuffled["dialect_score"], errors="coerce")
        strong = pd.to_numeric(shuffled["markers_strong"], errors="coerce").fillna(0)
        total = pd.to_numeric(shuffled["markers_total"], errors="coerce").fillna(0)
        rules_aae = (strong >= 1) & (score <= _SAE_BELOW)
        model_aae = (total == 0) & (score >= _AAE_ABOVE)
        strength = pd.Series(np.nan, index=shuffled.index)
        strength[rules_aae] = 1.0 - score[rules_aae]
        strength[model_aae] = score[model_aae]
        frame = pd.DataFrame({"strength": strength, "strong": strong}).dropna()
        ordered = frame.sort_values(["strength", "strong"], ascending=False, kind="stable")
        chosen = ordered.index[:n]

    logger.info("selected %d of %d utterances by %s", len(chosen), len(utterances), strategy)
    return pd.Index(chosen)


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def labeling_config(marker_ids: Sequence[str]) -> str:
    """Return the Label Studio labeling config that :func:`export_tasks` writes tasks for.

    Parameters
    ----------
    marker_ids
        The marker ids (``marker_set.ids``), one ``<Label>`` each.

    Returns
    -------
    str
        XML: ``<Labels name="marker" toName="text">`` over ``<Text name="text" value="$text"/>``.
    """
    labels = "\n".join(f'    <Label value="{_xml_attribute(m)}"/>' for m in marker_ids)
    return (
        "<View>\n"
        f'  <Labels name="{_FROM_NAME}" toName="{_TO_NAME}">\n{labels}\n  </Labels>\n'
        f'  <Text name="{_TO_NAME}" value="$text"/>\n'
        "</View>\n"
    )


def _xml_attribute(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def export_tasks(
    utterances: pd.DataFrame,
    spans: pd.DataFrame,
    *,
    marker_set_version: str,
    convention: OffsetConvention = LABEL_STUDIO_CONVENTION,
    path: str | Path,
) -> Path:
    """Write utterances as Label Studio JSON tasks with the rule spans as predictions.

    Parameters
    ----------
    utterances
        Indexed by id, with a ``text`` column (e.g. ``utterances.loc[select_items(...)]``).
    spans
        Rule spans (:func:`fairaudit.markers.annotate`): ``id, marker, start, end, text``;
        spans of ids not in ``utterances`` are left out.
    marker_set_version
        Written as each prediction's ``model_version``.
    convention
        Offset convention of the project the tasks are for (see :data:`OffsetConvention`);
        recorded in each task's ``meta``.
    path
        Output file; written atomically (a temporary file, then a rename).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InputError
        If a column is missing, a text is not a string, or a span does not satisfy
        ``text[start:end] == span text`` or cannot be expressed in ``convention``.

    Notes
    -----
    Each task is ``{"data": {"text", "id"}, "meta": {"fairaudit": {...}}, "predictions":
    [{"model_version", "result": [{"id", "from_name": "marker", "to_name": "text",
    "type": "labels", "value": {"start", "end", "text", "labels": [marker]}}]}]}``. In a collapsed
    convention ``value.text`` has ``\\n`` for ``\\r\\n``, as a browser would write it.
    """
    _check_convention(convention)
    if "text" not in utterances.columns:
        raise InputError("utterances lack the column 'text'")
    missing = [c for c in ("id", "marker", "start", "end") if c not in spans.columns]
    if missing:
        raise InputError(f"spans lack the column(s) {missing}")

    by_id: dict[str, pd.DataFrame] = {
        str(key): group for key, group in spans.groupby(spans["id"].astype(str), sort=False)
    }
    tasks = []
    for utterance_id, text in utterances["text"].items():
        if not isinstance(text, str):
            raise InputError(
                f"text must be a string, got {type(text).__name__}",
                row=str(utterance_id),
                column="text",
            )
        group = by_id.get(str(utterance_id))
        result = []
        if group is not None:
            group = group.sort_values(["start", "end", "marker"], kind="stable")
            starts = group["start"].to_numpy(dtype=np.int64)
            ends = group["end"].to_numpy(dtype=np.int64)
            try:
                outside_start, outside_end = to_label_studio_offsets(
                    text, starts, ends, convention=convention
                )
            except InputError as error:
                raise InputError(
                    error.detail, row=str(utterance_id), column=error.column
                ) from None
            for k, (marker, s, e, os_, oe) in enumerate(
                zip(group["marker"], starts, ends, outside_start, outside_end, strict=True)
            ):
                if "text" in group.columns and group["text"].iloc[k] != text[s:e]:
                    raise InputError(
                        f"span [{s},{e}) text {group['text'].iloc[k]!r} is not "
                        f"text[start:end] = {text[s:e]!r}",
                        row=str(utterance_id),
                        column="text",
                    )
                shown = (
                    text[s:e].replace("\r\n", "\n") if _collapses_crlf(convention) else text[s:e]
                )
                result.append(
                    {
                        "id": f"{marker}-{k}",
                        "from_name": _FROM_NAME,
                        "to_name": _TO_NAME,
                        "type": "labels",
                        "value": {
                            "start": int(os_),
                            "end": int(oe),
                            "text": shown,
                            "labels": [str(marker)],
                        },
                    }
                )
        tasks.append(
            {
                "data": {"text": text, "id": str(utterance_id)},
                "meta": {
                    _META_KEY: {
                        "offset_convention": convention,
                        "marker_set_version": marker_set_version,
                    }
                },
                "predictions": [{"model_version": marker_set_version, "result": result}],
            }
        )

    target = _write_json_atomic(tasks, Path(path))
    logger.info(
        "exported %d tasks with %d rule spans to %s (offsets: %s)",
        len(tasks),
        sum(len(t["predictions"][0]["result"]) for t in tasks),
        target,
        convention,
    )
    return target


def _write_json_atomic(payload: Any, target: Path) -> Path:
    return write_text_atomic(
        target, lambda handle: json.dump(payload, handle, ensure_ascii=False, indent=1)
    )


# --------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """Human spans read from an annotation export.

    Parameters
    ----------
    spans
        The human span layer: ``id, marker, start, end, text, source, annotator`` in Python
        code-point offsets, with ``text[start:end] == span text``; ``source`` is
        ``"human:<annotator>"``, or ``"imported"`` when the export names no annotator.
    rejected
        One row per rejected task: ``task`` (the export's task id), ``id`` (the utterance id,
        where known) and ``reason``. None of a rejected task's spans are in ``spans``.
    repaired
        How many imported spans did not match under the expected convention and were matched
        under another one (e.g. offsets over the ``\\r\\n``-collapsed text).
    conventions
        How many imported spans matched under each offset convention.
    expected_convention
        The convention tried first: the one recorded by :func:`export_tasks` in the task's
        ``meta``, else :data:`LABEL_STUDIO_CONVENTION`.
    annotated
        One row (``id``, ``annotator``) per item each annotator completed, spans or not: an
        item an annotator saw and left unlabelled is evidence of absence for agreement.
    """

    spans: pd.DataFrame
    rejected: pd.DataFrame
    repaired: int = 0
    annotated: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"id": [], "annotator": []}, dtype=object)
    )
    conventions: Mapping[str, int] = field(default_factory=dict)
    expected_convention: str = LABEL_STUDIO_CONVENTION

    @property
    def detected_convention(self) -> str:
        """The convention most imported spans matched: the one to export back in."""
        if not self.conventions:
            return self.expected_convention
        return max(self.conventions.items(), key=lambda item: item[1])[0]

    @property
    def rejected_tasks(self) -> list[Any]:
        """Ids of the rejected tasks, in file order."""
        return list(self.rejected["task"])


class _TaskRejected(Exception):
    """A task's spans cannot be matched to its text; the message says why."""


def _matching_convention(
    text: str, start: Any, end: Any, span_text: str, order: Sequence[str]
) -> tuple[str, int, int]:
    """Return the first convention under which ``(start, end)`` selects ``span_text``."""
    if isinstance(start, bool) or isinstance(end, bool):
        raise _TaskRejected(f"offsets must be integers, got start={start!r}, end={end!r}")
    if not isinstance(start, int) or not isinstance(end, int):
        raise _TaskRejected(f"offsets must be integers, got start={start!r}, end={end!r}")
    wanted = span_text.replace("\r\n", "\n")
    for convention in order:
        try:
            s, e = from_label_studio_offsets(text, start, end, convention=convention)
        except InputError:
            continue
        # Line endings are normalised for this comparison only; the span keeps the stored text.
        selected = text[s:e]
        collapsed = selected.replace("\r\n", "\n")
        if span_text in (selected, collapsed) or collapsed == wanted:
            return convention, s, e
    raise _TaskRejected(
        f"span [{start},{end}) {span_text!r} does not match the text under any offset convention"
    )


def _read_tasks(path: Path) -> list[Any]:
    """Read a JSON list of tasks, or JSON Lines with one task a line."""
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8: {error}", file=path) from None
    try:
        tasks = json.loads(content)
    except json.JSONDecodeError:
        tasks = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                tasks.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(
                    f"neither JSON nor JSON Lines: {error}", file=path, row=number
                ) from None
    if not isinstance(tasks, list) or not tasks:
        raise InputError("a Label Studio export must be a non-empty list of tasks", file=path)
    return tasks


def _annotator(annotation: Mapping[str, Any]) -> str | None:
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        who = who.get("id", who.get("email"))
    return None if who is None else str(who)


def _task_text(
    task: Mapping[str, Any], utterance_id: str, texts: pd.Series | None
) -> tuple[str, str]:
    """Return ``(offset_text, stored_text)``: the text the tool saw, and the corpus text."""
    data = task.get("data")
    shown = data.get(_TO_NAME) if isinstance(data, Mapping) else None
    if texts is None:
        if not isinstance(shown, str):
            raise _TaskRejected("task has no data.text")
        return shown, shown
    if utterance_id not in texts.index:
        raise _TaskRejected(f"utterance id {utterance_id!r} is not in the corpus texts")
    stored = texts.loc[utterance_id]
    if not isinstance(stored, str):
        raise _TaskRejected(f"corpus text of {utterance_id!r} is not a single string")
    if isinstance(shown, str) and shown.replace("\r\n", "\n") != stored.replace("\r\n", "\n"):
        raise _TaskRejected("data.text differs from the corpus text")
    return stored, stored


def _string_index(texts: pd.Series | None) -> pd.Series | None:
    if texts is None:
        return None
    if not isinstance(texts, pd.Series):
        raise InputError(f"texts must be a pandas Series of str, got {type(texts).__name__}")
    return texts.set_axis(texts.index.astype(str))


def _human_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(HUMAN_SPAN_COLUMNS))
    frame = frame.astype({"start": "int64", "end": "int64"})
    for column in ("id", "marker", "text", "source", "annotator"):
        frame[column] = frame[column].astype(object)
    return frame.reset_index(drop=True)


def _rejected_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["task", "id", "reason"]).astype(object)


def import_annotations(path: str | Path, *, texts: pd.Series | None = None) -> ImportResult:
    """Read a Label Studio JSON export as a human span layer.

    Every ``labels`` result of every annotation that was not cancelled becomes one span per
    label. Predictions in the export (the rule layer) are ignored. Offsets are read in the
    convention recorded by :func:`export_tasks` (else :data:`LABEL_STUDIO_CONVENTION`); a span
    whose ``text[start:end]`` does not equal its ``value.text`` there is compared under the other
    conventions, line endings normalised for the comparison only (case 07: browsers report
    offsets over the ``\\r\\n``-collapsed text), and mapped back to the stored text. Such spans
    are counted as repaired.

    Parameters
    ----------
    path
        A Label Studio export in JSON format (a list of tasks), or JSON Lines of tasks.
    texts
        Optional corpus texts indexed by utterance id. When given, spans are placed on these
        texts (which must equal ``data.text`` up to line endings), so offsets always refer to
        the corpus byte for byte; otherwise on ``data.text``.

    Returns
    -------
    ImportResult
        The human spans, the rejected tasks with reasons, and the repair counts.

    Raises
    ------
    InputError
        If the file is unreadable or is not a list of tasks. A bad task is not an error: it is
        listed in ``rejected`` and the rest is imported.
    """
    path = Path(path)
    tasks = _read_tasks(path)
    corpus = _string_index(texts)

    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    used: Counter[str] = Counter()
    repaired = 0
    annotated: list[dict[str, str]] = []
    expected_seen: set[str] = set()
    for position, task in enumerate(tasks):
        if not isinstance(task, Mapping):
            rejected.append({"task": None, "id": None, "reason": f"entry {position} is no task"})
            continue
        task_id = task.get("id", position)
        data = task.get("data") if isinstance(task.get("data"), Mapping) else {}
        utterance_id = str(data.get("id", task_id))
        meta = task.get("meta") if isinstance(task.get("meta"), Mapping) else {}
        recorded = (meta.get(_META_KEY) or {}).get("offset_convention")
        expected = recorded if recorded in OFFSET_CONVENTIONS else LABEL_STUDIO_CONVENTION
        expected_seen.add(expected)
        order = [expected] + [c for c in OFFSET_CONVENTIONS if c != expected]

        try:
            text, _ = _task_text(task, utterance_id, corpus)
            task_rows, task_used, annotators = _annotation_rows(task, text, utterance_id, order)
        except _TaskRejected as reason:
            rejected.append({"task": task_id, "id": utterance_id, "reason": str(reason)})
            logger.warning("rejected Label Studio task %s: %s", task_id, reason)
            continue
        rows.extend(task_rows)
        annotated.extend({"id": utterance_id, "annotator": name} for name in annotators)
        used.update(task_used)
        repaired += sum(count for name, count in task_used.items() if name != expected)

    result = ImportResult(
        spans=_human_frame(rows),
        rejected=_rejected_frame(rejected),
        repaired=repaired,
        annotated=pd.DataFrame(annotated, columns=["id", "annotator"], dtype=object),
        conventions=dict(used),
        expected_convention=(
            expected_seen.pop() if len(expected_seen) == 1 else LABEL_STUDIO_CONVENTION
        ),
    )
    logger.info(
        "imported %d human spans from %d of %d tasks in %s; %d repaired, %d tasks rejected",
        len(rows),
        len(tasks) - len(rejected),
        len(tasks),
        path,
        repaired,
        len(rejected),
    )
    return result


def _annotation_rows(
    task: Mapping[str, Any], text: str, utterance_id: str, order: Sequence[str]
) -> tuple[list[dict[str, Any]], Counter[str], list[str]]:
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list):
        raise _TaskRejected("annotations is not a list")
    rows: list[dict[str, Any]] = []
    used: Counter[str] = Counter()
    annotators: list[str] = []
    for annotation in annotations:
        if not isinstance(annotation, Mapping) or annotation.get("was_cancelled"):
            continue
        annotator = _annotator(annotation)
        annotators.append("imported" if annotator is None else annotator)
        for item in annotation.get("result") or []:
            if not isinstance(item, Mapping) or item.get("type") != "labels":
                continue
            value = item.get("value")
            if not isinstance(value, Mapping):
                raise _TaskRejected(f"result {item.get('id')!r} has no value")
            if not value.get("labels"):
                raise _TaskRejected(f"result {item.get('id')!r} marks a span with no label")
            span_text = value.get("text")
            if not isinstance(span_text, str):
                raise _TaskRejected(f"result {item.get('id')!r} has no value.text to check")
            convention, start, end = _matching_convention(
                text, value.get("start"), value.get("end"), span_text, order
            )
            used[convention] += len(value.get("labels") or [])
            for label in value.get("labels") or []:
                rows.append(
                    {
                        "id": utterance_id,
                        "marker": str(label),
                        "start": start,
                        "end": end,
                        "text": text[start:end],
                        "source": "imported" if annotator is None else f"human:{annotator}",
                        "annotator": annotator,
                    }
                )
    return rows, used, annotators


def import_prodigy(path: str | Path, *, texts: pd.Series | None = None) -> ImportResult:
    """Read Prodigy JSONL annotations (``spans``) as a human span layer.

    Only accepted examples (``"answer": "accept"``) are read. Prodigy's span ``start``/``end``
    are character offsets into ``text`` as Python counts them (code points), end exclusive;
    ``token_start``/``token_end`` are ignored. A span with a ``text`` key must match it.

    Parameters
    ----------
    path
        Prodigy JSONL (one example per line, as written by ``prodigy db-out``).
    texts
        Optional corpus texts indexed by utterance id, which the example's text must equal.

    Returns
    -------
    ImportResult
        Spans with ``annotator`` from ``_annotator_id`` (else ``_session_id``); rejected
        examples are listed with their 1-based line number as ``task``.

    Raises
    ------
    InputError
        If the file cannot be read.
    """
    path = Path(path)
    corpus = _string_index(texts)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8: {error}", file=path) from None

    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    annotated: list[dict[str, str]] = []
    examples = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        examples += 1
        try:
            example = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"not JSON: {error}", file=path, row=number) from None
        if not isinstance(example, Mapping):
            rejected.append({"task": number, "id": None, "reason": "line is no JSON object"})
            continue
        if example.get("answer", "accept") != "accept":
            continue
        meta = example.get("meta") if isinstance(example.get("meta"), Mapping) else {}
        raw_id = meta.get("id", example.get("id", example.get("_input_hash", number)))
        utterance_id = str(raw_id)
        try:
            text = example.get("text")
            if not isinstance(text, str):
                raise _TaskRejected("example has no text")
            if corpus is not None:
                text, _ = _task_text({"data": {"text": text}}, utterance_id, corpus)
                if text != example["text"]:
                    raise _TaskRejected("text differs from the corpus text")
            annotator = example.get("_annotator_id", example.get("_session_id"))
            annotator = None if annotator is None else str(annotator)
            example_rows = []
            for span in example.get("spans") or []:
                start, end = span.get("start"), span.get("end")
                if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
                    raise _TaskRejected(f"span offsets {start!r}, {end!r} are not valid")
                if end > len(text):
                    raise _TaskRejected(f"span [{start},{end}) is outside the text")
                if "text" in span and span["text"] != text[start:end]:
                    raise _TaskRejected(
                        f"span [{start},{end}) {span['text']!r} is not text[start:end] = "
                        f"{text[start:end]!r}"
                    )
                example_rows.append(
                    {
                        "id": utterance_id,
                        "marker": str(span.get("label")),
                        "start": start,
                        "end": end,
                        "text": text[start:end],
                        "source": "imported" if annotator is None else f"human:{annotator}",
                        "annotator": annotator,
                    }
                )
        except _TaskRejected as reason:
            rejected.append({"task": number, "id": utterance_id, "reason": str(reason)})
            logger.warning("rejected Prodigy example on line %d: %s", number, reason)
            continue
        rows.extend(example_rows)
        annotated.append({"id": utterance_id, "annotator": annotator or "imported"})

    logger.info(
        "imported %d human spans from %d Prodigy examples in %s; %d rejected",
        len(rows),
        examples,
        path,
        len(rejected),
    )
    return ImportResult(
        spans=_human_frame(rows),
        rejected=_rejected_frame(rejected),
        annotated=pd.DataFrame(annotated, columns=["id", "annotator"], dtype=object),
        conventions={"codepoint": len(rows)} if rows else {},
        expected_convention="codepoint",
    )
