"""Run configuration: what to read, how to group, which models to audit and how.

A configuration is a YAML file validated by pydantic. Paths in it may use ``{data_dir}``, which
resolves to the configured data folder, else the environment variable ``FAIRAUDIT_DATA``, else
``../shared/data`` beside the repository (the layout of the development machines).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fairaudit.exceptions import ConfigError

__all__ = [
    "AuditConfig",
    "AuditSubsetConfig",
    "ColumnMapping",
    "CorpusConfig",
    "DialectConfig",
    "GroupRule",
    "ModelConfig",
    "RunConfig",
    "WeightsConfig",
    "load_config",
    "packaged_config",
    "resolve_data_dir",
]

Label = str | int | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Strict):
    """Which input column is which. ``id`` may be ``""`` for an unnamed first column."""

    id: str
    text: str
    gold_label: str | None = None
    conversation_id: str | None = None
    speaker: str | None = None
    group: str | None = Field(
        default=None, description="the user's own group column; replaces the dialect layer"
    )
    keep: tuple[str, ...] = Field(default=(), description="extra columns carried to the output")


class AuditSubsetConfig(_Strict):
    """Restrict the audit to rows a model never saw in training.

    ``sklearn_test_split`` reproduces ``train_test_split(..., test_size, random_state)`` over the
    file's row positions (no stratification) and keeps the test part.
    """

    method: Literal["sklearn_test_split"] = "sklearn_test_split"
    test_size: float = Field(gt=0, lt=1)
    random_state: int
    reason: str = ""


class CorpusConfig(_Strict):
    path: str
    format: Literal["auto", "csv", "jsonl", "parquet"] = "auto"
    columns: ColumnMapping
    positive_labels: tuple[Label, ...] | None = Field(
        default=None,
        description="gold label values that mean harmful/toxic; required unless labels are 0/1",
    )
    negative_labels: tuple[Label, ...] | None = Field(
        default=None, description="gold label values that mean not harmful; others are errors"
    )
    audit_subset: AuditSubsetConfig | None = None


class GroupRule(_Strict):
    """How the dialect score and marker evidence become a group.

    ``dialect_score = p_aa / (p_aa + p_white)`` from TwitterAAE: the African-American share of the
    two proportions the model's authors validated. At or above ``aae_threshold`` the utterance is
    ``aae``, at or below ``sae_threshold`` it is ``sae``, in between or without an estimate it is
    ``uncertain``. With ``strong_marker_evidence``, an utterance carrying at least
    ``min_strong_markers`` strong grammatical markers moves from ``uncertain`` to ``aae`` (when it
    has no estimate, or sits in the band) and from ``sae`` to ``uncertain``.
    """

    aae_threshold: float = Field(default=0.6, ge=0, le=1)
    sae_threshold: float = Field(default=0.4, ge=0, le=1)
    strong_marker_evidence: bool = True
    min_strong_markers: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> GroupRule:
        if self.sae_threshold > self.aae_threshold:
            raise ValueError("sae_threshold must not exceed aae_threshold")
        return self


class DialectConfig(_Strict):
    twitteraae: bool = True
    twitteraae_dir: str = "{data_dir}/twitteraae"
    markers: bool = True
    marker_file: str | None = None
    rule: GroupRule = GroupRule()
    missing_group: Literal["error", "keep", "drop"] = "error"


class ModelConfig(_Strict):
    """One audited model and the exact score that is audited.

    ``kind``: ``hatesonar`` (three classes ``hate_speech``, ``offensive_language``, ``neither``),
    ``profanity_check`` (alt-profanity-check, probability of profanity), ``column`` (scores the
    user brings in a corpus column), ``decision`` (a given binary decision, no threshold).
    For ``hatesonar``, ``score`` names the class whose probability is audited, and ``complement``
    audits one minus it (``score: neither, complement: true`` is ``1 - P(neither)``).
    """

    name: str
    kind: Literal["hatesonar", "profanity_check", "column", "decision"]
    score: str | None = None
    complement: bool = False
    column: str | None = None
    threshold: float = Field(default=0.5, ge=0, le=1)
    positive_meaning: str = "toxic"
    in_sample: str | None = Field(
        default=None, description="why this model's figures are in-sample on this data, if so"
    )

    @model_validator(mode="after")
    def _complete(self) -> ModelConfig:
        if self.kind == "hatesonar" and self.score not in {
            "hate_speech",
            "offensive_language",
            "neither",
        }:
            raise ValueError(
                "hatesonar needs score: hate_speech, offensive_language or neither "
                f"(got {self.score!r})"
            )
        if self.kind in {"column", "decision"} and not self.column:
            raise ValueError(f"model {self.name!r} of kind {self.kind} needs column:")
        return self

    @property
    def score_definition(self) -> str:
        if self.kind == "hatesonar":
            return f"1 - P({self.score})" if self.complement else f"P({self.score})"
        if self.kind == "profanity_check":
            return "P(profane)"
        if self.kind == "decision":
            return f"given decision column {self.column!r}"
        return f"given score column {self.column!r}"


class AuditConfig(_Strict):
    reference_group: str = "sae"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_negatives: int = Field(default=30, ge=1)
    interval: Literal["wilson", "clopper_pearson"] = "wilson"
    test: Literal["auto", "fisher", "chi2"] = "auto"


class WeightsConfig(_Strict):
    scheme: Literal["kamiran_calders"] = "kamiran_calders"
    normalize: bool = True


class RunConfig(_Strict):
    name: str
    data_dir: str | None = None
    seed: int = 0
    corpus: CorpusConfig
    dialect: DialectConfig = DialectConfig()
    models: Annotated[tuple[ModelConfig, ...], Field(min_length=1)]
    audit: AuditConfig = AuditConfig()
    weights: WeightsConfig = WeightsConfig()

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
        names = [m.name for m in models]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"model names must be unique; repeated: {duplicated}")
        return models

    def resolve(self, template: str, *, base: Path) -> Path:
        """A path from the configuration, with ``{data_dir}`` filled in and made absolute."""
        text = template.replace("{data_dir}", str(resolve_data_dir(self.data_dir, base=base)))
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else (base / path).resolve()


def resolve_data_dir(configured: str | None, *, base: Path) -> Path:
    """The data folder: the configured one, else ``$FAIRAUDIT_DATA``, else ``../shared/data``.

    The last is relative to the repository root (the folder above ``src/``), so the demo works
    from any working directory on the development machines.
    """
    if configured:
        path = Path(os.path.expanduser(configured))
        return path if path.is_absolute() else (base / path).resolve()
    if os.environ.get("FAIRAUDIT_DATA"):
        return Path(os.environ["FAIRAUDIT_DATA"]).expanduser().resolve()
    repository = Path(__file__).resolve().parents[2]
    return (repository / ".." / "shared" / "data").resolve()


def _format_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def load_config(path: str | Path, *, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a YAML run configuration.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        Dotted keys to replace after reading, e.g. ``{"audit.alpha": 0.01}``.

    Raises
    ------
    ConfigError
        Naming the file and each invalid field.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_format_validation_error(error)}") from None


def packaged_config(name: str = "davidson_demo") -> Path:
    """Path of a configuration shipped inside the package."""
    from importlib.resources import files

    return Path(str(files("fairaudit") / "configs" / f"{name}.yaml"))
