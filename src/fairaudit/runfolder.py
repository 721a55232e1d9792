"""The run folder: the only interface between computing (the pipeline) and showing (report,
dashboard). Writes happen in a temporary sibling folder that is renamed into place at the end, so
a failed run leaves no half-written folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from fairaudit.exceptions import FairauditError, InputError

__all__ = [
    "TABLES",
    "atomic_run_folder",
    "file_sha256",
    "json_safe",
    "package_versions",
    "read_manifest",
    "read_table",
    "write_json",
    "write_parquet_atomic",
    "write_text_atomic",
    "write_table",
]

TABLES = (
    "utterances",
    "spans",
    "scores",
    "group_metrics",
    "comparisons",
    "weights",
)

PACKAGES = (
    "fairaudit",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "statsmodels",
    "scikit-learn",
    "fairlearn",
    "onnxruntime",
    "hatesonar",
    "alt-profanity-check",
    "plotly",
    "dash",
    "pydantic",
    "jinja2",
    "pyyaml",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as strings, so the files read back the same everywhere."""
    out = frame.copy()
    out.attrs = {}  # in-memory extras (tables, id lists) are not file metadata
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def write_table(frame: pd.DataFrame, folder: Path, name: str, *, csv: bool = False) -> None:
    """Write ``name.parquet`` (and ``name.csv``, RFC 4180 quoted) into the folder."""
    plain = _plain(frame)
    plain.to_parquet(folder / f"{name}.parquet", index=False)
    if csv:
        plain.to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")


def write_parquet_atomic(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write one Parquet file through a temporary sibling, renamed into place at the end."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        _plain(frame).to_parquet(temporary, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(target: Path, write: Callable[[TextIO], object]) -> Path:
    """Write a UTF-8 text file shared with others (mode 0644) through a temporary sibling.

    ``write`` fills the open file; the file is synced and renamed into place only when it
    returns, so a failure leaves ``target`` as it was and no temporary file behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        dir=target.parent,
        prefix=f".{target.name}.",
        suffix=".tmp",
        delete=False,
    )
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file readable by its owner only; these files are meant to be shared.
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return target


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN (an undefined statistic) as null, numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_json(data: Any, path: Path) -> None:
    """Strict JSON (no NaN), written through a temporary sibling and renamed into place."""
    text = json.dumps(json_safe(data), indent=2, allow_nan=False, default=str) + "\n"
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise InputError("not a fairaudit run folder (no manifest.json)", file=path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"manifest is not valid JSON: {error.msg}", file=path) from None


def read_table(run_dir: str | Path, name: str) -> pd.DataFrame:
    path = Path(run_dir) / f"{name}.parquet"
    if not path.is_file():
        raise InputError("table missing from the run folder", file=path)
    return pd.read_parquet(path)


RUN_KIND = "fairaudit-run"


def folder_kind(folder: Path) -> str | None:
    """The ``kind`` in a folder's manifest (an audit run when absent), or None without one."""
    path = folder / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "unreadable"
    return manifest.get("kind", RUN_KIND) if isinstance(manifest, dict) else "unreadable"


def _check_replaceable(out: Path, kind: str) -> None:
    """Refuse to replace anything but an earlier output of the same kind (or an empty folder)."""
    here = Path.cwd().resolve()
    if out == here or out in here.parents:
        raise FairauditError(f"{out}: is the working folder or one above it; choose a new --out")
    if not out.is_dir():
        raise FairauditError(f"{out}: exists and is not a folder; choose another --out")
    existing = folder_kind(out)
    if existing is None and any(out.iterdir()):
        raise FairauditError(
            f"{out}: is not a fairaudit output folder (no manifest.json) and is not empty; "
            "--overwrite only replaces earlier outputs of the same command"
        )
    if existing is not None and existing != kind:
        raise FairauditError(
            f"{out}: holds a {existing} output, not a {kind} one; --overwrite only replaces "
            "an earlier output of the same command"
        )


@contextlib.contextmanager
def atomic_run_folder(
    out: str | Path, *, overwrite: bool = False, kind: str = RUN_KIND
) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` only if the block finishes.

    With ``overwrite``, an existing ``out`` is replaced only when it is an earlier output of the
    same ``kind`` (its ``manifest.json`` says so; audit runs have no kind) or an empty folder,
    never the working folder or one above it, so one command never replaces another's output.

    Raises
    ------
    FairauditError
        When ``out`` exists and may not be replaced, or cannot be created.
    """
    out = Path(out).resolve()
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise FairauditError(
                f"{out}: already exists; choose another --out or pass --overwrite"
            )
        _check_replaceable(out, kind)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        staging.chmod(0o755)
    except OSError as error:
        raise FairauditError(f"{out}: cannot create the run folder ({error.strerror})") from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        retired = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(retired)
        staging.rename(out)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(out)
