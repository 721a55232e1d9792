"""The whole audit: corpus -> dialect layer -> model scores -> join -> disparity -> weights ->
report, written as one run folder (see :mod:`fairaudit.runfolder`).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from fairaudit import __version__
from fairaudit.abtest import AbDemoResult, run_ab_demo
from fairaudit.bias_auc import bias_aucs, calibration_by_group, compare_bias_aucs, threshold_sweep
from fairaudit.bootstrap import bootstrap_metrics, cell_counts
from fairaudit.config import RunConfig, load_config
from fairaudit.corpus import audit_subset_mask, read_corpus
from fairaudit.counterfactual import counterfactual_report
from fairaudit.dialect import annotate_dialect, describe_rule
from fairaudit.disparity import compare_groups, group_metrics, headline
from fairaudit.exceptions import (
    ConfigError,
    DegenerateDataWarning,
    ExcludedRowsWarning,
    FairauditError,
    FairauditWarning,
    InputError,
)
from fairaudit.label_bias import label_bias_table
from fairaudit.lexical import count_terms, load_lexicons
from fairaudit.paired import paired_comparison
from fairaudit.power import power_table
from fairaudit.regression import cmh_test, flag_regression
from fairaudit.reweighting import WeightingResult, compute_weights
from fairaudit.runfolder import (
    atomic_run_folder,
    file_sha256,
    package_versions,
    write_json,
    write_table,
)
from fairaudit.scoring import score_corpus
from fairaudit.soft import threshold_sensitivity, weighted_group_rates

__all__ = ["RunResult", "run", "run_config_file"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the folder it wrote, its manifest and every table by name."""

    folder: Path
    manifest: dict[str, Any]
    group_metrics: pd.DataFrame
    comparisons: pd.DataFrame
    tables: dict[str, pd.DataFrame]


def _join(
    utterances: pd.DataFrame, scores: pd.DataFrame, *, model: str, group_column: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Join one model's scores to the utterances on id, counting everything that fails."""
    model_scores = scores[scores["model"] == model].set_index("id")
    duplicated = model_scores.index.duplicated(keep=False)
    if duplicated.any():
        examples = sorted(set(model_scores.index[duplicated]))[:5]
        raise InputError(f"model {model!r}: duplicated score ids, e.g. {examples}")
    missing_scores = utterances.index.difference(model_scores.index)
    unknown_ids = model_scores.index.difference(utterances.index)
    wanted = [group_column, "gold_toxic", "in_audit", *_ANALYSIS_COLUMNS]
    joined = utterances[[c for c in wanted if c in utterances.columns]].join(
        model_scores[["score", "flagged"]], how="inner"
    )
    nan_scores = int(joined["score"].isna().sum())
    report = {
        "utterances": int(len(utterances)),
        "scored": int(len(joined)),
        "missing_scores": int(len(missing_scores)),
        "scores_without_utterance": int(len(unknown_ids)),
        "nan_scores": nan_scores,
        "unjoined_ids_sample": [*missing_scores[:10].tolist(), *unknown_ids[:10].tolist()],
    }
    if len(missing_scores) or len(unknown_ids) or nan_scores:
        logger.warning(
            "model %s: %d utterances without a score, %d scores without an utterance, %d NaN",
            model,
            len(missing_scores),
            len(unknown_ids),
            nan_scores,
        )
    return joined, report


_ANALYSIS_COLUMNS = (
    "dialect_score",
    "language",
    "conversation_id",
    "speaker",
    "pair_id",
    "variant",
    "template",
    "slot_value",
    "slot_kind",
)


def _further_analyses(
    config: RunConfig, utterances: pd.DataFrame, joined: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """Tables beyond the group metrics, each where the data allow it.

    ``label_bias`` (annotator votes per group: is it the model or the labels?),
    ``soft_metrics`` and ``threshold_sensitivity`` (the dialect score as soft membership, and
    the main disparity over the group threshold), ``paired`` (items written in both dialects),
    ``counterfactual_*`` (template slot swaps).
    """
    alpha = config.audit.alpha
    tables: dict[str, pd.DataFrame] = {}
    columns = config.corpus.columns
    vote_columns = [f"votes_{c}" for c in columns.votes]
    if vote_columns:
        votes = utterances[vote_columns].rename(columns=lambda c: c.removeprefix("votes_"))
        tables["label_bias"] = label_bias_table(
            votes,
            utterances["dialect_group"].astype(object),
            harmful=list(columns.harmful_votes) or None,
            reference=config.audit.reference_group,
            alpha=alpha,
        )
    if config.audit.bootstrap and joined:
        tables["bootstrap"] = _bootstrap(config, joined)
    intersect = config.audit.intersect_with
    markers = [
        c
        for c in utterances.columns
        if c.startswith("marker_")
        and c not in {"marker_score"}
        and int(utterances.loc[utterances["in_audit"], c].gt(0).sum())
        >= config.audit.min_marker_items
    ]
    intersections, marker_aucs = [], []
    for model, frame in joined.items():
        audited = frame[frame["in_audit"]].copy()
        audited["gold_toxic"] = audited["gold_toxic"].astype(bool)
        if intersect is not None:
            if intersect not in utterances.columns:
                raise ConfigError(
                    f"audit.intersect_with {intersect!r} is not a corpus column; add it to "
                    "corpus.columns.keep"
                )
            audited[intersect] = utterances.loc[audited.index, intersect].astype(object)
            intersections.append(
                group_metrics(
                    audited,
                    group=["dialect_group", intersect],
                    gold="gold_toxic",
                    flagged="flagged",
                    score="score",
                    alpha=alpha,
                    min_negatives=config.audit.min_negatives,
                    interval="clopper_pearson",
                    missing_group="keep",
                ).assign(model=model)
            )
        if config.audit.marker_subgroups and markers:
            carrying = utterances.loc[audited.index, markers].gt(0)
            with warnings.catch_warnings():
                # Exploratory: small marker subgroups are marked in the table (small_group),
                # not repeated as run-level caveats.
                warnings.simplefilter("ignore", FairauditWarning)
                table = bias_aucs(
                    audited[["gold_toxic", "score"]].join(carrying),
                    group=markers,
                    gold="gold_toxic",
                    score="score",
                    subgroups="overlapping",
                    alpha=alpha,
                    min_negatives=config.audit.min_negatives,
                )
            marker_aucs.append(table.assign(model=model))
    if intersections:
        tables["intersection_metrics"] = pd.concat(intersections, ignore_index=True)
    if marker_aucs:
        tables["marker_bias_auc"] = pd.concat(marker_aucs, ignore_index=True)
    soft, sensitivity, paired, counterfactual = [], [], [], {}
    for model, frame in joined.items():
        audited = frame[frame["in_audit"]].copy()
        audited["gold_toxic"] = audited["gold_toxic"].astype(bool)
        if "dialect_score" in audited.columns and columns.group is None:
            # The same rows the groups could use: a dialect score, and English (the language
            # screen makes other text uncertain whatever its score).
            usable = audited["dialect_score"].notna()
            if "language" in audited.columns:
                usable &= audited["language"].astype(str) == "english"
            scored = audited[usable]
            left_out = {"n_rows_used": int(usable.sum()), "n_rows_left_out": int((~usable).sum())}
            soft.append(
                weighted_group_rates(
                    scored,
                    membership="dialect_score",
                    gold="gold_toxic",
                    flagged="flagged",
                    alpha=alpha,
                    min_effective_n=config.audit.min_negatives,
                ).assign(model=model, **left_out)
            )
            sensitivity.append(
                threshold_sensitivity(
                    scored,
                    score_column="dialect_score",
                    gold="gold_toxic",
                    flagged="flagged",
                    alpha=alpha,
                    min_negatives=config.audit.min_negatives,
                ).assign(model=model, **left_out)
            )
        if columns.pair_id is not None and columns.variant is not None:
            paired.append(
                paired_comparison(
                    audited,
                    pair="pair_id",
                    variant="variant",
                    score="score",
                    flagged="flagged",
                    alpha=alpha,
                ).assign(model=model)
            )
        if columns.template is not None and columns.slot_value is not None:
            report = counterfactual_report(
                audited,
                template="template",
                slot_value="slot_value",
                slot_kind="slot_kind" if columns.slot_kind else None,
                score="score",
                flagged="flagged",
                gold="gold_toxic",
                alpha=alpha,
            )
            for part in ("templates", "slot_values", "slot_kinds", "false_positives"):
                counterfactual.setdefault(part, []).append(
                    getattr(report, part).assign(model=model)
                )
    for name, parts in (
        ("soft_metrics", soft),
        ("threshold_sensitivity", sensitivity),
        ("paired", paired),
    ):
        if parts:
            tables[name] = pd.concat(parts, ignore_index=True)
    for part, frames in counterfactual.items():
        tables[f"counterfactual_{part}"] = pd.concat(frames, ignore_index=True)
    return tables


def _bootstrap(config: RunConfig, joined: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Bootstrap intervals for every rate, all models resampled together (paired rows).

    Stratified by group; clustered on conversations (else speakers) where the corpus has them.
    """
    frames = []
    for model, frame in joined.items():
        audited = frame[frame["in_audit"] & frame["dialect_group"].notna()]
        frames.append(audited["flagged"].rename(f"flagged::{model}"))
    first = next(iter(joined.values()))
    base = first[first["in_audit"] & first["dialect_group"].notna()]
    columns = ["dialect_group", "gold_toxic"]
    cluster = next((c for c in ("conversation_id", "speaker") if c in base.columns), None)
    wide = base[columns].join(frames, how="inner")
    wide["gold_toxic"] = wide["gold_toxic"].astype(bool)
    wide["dialect_group"] = wide["dialect_group"].astype(str)
    if cluster is not None:
        wide[cluster] = base[cluster]
        wide = wide[wide[cluster].notna()]
    counts = cell_counts(
        wide,
        group="dialect_group",
        gold="gold_toxic",
        flagged=[f"flagged::{m}" for m in joined],
        cluster=cluster,
    )
    table = bootstrap_metrics(
        counts,
        reference=config.audit.reference_group,
        n_boot=config.audit.bootstrap,
        alpha=config.audit.alpha,
        seed=config.seed,
    )
    table["model"] = table["model"].astype(str).str.removeprefix("flagged::")
    return table


def _plain_cells(table: pd.DataFrame) -> pd.DataFrame:
    """Tuples and lists in cells (e.g. id lists) as text, so every table writes to Parquet."""
    out = table.copy()
    for column in out.columns:
        if (
            out[column].dtype == object
            and out[column].map(lambda v: isinstance(v, tuple | list)).any()
        ):
            out[column] = out[column].map(
                lambda v: ", ".join(map(str, v)) if isinstance(v, tuple | list) else v
            )
    return out


def _audit_frame(
    config: RunConfig,
    joined: pd.DataFrame,
    *,
    group_column: str,
    lexical: pd.DataFrame | None,
    cluster: str | None,
) -> dict[str, pd.DataFrame]:
    """Every per-model statistic on the audited rows, as named tidy tables.

    ``group_metrics`` and ``comparisons`` (rates, tests, effect sizes, Holm and BH),
    ``bias_auc`` and ``bias_auc_comparisons`` (Borkan et al. AUCs with DeLong intervals and
    tests), ``cmh`` (stratified by gold label), ``regression`` (flag on group and gold label,
    with and without lexical controls, cluster-robust where clusters exist, Firth under
    separation), ``power`` (minimum detectable differences), ``threshold_sweep`` and
    ``calibration`` / ``calibration_summary``.
    """
    audit = config.audit
    columns = [group_column, "gold_toxic", "flagged", "score"]
    if cluster is not None:
        columns.append(cluster)
    frame = joined.loc[joined["in_audit"], columns].copy()
    frame["gold_toxic"] = frame["gold_toxic"].astype(bool)
    common = {"group": group_column, "gold": "gold_toxic", "flagged": "flagged"}
    missing = config.dialect.missing_group
    tables: dict[str, pd.DataFrame] = {}
    tables["group_metrics"] = group_metrics(
        frame,
        **common,
        score="score",
        alpha=audit.alpha,
        min_negatives=audit.min_negatives,
        interval=audit.interval,
        missing_group=missing,
    )
    tables["comparisons"] = compare_groups(
        frame,
        **common,
        score="score",
        reference=audit.reference_group,
        alpha=audit.alpha,
        test=audit.test,
        missing_group=missing,
        min_negatives=audit.min_negatives,
        family=audit.family,
    )
    tables["power"] = power_table(
        tables["comparisons"],
        alpha=audit.alpha,
        power=audit.power,
        max_mdd=audit.max_detectable_difference,
    )
    tables["cmh"] = cmh_test(
        frame, **common, reference=audit.reference_group, alpha=audit.alpha, missing_group=missing
    )
    regression_frame = frame if lexical is None else frame.join(lexical)
    try:
        tables["regression"] = flag_regression(
            regression_frame,
            **common,
            reference=audit.reference_group,
            controls=() if lexical is None else tuple(lexical.columns),
            cluster=cluster,
            alpha=audit.alpha,
            missing_group=missing,
        ).rename(columns={"model": "specification"})  # "model" names the audited model here
    except FairauditError as error:
        # A design the data cannot support (collinear on a tiny corpus) is a caveat of this
        # one analysis, not a reason to lose the audit.
        warnings.warn(
            f"logistic regression not fitted: {error}", DegenerateDataWarning, stacklevel=2
        )
        tables["regression"] = pd.DataFrame({"undefined_reason": [str(error)]})
    # The threshold-free and threshold-sweep statistics need a group for every row.
    grouped = frame[frame[group_column].notna()]
    score_common = {"group": group_column, "gold": "gold_toxic", "score": "score"}
    tables["bias_auc"] = bias_aucs(
        grouped, **score_common, alpha=audit.alpha, min_negatives=audit.min_negatives
    )
    tables["bias_auc_comparisons"] = compare_bias_aucs(
        grouped,
        **score_common,
        reference=audit.reference_group,
        alpha=audit.alpha,
        min_negatives=audit.min_negatives,
    )
    tables["threshold_sweep"] = threshold_sweep(grouped, **score_common, alpha=audit.alpha)
    calibration = calibration_by_group(
        grouped, **score_common, bins=audit.calibration_bins, alpha=audit.alpha
    )
    tables["calibration"] = calibration.bins
    tables["calibration_summary"] = calibration.summary
    return tables


def _weights(config: RunConfig, utterances: pd.DataFrame, scores: pd.DataFrame) -> WeightingResult:
    """Sample weights over every corpus row that has a group and a gold label."""
    settings = config.weights
    flagged = None
    if settings.scheme == "error_targeted":
        if config.corpus.audit_subset is not None:
            raise ConfigError(
                "weights.scheme error_targeted needs the model's flags on the rows it weights, "
                "but only the audit subset is scored; use `fairaudit weights` on a training "
                "corpus, or the ab_test, which uses cross-validated flags"
            )
        model = settings.flags_from or config.models[0].name
        chosen = scores[scores["model"] == model].set_index("id")["flagged"]
        flagged = chosen.reindex(utterances.index)
    return compute_weights(
        utterances["dialect_group"],
        utterances["gold_toxic"],
        scheme=settings.scheme,
        flagged=flagged,
        target_group=settings.target_group,
        strength=settings.strength,
        max_weight=settings.max_weight,
        normalize=settings.normalize,
        seed=config.seed,
        ess_warn_below=settings.ess_warn_below,
    )


def _ab_test(config: RunConfig, corpus_path: Path, utterances: pd.DataFrame) -> AbDemoResult:
    """The demo's reference fine-tune, model A against each weighted model B."""
    subset = config.corpus.audit_subset
    if subset is None:
        raise ConfigError("ab_test needs corpus.audit_subset: its test part is the held-out set")
    settings = config.ab_test
    return run_ab_demo(
        corpus_path,
        utterances[["dialect_group"]].reset_index(),
        seed=config.seed,
        schemes=settings.schemes,
        target_group=config.weights.target_group,
        reference_group=config.audit.reference_group,
        strength=settings.strength,
        alpha=config.audit.alpha,
        n_boot=settings.n_boot,
        margin=settings.margin,
        test_size=subset.test_size,
        split_random_state=subset.random_state,
    )


def _check_groups(config: RunConfig, groups: pd.Series, *, file: Path) -> None:
    """The reference group must exist, and the user's groups may not use reserved names."""
    own = config.corpus.columns.group
    present = sorted(set(groups.dropna().astype(str)))
    reserved = sorted({"overall", "<missing>"} & set(present))
    if own is not None and reserved:
        raise InputError(
            f"group value(s) {reserved} are reserved by fairaudit; rename them",
            file=file,
            column=own,
        )
    reference = config.audit.reference_group
    if reference not in present:
        where = (
            f"in the corpus column {own!r}" if own else "among the dialect groups of audited rows"
        )
        raise ConfigError(
            f"audit.reference_group {reference!r} not found {where}; groups present: {present}"
        )


def run(
    config: RunConfig,
    *,
    out: str | Path,
    base: Path,
    config_path: Path | None = None,
    overwrite: bool = False,
) -> RunResult:
    """Execute every stage and write the run folder ``out``.

    Parameters
    ----------
    config
        The validated configuration.
    out
        The run folder to create.
    base
        Folder that relative paths in the configuration are relative to.
    """
    started_at = datetime.now(UTC)
    timings: dict[str, float] = {}
    caveats: list[str] = []

    corpus_path = config.resolve(config.corpus.path, base=base)
    if not corpus_path.is_file():
        raise InputError(
            "corpus file not found (set data_dir in the configuration or the environment "
            "variable FAIRAUDIT_DATA to the folder that holds it)",
            file=corpus_path,
        )

    with (
        warnings.catch_warnings(record=True) as caught,
        atomic_run_folder(out, overwrite=overwrite) as staging,
    ):
        warnings.simplefilter("always", FairauditWarning)

        clock = time.perf_counter()
        corpus = read_corpus(
            corpus_path,
            config.corpus.columns,
            format=config.corpus.format,
            positive_labels=config.corpus.positive_labels,
            negative_labels=config.corpus.negative_labels,
        )
        if "gold_toxic" not in corpus.columns:
            raise ConfigError("corpus.columns.gold_label is required for an audit")
        in_audit = audit_subset_mask(corpus, config.corpus.audit_subset)
        timings["corpus"] = time.perf_counter() - clock

        clock = time.perf_counter()
        own_groups = config.corpus.columns.group is not None
        twitteraae_dir = (
            config.resolve(config.dialect.twitteraae_dir, base=base)
            if config.dialect.twitteraae
            else None
        )
        marker_file = (
            config.resolve(config.dialect.marker_file, base=base)
            if config.dialect.marker_file
            else None
        )
        level = config.dialect.level
        unit_column = {"speaker": "speaker", "conversation": "conversation_id"}.get(level)
        if unit_column is not None and unit_column not in corpus.columns:
            raise ConfigError(
                f"dialect.level is {level!r} but corpus.columns.{unit_column} is not set"
            )
        layer = annotate_dialect(
            corpus["text"],
            rule=config.dialect.rule,
            twitteraae_dir=twitteraae_dir,
            use_markers=config.dialect.markers,
            marker_file=marker_file,
            units=None if unit_column is None else corpus[unit_column],
            level=level,
        )
        timings.update({f"dialect_{k}": v for k, v in layer.seconds.items()})
        timings["dialect"] = time.perf_counter() - clock
        utterances = layer.utterances
        utterances.insert(0, "text", corpus["text"])
        if own_groups:
            # The user's groups are the audited ones; the layer's estimate stays beside them.
            utterances["layer_dialect_group"] = utterances["dialect_group"]
            utterances["dialect_group"] = corpus["group"]
            missing = corpus["group"].isna().to_numpy()
            if missing.any() and config.dialect.missing_group == "error":
                rows = corpus.loc[missing, "row"].tolist()
                ids = corpus.index[missing].tolist()
                raise InputError(
                    f"{int(missing.sum())} row(s) have no group value (ids {ids[:10]}); set "
                    "dialect.missing_group to keep (an explicit <missing> group) or drop",
                    file=corpus_path,
                    row=", ".join(str(r) for r in rows[:10]),
                    column=config.corpus.columns.group,
                )
        group_column = "dialect_group"
        utterances["gold_label"] = corpus["gold_label"]
        utterances["gold_toxic"] = corpus["gold_toxic"]
        # A row without a gold label cannot be judged right or wrong: it is not audited, and it
        # is counted and listed rather than taken as non-toxic.
        no_gold = corpus["gold_toxic"].isna().to_numpy()
        if (no_gold & in_audit).any():
            left_out = corpus.index[no_gold & in_audit]
            warnings.warn(
                f"{len(left_out)} audited row(s) have no gold label and are left out of the "
                f"audit (ids {left_out[:10].tolist()})",
                ExcludedRowsWarning,
                stacklevel=2,
            )
        excluded = {"no_gold_label": corpus.index[no_gold & in_audit].tolist()}
        in_audit = in_audit & ~no_gold
        utterances["in_audit"] = in_audit
        _check_groups(config, utterances.loc[in_audit, "dialect_group"], file=corpus_path)
        if config.dialect.missing_group == "drop":
            missing_group = utterances["dialect_group"].isna().to_numpy() & in_audit
            excluded["no_group"] = corpus.index[missing_group].tolist()
        carried = [c for c in corpus.columns if c.startswith("votes_")]
        carried += ["pair_id", "variant", "template", "slot_value", "slot_kind"]
        for column in ("conversation_id", "speaker", *carried, *config.corpus.columns.keep):
            if column in corpus.columns:
                utterances[column] = corpus[column]

        clock = time.perf_counter()
        # Only the audited rows are scored: the rest (a model's training rows) are never used.
        corpus_sha256 = file_sha256(corpus_path)
        scoring = score_corpus(
            corpus[in_audit],
            config.models,
            file=str(corpus_path),
            resolve_path=lambda path: config.resolve(path, base=base),
            positive_labels=config.corpus.positive_labels,
            corpus_sha256=corpus_sha256,
            audit_subset=config.corpus.audit_subset,
        )
        timings["scoring"] = time.perf_counter() - clock
        timings.update({f"scoring_{k}": v for k, v in scoring.seconds.items()})

        clock = time.perf_counter()
        join_reports: dict[str, Any] = {}
        headlines: dict[str, Any] = {}
        per_model: dict[str, list[pd.DataFrame]] = {}
        joined_by_model: dict[str, pd.DataFrame] = {}
        lexical = None
        if config.audit.lexicons:
            lexicons = load_lexicons(config.resolve(config.audit.lexicons, base=base))
            lexical = count_terms(corpus.loc[in_audit, "text"], lexicons)
            lexical.columns = [f"{c}_terms" for c in lexical.columns]
        cluster = next(
            (c for c in ("conversation_id", "speaker") if c in utterances.columns), None
        )
        for model in config.models:
            if model.name in scoring.skipped:
                continue
            joined, join_reports[model.name] = _join(
                utterances[in_audit], scoring.scores, model=model.name, group_column=group_column
            )
            joined_by_model[model.name] = joined
            tables = _audit_frame(
                config, joined, group_column=group_column, lexical=lexical, cluster=cluster
            )
            for name, table in tables.items():
                table.insert(0, "model", model.name)
                per_model.setdefault(name, []).append(table)
            headlines[model.name] = headline(tables["group_metrics"])
        audit_tables = {
            name: pd.concat(parts, ignore_index=True) for name, parts in per_model.items()
        }
        metrics_table = audit_tables.pop("group_metrics")
        comparisons_table = audit_tables.pop("comparisons")
        further = _further_analyses(config, utterances, joined_by_model)
        timings["audit"] = time.perf_counter() - clock

        clock = time.perf_counter()
        weighting = _weights(config, utterances, scoring.scores)
        weights = weighting.weights
        timings["weights"] = time.perf_counter() - clock

        ab_result = None
        if config.ab_test.enabled:
            clock = time.perf_counter()
            ab_result = _ab_test(config, corpus_path, utterances)
            timings["ab_test"] = time.perf_counter() - clock

        utterances_out = utterances.reset_index()
        utterances_out["id"] = utterances_out["id"].astype(str)
        write_table(utterances_out, staging, "utterances")
        write_table(layer.spans, staging, "spans")
        write_table(scoring.scores, staging, "scores")
        write_table(scoring.head_scores, staging, "head_scores")
        write_table(metrics_table, staging, "group_metrics", csv=True)
        write_table(comparisons_table, staging, "comparisons", csv=True)
        write_table(weights, staging, "weights", csv=True)
        for name, table in {**audit_tables, **further}.items():
            write_table(_plain_cells(table), staging, name, csv=True)
        write_table(weighting.effective_sample_size, staging, "weights_effective_sample_size")
        if ab_result is not None:
            write_table(_plain_cells(ab_result.table), staging, "ab_comparison", csv=True)
            write_table(_plain_cells(ab_result.summary), staging, "ab_summary", csv=True)

        for warning in caught:
            if issubclass(warning.category, FairauditWarning):
                message = str(warning.message)
                if message not in caveats:
                    caveats.append(message)
                    logger.warning("%s", message)

        group_counts = utterances.loc[in_audit, group_column].astype(object).fillna("<missing>")
        manifest: dict[str, Any] = {
            "fairaudit_version": __version__,
            "run_name": config.name,
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": None,
            "alpha": config.audit.alpha,
            "seed": config.seed,
            "config_path": str(config_path) if config_path else None,
            "config": config.model_dump(mode="json"),
            "inputs": [
                {
                    "role": "corpus",
                    "path": str(corpus_path),
                    "sha256": corpus_sha256,
                    "bytes": corpus_path.stat().st_size,
                },
                *_model_inputs(twitteraae_dir),
            ],
            "packages": package_versions(),
            "timings": timings,
            "corpus": {
                "rows_read": int(len(corpus)),
                "rows_audited": int(in_audit.sum()),
                "excluded": {
                    reason: {"count": len(ids), "ids": [str(i) for i in ids[:1000]]}
                    for reason, ids in excluded.items()
                },
                "gold_negatives_audited": int((~corpus["gold_toxic"][in_audit]).sum()),
                "audit_subset": (
                    None
                    if config.corpus.audit_subset is None
                    else (
                        f"test part of train_test_split(test_size="
                        f"{config.corpus.audit_subset.test_size}, random_state="
                        f"{config.corpus.audit_subset.random_state}) over row positions: "
                        f"{int(in_audit.sum()):,} of {len(corpus):,} rows. "
                        f"{config.corpus.audit_subset.reason}"
                    ).strip()
                ),
            },
            "join": join_reports,
            "models": [
                {
                    "name": model.name,
                    "kind": model.kind,
                    "score_definition": model.score_definition,
                    "threshold": model.threshold,
                    "positive_meaning": model.positive_meaning,
                    "notes": scoring.notes.get(model.name, []),
                    "skipped": scoring.skipped.get(model.name),
                    "provenance": scoring.provenance.get(model.name, {}),
                }
                for model in config.models
            ],
            "dialect": {
                "group_column": group_column,
                "group_rule": (
                    f"groups from the corpus column {config.corpus.columns.group!r}"
                    if own_groups
                    else describe_rule(
                        config.dialect.rule,
                        twitteraae=config.dialect.twitteraae,
                        markers=config.dialect.markers,
                    )
                ),
                "level": config.dialect.level,
                "language_screen": (
                    {str(k): int(v) for k, v in utterances["language"].value_counts().items()}
                    if "language" in utterances.columns
                    else None
                ),
                "marker_set_version": layer.marker_set_version,
                "counts": {str(k): int(v) for k, v in group_counts.value_counts().items()},
                "counts_all_rows": {
                    str(k): int(v)
                    for k, v in utterances[group_column]
                    .astype(object)
                    .fillna("<missing>")
                    .value_counts()
                    .items()
                },
            },
            "reference_group": config.audit.reference_group,
            "weights": {
                "scheme": config.weights.scheme,
                "normalize": config.weights.normalize,
                "rows_weighted": int(len(weights)),
                "rows": "every corpus row with a group and a gold label",
                "parameters": weighting.parameters,
                "seeds": weighting.seeds,
            },
            "ab_test": None
            if ab_result is None
            else {
                "verdicts": ab_result.verdicts,
                "split": ab_result.split,
                "seeds": ab_result.seeds,
                "note": "reference fine-tune (TF-IDF + logistic regression): model A "
                "unweighted, one model B per scheme, compared on the held-out rows",
            },
            "headline": headlines,
            "warnings": caveats,
        }
        manifest["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        write_json(manifest, staging / "manifest.json")
        if config_path is not None:
            (staging / "config.yaml").write_text(Path(config_path).read_text())

        clock = time.perf_counter()
        from fairaudit.report import write_report

        write_report(staging)
        timings["report"] = time.perf_counter() - clock
        manifest["timings"] = timings
        write_json(manifest, staging / "manifest.json")

    folder = Path(out).resolve()
    logger.info("wrote run folder %s", folder)
    tables = {
        "group_metrics": metrics_table,
        "comparisons": comparisons_table,
        **audit_tables,
        **further,
    }
    return RunResult(folder, manifest, metrics_table, comparisons_table, tables)


def _model_inputs(twitteraae_dir: Path | None) -> list[dict[str, Any]]:
    if twitteraae_dir is None:
        return []
    entries = []
    for name in ("model_vocab.txt", "model_count_table.txt"):
        path = twitteraae_dir / name
        if path.is_file():
            entries.append(
                {
                    "role": "twitteraae",
                    "path": str(path),
                    "sha256": file_sha256(path),
                    "bytes": path.stat().st_size,
                }
            )
    return entries


def run_config_file(
    path: str | Path,
    *,
    out: str | Path,
    overwrite: bool = False,
    overrides: dict[str, Any] | None = None,
) -> RunResult:
    """Load a YAML configuration and run it; relative paths are relative to the file."""
    path = Path(path).resolve()
    config = load_config(path, overrides=overrides)
    return run(config, out=out, base=path.parent, config_path=path, overwrite=overwrite)
