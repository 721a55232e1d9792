"""Score cache: every model output computed once, addressed by model identity and text content.

Takes a model identity (a JSON-able mapping that names everything that changes the output: kind,
package version, checkpoint sha256, tokenizer settings) and texts; returns the stored scores of
the texts already seen and stores new ones. Layout of the cache folder::

    <folder>/<model key>/identity.json    the identity the key was made from, and the head names
    <folder>/<model key>/shard-*.npz       text sha256 digests (``keys``) and scores (``scores``)

The model key is the sha256 of the canonical JSON of the identity; a text's key is the sha256 of
its UTF-8 bytes. Shards are written to a temporary file and renamed into place, so a run that is
interrupted leaves only whole shards behind, and the next run resumes from them. Concurrent runs
write shards under distinct names; a text scored by both is stored twice with the same scores.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ScoreCache", "default_cache_dir", "text_digests", "model_key", "file_digest"]

logger = logging.getLogger(__name__)

_COMPACT_AFTER = 32


def default_cache_dir() -> Path:
    """``$FAIRAUDIT_CACHE`` when set, else ``~/.cache/fairaudit/scores``."""
    configured = os.environ.get("FAIRAUDIT_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path("~/.cache/fairaudit/scores").expanduser()


def text_digests(texts: Sequence[str]) -> np.ndarray:
    """The sha256 digest of each text's UTF-8 bytes, as a ``S32`` array."""
    sha256 = hashlib.sha256
    digests = np.empty(len(texts), dtype="S32")
    digests[:] = [sha256(text.encode("utf-8", "surrogatepass")).digest() for text in texts]
    return digests


def model_key(identity: Mapping[str, Any]) -> str:
    """The sha256 of the identity's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def file_digest(path: str | Path, *, memo_dir: str | Path | None = None) -> str:
    """The sha256 of a file, remembered by path, size and modification time.

    Hashing a 500 MB checkpoint takes seconds; with ``memo_dir`` the digest is stored there and
    reused while the file's size and modification time stay the same.
    """
    path = Path(path).resolve()
    stat = path.stat()
    memo_file = None
    stamp = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    if memo_dir is not None:
        memo_file = (
            Path(memo_dir) / "file_digests" / f"{hashlib.sha256(stamp.encode()).hexdigest()}"
        )
        if memo_file.is_file():
            return memo_file.read_text().strip()
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    if memo_file is not None:
        memo_file.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(memo_file, value.encode())
    return value


class ScoreCache:
    """A folder of per-model score shards (see the module docstring).

    Parameters
    ----------
    folder
        The cache folder; ``default_cache_dir()`` when None. Created on first write.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else default_cache_dir()

    def _model_dir(self, key: str) -> Path:
        return self.folder / key

    def heads(self, key: str) -> tuple[str, ...] | None:
        """Head names stored for a model key, or None when the model was never cached."""
        path = self._model_dir(key) / "identity.json"
        if not path.is_file():
            return None
        return tuple(json.loads(path.read_text(encoding="utf-8"))["heads"])

    def _shards(self, key: str) -> list[Path]:
        folder = self._model_dir(key)
        return sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []

    def _load(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        keys, scores = [], []
        for shard in self._shards(key):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    keys.append(data["keys"])
                    scores.append(data["scores"])
            except FileNotFoundError:
                continue  # compacted away by a concurrent run
        if not keys:
            return np.empty(0, dtype="S32"), np.empty((0, 0))
        return np.concatenate(keys), np.concatenate(scores)

    def lookup(self, key: str, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stored scores for the given text digests.

        Returns
        -------
        scores
            ``(len(digests), n_heads)`` array, NaN where not cached (``n_heads`` 0 when the
            model was never cached).
        found
            Boolean mask of the digests found.
        """
        stored_keys, stored_scores = self._load(key)
        if len(stored_keys) == 0:
            return np.full((len(digests), 0), np.nan), np.zeros(len(digests), dtype=bool)
        index = pd.Index(stored_keys)
        if not index.is_unique:
            keep = ~index.duplicated()
            index, stored_scores = index[keep], stored_scores[keep]
        positions = index.get_indexer(digests)
        found = positions >= 0
        scores = np.full((len(digests), stored_scores.shape[1]), np.nan)
        scores[found] = stored_scores[positions[found]]
        return scores, found

    def store(
        self,
        key: str,
        identity: Mapping[str, Any],
        heads: Sequence[str],
        digests: np.ndarray,
        scores: np.ndarray,
    ) -> Path:
        """Write one shard atomically; returns its path."""
        folder = self._model_dir(key)
        folder.mkdir(parents=True, exist_ok=True)
        identity_file = folder / "identity.json"
        if not identity_file.is_file():
            record = {"identity": dict(identity), "heads": list(heads)}
            _atomic_write_bytes(
                identity_file, json.dumps(record, indent=2, default=str).encode("utf-8")
            )
        elif self.heads(key) != tuple(heads):
            raise ValueError(f"cache {folder}: heads {list(heads)} differ from the stored ones")
        scores = np.asarray(scores, dtype=np.float64).reshape(len(digests), len(heads))
        path = folder / f"shard-{uuid.uuid4().hex}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.asarray(digests, dtype="S32"), scores=scores)
        _atomic_write_bytes(path, buffer.getvalue())
        logger.debug("cached %d scores in %s", len(digests), path)
        return path

    def compact(self, key: str, *, min_shards: int = _COMPACT_AFTER) -> None:
        """Merge a model's shards into one when there are at least ``min_shards``."""
        shards = self._shards(key)
        if len(shards) < min_shards:
            return
        heads = self.heads(key)
        if heads is None:
            return
        keys, scores = self._load(key)
        keep = ~pd.Index(keys).duplicated()
        identity = json.loads((self._model_dir(key) / "identity.json").read_text())["identity"]
        self.store(key, identity, heads, keys[keep], scores[keep])
        for shard in shards:
            shard.unlink(missing_ok=True)
        logger.debug("compacted %d shards of %s", len(shards), key)
