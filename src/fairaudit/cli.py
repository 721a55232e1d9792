"""Command line: a thin layer over the library. Errors print as one line and exit with 2."""

from __future__ import annotations

import json
import logging
import math
import sys
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


def _setup_logging(verbose: bool) -> None:
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


def _fmt_p(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _print_summary(result: Any) -> None:
    metrics = result.group_metrics
    fpr = metrics[metrics["metric"] == "false_positive_rate"]
    typer.echo("")
    typer.echo("False positive rate on gold non-toxic items (95% interval unless alpha differs):")
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
                f"{_fmt_p(row.p_value)}, p_adjusted = {_fmt_p(row.p_adjusted)}"
            )
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
) -> None:
    """(Re)write the HTML report of a run folder."""
    _setup_logging(False)
    from fairaudit.report import write_report

    path = _guarded(lambda: write_report(run_dir, out=out))
    typer.echo(str(path))


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

    from fairaudit.labelstudio import import_annotations, import_prodigy
    from fairaudit.runfolder import read_table, write_parquet_atomic

    def action() -> Any:
        texts = read_table(run_dir, "utterances").set_index("id")["text"]
        reader = import_prodigy if prodigy else import_annotations
        result = reader(export, texts=texts)
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
    from fairaudit.runfolder import read_table

    def action() -> Any:
        rules = read_table(run_dir, "spans")
        layer = pd.read_parquet(human)
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
