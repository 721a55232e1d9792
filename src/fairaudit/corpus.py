"""Corpus: read a CSV, JSON Lines or Parquet file into a validated table of utterances.

Takes a file and a column mapping; returns a DataFrame indexed by ``id`` (string) with columns
``text``, ``row`` (1-based data row in the file, for messages), ``position`` (0-based row
position), ``gold_label`` (as in the file) and ``gold_toxic`` (nullable boolean) where a gold
label column is mapped, ``conversation_id``, ``speaker`` and ``group`` where mapped, and any
columns kept.

Text is read exactly as stored: no NA tokens (a message whose text is ``None`` stays the string
``"None"``), no HTML unescaping, no line-ending rewriting. Only an empty field counts as missing,
and only in label and group columns.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from fairaudit.config import AuditSubsetConfig, ColumnMapping
from fairaudit.exceptions import InputError

__all__ = ["read_corpus", "read_table", "audit_subset_mask", "binary_gold"]

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "True", "TRUE"}
_FALSE = {"0", "false", "False", "FALSE"}


def _format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        return "jsonl"
    if suffixes.endswith((".parquet", ".pq")):
        return "parquet"
    if suffixes.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    raise InputError(
        "cannot tell the format from the file name; set corpus.format to csv, jsonl or parquet",
        file=path,
    )


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"not valid JSON: {error.msg}", file=path, row=number) from None
            if not isinstance(record, dict):
                raise InputError("each line must be a JSON object", file=path, row=number)
            records.append(record)
    return pd.DataFrame.from_records(records)


def read_table(path: str | Path, *, format: str = "auto") -> pd.DataFrame:
    """Read a whole file as given, CSV fields as strings.

    Raises
    ------
    InputError
        When the file is missing, unreadable or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    kind = _format(path, format)
    try:
        if kind == "csv":
            return pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                sep="\t" if path.suffix.lower() == ".tsv" else ",",
                encoding="utf-8",
            )
        if kind == "jsonl":
            return _read_jsonl(path)
        return pq.read_table(path).to_pandas()
    except InputError:
        raise
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text ({error.reason})", file=path) from None
    except Exception as error:  # noqa: BLE001 - any parser failure becomes one clear line
        raise InputError(f"cannot read as {kind}: {error}", file=path) from None


def _require(frame: pd.DataFrame, column: str, *, role: str, path: Path) -> None:
    if column not in frame.columns:
        available = ", ".join(repr(c) for c in frame.columns[:20])
        raise InputError(
            f"no column for {role}; the file has {available}", file=path, column=column
        )


def _rows_of(rows_all: np.ndarray, mask: np.ndarray, *, limit: int = 5) -> str:
    rows = rows_all[mask].tolist()
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _label_text(value: object) -> str | None:
    """A label as comparable text: None when missing, ``1.0`` as ``1``, spaces stripped."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    elif not isinstance(value, str | bool | int) and pd.isna(value):
        return None
    text = str(value).strip()
    return text or None


def binary_gold(
    values: pd.Series,
    *,
    positive: Sequence[object] | None,
    negative: Sequence[object] | None = None,
    column: str,
    file: str | Path | None = None,
) -> pd.Series:
    """Gold labels as a nullable boolean: True where the label is the harmful class.

    The harmful class is never inferred from label order. Without ``positive`` the labels must be
    0/1 or true/false; otherwise an error lists the values found. With ``negative`` too, a value in
    neither list is an error; without it, at most one other value may occur (it is the
    non-harmful one). Empty fields and missing values are ``<NA>``.
    """
    text = pd.Series([_label_text(v) for v in values], index=values.index, dtype=object)
    found = sorted({v for v in text if v is not None})
    if positive is None:
        unknown = [v for v in found if v not in _TRUE | _FALSE]
        if unknown:
            raise InputError(
                f"labels are not 0/1 or true/false, so name the harmful one(s) in "
                f"corpus.positive_labels; values found: {found[:20]}",
                file=file,
                column=column,
            )
        result = text.map(lambda v: None if v is None else v in _TRUE)
        return result.astype("boolean")
    positive_set = {_label_text(v) for v in positive}
    missing = positive_set - set(found)
    if missing:
        hint = ""
        if any(isinstance(v, bool) for v in positive):
            hint = " (YAML reads unquoted yes/no/true/false as booleans: quote them)"
        raise InputError(
            f"positive label(s) {sorted(str(v) for v in missing)} do not occur; values found: "
            f"{found[:20]}{hint}",
            file=file,
            column=column,
        )
    if negative is None:
        others = [v for v in found if v not in positive_set]
        if len(others) > 1:
            raise InputError(
                f"besides the positive label(s) {sorted(positive_set)} there are several values "
                f"{others[:10]}; list the non-harmful ones in corpus.negative_labels so that no "
                "value (a typo, a stray space) is counted as non-harmful by accident",
                file=file,
                column=column,
            )
    else:
        negative_set = {_label_text(v) for v in negative}
        unknown = [v for v in found if v not in positive_set | negative_set]
        if unknown:
            raise InputError(
                f"values {unknown[:10]} are neither positive {sorted(positive_set)} nor negative "
                f"{sorted(negative_set)}",
                file=file,
                column=column,
            )
    return pd.Series(
        [None if v is None else v in positive_set for v in text], index=values.index
    ).astype("boolean")


def read_corpus(
    path: str | Path,
    columns: ColumnMapping,
    *,
    format: str = "auto",
    positive_labels: Sequence[object] | None = None,
    negative_labels: Sequence[object] | None = None,
) -> pd.DataFrame:
    """Read and validate a corpus file (see the module docstring for the returned table).

    Raises
    ------
    InputError
        Missing file or column, empty or duplicate ids, empty or non-string text, labels that do
        not say which class is harmful; each message names the file, rows and column.
    """
    path = Path(path)
    frame = read_table(path, format=format)
    if frame.empty:
        raise InputError("the file holds no rows", file=path)
    reserved = {"text", "row", "position", "gold_label", "gold_toxic", "group"}
    clashes = sorted(reserved & set(columns.keep))
    if clashes:
        raise InputError(
            f"columns.keep names {clashes}, which fairaudit uses itself; rename them in the file",
            file=path,
        )
    rows = np.arange(1, len(frame) + 1)

    id_column = columns.id
    if id_column == "":
        # An unnamed first column (as pandas writes an index); pandas reads it as "Unnamed: 0".
        id_column = frame.columns[0]
        if not (id_column == "" or str(id_column).startswith("Unnamed: 0")):
            raise InputError(
                f"columns.id is '' (the unnamed first column), but the first column is named "
                f"{id_column!r}",
                file=path,
            )
    _require(frame, id_column, role="id", path=path)
    _require(frame, columns.text, role="text", path=path)

    ids = frame[id_column]
    missing_id = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    if missing_id.any():
        raise InputError(
            f"{int(missing_id.sum())} empty id(s) at row(s) {_rows_of(rows, missing_id)}",
            file=path,
            column=id_column,
        )
    ids = ids.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    duplicated = ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        examples = sorted(set(ids[duplicated]))[:5]
        raise InputError(
            f"{int(ids.duplicated().sum())} duplicate id(s), e.g. {examples}, at rows "
            f"{_rows_of(rows, duplicated)}",
            file=path,
            column=id_column,
        )

    text = frame[columns.text]
    not_string = ~text.map(lambda v: isinstance(v, str)).to_numpy()
    if not_string.any():
        raise InputError(
            f"{int(not_string.sum())} non-text value(s) at row(s) {_rows_of(rows, not_string)}",
            file=path,
            column=columns.text,
        )
    empty = (text.str.strip() == "").to_numpy()
    if empty.any():
        raise InputError(
            f"{int(empty.sum())} empty text(s) at row(s) {_rows_of(rows, empty)}",
            file=path,
            column=columns.text,
        )

    corpus = pd.DataFrame(
        {
            "text": text.to_numpy(dtype=object),
            "row": rows,
            "position": np.arange(len(frame)),
        },
        index=pd.Index(ids.to_numpy(dtype=object), name="id"),
    )
    if columns.gold_label is not None:
        _require(frame, columns.gold_label, role="gold label", path=path)
        gold = frame[columns.gold_label].set_axis(corpus.index)
        corpus["gold_label"] = gold.to_numpy(dtype=object)
        corpus["gold_toxic"] = binary_gold(
            gold,
            positive=positive_labels,
            negative=negative_labels,
            column=columns.gold_label,
            file=path,
        )
    optional = {
        "conversation_id": columns.conversation_id,
        "speaker": columns.speaker,
        "group": columns.group,
    }
    for role, column in optional.items():
        if column is None:
            continue
        _require(frame, column, role=role, path=path)
        # Surrounding spaces are not part of a group or speaker name (" sae" is "sae").
        values = [_label_text(v) for v in frame[column]]
        corpus[role] = np.array(values, dtype=object)
    extra = {
        "pair_id": columns.pair_id,
        "variant": columns.variant,
        "template": columns.template,
        "slot_value": columns.slot_value,
        "slot_kind": columns.slot_kind,
    }
    for role, column in extra.items():
        if column is not None:
            _require(frame, column, role=role, path=path)
            corpus[role] = np.array([_label_text(v) for v in frame[column]], dtype=object)
    for column in columns.votes:
        _require(frame, column, role="vote count", path=path)
        counts = pd.to_numeric(frame[column], errors="coerce")
        bad = (counts.isna() | (counts < 0) | (counts % 1 != 0)).to_numpy()
        if bad.any():
            raise InputError(
                f"{int(bad.sum())} vote count(s) that are not whole numbers >= 0 at row(s) "
                f"{_rows_of(rows, bad)}",
                file=path,
                column=column,
            )
        corpus[f"votes_{column}"] = counts.to_numpy(dtype=np.int64)
    for column in columns.keep:
        _require(frame, column, role="kept column", path=path)
        corpus[column] = frame[column].to_numpy()

    logger.info("read %s utterances from %s", f"{len(corpus):,}", path)
    return corpus


def audit_subset_mask(corpus: pd.DataFrame, subset: AuditSubsetConfig | None) -> np.ndarray:
    """Which rows the audit uses: all of them, or the test part of a reproduced split.

    The split is ``sklearn.model_selection.train_test_split`` over the file's row positions,
    exactly as a model's training script called it, so the test part is the rows it never saw.
    """
    if subset is None:
        return np.ones(len(corpus), dtype=bool)
    from sklearn.model_selection import train_test_split

    positions = corpus["position"].to_numpy()
    n_rows = int(positions.max()) + 1
    _, test = train_test_split(
        np.arange(n_rows), test_size=subset.test_size, random_state=subset.random_state
    )
    mask = np.zeros(n_rows, dtype=bool)
    mask[test] = True
    return mask[positions]
