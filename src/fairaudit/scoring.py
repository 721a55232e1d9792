"""Model outputs: toxicity scorers behind one small interface, and the long score table.

A scorer takes texts and returns one score per text: the probability of the harmful class that
the configuration names. ``score_corpus`` runs the configured models over a corpus and returns a
long table (``id``, ``model``, ``head``, ``score``, ``flagged``) with one row per utterance and
model, plus every head each model computed (``head_scores``). The pipeline does not know which
model it runs.

Models that compute (hatesonar, alt-profanity-check, Detoxify, a Python callable) go through a
content-addressed cache (:mod:`fairaudit.cache`): each distinct text is scored once per model
identity, across runs, and an interrupted run resumes from the shards already written. Given
scores (a corpus column, a separate file, or a classifier's label/score lists) are read and
checked, never recomputed.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import locale
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fairaudit.cache import ScoreCache, file_digest, model_key, text_digests
from fairaudit.config import AuditSubsetConfig, ModelConfig
from fairaudit.exceptions import ConfigError, InputError, InSampleWarning, ModelError

__all__ = [
    "Scorer",
    "HateSonarScorer",
    "ProfanityCheckScorer",
    "DetoxifyScorer",
    "CallableScorer",
    "ScoringResult",
    "build_scorer",
    "score_corpus",
    "label_score",
    "in_sample_warning",
    "locale_available",
    "DAVIDSON_SHA256",
    "DETOXIFY_CHECKPOINTS",
]

logger = logging.getLogger(__name__)

DAVIDSON_SHA256 = "fcb8bc7c68120ae4af04a5b9acd58585513ede11e1548ebf36a5c2040b6f6281"
"""sha256 of Davidson et al. (2017) ``labeled_data.csv`` as published (24,783 tweets)."""

DETOXIFY_CHECKPOINTS = (
    "original",
    "unbiased",
    "multilingual",
    "original-small",
    "unbiased-small",
)

_TRUNCATED = "_truncated"
"""Pseudo-head cached with Detoxify scores: 1.0 where the tokenizer truncated the text."""

_SHARD_TEXTS = 4096
"""Texts per cache shard: an interrupted run loses at most this many scores."""


class Scorer(Protocol):
    """Texts in, one float per text out (the probability of the audited class).

    ``score_heads`` returns every output the model computes at once (one column per name in
    ``heads``); it is what the cache stores, and the audited score is chosen from it by name.
    """

    name: str
    notes: list[str]
    heads: tuple[str, ...]

    def score(self, texts: Sequence[str]) -> np.ndarray: ...

    def score_heads(self, texts: Sequence[str]) -> np.ndarray: ...


def locale_available(name: str) -> bool:
    """Whether the C library can construct the named locale on this machine."""
    current = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, name)
    except locale.Error:
        return False
    finally:
        locale.setlocale(locale.LC_CTYPE, current)
    return True


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@dataclass
class HateSonarScorer:
    """hatesonar's ONNX model (TF-IDF + logistic regression trained on Davidson et al. 2017).

    The model lower-cases text with an ONNX ``StringNormalizer`` whose locale defaults to
    ``en_US.UTF-8``; onnxruntime refuses to start where that locale is not installed (machines
    with only ``C.UTF-8``). Then the same model is loaded with the normaliser's locale set to
    ``C.UTF-8``. The tokenizer that follows keeps only ``[a-zA-Z0-9_]+``, so only the lower-casing
    of ASCII letters reaches the features, which both locales do alike; on all 24,783 Davidson
    tweets the two give identical probabilities (maximum absolute difference 0.0). A note records
    which locale ran.

    Parameters
    ----------
    name
        Model name in the run.
    score
        Class whose probability is audited: ``hate_speech``, ``offensive_language`` or
        ``neither``.
    complement
        Audit ``1 - P(score)`` (``1 - P(neither)`` is "hate or offensive").
    normaliser_locale
        Force a locale for the normaliser; by default ``en_US.UTF-8`` where available, else
        ``C.UTF-8``.
    """

    name: str
    score_class: str
    complement: bool = False
    normaliser_locale: str | None = None
    notes: list[str] = field(default_factory=list)
    classes: tuple[str, ...] = ("hate_speech", "offensive_language", "neither")

    def __post_init__(self) -> None:
        try:
            import onnx
            import onnxruntime
            from hatesonar.api import DEFAULT_MODEL_FILE
        except ImportError as error:
            raise ModelError(
                f"model {self.name!r}: hatesonar is not installed ({error})"
            ) from None
        if self.score_class not in self.classes:
            raise ModelError(
                f"model {self.name!r}: class {self.score_class!r} is not one of {self.classes}"
            )
        chosen = self.normaliser_locale or _hatesonar_locale()
        model = onnx.load(str(DEFAULT_MODEL_FILE))
        for node in model.graph.node:
            if node.op_type == "StringNormalizer":
                kept = [a for a in node.attribute if a.name != "locale"]
                del node.attribute[:]
                node.attribute.extend(kept)
                node.attribute.append(onnx.helper.make_attribute("locale", chosen))
        try:
            self._session = onnxruntime.InferenceSession(
                model.SerializeToString(), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
            raise ModelError(f"model {self.name!r}: hatesonar failed to load: {error}") from None
        self.locale = chosen
        self.model_file = str(DEFAULT_MODEL_FILE)
        self.notes.append(f"hatesonar text normaliser locale: {chosen}")

    @property
    def heads(self) -> tuple[str, ...]:
        return self.classes

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes``."""
        batch = np.asarray(list(texts), dtype=object)
        _, probabilities = self._session.run(None, {"text": batch})
        return np.array([[row[k] for k in range(3)] for row in probabilities], dtype=np.float64)

    def score_heads(self, texts: Sequence[str]) -> np.ndarray:
        return self.probabilities(texts)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        probabilities = self.probabilities(texts)[:, self.classes.index(self.score_class)]
        return 1.0 - probabilities if self.complement else probabilities


def _hatesonar_locale() -> str:
    return "en_US.UTF-8" if locale_available("en_US.UTF-8") else "C.UTF-8"


@dataclass
class ProfanityCheckScorer:
    """alt-profanity-check: a linear SVM over TF-IDF, calibrated, trained partly on Davidson.

    Its training data included the Davidson et al. 2017 tweets, so its figures on that file are
    in-sample.
    """

    name: str
    notes: list[str] = field(default_factory=list)
    heads: tuple[str, ...] = ("profane",)

    def __post_init__(self) -> None:
        try:
            from profanity_check import predict_prob
        except ImportError as error:
            raise ModelError(
                f"model {self.name!r}: alt-profanity-check is not installed ({error})"
            ) from None
        self._predict_prob = predict_prob

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._predict_prob(list(texts)), dtype=np.float64)

    def score_heads(self, texts: Sequence[str]) -> np.ndarray:
        return self.score(texts)[:, None]


# ----------------------------------------------------------------------------------------------
# Detoxify


def _torch_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _read_detoxify_checkpoint(name: str, path: Path) -> dict[str, Any]:
    """Load a Detoxify checkpoint (``config`` and ``state_dict``) and check its form."""
    import torch

    if not path.is_file():
        raise ModelError(f"model {name!r}: checkpoint {path} not found")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - older checkpoints pickle more than tensors and dicts
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # noqa: BLE001 - any unreadable file is one clear error
            raise ModelError(
                f"model {name!r}: {path} is not a readable torch checkpoint ({error})"
            ) from None
    try:
        arch = loaded["config"]["arch"]["args"]
        classes = list(loaded["config"]["dataset"]["args"]["classes"])
        state_dict = loaded["state_dict"]
        model_name, tokenizer_name = arch["model_name"], arch["tokenizer_name"]
        num_classes = int(arch["num_classes"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelError(
            f"model {name!r}: {path} is not a Detoxify checkpoint: it needs config.arch.args "
            "(model_type, model_name, tokenizer_name, num_classes), config.dataset.args.classes "
            f"and state_dict (missing {error})"
        ) from None
    if not isinstance(state_dict, Mapping) or num_classes > len(classes) or num_classes < 1:
        raise ModelError(
            f"model {name!r}: {path}: num_classes {num_classes} does not fit the "
            f"{len(classes)} class names, or state_dict is not a mapping"
        )
    return {
        "model_type": arch.get("model_type"),
        "model_name": model_name,
        "tokenizer_name": tokenizer_name,
        "num_classes": num_classes,
        "classes": classes,
        "state_dict": state_dict,
    }


def _detoxify_offline(
    name: str, checkpoint_path: Path, config_path: Path
) -> tuple[Any, Any, list[str]]:
    """Model, tokenizer and head names from a local checkpoint and a local HF config folder.

    Detoxify 0.5.4 asks the hub for the checkpoint's ``model_type`` config even when given a
    local config folder; here the model class named in the checkpoint is built from the local
    config (``from_config`` semantics: no weights fetched) and the checkpoint's state dict is
    loaded into it, so nothing is fetched.
    """
    import transformers

    loaded = _read_detoxify_checkpoint(name, checkpoint_path)
    if not config_path.is_dir():
        raise ModelError(f"model {name!r}: huggingface_config_path {config_path} is not a folder")
    model_class = getattr(transformers, loaded["model_name"], None)
    tokenizer_class = getattr(transformers, loaded["tokenizer_name"], None)
    if model_class is None or tokenizer_class is None:
        raise ModelError(
            f"model {name!r}: transformers has no {loaded['model_name']!r} or "
            f"{loaded['tokenizer_name']!r} (named in the checkpoint)"
        )
    try:
        config = model_class.config_class.from_pretrained(
            config_path, num_labels=loaded["num_classes"], local_files_only=True
        )
        model = model_class(config)
        tokenizer = tokenizer_class.from_pretrained(config_path, local_files_only=True)
    except Exception as error:  # noqa: BLE001 - transformers raises many types here
        raise ModelError(
            f"model {name!r}: cannot build {loaded['model_name']} from {config_path}: {error}"
        ) from None
    try:
        result = model.load_state_dict(dict(loaded["state_dict"]), strict=False)
    except RuntimeError as error:  # shapes that differ from the config's
        raise ModelError(
            f"model {name!r}: checkpoint weights do not fit {loaded['model_name']} built from "
            f"{config_path}: {str(error).splitlines()[-1].strip()}"
        ) from None
    # Older checkpoints carry buffers newer transformers no longer persist (position_ids).
    unexpected = [k for k in result.unexpected_keys if not k.endswith("position_ids")]
    if result.missing_keys or unexpected:
        raise ModelError(
            f"model {name!r}: checkpoint weights do not fit {loaded['model_name']} built from "
            f"{config_path}: missing {result.missing_keys[:5]}, unexpected {unexpected[:5]}"
        )
    # The head names exactly as Detoxify reports them (it renames toxic -> toxicity, ...).
    heads = _detoxify_head_names(loaded["classes"])[: loaded["num_classes"]]
    return model, tokenizer, heads


def _detoxify_head_names(classes: Sequence[str]) -> list[str]:
    """Detoxify's standardised class names (the renaming its ``load_checkpoint`` applies)."""
    change_names = {
        "toxic": "toxicity",
        "identity_hate": "identity_attack",
        "severe_toxic": "severe_toxicity",
    }
    return [change_names.get(c, c) for c in classes]


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class DetoxifyScorer:
    """Detoxify (Hanu and Unitary team 2020): a transformer with one sigmoid per head.

    Online, ``checkpoint`` (``original``, ``unbiased``, ...) loads exactly as ``Detoxify(...)``
    does. Offline, ``checkpoint_path`` (a Detoxify ``.ckpt``) and ``huggingface_config_path``
    (the Hugging Face config and tokenizer files of the checkpoint's base model) load without
    any download. Scores are ``sigmoid(logits)`` as in ``Detoxify.predict``, computed in batches
    in eval mode without gradients, with a fixed number of CPU threads; texts longer than
    ``max_length`` tokens are truncated by the tokenizer and counted.

    ``score_heads`` returns one column per head plus a last column ``_truncated`` (1.0 where the
    text was truncated), so that the count survives the cache.
    """

    name: str
    checkpoint: str | None = None
    checkpoint_path: str | Path | None = None
    huggingface_config_path: str | Path | None = None
    device: str = "auto"
    batch_size: int = 32
    max_length: int | None = None
    threads: int = 1
    progress: bool = True
    notes: list[str] = field(default_factory=list)
    heads: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
            from detoxify import Detoxify
        except ImportError as error:
            raise ModelError(
                f"model {self.name!r}: detoxify, torch and transformers are needed ({error})"
            ) from None
        self.device = _torch_device(self.device)
        if self.huggingface_config_path is not None:
            if self.checkpoint_path is None:
                raise ModelError(
                    f"model {self.name!r}: offline loading needs checkpoint_path as well as "
                    "huggingface_config_path"
                )
            model, tokenizer, heads = _detoxify_offline(
                self.name, Path(self.checkpoint_path), Path(self.huggingface_config_path)
            )
            source = f"{self.checkpoint_path} with config {self.huggingface_config_path}"
        else:
            if self.checkpoint_path is not None:
                _read_detoxify_checkpoint(self.name, Path(self.checkpoint_path))
            elif self.checkpoint not in DETOXIFY_CHECKPOINTS:
                raise ModelError(
                    f"model {self.name!r}: unknown Detoxify checkpoint {self.checkpoint!r}; "
                    f"one of {DETOXIFY_CHECKPOINTS}"
                )
            try:
                detoxify = Detoxify(
                    model_type=self.checkpoint or "original",
                    checkpoint=None if self.checkpoint_path is None else str(self.checkpoint_path),
                    device="cpu",
                )
            except Exception as error:  # noqa: BLE001 - downloads fail in many ways
                raise ModelError(
                    f"model {self.name!r}: Detoxify could not load {self.checkpoint or ''}"
                    f"{self.checkpoint_path or ''} ({type(error).__name__}: {error}); offline, "
                    "set checkpoint_path and huggingface_config_path"
                ) from None
            model, tokenizer = detoxify.model, detoxify.tokenizer
            heads = list(detoxify.class_names)[: model.config.num_labels]
            source = str(self.checkpoint_path or f"Detoxify {self.checkpoint!r}")
        model.eval()
        self._model = model.to(self.device)
        self._tokenizer = tokenizer
        self.heads = (*heads, _TRUNCATED)
        limit = _position_limit(model.config)
        self.max_length = min(self.max_length or limit, limit)
        self.notes.append(
            f"detoxify {source}: heads {list(heads)}, max_length {self.max_length} tokens, "
            f"device {self.device}, {self.threads} CPU thread(s)"
        )

    def score_heads(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        texts = list(texts)
        result = np.empty((len(texts), len(self.heads)), dtype=np.float64)
        # Similar lengths in a batch pad less; the order is fixed, so results are reproducible.
        order = np.argsort([len(t) for t in texts], kind="stable")
        progress = _progress(len(texts), f"scoring with {self.name}", enabled=self.progress)
        with _torch_threads(self.threads), torch.no_grad(), _quiet_tokenizer():
            for start in range(0, len(texts), self.batch_size):
                positions = order[start : start + self.batch_size]
                batch = [texts[i] for i in positions]
                lengths = [len(ids) for ids in self._tokenizer(batch)["input_ids"]]
                inputs = self._tokenizer(
                    batch,
                    return_tensors="pt",
                    truncation=True,
                    padding=True,
                    max_length=self.max_length,
                ).to(self.device)
                logits = self._model(**inputs)[0]
                result[positions, :-1] = torch.sigmoid(logits).float().cpu().numpy()
                result[positions, -1] = [float(n > self.max_length) for n in lengths]
                progress.update(len(batch))
        progress.close()
        return result

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """All heads except the truncation flag, columns in the order of ``heads[:-1]``."""
        return self.score_heads(texts)[:, :-1]


def _position_limit(config: Any) -> int:
    limit = int(getattr(config, "max_position_embeddings", 512) or 512)
    # RoBERTa-style models reserve padding_idx + 1 positions.
    if getattr(config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}:
        limit -= int(getattr(config, "pad_token_id", 1) or 1) + 1
    return min(limit, 512)


@contextlib.contextmanager
def _quiet_tokenizer() -> Iterator[None]:
    """Silence the tokenizer's "sequence longer than maximum" warning; truncation is counted."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


class _Progress:
    def __init__(self, total: int, description: str, *, enabled: bool) -> None:
        self.total, self.description, self.done = total, description, 0
        self._bar = None
        self._next_log = 0.0
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=description, unit="text", disable=None)
            except ImportError:
                self._bar = None

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        now = time.monotonic()
        if now >= self._next_log:
            logger.debug("%s: %s of %s texts", self.description, f"{self.done:,}", self.total)
            self._next_log = now + 10

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress(total: int, description: str, *, enabled: bool) -> _Progress:
    return _Progress(total, description, enabled=enabled)


# ----------------------------------------------------------------------------------------------
# Any Python callable


def _import_callable(name: str, spec: str) -> Callable[[list[str]], Any]:
    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as error:  # noqa: BLE001 - user code may fail to import in any way
        raise ModelError(
            f"model {name!r}: cannot import callable {spec!r} ({type(error).__name__}: {error})"
        ) from None
    if not callable(target):
        raise ModelError(f"model {name!r}: {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


@dataclass
class CallableScorer:
    """Any Python function that takes a list of texts and returns one probability per text."""

    name: str
    spec: str
    notes: list[str] = field(default_factory=list)
    heads: tuple[str, ...] = ("score",)

    def __post_init__(self) -> None:
        self._function = _import_callable(self.name, self.spec)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        try:
            raw = self._function(list(texts))
        except Exception as error:  # noqa: BLE001 - any failure of user code is a model error
            raise ModelError(
                f"model {self.name!r}: {self.spec} raised {type(error).__name__}: {error}"
            ) from None
        try:
            values = np.asarray(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as error:
            raise ModelError(
                f"model {self.name!r}: {self.spec} returned values that are not numbers ({error})"
            ) from None
        if len(values) != len(texts):
            raise ModelError(
                f"model {self.name!r}: {self.spec} returned {len(values)} scores for "
                f"{len(texts)} texts"
            )
        return values

    def score_heads(self, texts: Sequence[str]) -> np.ndarray:
        return self.score(texts)[:, None]


def _callable_identity(name: str, spec: str) -> dict[str, Any]:
    """The callable's name and the sha256 of its module's source file (changes when edited)."""
    module_name = spec.partition(":")[0]
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - user code may fail to import in any way
        raise ModelError(
            f"model {name!r}: cannot import callable {spec!r} ({type(error).__name__}: {error})"
        ) from None
    source = inspect.getsourcefile(module) if hasattr(module, "__file__") else None
    top = module_name.split(".")[0]
    return {
        "callable": spec,
        "source_sha256": file_digest(source) if source else None,
        "version": _version(top),
    }


# ----------------------------------------------------------------------------------------------
# Building scorers and identities


PathResolver = Callable[[str], Path]


def _default_resolve(template: str) -> Path:
    return Path(os.path.expanduser(template)).resolve()


def build_scorer(
    model: ModelConfig,
    *,
    resolve_path: PathResolver = _default_resolve,
    progress: bool = True,
) -> Scorer | None:
    """The scorer for a configured model, or None for given score, decision or label columns."""
    if model.kind == "hatesonar":
        if model.score is None:
            raise ConfigError(f"model {model.name!r}: hatesonar needs score:")
        return HateSonarScorer(model.name, model.score, complement=model.complement)
    if model.kind == "profanity_check":
        return ProfanityCheckScorer(model.name)
    if model.kind == "detoxify":
        return DetoxifyScorer(
            model.name,
            checkpoint=model.checkpoint,
            checkpoint_path=(
                None if model.checkpoint_path is None else resolve_path(model.checkpoint_path)
            ),
            huggingface_config_path=(
                None
                if model.huggingface_config_path is None
                else resolve_path(model.huggingface_config_path)
            ),
            device=model.device,
            batch_size=model.batch_size,
            max_length=model.max_length,
            threads=model.threads,
            progress=progress,
        )
    if model.kind == "callable":
        if model.callable is None:
            raise ConfigError(f"model {model.name!r}: callable needs callable:")
        return CallableScorer(model.name, model.callable)
    return None


def _folder_digest(folder: Path, *, memo_dir: Path | None = None) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(bytes.fromhex(file_digest(path, memo_dir=memo_dir)))
    return digest.hexdigest()


def _model_identity(
    model: ModelConfig, *, resolve_path: PathResolver, memo_dir: Path
) -> dict[str, Any]:
    """Everything that changes a model's outputs, computed without loading the model."""
    identity: dict[str, Any] = {"kind": model.kind, "cache_format": 1}
    if model.kind == "hatesonar":
        try:
            from hatesonar.api import DEFAULT_MODEL_FILE
        except ImportError as error:
            raise ModelError(
                f"model {model.name!r}: hatesonar is not installed ({error})"
            ) from None
        identity |= {
            "version": _version("hatesonar"),
            "model_sha256": file_digest(DEFAULT_MODEL_FILE, memo_dir=memo_dir),
            "locale": _hatesonar_locale(),
        }
    elif model.kind == "profanity_check":
        try:
            import profanity_check
        except ImportError as error:
            raise ModelError(
                f"model {model.name!r}: alt-profanity-check is not installed ({error})"
            ) from None
        data = Path(profanity_check.__file__).parent / "data"
        identity |= {
            "version": _version("alt-profanity-check"),
            "model_sha256": _folder_digest(data, memo_dir=memo_dir) if data.is_dir() else None,
        }
    elif model.kind == "detoxify":
        checkpoint_path = model.checkpoint_path
        config_path = model.huggingface_config_path
        if checkpoint_path is not None:
            path = resolve_path(checkpoint_path)
            if not path.is_file():
                raise ModelError(f"model {model.name!r}: checkpoint {path} not found")
            checkpoint = {"sha256": file_digest(path, memo_dir=memo_dir)}
        else:
            from detoxify.detoxify import MODEL_URLS

            if model.checkpoint not in MODEL_URLS:
                raise ModelError(
                    f"model {model.name!r}: unknown Detoxify checkpoint {model.checkpoint!r}; "
                    f"one of {sorted(MODEL_URLS)}"
                )
            # The release file name carries the checkpoint's hash prefix.
            checkpoint = {"url": MODEL_URLS[model.checkpoint]}
        identity |= {
            "checkpoint": checkpoint,
            "config_sha256": (
                None
                if config_path is None
                else _folder_digest(resolve_path(config_path), memo_dir=memo_dir)
            ),
            "max_length": model.max_length,
            "transformers": _version("transformers"),
        }
    elif model.kind == "callable":
        assert model.callable is not None  # guaranteed by ModelConfig validation
        identity |= _callable_identity(model.name, model.callable)
    return identity


# ----------------------------------------------------------------------------------------------
# Given scores: columns, separate files, label/score lists


def _given_source(
    corpus: pd.DataFrame, model: ModelConfig, *, file: str | None, resolve_path: PathResolver
) -> tuple[pd.Series, str | None, list[str]]:
    """The given column aligned to the corpus ids, the file it came from, and notes."""
    column = model.column
    assert column is not None  # guaranteed by ModelConfig validation
    if model.file is None:
        if column not in corpus.columns:
            raise InputError(
                f"model {model.name!r} reads scores from a column that is not in the corpus "
                "(add it to corpus.columns.keep)",
                file=file,
                column=column,
            )
        return corpus[column], file, []

    from fairaudit.corpus import read_table

    path = resolve_path(model.file)
    table = read_table(path)
    for needed in (model.id_column, column):
        if needed not in table.columns:
            raise InputError(
                f"model {model.name!r}: no column {needed!r}; the file has "
                f"{list(table.columns)[:20]}",
                file=path,
                column=needed,
            )
    ids = table[model.id_column].map(
        lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    )
    duplicated = ids.duplicated(keep=False)
    if duplicated.any():
        raise InputError(
            f"model {model.name!r}: duplicated ids, e.g. {sorted(set(ids[duplicated]))[:5]}",
            file=path,
            column=model.id_column,
        )
    values = pd.Series(table[column].to_numpy(dtype=object), index=pd.Index(ids, dtype=object))
    missing = corpus.index.difference(values.index)
    if len(missing):
        raise InputError(
            f"model {model.name!r}: {len(missing)} corpus id(s) have no score in the file, "
            f"e.g. {missing[:10].tolist()}",
            file=path,
            column=model.id_column,
        )
    extra = values.index.difference(corpus.index)
    notes = [f"{model.score_definition}: joined on {model.id_column!r}"]
    if len(extra):
        notes.append(
            f"{len(extra)} id(s) in {path.name} are not in the corpus (ignored), e.g. "
            f"{extra[:5].tolist()}"
        )
    aligned = values.reindex(corpus.index)
    return aligned, str(path), notes


def _rows_or_ids(corpus: pd.DataFrame, mask: np.ndarray) -> str:
    where = corpus.loc[mask, "row"] if "row" in corpus.columns else corpus.index[mask]
    return ", ".join(map(str, list(where)[:5]))


def _given_values(
    corpus: pd.DataFrame, model: ModelConfig, *, file: str | None, resolve_path: PathResolver
) -> tuple[np.ndarray, list[str]]:
    raw, source, notes = _given_source(corpus, model, file=file, resolve_path=resolve_path)
    column = model.column
    if model.kind == "label_scores":
        assert model.score is not None
        values, label_notes = label_score(
            raw,
            label=model.score,
            softmax=model.softmax,
            tolerance=model.sum_tolerance,
            model=model.name,
            file=source,
            column=column,
        )
        return (1.0 - values if model.complement else values), notes + label_notes
    if model.kind == "decision":
        text = raw.map(lambda v: str(v).strip().lower())
        allowed = {"0", "1", "true", "false", "0.0", "1.0"}
        bad = ~text.isin(allowed).to_numpy()
        if bad.any():
            raise InputError(
                f"model {model.name!r}: decisions must be 0/1 or true/false; "
                f"{int(bad.sum())} other value(s), e.g. {raw[bad].unique()[:5].tolist()}",
                file=source,
                row=_rows_or_ids(corpus, bad),
                column=column,
            )
        return text.isin({"1", "true", "1.0"}).to_numpy(dtype=np.float64), notes
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        raise InputError(
            f"model {model.name!r}: {int(bad.sum())} score(s) missing, non-numeric or outside "
            "[0, 1]",
            file=source,
            row=_rows_or_ids(corpus, bad),
            column=column,
        )
    return values, notes


def _parse_label_list(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def label_score(
    values: pd.Series,
    *,
    label: str,
    softmax: bool = False,
    tolerance: float = 1e-3,
    model: str = "model",
    file: str | None = None,
    column: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The probability of ``label`` from per-row ``[{label, score}, ...]`` lists.

    The score is taken by exact equality of the label: never by position (pipelines sort by
    score, so the first entry changes from row to row) and never by substring (``"hate"`` is in
    ``"nothate"``). Lists may be Python lists or JSON strings.

    Parameters
    ----------
    values
        One list per row, indexed by utterance id.
    label
        The harmful label, exactly as the model spells it.
    softmax
        The list is one softmax over all labels: each row must hold every label and sum to 1
        within ``tolerance``.

    Returns
    -------
    scores, notes
        ``P(label)`` per row, and notes recording the label used and the labels found.

    Raises
    ------
    InputError
        A row that is not a list of ``{label, score}``, a label given twice in a row, the label
        missing (the message lists the labels found), or a softmax row that does not sum to 1.
    """
    scores = np.full(len(values), np.nan)
    found: set[str] = set()
    missing: list[object] = []
    bad_sum: list[object] = []
    for position, (identifier, raw) in enumerate(values.items()):
        entries = _parse_label_list(raw)
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and "label" in e and "score" in e for e in entries
        ):
            raise InputError(
                f"model {model!r}: id {identifier!r} does not hold a list of "
                f"{{label, score}} entries (got {str(raw)[:80]!r})",
                file=file,
                column=column,
            )
        by_label: dict[str, float] = {}
        for entry in entries:
            name = str(entry["label"])
            if name in by_label:
                raise InputError(
                    f"model {model!r}: id {identifier!r} lists label {name!r} twice",
                    file=file,
                    column=column,
                )
            by_label[name] = float(entry["score"])
        found.update(by_label)
        if label in by_label:
            scores[position] = by_label[label]
        else:
            missing.append(identifier)
        if softmax and abs(sum(by_label.values()) - 1.0) > tolerance:
            bad_sum.append(identifier)
    labels = sorted(found)
    if missing:
        raise InputError(
            f"model {model!r}: the configured harmful label {label!r} is not among the labels "
            f"found {labels} in {len(missing)} row(s), e.g. ids {missing[:5]}",
            file=file,
            column=column,
        )
    if bad_sum:
        raise InputError(
            f"model {model!r}: declared softmax, but {len(bad_sum)} row(s) do not sum to 1 "
            f"within {tolerance}, e.g. ids {bad_sum[:5]}",
            file=file,
            column=column,
        )
    bad = ~np.isfinite(scores) | (scores < 0) | (scores > 1)
    if bad.any():
        raise InputError(
            f"model {model!r}: {int(bad.sum())} score(s) for {label!r} outside [0, 1], e.g. ids "
            f"{values.index[bad][:5].tolist()}",
            file=file,
            column=column,
        )
    notes = [
        f"score taken from label {label!r} by exact match in column {column!r}; labels found: "
        f"{labels}" + ("; rows checked to sum to 1" if softmax else "")
    ]
    return scores, notes


# ----------------------------------------------------------------------------------------------
# Checks shared by every model


def _texts_for(
    corpus: pd.DataFrame, model: ModelConfig, *, file: str | None
) -> tuple[list[str], np.ndarray]:
    """The texts a computing model scores (messages or replies), checked; and their ids."""
    column = model.reply_column or "text"
    if column not in corpus.columns:
        raise InputError(
            f"model {model.name!r}: reply column is not in the corpus (add it to "
            "corpus.columns.keep)",
            file=file,
            column=column,
        )
    values = corpus[column].tolist()
    ids = corpus.index.to_numpy(dtype=object)
    not_text = np.array([not isinstance(v, str) for v in values], dtype=bool)
    if not_text.any():
        raise ModelError(
            f"model {model.name!r}: {int(not_text.sum())} non-text value(s) in column "
            f"{column!r}, ids {ids[not_text][:10].tolist()}"
        )
    empty = np.array([not v or v.isspace() for v in values], dtype=bool)
    if empty.any():
        raise ModelError(
            f"model {model.name!r}: {int(empty.sum())} empty text(s) in column {column!r}, ids "
            f"{ids[empty][:10].tolist()}"
        )
    return values, ids


def _check_scores(model: ModelConfig, values: np.ndarray, ids: np.ndarray) -> None:
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        raise ModelError(
            f"model {model.name!r}: {int(bad.sum())} score(s) non-finite or outside [0, 1], "
            f"ids {ids[bad][:10].tolist()}"
        )


def _check_polarity(model: ModelConfig, positive_labels: Sequence[object] | None) -> str:
    """Compare the gold labels the score is the probability of with the corpus's positives."""
    if model.probability_of is None:
        return (
            f"audited score {model.score_definition} means {model.positive_meaning!r}; "
            "probability_of not set, so not checked against the gold labels"
        )
    if positive_labels is None:
        return (
            f"audited score {model.score_definition} is the probability of gold label(s) "
            f"{list(model.probability_of)}; the corpus declares no positive_labels (0/1 labels)"
        )
    declared = {str(v) for v in model.probability_of}
    gold = {str(v) for v in positive_labels}
    if declared != gold:
        raise ConfigError(
            f"model {model.name!r}: its score {model.score_definition} is the probability of "
            f"gold label(s) {sorted(declared)}, but corpus.positive_labels are {sorted(gold)}"
        )
    return (
        f"audited score {model.score_definition} is the probability of gold label(s) "
        f"{sorted(declared)}, matching corpus.positive_labels"
    )


def in_sample_warning(
    model: ModelConfig, corpus_sha256: str | None, audit_subset: AuditSubsetConfig | None
) -> str | None:
    """A warning when the audit can tell a model is scored on its own training data.

    - hatesonar was trained on 70% of Davidson et al. (2017) (its trainer calls
      ``train_test_split(tweet, class, test_size=0.3, random_state=42)`` on the file): on that
      file, unless ``audit_subset`` keeps exactly that split's test part.
    - alt-profanity-check was trained on data including the Davidson tweets (which rows is not
      published): on that file, whatever the subset.

    Parameters
    ----------
    model
        The configured model.
    corpus_sha256
        sha256 of the corpus file as read.
    audit_subset
        The configured restriction of the audit, if any.

    Returns
    -------
    str or None
        The warning text, or None when nothing is known to be in-sample.
    """
    if corpus_sha256 is None or corpus_sha256.lower() != DAVIDSON_SHA256:
        return None
    if model.kind == "hatesonar":
        excluded = (
            audit_subset is not None
            and audit_subset.method == "sklearn_test_split"
            and audit_subset.test_size == 0.3
            and audit_subset.random_state == 42
        )
        if excluded:
            return None
        return (
            f"model {model.name!r} (hatesonar) was trained on 70% of this file (Davidson et al. "
            "2017); without audit_subset {method: sklearn_test_split, test_size: 0.3, "
            "random_state: 42} its figures are largely in-sample"
        )
    if model.kind == "profanity_check":
        return (
            f"model {model.name!r} (alt-profanity-check) was trained on data including this "
            "file (Davidson et al. 2017); which rows is not published, so its figures are "
            "in-sample even on a held-out subset"
        )
    return None


# ----------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class ScoringResult:
    """Scores of every model on every utterance.

    Attributes
    ----------
    scores
        ``id``, ``model``, ``head`` (the audited score's definition), ``score``, ``flagged``: one
        row per utterance and model that completed.
    notes
        Per model: what ran and how (label used, heads, truncation counts, cache hits).
    seconds
        Per model: wall-clock seconds.
    head_scores
        ``id``, ``model``, ``head``, ``score`` for every head a computing model produced (all
        Detoxify heads, all hatesonar classes), audited or not; ``model`` and ``head`` are
        categorical.
    skipped
        Optional models that failed, with the reason; they have no rows in ``scores``.
    provenance
        Per model: kind, score definition, label or head used, the cache identity (package
        version, sha256 of the model file or checkpoint and config) and key, distinct texts
        scored now and taken from the cache, texts truncated, and which column was scored.
    """

    scores: pd.DataFrame
    notes: dict[str, list[str]]
    seconds: dict[str, float]
    head_scores: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["id", "model", "head", "score"])
    )
    skipped: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)


def _compute(
    model: ModelConfig,
    texts: list[str],
    ids: np.ndarray,
    *,
    cache: ScoreCache | None,
    resolve_path: PathResolver,
    progress: bool,
    provenance: dict[str, Any],
    notes: list[str],
) -> tuple[np.ndarray, tuple[str, ...]]:
    """All heads of a computing model for each text, through the cache; distinct texts once."""
    # Distinct texts in order of first appearance, so batches follow the corpus order.
    inverse, unique = pd.factorize(pd.Series(texts, dtype=object), sort=False)
    unique = np.asarray(unique, dtype=object)
    digests = text_digests(unique.tolist())
    key = None
    heads: tuple[str, ...] | None = None
    found = np.zeros(len(unique), dtype=bool)
    matrix = None
    if cache is not None:
        identity = _model_identity(model, resolve_path=resolve_path, memo_dir=cache.folder)
        key = model_key(identity)
        provenance["identity"] = identity
        provenance["cache_key"] = key
        heads = cache.heads(key)
        if heads is not None:
            matrix, found = cache.lookup(key, digests)

    missing = np.flatnonzero(~found)
    if len(missing):
        scorer = build_scorer(model, resolve_path=resolve_path, progress=progress)
        if scorer is None:
            raise ConfigError(f"model {model.name!r} of kind {model.kind} computes no scores")
        notes.extend(scorer.notes)
        heads = tuple(scorer.heads)
        if matrix is None or matrix.shape[1] != len(heads):
            matrix = np.full((len(unique), len(heads)), np.nan)
        chunk = max(_SHARD_TEXTS, model.batch_size)
        for start in range(0, len(missing), chunk):
            positions = missing[start : start + chunk]
            batch = unique[positions].tolist()
            try:
                values = np.asarray(scorer.score_heads(batch), dtype=np.float64)
            except ModelError as error:
                raise ModelError(
                    f"{error} (batch with ids {_ids_of(ids, inverse, positions)})"
                ) from None
            except Exception as error:  # noqa: BLE001 - any scoring failure names the ids
                raise ModelError(
                    f"model {model.name!r} failed ({type(error).__name__}: {error}) on the batch "
                    f"with ids {_ids_of(ids, inverse, positions)}"
                ) from None
            if values.shape != (len(batch), len(heads)):
                raise ModelError(
                    f"model {model.name!r} returned scores of shape {values.shape} for "
                    f"{len(batch)} texts and {len(heads)} head(s), ids "
                    f"{_ids_of(ids, inverse, positions)}"
                )
            bad = ~np.isfinite(values) | (values < 0) | (values > 1)
            if bad.any():
                rows = positions[bad.any(axis=1)]
                raise ModelError(
                    f"model {model.name!r}: {int(bad.any(axis=1).sum())} text(s) got scores "
                    f"that are non-finite or outside [0, 1], ids {_ids_of(ids, inverse, rows)}"
                )
            matrix[positions] = values
            if cache is not None and key is not None:
                cache.store(key, identity, heads, digests[positions], values)
        if cache is not None and key is not None:
            cache.compact(key)
    assert heads is not None and matrix is not None
    provenance["texts_distinct"] = int(len(unique))
    provenance["texts_from_cache"] = int(found.sum())
    provenance["texts_scored_now"] = int(len(missing))
    return matrix[inverse], heads


def _ids_of(ids: np.ndarray, inverse: np.ndarray, positions: np.ndarray) -> list[object]:
    wanted = np.isin(inverse, positions)
    return ids[wanted][:10].tolist()


def _audited_column(model: ModelConfig, matrix: np.ndarray, heads: tuple[str, ...]) -> np.ndarray:
    """The audited score from all heads, chosen by name as configured (never by position)."""
    if model.kind == "hatesonar":
        assert model.score is not None
        values = matrix[:, heads.index(model.score)]
        return 1.0 - values if model.complement else values
    if model.kind == "detoxify":
        real = [h for h in heads if not h.startswith("_")]
        if model.score not in real:
            raise ModelError(
                f"model {model.name!r}: head {model.score!r} is not among the checkpoint's heads "
                f"{real}"
            )
        return matrix[:, heads.index(model.score)]
    return matrix[:, 0]


def score_corpus(
    corpus: pd.DataFrame,
    models: Sequence[ModelConfig],
    *,
    file: str | None = None,
    resolve_path: PathResolver | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    positive_labels: Sequence[object] | None = None,
    corpus_sha256: str | None = None,
    audit_subset: AuditSubsetConfig | None = None,
    progress: bool = True,
) -> ScoringResult:
    """Score every utterance with every model; return the long score table.

    Each model sees the text exactly as stored (or the reply, with ``reply_column``).
    ``flagged`` is ``score >= threshold`` (for a given decision, the decision itself).

    Parameters
    ----------
    corpus
        The table from :func:`fairaudit.corpus.read_corpus` (indexed by ``id``, column ``text``).
    models
        The configured models.
    file
        The corpus file, for error messages.
    resolve_path
        Turns a path from the configuration (``checkpoint_path``, ``file``, ...) into a path;
        the pipeline passes ``lambda p: config.resolve(p, base=base)``. By default ``~`` is
        expanded and relative paths are relative to the working directory.
    cache_dir
        The score cache folder (default ``$FAIRAUDIT_CACHE`` or ``~/.cache/fairaudit/scores``).
    use_cache
        False turns the cache off for every model (per model: ``cache: false``).
    positive_labels
        The corpus's ``positive_labels``; each model's ``probability_of`` must equal them.
    corpus_sha256, audit_subset
        The corpus file's sha256 and the audit subset, to warn (``InSampleWarning``) when a
        model is audited on its own training data (see :func:`in_sample_warning`).
    progress
        Show a progress bar while Detoxify scores.

    Raises
    ------
    ModelError
        A model that fails to load, gets unusable input (empty or non-text, naming the ids) or
        returns unusable scores; unless the model is ``optional``, in which case the run goes on
        without it and ``skipped`` says why.
    InputError, ConfigError
        Given scores that are missing or malformed; a score whose polarity does not match the
        gold labels.
    """
    resolve = resolve_path or _default_resolve
    cache = ScoreCache(cache_dir) if use_cache else None
    tables, head_tables = [], []
    notes: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    provenance: dict[str, dict[str, Any]] = {}
    for model in models:
        started = time.perf_counter()
        model_notes = [_check_polarity(model, positive_labels)]
        record: dict[str, Any] = {
            "kind": model.kind,
            "score_definition": model.score_definition,
            "label_or_head": model.score,
        }
        try:
            if model.kind in {"column", "decision", "label_scores"}:
                values, given_notes = _given_values(corpus, model, file=file, resolve_path=resolve)
                model_notes.extend(given_notes)
                heads_table = None
            else:
                texts, ids = _texts_for(corpus, model, file=file)
                record["text_column"] = model.reply_column or "text"
                if model.reply_column:
                    model_notes.append(f"scored the replies in column {model.reply_column!r}")
                model_cache = cache if model.cache else None
                matrix, heads = _compute(
                    model,
                    texts,
                    ids,
                    cache=model_cache,
                    resolve_path=resolve,
                    progress=progress,
                    provenance=record,
                    notes=model_notes,
                )
                values = _audited_column(model, matrix, heads)
                _check_scores(model, values, ids)
                if _TRUNCATED in heads:
                    truncated = matrix[:, heads.index(_TRUNCATED)] > 0.5
                    record["texts_truncated"] = int(truncated.sum())
                    if truncated.any():
                        model_notes.append(
                            f"{int(truncated.sum()):,} text(s) longer than the tokenizer's "
                            f"maximum were truncated, e.g. ids {ids[truncated][:5].tolist()}"
                        )
                real = [i for i, h in enumerate(heads) if not h.startswith("_")]
                real_heads = [heads[i] for i in real]
                heads_table = pd.DataFrame(
                    {
                        "id": np.repeat(ids, len(real)),
                        "model": pd.Categorical.from_codes(
                            np.zeros(len(ids) * len(real), dtype=np.int8), [model.name]
                        ),
                        "head": pd.Categorical.from_codes(
                            np.tile(np.arange(len(real), dtype=np.int16), len(ids)), real_heads
                        ),
                        "score": matrix[:, real].reshape(-1),
                    }
                )
                record["heads"] = [heads[i] for i in real]
                if cache is not None and model.cache:
                    model_notes.append(
                        f"{record['texts_scored_now']:,} distinct text(s) scored now, "
                        f"{record['texts_from_cache']:,} from the cache {cache.folder}"
                    )
        except (ModelError, InputError) as error:
            if not model.optional:
                raise
            reason = str(error)
            skipped[model.name] = reason
            notes[model.name] = [*model_notes, f"optional model skipped: {reason}"]
            seconds[model.name] = time.perf_counter() - started
            logger.warning("optional model %s skipped: %s", model.name, reason)
            continue
        if model.in_sample:
            model_notes.append(f"in-sample: {model.in_sample}")
        warning = in_sample_warning(model, corpus_sha256, audit_subset)
        if warning is not None:
            model_notes.append(f"in-sample: {warning}")
            warnings.warn(warning, InSampleWarning, stacklevel=2)
        flagged = values >= model.threshold if model.kind != "decision" else values == 1.0
        tables.append(
            pd.DataFrame(
                {
                    "id": corpus.index.to_numpy(dtype=object),
                    "model": model.name,
                    "head": model.score_definition,
                    "score": values,
                    "flagged": flagged,
                }
            )
        )
        if heads_table is not None:
            head_tables.append(heads_table)
        notes[model.name] = model_notes
        provenance[model.name] = record
        seconds[model.name] = time.perf_counter() - started
        logger.info(
            "scored %s texts with %s in %.1f s",
            f"{len(corpus):,}",
            model.name,
            seconds[model.name],
        )
    columns = ["id", "model", "head", "score", "flagged"]
    scores = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)
    if len(head_tables) == 1:
        head_scores = head_tables[0]
    elif head_tables:
        head_scores = pd.concat(head_tables, ignore_index=True).astype(
            {"model": "category", "head": "category"}
        )
    else:
        head_scores = pd.DataFrame(columns=["id", "model", "head", "score"])
    return ScoringResult(scores, notes, seconds, head_scores, skipped, provenance)
