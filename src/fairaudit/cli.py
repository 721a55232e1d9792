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
        typer.echo(json.dumps(_without_nan(result), allow_nan=False))
        return
    keys = ["precision", "recall", "f1_exact", "f1_overlap", "kappa", "kappa_ci_low"]
    keys += ["kappa_ci_high", "n_gold", "n_predicted"]
    typer.echo(f"{'marker':<26}" + "".join(f"{k:>14}" for k in keys))
    for marker, values in [*result["markers"].items(), ("MACRO", result["macro"])]:
        cells = "".join(
            f"{_fmt(values.get(k)) if 'n_' not in k else values.get(k)!s:>14}" for k in keys
        )
        typer.echo(f"{marker:<26}{cells}")


def _without_nan(value: Any) -> Any:
    """NaN (an undefined statistic) as JSON null."""
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _without_nan(value.item())
    return value


def main() -> None:  # pragma: no cover
    app()
