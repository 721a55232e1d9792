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
    "AbTestConfig",
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
    votes: tuple[str, ...] = Field(
        default=(), description="annotator vote-count columns, one per label (label bias)"
    )
    harmful_votes: tuple[str, ...] = Field(
        default=(), description="which vote columns mean harmful (default: Davidson's)"
    )
    pair_id: str | None = Field(
        default=None, description="pairs of the same content in two dialects (paired audit)"
    )
    variant: str | None = Field(default=None, description="which dialect a paired item is in")
    template: str | None = Field(default=None, description="counterfactual template id")
    slot_value: str | None = Field(default=None, description="counterfactual slot value")
    slot_kind: str | None = Field(default=None, description="counterfactual slot kind")


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
    """How TwitterAAE proportions and marker evidence become a dialect score and a group.

    ``twitteraae_score = p_aa / (p_aa + p_white)``: the African-American share of the two
    proportions the model's authors validated. ``marker_score = 1 - (1 - strong_marker_weight)
    ** strong * (1 - weak_marker_weight) ** weak`` from the counts of strong grammatical and weak
    lexical marker spans. ``dialect_score`` is their noisy-OR. At or above ``aae_threshold`` the
    utterance is ``aae``, at or below ``sae_threshold`` it is ``sae``, in between or without any
    evidence ``uncertain``. With ``language_screen``, a message that is not English or holds no
    words is ``uncertain``. See :func:`fairaudit.dialect.assign_groups`.
    """

    aae_threshold: float = Field(default=0.6, ge=0, le=1)
    sae_threshold: float = Field(default=0.4, ge=0, le=1)
    strong_marker_weight: float = Field(default=0.5, ge=0, lt=1)
    weak_marker_weight: float = Field(default=0.1, ge=0, lt=1)
    language_screen: bool = True

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
    level: Literal["utterance", "speaker", "conversation"] = Field(
        default="utterance",
        description="assign groups per message, or per speaker / conversation from all their "
        "messages pooled (needs corpus.columns.speaker / conversation_id)",
    )
    missing_group: Literal["error", "keep", "drop"] = "error"


class ModelConfig(_Strict):
    """One audited model and the exact score that is audited.

    ``kind``:

    - ``hatesonar``: three classes ``hate_speech``, ``offensive_language``, ``neither``; ``score``
      names the class whose probability is audited, and ``complement`` audits one minus it
      (``score: neither, complement: true`` is ``1 - P(neither)``).
    - ``profanity_check``: alt-profanity-check, probability of profanity.
    - ``detoxify``: a Detoxify checkpoint; ``score`` names the audited head (``toxicity``,
      ``severe_toxicity``, ``obscene``, ``threat``, ``insult``, ``identity_attack``,
      ``sexual_explicit`` where the checkpoint has it). ``checkpoint`` is Detoxify's model type
      (``original``, ``unbiased``, ``multilingual``, ``original-small``, ``unbiased-small``);
      offline, ``checkpoint_path`` is the local ``.ckpt`` file and ``huggingface_config_path``
      the local folder with the Hugging Face config and tokenizer files.
    - ``callable``: any Python function ``callable: "package.module:function"`` taking a list
      of texts and returning one probability per text.
    - ``column``: scores the user brings, in a corpus column or, with ``file``, in a separate
      file joined on ``id_column``.
    - ``decision``: a given binary decision (no threshold), from a column as for ``column``.
    - ``label_scores``: a column holding a classifier's ``[{label, score}, ...]`` list per row
      (as ``transformers`` pipelines with ``top_k`` return); ``score`` names the harmful label,
      matched by exact equality, and ``softmax: true`` checks each row sums to 1.

    Which number is audited is never inferred from label or head order. ``probability_of``
    names the gold label value(s) the audited score is the probability of; when given, it must
    equal the corpus's ``positive_labels`` or the run stops.
    """

    name: str
    kind: Literal[
        "hatesonar",
        "profanity_check",
        "detoxify",
        "callable",
        "column",
        "decision",
        "label_scores",
    ]
    score: str | None = None
    complement: bool = False
    column: str | None = None
    threshold: float = Field(default=0.5, ge=0, le=1)
    positive_meaning: str = "toxic"
    probability_of: tuple[Label, ...] | None = Field(
        default=None,
        description="gold label value(s) the audited score is the probability of; checked "
        "against corpus.positive_labels",
    )
    in_sample: str | None = Field(
        default=None, description="why this model's figures are in-sample on this data, if so"
    )
    optional: bool = Field(
        default=False,
        description="when the model fails to load or score, finish the run without it",
    )
    reply_column: str | None = Field(
        default=None,
        description="corpus column with the model's reply to each message; scored instead of "
        "the message",
    )
    file: str | None = Field(
        default=None,
        description="separate file holding column (kinds column, decision, label_scores)",
    )
    id_column: str = Field(default="id", description="id column of file")
    softmax: bool = Field(
        default=False, description="label_scores: the list is one softmax; rows must sum to 1"
    )
    sum_tolerance: float = Field(default=1e-3, gt=0, lt=0.5)
    checkpoint: str | None = None
    checkpoint_path: str | None = None
    huggingface_config_path: str | None = None
    callable: str | None = Field(default=None, description='"package.module:function"')
    device: str = Field(default="auto", description="auto (cuda where present), cpu, cuda:0")
    batch_size: int = Field(default=32, ge=1)
    max_length: int | None = Field(
        default=None, ge=2, description="tokens per text; longer texts are truncated and counted"
    )
    threads: int = Field(default=1, ge=1, description="CPU threads for torch (fixed)")
    cache: bool = Field(default=True, description="use the content-addressed score cache")

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
        if self.kind in {"column", "decision", "label_scores"} and not self.column:
            raise ValueError(f"model {self.name!r} of kind {self.kind} needs column:")
        if self.file is not None and self.kind not in {"column", "decision", "label_scores"}:
            raise ValueError(f"model {self.name!r}: file: is only for given columns")
        if self.kind == "detoxify":
            if not self.score:
                raise ValueError(
                    f"model {self.name!r}: detoxify needs score: the audited head, e.g. toxicity"
                )
            if not (self.checkpoint or self.checkpoint_path):
                raise ValueError(
                    f"model {self.name!r}: detoxify needs checkpoint: (original, unbiased, "
                    "multilingual, original-small, unbiased-small) or checkpoint_path:"
                )
        if self.kind == "label_scores" and not self.score:
            raise ValueError(f"model {self.name!r}: label_scores needs score: the harmful label")
        if self.kind == "callable" and (not self.callable or ":" not in self.callable):
            raise ValueError(
                f'model {self.name!r}: callable needs callable: "package.module:function"'
            )
        if self.complement and self.kind not in {"hatesonar", "label_scores"}:
            raise ValueError(f"model {self.name!r}: complement is for hatesonar and label_scores")
        if self.softmax and self.kind != "label_scores":
            raise ValueError(f"model {self.name!r}: softmax is for label_scores")
        if self.reply_column is not None and self.kind in {"column", "decision", "label_scores"}:
            raise ValueError(f"model {self.name!r}: reply_column is for models that score text")
        return self

    @property
    def score_definition(self) -> str:
        if self.kind == "hatesonar":
            return f"1 - P({self.score})" if self.complement else f"P({self.score})"
        if self.kind == "profanity_check":
            return "P(profane)"
        if self.kind == "detoxify":
            return f"P({self.score})"
        if self.kind == "callable":
            return f"score from {self.callable}"
        if self.kind == "label_scores":
            label = f"P({self.score!r})"
            return f"1 - {label}" if self.complement else label
        source = f" of {self.file}" if self.file else ""
        if self.kind == "decision":
            return f"given decision column {self.column!r}{source}"
        return f"given score column {self.column!r}{source}"


class AuditConfig(_Strict):
    reference_group: str = "sae"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_negatives: int = Field(default=30, ge=1)
    interval: Literal["wilson", "clopper_pearson"] = "wilson"
    test: Literal["auto", "fisher", "chi2"] = "auto"
    family: Literal["all", "per_metric"] = Field(
        default="all", description="which comparisons of a model share one Holm/BH correction"
    )
    lexicons: str | None = Field(
        default="{data_dir}/lexicons",
        description="folder of the profanity / identity lexicons used as regression controls; "
        "null to fit without lexical controls",
    )
    power: float = Field(default=0.8, gt=0, lt=1)
    max_detectable_difference: float = Field(
        default=0.1, gt=0, lt=1, description="a comparison that cannot detect this is low-power"
    )
    bootstrap: int = Field(default=1000, ge=0, description="bootstrap resamples; 0 to skip")
    intersect_with: str | None = Field(
        default=None,
        description="a second group column (kept from the corpus) for intersectional cells",
    )
    marker_subgroups: bool = Field(
        default=True,
        description="bias AUCs of each marker's utterances against the rest (overlapping)",
    )
    min_marker_items: int = Field(default=30, ge=1)
    calibration_bins: int = Field(default=10, ge=2)


class WeightsConfig(_Strict):
    scheme: Literal["kamiran_calders", "group_balance", "error_targeted"] = "kamiran_calders"
    normalize: bool = True
    max_weight: float | None = Field(default=None, gt=0)
    strength: float = Field(default=1.0, ge=0, description="error_targeted: extra weight")
    target_group: str = "aae"
    flags_from: str | None = Field(
        default=None, description="error_targeted: the model whose flags are targeted"
    )
    ess_warn_below: float = Field(default=0.5, gt=0, le=1)


class AbTestConfig(_Strict):
    """The demo's reference fine-tune: TF-IDF + logistic regression on the Davidson training
    split, model A unweighted and one model B per weighting scheme, compared on held-out items.
    """

    enabled: bool = False
    schemes: tuple[Literal["kamiran_calders", "group_balance", "error_targeted"], ...] = (
        "kamiran_calders",
        "error_targeted",
    )
    strength: float = Field(default=4.0, ge=0)
    n_boot: int = Field(default=1000, ge=100)
    margin: float = Field(default=0.01, gt=0, lt=1)


class RunConfig(_Strict):
    name: str
    data_dir: str | None = None
    seed: int = 0
    corpus: CorpusConfig
    dialect: DialectConfig = DialectConfig()
    models: Annotated[tuple[ModelConfig, ...], Field(min_length=1)]
    audit: AuditConfig = AuditConfig()
    weights: WeightsConfig = WeightsConfig()
    ab_test: AbTestConfig = AbTestConfig()

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
    items = error.errors()
    # A model that fails validation also empties the models tuple, which pydantic reports as a
    # second, confusing "at least 1 item" error: keep only the real one.
    if len(items) > 1:
        items = [i for i in items if not str(i["msg"]).startswith("Tuple should have at least")]
    for item in items:
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
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a configuration file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
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
