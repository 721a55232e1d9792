"""Rule-based detection of African American English (AAE) dialect markers.

The marker inventory is data, not code: each marker is defined in a YAML file
(``markers/aae.yaml``, packaged as ``fairaudit/markers_data/aae.yaml``) with its literature
source, regular-expression patterns, exclusion patterns and worked examples. This module loads
such a file (:func:`load_marker_set`), finds marker spans in a Series of utterances
(:func:`annotate`), turns spans into per-utterance counts (:func:`marker_counts`) and scores the
rules against a gold JSONL file (:func:`evaluate`).

Pattern vocabulary (see the header of ``aae.yaml`` for the full description):

* ``patterns``: Python regular expressions, matched case-insensitively. The span is the named
  group ``span`` (or any group whose name starts with ``span``); without one, the whole match.
  ``(?-i:...)`` switches case-sensitivity back on locally (e.g. capitalised *BEEN*).
* ``{{name}}`` inside a pattern is replaced by the word list ``name`` from the file's top-level
  ``lists`` (or the marker's own ``lists``), as ``(?:word|word|...)``, longest first; in list
  items an apostrophe stands for an optional straight or curly apostrophe and a space for any
  whitespace.
* ``exclude``: patterns whose match (or ``span`` group) protects a region: a candidate span that
  overlaps an excluded region is dropped (the way to express variable-length "not after").
* a top-level ``exclude`` list applies to every marker (e.g. @-mentions, URLs).
* ``prefilter``: a cheap RE2-compatible regex run vectorised over the whole Series (pyarrow);
  the exact patterns then run only on rows it selects. It must accept every text a pattern can
  match.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import logging
import math
import multiprocessing
import os
import re
import time
import warnings
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from fairaudit.exceptions import InputError

__all__ = [
    "SPAN_COLUMNS",
    "MarkerExample",
    "Marker",
    "MarkerSet",
    "load_marker_set",
    "annotate",
    "annotate_plain",
    "marker_counts",
    "evaluate",
]

logger = logging.getLogger(__name__)

SPAN_COLUMNS: tuple[str, ...] = ("id", "marker", "start", "end", "text", "source")

_REQUIRED_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "description",
    "source",
    "strength",
    "patterns",
    "examples",
)
_LIST_REFERENCE = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")
_APOSTROPHE = "['\u2019]?"


class _MarkerLoader(yaml.SafeLoader):
    """YAML 1.2-style booleans: word lists hold *no*, *on*, *off* as words, not as booleans."""


_MarkerLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_MarkerLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class MarkerExample:
    """A worked example from the marker file.

    Parameters
    ----------
    text
        The utterance.
    spans
        The expected span texts, in order of occurrence; empty for a negative example.
    """

    text: str
    spans: tuple[str, ...] = ()


@dataclass(frozen=True)
class Marker:
    """One dialect feature and the rules that detect it.

    Parameters
    ----------
    id
        Stable identifier, as in the gold-set inventory (e.g. ``"habitual_be"``).
    name
        Human-readable name.
    description
        One paragraph describing the feature and what the span covers.
    source
        Literature citation for the feature.
    strength
        ``"strong"`` for grammatical features, ``"weak"`` for lexical or spelling evidence.
    patterns
        Regular expressions (lists already expanded) that propose spans.
    exclude
        Regular expressions whose match region vetoes overlapping candidate spans.
    prefilter
        RE2-compatible, case-insensitive regex selecting candidate rows, or ``None`` (all rows).
    positive_examples, negative_examples
        Worked examples from the file; used by the test suite.
    """

    id: str
    name: str
    description: str
    source: str
    strength: Literal["strong", "weak"]
    patterns: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    prefilter: str | None = None
    positive_examples: tuple[MarkerExample, ...] = ()
    negative_examples: tuple[MarkerExample, ...] = ()
    _compiled: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)
    _compiled_exclude: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    def find_spans(self, text: str) -> list[tuple[int, int]]:
        """Return the non-overlapping ``(start, end)`` spans of this marker in ``text``.

        Parameters
        ----------
        text
            One utterance.

        Returns
        -------
        list of tuple of int
            Sorted code-point offsets, end exclusive.
        """
        return _find_spans(text, self._compiled, self._compiled_exclude)


def _find_spans(
    text: str,
    patterns: Iterable[re.Pattern[str]],
    excludes: Iterable[re.Pattern[str]],
) -> list[tuple[int, int]]:
    """:meth:`Marker.find_spans` with the patterns and exclusions given.

    :func:`annotate` passes only those that can match ``text`` (see :func:`_relaxed_re2`); a
    pattern or exclusion that cannot match contributes no span or region, so the result is
    the same as with all of them.
    """
    candidates: set[tuple[int, int]] = set()
    for pattern in patterns:
        candidates.update(_regions(pattern, text))
    if not candidates:
        return []

    # Exclusions one pattern at a time, stopping once no candidate is left (same result as
    # collecting every excluded region first).
    for exclude in excludes:
        excluded = list(_regions(exclude, text))
        if excluded:
            candidates = {
                (s, e) for s, e in candidates if not any(s < xe and xs < e for xs, xe in excluded)
            }
            if not candidates:
                return []

    # Same-marker spans never overlap: keep the earliest, then the longest.
    kept: list[tuple[int, int]] = []
    for start, end in sorted(candidates, key=lambda se: (se[0], -se[1])):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end))
    return kept


@dataclass(frozen=True)
class MarkerSet:
    """The marker inventory of one dialect, as loaded from a marker file.

    Parameters
    ----------
    dialect
        Dialect code (``"aae"``).
    version
        Version string of the marker file.
    markers
        The markers, in file order.
    """

    dialect: str
    version: str
    markers: tuple[Marker, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        """Marker ids in file order."""
        return tuple(m.id for m in self.markers)

    @property
    def strong_ids(self) -> tuple[str, ...]:
        """Ids of the grammatical (strong) markers, in file order."""
        return tuple(m.id for m in self.markers if m.strength == "strong")

    def __getitem__(self, marker_id: str) -> Marker:
        for marker in self.markers:
            if marker.id == marker_id:
                return marker
        raise KeyError(marker_id)


def _regions(pattern: re.Pattern[str], text: str) -> Iterable[tuple[int, int]]:
    """Yield the span regions of every match, restarting one character after each match start.

    Restarting after the match start rather than its end lets the context of one match (e.g. a
    negator) license several spans (``ain't got no patience with nobody``).
    """
    span_groups = [name for name in pattern.groupindex if name.startswith("span")]
    pos = 0
    length = len(text)
    while pos <= length:
        match = pattern.search(text, pos)
        if match is None:
            return
        start, end = match.span()
        for name in span_groups:
            if match.start(name) >= 0:
                start, end = match.span(name)
                break
        if end > start:
            yield start, end
        pos = match.start() + 1


def _expand_lists(pattern: str, lists: Mapping[str, str], where: dict[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in lists:
            raise InputError(
                f"marker {where['marker']!r}: pattern {where['pattern']!r} refers to unknown "
                f"list {{{{{name}}}}}",
                file=where["file"],
                column=where["field"],
            )
        return lists[name]

    return _LIST_REFERENCE.sub(replace, pattern)


def _list_regex(items: Any, *, file: str, marker: str, name: str) -> str:
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise InputError(
            f"marker {marker!r}: list {name!r} must be a non-empty list of strings",
            file=file,
            column="lists",
        )
    sequences = []
    for item in set(items):
        tokens: list[str] = []
        for char in item.strip():
            if char in "'\u2019":
                tokens.append(_APOSTROPHE)
            elif char.isspace():
                if not tokens or tokens[-1] != r"\s+":
                    tokens.append(r"\s+")
            else:
                tokens.append(re.escape(char.lower()))
        sequences.append(tokens)
    return _trie_regex(sequences)


def _trie_regex(sequences: list[list[str]]) -> str:
    """Compile word alternatives into one prefix-factored group (faster than a flat ``a|b|c``).

    Longer continuations are tried first, so the longest word wins at a position.
    """
    trie: dict[str, Any] = {}
    for tokens in sequences:
        node = trie
        for token in tokens:
            node = node.setdefault(token, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        ends_here = "" in node
        branches = [token + build(child) for token, child in node.items() if token]
        branches.sort(key=lambda b: (-len(b), b))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends_here:
            return "(?:" + body + ")?"
        return body

    return "(?:" + build(trie) + ")"


def _compile(
    regex: str, *, pattern: str, file: str, marker: str, field_name: str
) -> re.Pattern[str]:
    try:
        return re.compile(regex, re.IGNORECASE)
    except re.error as error:
        raise InputError(
            f"marker {marker!r}: invalid regular expression in {field_name!r}: {pattern} "
            f"({error})",
            file=file,
            column=field_name,
        ) from error


def _check_prefilter(prefilter: str, *, file: str, marker: str) -> None:
    try:
        re.compile(prefilter)
        pc.match_substring_regex(pa.array(["x"]), prefilter, ignore_case=True)
    except (re.error, pa.ArrowInvalid) as error:
        raise InputError(
            f"marker {marker!r}: invalid prefilter {prefilter!r} (must be valid in Python re and "
            f"RE2): {error}",
            file=file,
            column="prefilter",
        ) from error


def _examples(raw: Any, *, file: str, marker: str) -> tuple[tuple[MarkerExample, ...], ...]:
    if not isinstance(raw, dict) or not isinstance(raw.get("positive"), list):
        raise InputError(
            f"marker {marker!r}: 'examples' must be a mapping with a 'positive' list "
            "(and optionally a 'negative' list)",
            file=file,
            column="examples",
        )
    positives = []
    for item in raw["positive"]:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not isinstance(item.get("spans"), list)
            or not item["spans"]
            or not all(isinstance(s, str) for s in item["spans"])
        ):
            raise InputError(
                f"marker {marker!r}: a positive example needs 'text' and a non-empty 'spans' "
                f"list of strings, got {item!r}",
                file=file,
                column="examples",
            )
        positives.append(MarkerExample(item["text"], tuple(item["spans"])))
    negatives = []
    for item in raw.get("negative") or []:
        if not isinstance(item, str):
            raise InputError(
                f"marker {marker!r}: a negative example must be a string, got {item!r}",
                file=file,
                column="examples",
            )
        negatives.append(MarkerExample(item))
    return tuple(positives), tuple(negatives)


def _string_list(raw: Any, *, file: str, marker: str, field_name: str) -> list[str]:
    if raw is None and field_name != "patterns":
        return []
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise InputError(
            f"marker {marker!r}: {field_name!r} must be a list of regular expressions",
            file=file,
            column=field_name,
        )
    if field_name == "patterns" and not raw:
        raise InputError(
            f"marker {marker!r}: 'patterns' must not be empty", file=file, column=field_name
        )
    return raw


def _parse_marker(
    raw: Any, *, file: str, index: int, lists: dict[str, str], shared_exclude: list[str]
) -> Marker:
    if not isinstance(raw, dict):
        raise InputError(f"marker #{index + 1} is not a mapping", file=file, row=index + 1)
    marker_id = raw.get("id")
    label = marker_id if isinstance(marker_id, str) else f"#{index + 1}"
    for name in _REQUIRED_FIELDS:
        if name not in raw or raw[name] is None:
            raise InputError(
                f"marker {label!r}: missing required field {name!r}", file=file, column=name
            )
    for name in ("id", "name", "description", "source"):
        if not isinstance(raw[name], str) or not raw[name].strip():
            raise InputError(
                f"marker {label!r}: field {name!r} must be a non-empty string",
                file=file,
                column=name,
            )
    if not re.fullmatch(r"[a-z][a-z0-9_]*", marker_id):
        raise InputError(
            f"marker {label!r}: 'id' must be lower-case snake_case", file=file, column="id"
        )
    if raw["strength"] not in ("strong", "weak"):
        raise InputError(
            f"marker {label!r}: 'strength' must be 'strong' or 'weak', got {raw['strength']!r}",
            file=file,
            column="strength",
        )

    own_lists = dict(lists)
    for name, items in (raw.get("lists") or {}).items():
        own_lists[name] = _list_regex(items, file=file, marker=label, name=name)

    compiled: dict[str, list[re.Pattern[str]]] = {"patterns": [], "exclude": []}
    expanded: dict[str, list[str]] = {"patterns": [], "exclude": []}
    for field_name in ("patterns", "exclude"):
        own = _string_list(raw.get(field_name), file=file, marker=label, field_name=field_name)
        for pattern in own + (shared_exclude if field_name == "exclude" else []):
            where = {"file": file, "marker": label, "pattern": pattern, "field": field_name}
            regex = _expand_lists(pattern, own_lists, where)
            compiled[field_name].append(
                _compile(regex, pattern=pattern, file=file, marker=label, field_name=field_name)
            )
            expanded[field_name].append(regex)

    prefilter = raw.get("prefilter")
    if prefilter is not None:
        if not isinstance(prefilter, str):
            raise InputError(
                f"marker {label!r}: 'prefilter' must be a string", file=file, column="prefilter"
            )
        where = {"file": file, "marker": label, "pattern": prefilter, "field": "prefilter"}
        prefilter = _expand_lists(prefilter, own_lists, where)
        _check_prefilter(prefilter, file=file, marker=label)

    positives, negatives = _examples(raw["examples"], file=file, marker=label)
    return Marker(
        id=marker_id,
        name=raw["name"].strip(),
        description=" ".join(raw["description"].split()),
        source=" ".join(raw["source"].split()),
        strength=raw["strength"],
        patterns=tuple(expanded["patterns"]),
        exclude=tuple(expanded["exclude"]),
        prefilter=prefilter,
        positive_examples=positives,
        negative_examples=negatives,
        _compiled=tuple(compiled["patterns"]),
        _compiled_exclude=tuple(compiled["exclude"]),
    )


def load_marker_set(path: str | Path | None = None, *, dialect: str = "aae") -> MarkerSet:
    """Load and validate a marker definition file.

    Parameters
    ----------
    path
        A marker YAML file; by default the packaged ``markers_data/<dialect>.yaml``.
    dialect
        Dialect code; selects the packaged file and must match the file's ``dialect``.

    Returns
    -------
    MarkerSet
        The markers with all regular expressions compiled.

    Raises
    ------
    InputError
        If the file cannot be read or parsed, a marker lacks a field or has a malformed one,
        a regular expression does not compile (the message names the marker and the pattern),
        or marker ids repeat.
    """
    if path is None:
        resource = importlib.resources.files("fairaudit") / "markers_data" / f"{dialect}.yaml"
        file = str(resource)
        try:
            content = resource.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read marker file: {error}", file=file) from error
    else:
        file = str(path)
        try:
            content = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read marker file: {error}", file=file) from error

    try:
        document = yaml.load(content, Loader=_MarkerLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        row = None if mark is None else mark.line + 1
        raise InputError(f"malformed YAML: {error}", file=file, row=row) from error
    if not isinstance(document, dict):
        raise InputError(
            "marker file must be a mapping with 'version', 'dialect' and 'markers'", file=file
        )
    for key in ("version", "dialect", "markers"):
        if key not in document:
            raise InputError(f"missing top-level field {key!r}", file=file, column=key)
    if str(document["dialect"]) != dialect:
        raise InputError(
            f"file is for dialect {document['dialect']!r}, expected {dialect!r}",
            file=file,
            column="dialect",
        )
    if not isinstance(document["markers"], list) or not document["markers"]:
        raise InputError("'markers' must be a non-empty list", file=file, column="markers")

    lists = {
        name: _list_regex(items, file=file, marker="<top level>", name=name)
        for name, items in (document.get("lists") or {}).items()
    }
    shared_exclude = _string_list(
        document.get("exclude"), file=file, marker="<top level>", field_name="exclude"
    )
    markers = tuple(
        _parse_marker(raw, file=file, index=i, lists=lists, shared_exclude=shared_exclude)
        for i, raw in enumerate(document["markers"])
    )
    seen: set[str] = set()
    for marker in markers:
        if marker.id in seen:
            raise InputError(f"marker {marker.id!r}: duplicate id", file=file, column="id")
        seen.add(marker.id)

    logger.debug("loaded %d markers from %s", len(markers), file)
    return MarkerSet(dialect=dialect, version=str(document["version"]), markers=markers)


def _text_values(texts: pd.Series) -> np.ndarray:
    if not isinstance(texts, pd.Series):
        raise InputError(f"texts must be a pandas Series of str, got {type(texts).__name__}")
    values = texts.to_numpy(dtype=object)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind not in ("string", "empty"):
        bad = next(i for i, v in enumerate(values) if not isinstance(v, str))
        raise InputError(
            f"text must be a string, got {type(values[bad]).__name__}",
            row=str(texts.index[bad]),
            column="text",
        )
    return values


_DEDUPLICATE_MAX_SHARE = 0.9
"""Texts are matched once per distinct text when at most this share of the rows is distinct."""


def _distinct_texts(values: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Codes into the distinct texts, or ``(None, values)`` when there are few repeats."""
    if len(values) < 2 or _DEDUPLICATE_MAX_SHARE <= 0:
        return None, values
    codes, distinct = pd.factorize(values)
    if len(distinct) > _DEDUPLICATE_MAX_SHARE * len(values):
        return None, values
    return codes.astype(np.int64, copy=False), np.asarray(distinct, dtype=object)


def _rows_of_distinct(
    codes: np.ndarray, distinct_rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Expand items on distinct texts to every row holding the text.

    Returns the rows and, per row, the position of the item it copies.
    """
    order = np.argsort(codes, kind="stable")
    count = np.bincount(codes, minlength=int(codes.max()) + 1 if len(codes) else 0)
    first = np.concatenate(([0], np.cumsum(count)[:-1]))
    repeats = count[distinct_rows]
    copies = np.repeat(np.arange(len(distinct_rows)), repeats)
    offset = np.arange(len(copies)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    rows = order[first[distinct_rows][copies] + offset]
    return rows.astype(np.int64, copy=False), copies


def _spans_frame(
    texts: pd.Series,
    values: np.ndarray,
    rows: list[int] | np.ndarray,
    markers: list[str] | np.ndarray,
    starts: list[int] | np.ndarray,
    ends: list[int] | np.ndarray,
    *,
    span_text: np.ndarray | None = None,
) -> pd.DataFrame:
    row_array = np.asarray(rows, dtype=np.int64)
    start_array = np.asarray(starts, dtype=np.int64)
    end_array = np.asarray(ends, dtype=np.int64)
    marker_array = np.asarray(markers, dtype=object)
    has_rows = len(row_array) > 0
    order = np.lexsort((marker_array, end_array, start_array, row_array)) if has_rows else []
    row_array = row_array[order]
    start_array = start_array[order]
    end_array = end_array[order]
    marker_array = marker_array[order]

    ids = texts.index.to_numpy(dtype=object)[row_array] if has_rows else np.array([], dtype=object)
    if span_text is not None:
        span_text = list(np.asarray(span_text, dtype=object)[order])
    else:
        span_text = [
            values[r][s:e]
            for r, s, e in zip(
                row_array.tolist(), start_array.tolist(), end_array.tolist(), strict=True
            )
        ]
    return pd.DataFrame(
        {
            "id": pd.array([str(i) for i in ids], dtype=object),
            "marker": pd.array(list(marker_array), dtype=object),
            "start": pd.array(start_array, dtype="int64"),
            "end": pd.array(end_array, dtype="int64"),
            "text": pd.array(span_text, dtype=object),
            "source": pd.array(["rule"] * len(row_array), dtype=object),
        },
        columns=list(SPAN_COLUMNS),
    )


_PARALLEL_MIN_ROWS = 100_000

# Where Python ``re`` and RE2 may disagree on a text, the prefilters (RE2) cannot be trusted to
# select every row the exact patterns (Python ``re``) match: Python's ``\w``, ``\d``, ``\s`` and
# ``\b`` are Unicode-aware and its case-insensitive matching folds ı/İ to i, while RE2's classes
# are ASCII-only and ASCII controls \x0b and \x1c-\x1f are whitespace only to Python. Rows
# holding such characters (non-ASCII letters, digits, marks, spaces, or those controls) skip the
# prefilters and always reach the exact patterns; emoji and punctuation do not make a row unsafe.
_RE2_UNSAFE_ASCII = r"[\x{0b}\x{1c}-\x{1f}]"
_RE2_UNSAFE_OTHER = r"[\pL\pN\pM\pZ\x{85}]"


def _prefilter_unsafe_rows(array: pa.Array) -> np.ndarray:
    """Boolean mask of the rows on which an RE2 prefilter may miss a Python ``re`` match."""
    unsafe = pc.match_substring_regex(array, _RE2_UNSAFE_ASCII).to_numpy(zero_copy_only=False)
    unsafe = np.array(unsafe, dtype=bool)
    non_ascii = np.flatnonzero(
        ~pc.string_is_ascii(array).to_numpy(zero_copy_only=False).astype(bool)
    )
    if len(non_ascii):
        residue = pc.replace_substring_regex(array.take(non_ascii), r"[\x{00}-\x{7f}]+", "")
        other = pc.match_substring_regex(residue, _RE2_UNSAFE_OTHER)
        unsafe[non_ascii] |= np.asarray(other.to_numpy(zero_copy_only=False), dtype=bool)
    return unsafe


_LOOKAROUNDS = ("(?=", "(?!", "(?<=", "(?<!")
_Regexes = tuple[re.Pattern[str], ...]
_Gates = tuple[np.ndarray, dict[int, tuple[_Regexes, _Regexes]]]
_MAX_GATED_REGEXES = 62
"""Markers with more patterns plus exclusions than this run every regex on every candidate."""


def _group_end(regex: str, start: int) -> int:
    """Index just past the group opening at ``regex[start] == "("``."""
    depth = 0
    i = start
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(regex, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced parenthesis")


def _class_end(regex: str, start: int) -> int:
    """Index just past the character class opening at ``regex[start] == "["``."""
    i = start + 1
    if i < len(regex) and regex[i] == "^":
        i += 1
    if i < len(regex) and regex[i] == "]":
        i += 1
    while i < len(regex):
        if regex[i] == "\\":
            i += 2
            continue
        if regex[i] == "]":
            return i + 1
        i += 1
    raise ValueError("unterminated character class")


@functools.cache
def _relaxed_re2(regex: str) -> str | None:
    """An RE2 regex matching (case-insensitively) every text that ``regex`` can match, or None.

    Lookarounds are assertions, so dropping them only widens the match; named groups become
    plain groups, ``(?-i:...)`` becomes case-insensitive, and ``$`` also accepts a newline.
    The result is trusted only on rows outside :func:`_prefilter_unsafe_rows`, where Python
    ``re`` and RE2 agree on ``\\w``, ``\\s``, ``\\d``, ``\\b`` and case folding. Returns None when
    the pattern uses syntax this translation does not cover or RE2 rejects the result.
    """
    out: list[str] = []
    i = 0
    try:
        while i < len(regex):
            char = regex[i]
            if char == "\\":
                escape = regex[i : i + 2]
                if escape in ("\\Z", "\\A") or (len(escape) == 2 and escape[1].isdigit()):
                    return None  # backreferences and anchors RE2 spells differently
                out.append(escape)
                i += 2
            elif char == "[":
                end = _class_end(regex, i)
                out.append(regex[i:end])
                i = end
            elif char == "(":
                if regex.startswith(_LOOKAROUNDS, i):
                    out.append("(?:)")
                    i = _group_end(regex, i)
                elif regex.startswith("(?P<", i):
                    out.append("(?:")
                    i = regex.index(">", i) + 1
                elif regex.startswith("(?-i:", i):
                    out.append("(?:")
                    i += len("(?-i:")
                elif regex.startswith("(?:", i) or not regex.startswith("(?", i):
                    out.append(char)
                    i += 1
                else:
                    return None  # other extensions (flags, conditionals, atomic groups)
            elif char == "{" and regex.startswith("{,", i):
                return None  # Python reads {,n} as {0,n}, RE2 as literal text
            elif char == "$":
                out.append("(?:$|\n)")
                i += 1
            else:
                out.append(char)
                i += 1
        relaxed = "".join(out)
        re.compile(relaxed)
        pc.match_substring_regex(pa.array(["x"]), relaxed, ignore_case=True)
    except (ValueError, re.error, pa.ArrowInvalid):
        return None
    return relaxed


def _gate_codes(marker: Marker, texts: pa.Array, unsafe: np.ndarray) -> _Gates | None:
    """Per candidate text, a bit mask of the patterns and exclusions that can match it.

    Bit ``j`` stands for regex ``j`` of ``marker.patterns + marker.exclude``; a regex that has
    no RE2 translation is always set. Returns the masks and, for each distinct mask, the
    compiled patterns and exclusions it selects (in file order); None for no gating.
    """
    regexes = marker.patterns + marker.exclude
    if not len(texts) or len(regexes) > _MAX_GATED_REGEXES:
        return None
    codes = np.zeros(len(texts), dtype=np.int64)
    for bit, regex in enumerate(regexes):
        relaxed = _relaxed_re2(regex)
        if relaxed is None:
            codes |= 1 << bit
            continue
        mask = pc.match_substring_regex(texts, relaxed, ignore_case=True)
        codes |= np.asarray(mask.to_numpy(zero_copy_only=False), dtype=np.int64) << bit
    codes[unsafe] = (1 << len(regexes)) - 1
    n_patterns = len(marker.patterns)
    table = {}
    for code in np.unique(codes).tolist():
        table[code] = (
            tuple(p for j, p in enumerate(marker._compiled) if code >> j & 1),
            tuple(
                x for j, x in enumerate(marker._compiled_exclude) if code >> (n_patterns + j) & 1
            ),
        )
    return codes, table


_FORK_STATE: tuple[np.ndarray, MarkerSet, list[np.ndarray], list[_Gates | None]] | None = None


def _match_candidates(
    values: np.ndarray,
    marker_set: MarkerSet,
    candidates: list[np.ndarray],
    gates: list[_Gates | None],
    part: int,
    parts: int,
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Run the exact patterns on one share of each marker's candidate rows."""
    rows: list[int] = []
    markers: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for number, (marker, rows_of_marker, gate) in enumerate(
        zip(marker_set.markers, candidates, gates, strict=True)
    ):
        share = np.array_split(rows_of_marker, parts)[part].tolist()
        if gate is None:
            find = marker.find_spans
            found = ((row, find(values[row])) for row in share)
        else:
            codes, table = gate
            share_codes = np.array_split(codes, parts)[part].tolist()
            found = (
                (row, _find_spans(values[row], *table[code]))
                for row, code in zip(share, share_codes, strict=True)
                if table[code][0]
            )
        for row, spans in found:
            for start, end in spans:
                rows.append(row)
                markers.append(number)
                starts.append(start)
                ends.append(end)
    return rows, markers, starts, ends


def _match_forked_share(part_parts: tuple[int, int]) -> tuple[list[int], ...]:
    if _FORK_STATE is None:  # the parent sets it before forking
        raise RuntimeError("marker worker started without shared state")
    values, marker_set, candidates, gates = _FORK_STATE
    return _match_candidates(values, marker_set, candidates, gates, *part_parts)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def annotate(
    texts: pd.Series, marker_set: MarkerSet, *, n_jobs: int | None = None
) -> pd.DataFrame:
    """Find marker spans in every utterance.

    Each marker's prefilter runs vectorised over the whole Series (pyarrow's RE2 kernel); the
    exact Python patterns and exclusions then run only on the rows it selects, split over
    worker processes for large inputs, and on each row only those whose RE2 relaxation
    (:func:`_relaxed_re2`) matches it. Rows on which RE2 and Python ``re`` may disagree
    (:func:`_prefilter_unsafe_rows`) skip both shortcuts. The spans are those of
    :func:`annotate_plain`.

    Parameters
    ----------
    texts
        Utterances (str) indexed by utterance id.
    marker_set
        Markers to detect, from :func:`load_marker_set`.
    n_jobs
        Worker processes for the exact patterns. ``None`` (default) uses every available core
        for inputs of at least 100,000 utterances and one process otherwise. Workers are
        forked (POSIX only; elsewhere the work runs in this process).

    Returns
    -------
    pandas.DataFrame
        One row per span with columns ``id`` (str), ``marker`` (str), ``start`` and ``end``
        (int64, code-point offsets, end exclusive), ``text`` (the span, ``text[start:end]``)
        and ``source`` (``"rule"``); sorted by input order, then ``start``, ``end``,
        ``marker``. Spans of one marker never overlap.

    Raises
    ------
    InputError
        If ``texts`` is not a Series of str (the row names the utterance id).
    """
    global _FORK_STATE
    started = time.perf_counter()
    all_values = _text_values(texts)
    # Spans depend on the text alone: match each distinct text once (retweets and copies are
    # common in social-media corpora) and copy the spans to every row holding that text.
    codes, distinct = _distinct_texts(all_values)
    values = all_values if codes is None else distinct
    array = pa.array(values, type=pa.large_string())

    if n_jobs is None:
        n_jobs = _available_cores() if len(values) >= _PARALLEL_MIN_ROWS else 1
    n_jobs = max(1, n_jobs)

    unsafe = _prefilter_unsafe_rows(array) if len(values) else np.zeros(0, dtype=bool)

    def prefilter(marker: Marker) -> tuple[np.ndarray, _Gates | None]:
        if marker.prefilter is None or not len(values):
            rows = np.arange(len(values))
        else:
            mask = pc.match_substring_regex(array, marker.prefilter, ignore_case=True)
            mask = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool) | unsafe
            rows = np.flatnonzero(mask)
        # Which of the marker's patterns and exclusions can match each candidate (RE2 again):
        # the exact stage then runs only those.
        subset = array if len(rows) == len(values) else array.take(pa.array(rows))
        return rows, _gate_codes(marker, subset, unsafe[rows])

    # pyarrow releases the GIL, so the prefilters of different markers run in parallel threads.
    with ThreadPoolExecutor(max_workers=n_jobs) as executor:
        selected = list(executor.map(prefilter, marker_set.markers))
    candidates = [rows for rows, _ in selected]
    gates = [gate for _, gate in selected]
    prefiltered = time.perf_counter()
    if n_jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
        _FORK_STATE = (values, marker_set, candidates, gates)
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(n_jobs) as pool:
                shares = pool.map(_match_forked_share, [(k, n_jobs) for k in range(n_jobs)])
        finally:
            _FORK_STATE = None
    else:
        n_jobs = 1
        shares = [_match_candidates(values, marker_set, candidates, gates, 0, 1)]

    ids = marker_set.ids
    rows = np.fromiter((r for share in shares for r in share[0]), dtype=np.int64)
    numbers = np.fromiter((m for share in shares for m in share[1]), dtype=np.int64)
    starts = np.fromiter((x for share in shares for x in share[2]), dtype=np.int64)
    ends = np.fromiter((x for share in shares for x in share[3]), dtype=np.int64)
    if codes is not None:
        span_text = np.array(
            [
                values[r][s:e]
                for r, s, e in zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True)
            ],
            dtype=object,
        )
        rows, copies = _rows_of_distinct(codes, rows)
        numbers, starts, ends, span_text = (
            numbers[copies],
            starts[copies],
            ends[copies],
            span_text[copies],
        )
        markers = np.asarray(ids, dtype=object)[numbers]
        spans = _spans_frame(texts, all_values, rows, markers, starts, ends, span_text=span_text)
    else:
        markers = np.asarray(ids, dtype=object)[numbers]
        spans = _spans_frame(texts, all_values, rows, markers, starts, ends)
    logger.info(
        "annotated %s utterances (%s distinct) in %.2f s (prefilter %.2f s, %d process%s), "
        "%d markers, %s spans",
        f"{len(all_values):,}",
        f"{len(values):,}",
        time.perf_counter() - started,
        prefiltered - started,
        n_jobs,
        "" if n_jobs == 1 else "es",
        len(marker_set.markers),
        f"{len(spans):,}",
    )
    return spans


def annotate_plain(texts: pd.Series, marker_set: MarkerSet) -> pd.DataFrame:
    """Reference implementation of :func:`annotate`: every pattern on every row, no prefilter.

    Used by the benchmark as the baseline and by the tests to check that the prefilters never
    lose a span.

    Parameters
    ----------
    texts
        Utterances (str) indexed by utterance id.
    marker_set
        Markers to detect.

    Returns
    -------
    pandas.DataFrame
        Same layout as :func:`annotate`.
    """
    values = _text_values(texts)
    rows: list[int] = []
    markers: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for row, text in enumerate(values):
        for marker in marker_set.markers:
            for start, end in marker.find_spans(text):
                rows.append(row)
                markers.append(marker.id)
                starts.append(start)
                ends.append(end)
    return _spans_frame(texts, values, rows, markers, starts, ends)


def marker_counts(spans: pd.DataFrame, ids: pd.Index, marker_set: MarkerSet) -> pd.DataFrame:
    """Count marker spans per utterance.

    Parameters
    ----------
    spans
        Output of :func:`annotate`.
    ids
        All utterance ids; utterances without spans get zeros.
    marker_set
        The markers; one column per marker, in file order.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``ids``, int64 columns ``marker_<id>`` per marker, ``markers_total`` (all
        spans) and ``markers_strong`` (spans of strong markers).
    """
    columns = [f"marker_{marker_id}" for marker_id in marker_set.ids]
    index = pd.Index(ids)
    known = spans[spans["marker"].isin(marker_set.ids)]
    values = np.zeros((len(index), len(columns)), dtype=np.int64)
    if len(known):
        # A cross-tabulation of (id, marker), looked up by the ids as strings.
        span_ids, distinct_ids = pd.factorize(known["id"].astype(str).to_numpy(dtype=object))
        marker_numbers = pd.Index(list(marker_set.ids)).get_indexer(known["marker"])
        table = np.bincount(
            span_ids.astype(np.int64) * len(columns) + marker_numbers,
            minlength=len(distinct_ids) * len(columns),
        ).reshape(len(distinct_ids), len(columns))
        position = pd.Index(distinct_ids).get_indexer(index.astype(str))
        found = position >= 0
        values[found] = table[position[found]]
    # Totals from the array itself, and no copy of it into the frame (it is ours alone): on
    # 1,000,000 rows each copy of the count matrix costs about half a second.
    strong = [list(marker_set.ids).index(marker_id) for marker_id in marker_set.strong_ids]
    total = values.sum(axis=1, dtype=np.int64)
    strong_total = values[:, strong].sum(axis=1, dtype=np.int64)
    counts = pd.DataFrame(values, index=index, columns=columns, copy=False)
    counts["markers_total"] = total
    counts["markers_strong"] = strong_total
    return counts


def _read_gold(
    path: Path, marker_ids: Collection[str]
) -> tuple[pd.Series, dict[str, set[tuple[str, int, int]]]]:
    """Read and validate a gold JSONL file: every span must select its text."""
    ids: list[str] = []
    texts: list[str] = []
    gold: dict[str, set[tuple[str, int, int]]] = {}
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text ({error.reason})", file=path) from None
    except OSError as error:
        raise InputError(f"cannot read gold file ({error.strerror})", file=path) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON: {error.msg}", file=path, row=number) from None
        if not isinstance(record, dict):
            raise InputError("each line must be a JSON object", file=path, row=number)
        for field_name in ("id", "text", "markers"):
            if field_name not in record:
                raise InputError("missing field", file=path, row=number, column=field_name)
        item_id, text, markers = str(record["id"]), record["text"], record["markers"]
        if not isinstance(text, str):
            raise InputError("must be a string", file=path, row=number, column="text")
        if not isinstance(markers, list):
            raise InputError("must be a list of spans", file=path, row=number, column="markers")
        if item_id in gold:
            raise InputError(f"duplicate id {item_id!r}", file=path, row=number, column="id")
        spans = set()
        for span in markers:
            if not isinstance(span, dict) or not {"marker", "start", "end"} <= span.keys():
                raise InputError(
                    "each span needs marker, start and end",
                    file=path,
                    row=number,
                    column="markers",
                )
            marker, start, end = span["marker"], span["start"], span["end"]
            if marker not in marker_ids:
                raise InputError(
                    f"unknown marker {marker!r} (not in the marker set)",
                    file=path,
                    row=number,
                    column="markers",
                )
            if not (
                isinstance(start, int)
                and isinstance(end, int)
                and not isinstance(start, bool)
                and 0 <= start < end <= len(text)
            ):
                raise InputError(
                    f"span {marker} [{start!r}, {end!r}) is not a range inside the text",
                    file=path,
                    row=number,
                    column="markers",
                )
            if "text" in span and text[start:end] != span["text"]:
                raise InputError(
                    f"span {marker} [{start}, {end}) selects {text[start:end]!r}, not "
                    f"{span['text']!r}",
                    file=path,
                    row=number,
                    column="markers",
                )
            spans.add((marker, start, end))
        ids.append(item_id)
        texts.append(text)
        gold[item_id] = spans
    if not ids:
        raise InputError("the gold file holds no items", file=path)
    return pd.Series(texts, index=pd.Index(ids, dtype=object), dtype=object), gold


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall) or precision + recall == 0:
        return math.nan if (math.isnan(precision) or math.isnan(recall)) else 0.0
    return 2 * precision * recall / (precision + recall)


def _kappa(gold: np.ndarray, predicted: np.ndarray) -> float:
    if len(np.union1d(gold, predicted)) < 2:
        return math.nan
    from sklearn.metrics import cohen_kappa_score  # slow to import; only evaluate needs it

    return float(cohen_kappa_score(gold, predicted))


def _bootstrap_kappa(gold: np.ndarray, predicted: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Cohen's kappa of binary labels for each bootstrap resample (rows of ``index``)."""
    g = gold[index].astype(float)
    p = predicted[index].astype(float)
    observed = (g == p).mean(axis=1)
    g1 = g.mean(axis=1)
    p1 = p.mean(axis=1)
    expected = g1 * p1 + (1 - g1) * (1 - p1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1 - expected)
    return np.where(expected < 1, kappa, np.nan)


def _percentile_interval(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def evaluate(
    gold_path: str | Path,
    marker_set: MarkerSet,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score the rules against a gold JSONL file, per marker and macro-averaged.

    Parameters
    ----------
    gold_path
        Gold JSON Lines file (``id``, ``text``, ``markers`` with ``marker``/``start``/``end``).
    marker_set
        Markers to score; gold spans of other markers are ignored.
    n_bootstrap
        Bootstrap resamples of items for the kappa interval.
    seed
        Seed of the bootstrap generator.

    Returns
    -------
    dict
        ``{"markers": {id: scores}, "macro": scores}`` where ``scores`` has ``precision``,
        ``recall`` and ``f1_overlap`` (a predicted and a gold span of the same marker and item
        match when their character ranges overlap), ``f1_exact`` (identical offsets),
        ``kappa`` (Cohen's kappa of item-level presence, gold vs predicted, via scikit-learn),
        ``kappa_ci_low``/``kappa_ci_high`` (bootstrap percentile 95% interval, resampling
        items), ``n_gold`` and ``n_predicted`` (span counts). Macro values are unweighted means
        over markers of the defined per-marker values (counts are sums; the kappa interval is
        the percentile interval of the per-resample macro mean). Undefined values are NaN.

    Notes
    -----
    Span scoring follows the gold-set README (strict = exact offsets, lenient = overlap). Kappa
    is Cohen's (1960) kappa; the interval is Efron & Tibshirani's (1993) percentile bootstrap.

    References
    ----------
    .. [1] Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and
       Psychological Measurement, 20(1), 37-46. https://doi.org/10.1177/001316446002000104
    .. [2] Efron, B., & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman &
       Hall.
    """
    path = Path(gold_path)
    texts, gold = _read_gold(path, set(marker_set.ids))
    spans = annotate(texts, marker_set)
    predicted: dict[str, set[tuple[str, int, int]]] = {item: set() for item in texts.index}
    for item, marker, start, end in spans[["id", "marker", "start", "end"]].itertuples(
        index=False
    ):
        predicted[item].add((marker, int(start), int(end)))

    n_items = len(texts)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n_items, size=(n_bootstrap, n_items)) if n_items else None
    keys = (
        "precision",
        "recall",
        "f1_exact",
        "f1_overlap",
        "kappa",
        "kappa_ci_low",
        "kappa_ci_high",
        "n_gold",
        "n_predicted",
    )

    results: dict[str, dict[str, float | int]] = {}
    boot_kappas = []
    for marker_id in marker_set.ids:
        gold_spans = {i: [(s, e) for m, s, e in gold[i] if m == marker_id] for i in gold}
        pred_spans = {i: [(s, e) for m, s, e in predicted[i] if m == marker_id] for i in gold}
        n_gold = sum(len(v) for v in gold_spans.values())
        n_pred = sum(len(v) for v in pred_spans.values())

        def overlaps(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
            return any(span[0] < oe and os_ < span[1] for os_, oe in others)

        matched_pred = sum(overlaps(p, gold_spans[i]) for i in gold for p in pred_spans[i])
        matched_gold = sum(overlaps(g, pred_spans[i]) for i in gold for g in gold_spans[i])
        exact = sum(len(set(gold_spans[i]) & set(pred_spans[i])) for i in gold)
        precision = _ratio(matched_pred, n_pred)
        recall = _ratio(matched_gold, n_gold)
        f1_exact = _f1(_ratio(exact, n_pred), _ratio(exact, n_gold))

        gold_present = np.array([bool(gold_spans[i]) for i in texts.index], dtype=bool)
        pred_present = np.array([bool(pred_spans[i]) for i in texts.index], dtype=bool)
        kappa = _kappa(gold_present, pred_present) if n_items else math.nan
        if index is not None and n_bootstrap > 0:
            boot = _bootstrap_kappa(gold_present, pred_present, index)
        else:
            boot = np.full(max(n_bootstrap, 0), np.nan)
        boot_kappas.append(boot)
        low, high = _percentile_interval(boot)
        results[marker_id] = {
            "precision": precision,
            "recall": recall,
            "f1_exact": f1_exact,
            "f1_overlap": _f1(precision, recall),
            "kappa": kappa,
            "kappa_ci_low": low,
            "kappa_ci_high": high,
            "n_gold": n_gold,
            "n_predicted": n_pred,
        }

    macro: dict[str, float | int] = {}
    for key in keys[:5]:
        values = np.array([results[m][key] for m in results], dtype=float)
        macro[key] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    if boot_kappas and len(boot_kappas[0]):
        stacked = np.vstack(boot_kappas)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates stay NaN
            macro_boot = np.nanmean(stacked, axis=0)
        macro["kappa_ci_low"], macro["kappa_ci_high"] = _percentile_interval(macro_boot)
    else:
        macro["kappa_ci_low"] = macro["kappa_ci_high"] = math.nan
    macro["n_gold"] = int(sum(results[m]["n_gold"] for m in results))
    macro["n_predicted"] = int(sum(results[m]["n_predicted"] for m in results))

    logger.info(
        "evaluated %d markers on %d items of %s: macro overlap F1 %.3f",
        len(results),
        n_items,
        path,
        macro["f1_overlap"],
    )
    return {"markers": results, "macro": macro}
