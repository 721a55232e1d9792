"""Command line: a thin layer over the library. Errors print as one line and exit with 2."""

from __future__ import annotations

import json
import logging
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from fairaudit.exceptions import FairauditError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Audit toxicity models for dialect bias (African American English vs white-aligned).",
)
markers_app = typer.Typer(no_args_is_help=True, help="The dialect-marker layer.")
app.add_typer(markers_app, name="markers")

T = TypeVar("T")

logger = logging.getLogger("fairaudit")

_COMPARISON_KIND = "fairaudit-ab-comparison"


def _setup_logging(verbose: bool) -> None:
    # Statistical caveats print as one line each, not with the source line that raised them.
    warnings.formatwarning = lambda message, category, *args, **kwargs: (
        f"warning ({category.__name__}): {message}\n"
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def _guarded(action: Callable[[], T]) -> T:
    """Run an action; a fairaudit error becomes one line on stderr and exit status 2."""
    try:
        return action()
    except FairauditError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except OSError as error:
        # A path the user gave that cannot be read or written (a folder, a file in the way,
        # no permission): one line, not a traceback.
        where = error.filename if error.filename is not None else ""
        typer.echo(f"error: {where}: {error.strerror or error}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; nothing was written", err=True)
        raise typer.Exit(130) from None


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _print_summary(result: Any) -> None:
    from fairaudit.figures import format_p_value

    metrics = result.group_metrics
    fpr = metrics[metrics["metric"] == "false_positive_rate"]
    typer.echo("")
    confidence = 100 * (1 - result.manifest.get("alpha", 0.05))
    typer.echo(f"False positive rate on gold non-toxic items ({confidence:g}% intervals):")
    typer.echo(f"{'model':<18}{'group':<12}{'FPR':>8}  {'interval':<18}{'n':>7}  note")
    for row in fpr.itertuples():
        note = "small group" if getattr(row, "small_group", False) else ""
        if isinstance(row.undefined_reason, str) and row.undefined_reason:
            note = row.undefined_reason
        interval = f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]"
        typer.echo(
            f"{row.model:<18}{row.group!s:<12}{_fmt(row.estimate):>8}  {interval:<18}"
            f"{int(row.n):>7}  {note}"
        )
    comparisons = result.comparisons
    tests = comparisons[comparisons["metric"] == "false_positive_rate"]
    if len(tests):
        typer.echo("")
        typer.echo("FPR difference against the reference group (Holm-adjusted p):")
        for row in tests.itertuples():
            typer.echo(
                f"  {row.model}: {row.group} - {row.reference} = {_fmt(row.difference)} "
                f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}], {row.method} p = "
                f"{format_p_value(row.p_value)}, p_adjusted = {format_p_value(row.p_adjusted)}"
            )
    from fairaudit.findings import caveats, main_findings

    typer.echo("")
    typer.echo("Main finding:")
    for sentence in main_findings(result.tables, result.manifest):
        typer.echo(f"  {sentence}")
    notes = caveats(result.tables, result.manifest)
    if notes:
        typer.echo("Caveats:")
        for line in notes:
            typer.echo(f"  - {line}")
    typer.echo("")
    typer.echo(f"run folder: {result.folder}")
    typer.echo(f"report:     {result.folder / 'report.html'}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML run configuration.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder to create.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    alpha: Annotated[
        float | None, typer.Option(help="Significance level; overrides audit.alpha.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run every stage of a configured audit and write the run folder and report."""
    _setup_logging(verbose)
    from fairaudit.pipeline import run_config_file

    if alpha is not None and not 0 < alpha < 1:
        typer.echo(f"error: --alpha must be between 0 and 1 (exclusive), got {alpha}", err=True)
        raise typer.Exit(2)
    overrides = {} if alpha is None else {"audit.alpha": alpha}
    result = _guarded(
        lambda: run_config_file(config, out=out, overwrite=overwrite, overrides=overrides)
    )
    _print_summary(result)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Run folder to create.")] = Path("runs/demo"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the shipped demo: the Davidson et al. 2017 tweets, hatesonar and profanity-check."""
    _setup_logging(verbose)
    from fairaudit.config import packaged_config
    from fairaudit.pipeline import run_config_file

    result = _guarded(
        lambda: run_config_file(packaged_config("davidson_demo"), out=out, overwrite=overwrite)
    )
    _print_summary(result)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder.")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write.")] = None,
    pdf: Annotated[
        bool, typer.Option(help="Also print it to report.pdf (needs headless Chromium).")
    ] = False,
) -> None:
    """(Re)write the HTML report of a run folder, and optionally its PDF."""
    _setup_logging(False)
    from fairaudit.report import write_pdf, write_report

    path = _guarded(lambda: write_report(run_dir, out=out))
    typer.echo(str(path))
    if pdf:
        typer.echo(str(_guarded(lambda: write_pdf(run_dir))))


def _audit_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of an audit run folder (not of a comparison or weights folder)."""
    from fairaudit.exceptions import InputError
    from fairaudit.runfolder import RUN_KIND, read_manifest

    manifest = read_manifest(run_dir)
    kind = manifest.get("kind", RUN_KIND)
    if kind != RUN_KIND or "models" not in manifest or "config" not in manifest:
        raise InputError(
            f"not an audit run folder (its manifest is of kind {kind!r})",
            file=Path(run_dir) / "manifest.json",
        )
    return manifest


def _model_frame(run_dir: Path, model: str | None) -> tuple[Any, str, dict[str, Any]]:
    """One model's audited items of a run folder: id, group, gold, score, flagged."""
    from fairaudit.exceptions import InputError
    from fairaudit.runfolder import read_table

    manifest = _audit_manifest(run_dir)
    names = [m["name"] for m in manifest["models"] if not m.get("skipped")]
    chosen = model or names[0]
    if chosen not in names:
        raise InputError(f"model {chosen!r} is not in this run; models: {names}", file=run_dir)
    scores = read_table(run_dir, "scores")
    scores = scores[scores["model"] == chosen][["id", "score", "flagged"]]
    utterances = read_table(run_dir, "utterances")
    items = utterances[["id", "dialect_group", "gold_toxic"]]
    frame = scores.merge(items, on="id", how="inner")
    frame = frame[frame["gold_toxic"].notna() & frame["dialect_group"].notna()]
    frame["gold_toxic"] = frame["gold_toxic"].astype(bool)
    return frame, chosen, manifest


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run folder of model A (before).")],
    run_b: Annotated[Path, typer.Argument(help="Run folder of model B (after).")],
    out: Annotated[Path, typer.Option(help="Folder to write ab_comparison.parquet into.")],
    model_a: Annotated[str | None, typer.Option(help="Model in run A (default: first).")] = None,
    model_b: Annotated[str | None, typer.Option(help="Model in run B (default: first).")] = None,
    n_boot: Annotated[int, typer.Option(help="Paired bootstrap resamples.")] = 2000,
    margin: Annotated[float, typer.Option(help="Non-inferiority margin (AUC, F1).")] = 0.01,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier comparison.")] = False,
) -> None:
    """Paired A/B comparison of two audits on the same items (shared items only, counted)."""
    _setup_logging(False)
    if n_boot < 100:
        typer.echo(f"error: --n-boot must be at least 100, got {n_boot}", err=True)
        raise typer.Exit(2)
    if not 0 < margin < 1:
        typer.echo(f"error: --margin must be between 0 and 1 (exclusive), got {margin}", err=True)
        raise typer.Exit(2)
    from fairaudit.abtest import ab_verdict, paired_ab_comparison
    from fairaudit.runfolder import atomic_run_folder, write_json, write_table

    def action() -> str:
        frame_a, name_a, manifest_a = _model_frame(run_a, model_a)
        frame_b, name_b, _ = _model_frame(run_b, model_b)
        alpha = manifest_a.get("alpha", 0.05)
        reference = manifest_a.get("reference_group", "sae")
        table = paired_ab_comparison(
            frame_a,
            frame_b,
            group="dialect_group",
            gold="gold_toxic",
            alpha=alpha,
            n_boot=n_boot,
            seed=seed,
            margin=margin,
            reference_group=reference,
        )
        verdict = f"A = {name_a} ({run_a}), B = {name_b} ({run_b}): " + ab_verdict(
            table, reference_group=reference
        )
        with atomic_run_folder(out, overwrite=overwrite, kind=_COMPARISON_KIND) as staging:
            write_table(table, staging, "ab_comparison", csv=True)
            write_json(
                {
                    "kind": _COMPARISON_KIND,
                    "run_a": str(Path(run_a).resolve()),
                    "model_a": name_a,
                    "run_b": str(Path(run_b).resolve()),
                    "model_b": name_b,
                    "n_shared": table.attrs.get("n_shared"),
                    "n_only_a": table.attrs.get("n_only_a"),
                    "n_only_b": table.attrs.get("n_only_b"),
                    "alpha": alpha,
                    "n_boot": n_boot,
                    "seed": seed,
                    "margin": margin,
                    "verdict": verdict,
                },
                staging / "manifest.json",
            )
        return verdict

    typer.echo(_guarded(action))
    typer.echo(str(Path(out).resolve() / "ab_comparison.parquet"))


@app.command()
def weights(
    training: Annotated[Path, typer.Argument(help="Training corpus (CSV, JSONL, Parquet).")],
    from_run: Annotated[Path, typer.Option("--from", help="The audit run that motivates it.")],
    out: Annotated[Path, typer.Option(help="Folder for weights.parquet/.csv/.jsonl.")],
    config: Annotated[
        Path | None,
        typer.Option(
            help="Configuration whose corpus columns describe the training file "
            "(default: the audit run's)."
        ),
    ] = None,
    scheme: Annotated[
        str,
        typer.Option(
            help="kamiran_calders or group_balance (error_targeted needs the "
            "model's flags on the training items: see docs/weights.md)"
        ),
    ] = "kamiran_calders",
    max_weight: Annotated[float | None, typer.Option(help="Clip weights at this.")] = None,
    flags: Annotated[
        Path | None,
        typer.Option(
            help="error_targeted: a CSV/Parquet of id, flagged with the audited model's "
            "out-of-fold flags on the training items."
        ),
    ] = None,
    strength: Annotated[float, typer.Option(help="error_targeted: extra weight.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the integer copies.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace earlier weights.")] = False,
) -> None:
    """Run the dialect layer on a training corpus and export sample weights for fine-tuning."""
    _setup_logging(False)
    import pandas as pd

    from fairaudit.config import RunConfig, load_config
    from fairaudit.corpus import read_corpus, read_table
    from fairaudit.dialect import annotate_dialect
    from fairaudit.exceptions import InputError
    from fairaudit.reweighting import export_weights, weight_training_corpus

    if max_weight is not None and not (math.isfinite(max_weight) and max_weight >= 1):
        typer.echo(
            f"error: --max-weight must be a finite number of at least 1 (weights have mean 1), "
            f"got {max_weight}",
            err=True,
        )
        raise typer.Exit(2)
    if scheme not in {"kamiran_calders", "group_balance", "error_targeted"}:
        typer.echo(
            "error: --scheme must be kamiran_calders, group_balance or error_targeted", err=True
        )
        raise typer.Exit(2)
    if (scheme == "error_targeted") != (flags is not None):
        typer.echo(
            "error: error_targeted needs --flags (the model's out-of-fold flags on the training "
            "items), and --flags only applies to error_targeted; see docs/weights.md",
            err=True,
        )
        raise typer.Exit(2)

    def action() -> Path:
        manifest = _audit_manifest(from_run)
        settings = load_config(config) if config else RunConfig.model_validate(manifest["config"])
        base = Path(config).resolve().parent if config else Path.cwd()
        columns = settings.corpus.columns
        corpus = read_corpus(
            training,
            columns,
            positive_labels=settings.corpus.positive_labels,
            negative_labels=settings.corpus.negative_labels,
        )
        dialect = settings.dialect
        layer = annotate_dialect(
            corpus["text"],
            rule=dialect.rule,
            twitteraae_dir=(
                settings.resolve(dialect.twitteraae_dir, base=base) if dialect.twitteraae else None
            ),
            use_markers=dialect.markers,
            marker_file=(
                settings.resolve(dialect.marker_file, base=base) if dialect.marker_file else None
            ),
        )
        groups = corpus["group"] if columns.group else layer.utterances["dialect_group"]
        table = pd.DataFrame(
            {
                "id": corpus.index.astype(str),
                "dialect_group": groups.astype(object).to_numpy(),
                "gold_toxic": corpus["gold_toxic"].to_numpy(),
            }
        )
        options: dict[str, Any] = {}
        if flags is not None:
            given = read_table(flags, format="auto")
            for column in ("id", "flagged"):
                if column not in given.columns:
                    raise InputError("missing column", file=flags, column=column)
            decisions = given["flagged"].astype(str).str.strip().str.lower()
            bad = ~decisions.isin({"0", "1", "true", "false", "0.0", "1.0"})
            if bad.any():
                raise InputError(
                    f"{int(bad.sum())} flag(s) are not 0/1 or true/false",
                    file=flags,
                    column="flagged",
                )
            flagged = pd.Series(
                decisions.isin({"1", "true", "1.0"}).to_numpy(), index=given["id"].astype(str)
            )
            missing = ~table["id"].isin(flagged.index)
            if missing.any():
                raise InputError(
                    f"no flag for {int(missing.sum())} training id(s), e.g. "
                    f"{table.loc[missing, 'id'].head(5).tolist()}",
                    file=flags,
                    column="id",
                )
            table["flagged"] = flagged.loc[table["id"]].to_numpy()
            options = {"flagged_column": "flagged", "strength": strength}
        result = weight_training_corpus(
            table,
            audit_run=from_run,
            scheme=scheme,  # type: ignore[arg-type]
            max_weight=max_weight,
            seed=seed,
            **options,
            reason=f"dialect disparity found by the audit run {manifest.get('run_name')!r}",
        )
        return export_weights(result, out, overwrite=overwrite)

    typer.echo(str(_guarded(action)))


@app.command()
def dashboard(
    runs: Annotated[list[Path], typer.Argument(help="One run folder, or two (A and B).")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8050,
) -> None:
    """Serve the Dash dashboard over one or two run folders (reads them; computes nothing)."""
    _setup_logging(False)
    from fairaudit.dashboard import serve

    if not 1 <= len(runs) <= 2:
        typer.echo("error: give one run folder, or two (A and B)", err=True)
        raise typer.Exit(2)
    if not 1 <= port <= 65535:
        typer.echo(f"error: --port must be between 1 and 65535, got {port}", err=True)
        raise typer.Exit(2)
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            typer.echo(f"error: cannot listen on {host}:{port} ({error.strerror})", err=True)
            raise typer.Exit(2) from None
    _guarded(lambda: serve(runs, host=host, port=port))


@markers_app.command("evaluate")
def markers_evaluate(
    gold: Annotated[Path, typer.Argument(help="Gold JSON Lines file of marker spans.")],
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    marker_file: Annotated[Path | None, typer.Option(help="Marker definitions (YAML).")] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Precision, recall, F1 and kappa of the marker rules against gold spans."""
    from fairaudit.markers import evaluate, load_marker_set

    if format not in {"table", "json"}:
        typer.echo("error: --format must be table or json", err=True)
        raise typer.Exit(2)
    result = _guarded(lambda: evaluate(gold, load_marker_set(marker_file), seed=seed))
    if format == "json":
        from fairaudit.runfolder import json_safe

        typer.echo(json.dumps(json_safe(result), allow_nan=False))
        return
    keys = ["precision", "recall", "f1_exact", "f1_overlap", "kappa", "kappa_ci_low"]
    keys += ["kappa_ci_high", "n_gold", "n_predicted"]
    typer.echo(f"{'marker':<26}" + "".join(f"{k:>14}" for k in keys))
    for marker, values in [*result["markers"].items(), ("MACRO", result["macro"])]:
        cells = "".join(
            f"{_fmt(values.get(k)) if 'n_' not in k else values.get(k)!s:>14}" for k in keys
        )
        typer.echo(f"{marker:<26}{cells}")


@markers_app.command("export")
def markers_export(
    run_dir: Annotated[Path, typer.Argument(help="A run folder.")],
    out: Annotated[Path, typer.Option(help="Label Studio tasks (JSON) to write.")],
    strategy: Annotated[
        str, typer.Option(help="random, uncertainty or disagreement")
    ] = "uncertainty",
    n: Annotated[int, typer.Option(help="Number of items.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed for the item order.")] = 0,
    convention: Annotated[str, typer.Option(help="Offset convention of the tasks.")] = "codepoint",
) -> None:
    """Export items with the rule spans as predictions, for annotation in Label Studio."""
    _setup_logging(False)
    from fairaudit.labelstudio import OFFSET_CONVENTIONS, export_tasks, select_items
    from fairaudit.runfolder import read_manifest, read_table

    if strategy not in {"random", "uncertainty", "disagreement"}:
        typer.echo("error: --strategy must be random, uncertainty or disagreement", err=True)
        raise typer.Exit(2)
    if convention not in OFFSET_CONVENTIONS:
        typer.echo(f"error: --convention must be one of {', '.join(OFFSET_CONVENTIONS)}", err=True)
        raise typer.Exit(2)

    def action() -> Path:
        manifest = read_manifest(run_dir)
        utterances = read_table(run_dir, "utterances").set_index("id")
        spans = read_table(run_dir, "spans")
        threshold = manifest["config"]["dialect"]["rule"]["aae_threshold"]
        chosen = select_items(utterances, strategy=strategy, n=n, seed=seed, threshold=threshold)
        return export_tasks(
            utterances.loc[chosen],
            spans[spans["id"].isin(chosen)],
            marker_set_version=manifest["dialect"]["marker_set_version"] or "none",
            convention=convention,
            path=out,
        )

    typer.echo(str(_guarded(action)))


@markers_app.command("import")
def markers_import(
    export: Annotated[Path, typer.Argument(help="Label Studio JSON export or Prodigy JSONL.")],
    run_dir: Annotated[Path, typer.Option("--run", help="The run folder the items came from.")],
    out: Annotated[Path, typer.Option(help="Human span layer (Parquet) to write.")],
    prodigy: Annotated[bool, typer.Option(help="The file is Prodigy JSONL.")] = False,
) -> None:
    """Import human marker annotations as a layer beside the rules (never overwriting them)."""
    _setup_logging(False)
    import pandas as pd

    from fairaudit.exceptions import InputError
    from fairaudit.labelstudio import import_annotations, import_prodigy
    from fairaudit.runfolder import read_table, write_parquet_atomic

    def action() -> Any:
        texts = read_table(run_dir, "utterances").set_index("id")["text"]
        reader = import_prodigy if prodigy else import_annotations
        result = reader(export, texts=texts)
        if result.annotated.empty:
            raise InputError(
                f"no completed annotations found ({len(result.rejected)} task(s) rejected); is "
                f"this a {'Prodigy' if prodigy else 'Label Studio'} export?",
                file=export,
            )
        table = result.spans.copy()
        annotated = result.annotated.assign(marker=None, start=-1, end=-1, text=None)
        annotated["source"] = "annotated_item"
        write_parquet_atomic(pd.concat([table, annotated], ignore_index=True), out)
        return result

    result = _guarded(action)
    typer.echo(
        f"imported {len(result.spans)} spans from {result.annotated['id'].nunique()} items; "
        f"{result.repaired} repaired, {len(result.rejected)} task(s) rejected"
    )
    for row in result.rejected.itertuples():
        typer.echo(f"  rejected task {row.task} (id {row.id}): {row.reason}")
    typer.echo(str(out))


@markers_app.command("agreement")
def markers_agreement(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (its rule spans).")],
    human: Annotated[Path, typer.Option(help="Human layer written by `markers import`.")],
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Agreement per marker: annotator pairs, annotators vs rules, Fleiss, Krippendorff."""
    _setup_logging(False)
    import pandas as pd

    from fairaudit.agreement import marker_agreement
    from fairaudit.exceptions import InputError
    from fairaudit.runfolder import read_table

    if format not in {"table", "json"}:
        typer.echo("error: --format must be table or json", err=True)
        raise typer.Exit(2)

    def read_layer() -> pd.DataFrame:
        if not human.is_file():
            raise InputError("human layer not found (write it with `markers import`)", file=human)
        try:
            layer = pd.read_parquet(human)
        except Exception as error:  # noqa: BLE001 - any unreadable file is one clear line
            raise InputError(f"not a Parquet human layer ({error})", file=human) from None
        needed = {"id", "marker", "start", "end", "text", "source", "annotator"}
        if not needed <= set(layer.columns):
            raise InputError(
                f"not a human layer written by `markers import`: missing columns "
                f"{sorted(needed - set(layer.columns))}",
                file=human,
            )
        if not (layer["source"] == "annotated_item").any():
            raise InputError("the human layer lists no annotated items", file=human)
        return layer

    def action() -> Any:
        rules = read_table(run_dir, "spans")
        layer = read_layer()
        annotated = layer[layer["source"] == "annotated_item"]
        spans = layer[layer["source"] != "annotated_item"]
        items = {
            annotator: sorted(set(group["id"]))
            for annotator, group in annotated.groupby("annotator")
        }
        items["rule"] = sorted(set(annotated["id"]))
        rule_spans = rules[rules["id"].isin(items["rule"])].assign(source="rule")
        markers = sorted(set(rule_spans["marker"]) | set(spans["marker"]))
        columns = ["id", "marker", "start", "end", "text", "source"]
        human_spans = spans[columns].copy()
        human_spans["source"] = "human:" + spans["annotator"].fillna("imported").astype(str)
        return marker_agreement(
            pd.concat([rule_spans[columns], human_spans], ignore_index=True),
            items,
            markers=markers,
        )

    table = _guarded(action)
    if format == "json":
        typer.echo(table.to_json(orient="records"))
    else:
        typer.echo(table.to_string(index=False))


def main() -> None:  # pragma: no cover
    app()
