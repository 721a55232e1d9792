"""Tests of fairaudit.dashboard in a real browser (headless Chromium), on hand-made run folders.

Every expected string below is typed in from the hand-made tables, not taken from the code's
own output. The browser tests fail (they do not skip) when Chromium, its driver or selenium is
missing, since a dashboard that was never rendered is not tested.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fairaudit import figures
from fairaudit.dashboard import create_app

NAN = float("nan")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "install the Debian packages chromium and chromium-driver "
    "(apt-get install chromium chromium-driver) and selenium (pip install selenium)"
)
VERDICT = (
    "The aae-vs-sae false positive rate gap shrank by 16.1 percentage points, from 21.1 to "
    "5.0 points (hand-made verdict)."
)
WAIT_SECONDS = 30


# --- hand-made run folders ----------------------------------------------------------------


def _group_metric(model, group, metric, estimate, low, high, n, count, *, reason=None):
    return {
        "model": model,
        "group": group,
        "metric": metric,
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "n": n,
        "count": count,
        "interval_method": "wilson",
        "alpha": 0.05,
        "undefined_reason": reason,
        "small_group": False,
    }


def _comparison(model, group, estimate, reference_estimate, difference, low, high, p_adj):
    return {
        "model": model,
        "group": group,
        "reference": "sae",
        "metric": "false_positive_rate",
        "estimate": estimate,
        "reference_estimate": reference_estimate,
        "difference": difference,
        "ci_low": low,
        "ci_high": high,
        "ratio": estimate / reference_estimate,
        "n": 520,
        "n_reference": 1200,
        "method": "two-proportion z-test",
        "p_value": p_adj / 2,
        "p_adjusted": p_adj,
        "correction": "holm",
        "significant": p_adj < 0.05,
        "alpha": 0.05,
        "undefined_reason": None,
    }


def _write_run(
    folder: Path,
    *,
    name: str,
    group_metrics: list[dict[str, Any]],
    comparisons: list[dict[str, Any]],
    ab: bool,
) -> Path:
    folder.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "run_name": name,
        "alpha": 0.05,
        "finished_at": "2024-05-01T10:04:12Z",
        "corpus": {
            "rows_audited": 1720,
            "audit_subset": "hatesonar held-out 30%: rows unseen in training",
        },
        "models": [
            {"name": "hatesonar", "score_definition": "1 - P(neither)", "threshold": 0.5},
            {"name": "toy", "score_definition": "P(toxic)", "threshold": 0.7},
        ],
        "dialect": {"group_rule": "aae if p_aa >= 0.8", "counts": {"aae": 520, "sae": 1200}},
        "reference_group": "sae",
    }
    if ab:
        manifest["ab_test"] = {"verdicts": {"kamiran_calders": VERDICT}}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    pd.DataFrame({"id": ["u1", "u2"], "dialect_group": ["aae", "sae"]}).to_parquet(
        folder / "utterances.parquet"
    )
    pd.DataFrame(group_metrics).to_parquet(folder / "group_metrics.parquet")
    pd.DataFrame(comparisons).to_parquet(folder / "comparisons.parquet")
    pd.DataFrame(
        {
            "model": ["hatesonar", "hatesonar", "toy", "toy"],
            "threshold": [0.6, 0.8, 0.6, 0.8],
            "difference": [0.211, 0.250, 0.011, 0.020],
            "ci_low": [0.166, 0.180, -0.031, -0.040],
            "ci_high": [0.256, 0.320, 0.054, 0.080],
            "undefined_reason": [None, None, None, None],
        }
    ).to_parquet(folder / "threshold_sensitivity.parquet")
    if ab:
        pd.DataFrame(
            [
                {
                    "scheme": "kamiran_calders",
                    "fpr_gap_a": 0.211,
                    "fpr_gap_b": 0.050,
                    "fpr_gap_change": -0.161,
                    "fpr_gap_ci_low": -0.220,
                    "fpr_gap_ci_high": -0.102,
                    "fpr_gap_p_adjusted": 0.004,
                    "fpr_aae_a": 0.412,
                    "fpr_aae_b": 0.290,
                    "fpr_sae_a": 0.201,
                    "fpr_sae_b": 0.240,
                }
            ]
        ).to_parquet(folder / "ab_summary.parquet")
        pd.DataFrame(
            [
                {
                    "scheme": "kamiran_calders",
                    "group": group,
                    "metric": "false_positive_rate",
                    "estimate_a": a,
                    "estimate_b": b,
                    "change": change,
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": p,
                    "p_adjusted": p,
                    "method": "McNemar exact test; paired bootstrap interval",
                    "n": n,
                }
                for group, a, b, change, low, high, p, n in (
                    ("aae", 0.412, 0.290, -0.122, -0.170, -0.075, 0.001, 520),
                    ("sae", 0.201, 0.240, 0.039, 0.010, 0.068, 0.02, 1200),
                )
            ]
        ).to_parquet(folder / "ab_comparison.parquet")
    return folder


def _run_a(folder: Path) -> Path:
    return _write_run(
        folder,
        name="hand-made-audit",
        group_metrics=[
            _group_metric(
                "hatesonar", "aae", "false_positive_rate", 0.412, 0.371, 0.455, 520, 214
            ),
            _group_metric(
                "hatesonar", "sae", "false_positive_rate", 0.201, 0.179, 0.225, 1200, 241
            ),
            _group_metric("hatesonar", "aae", "false_negative_rate", 0.050, 0.030, 0.080, 80, 4),
            _group_metric(
                "hatesonar",
                "sae",
                "false_negative_rate",
                NAN,
                NAN,
                NAN,
                0,
                0,
                reason="no_gold_toxic_items",
            ),
            _group_metric("toy", "aae", "false_positive_rate", 0.333, 0.293, 0.376, 520, 173),
            _group_metric("toy", "sae", "false_positive_rate", 0.322, 0.296, 0.349, 1200, 386),
        ],  # fmt: skip
        comparisons=[
            _comparison("hatesonar", "aae", 0.412, 0.201, 0.211, 0.166, 0.256, 0.0001),
            _comparison("toy", "aae", 0.333, 0.322, 0.011, -0.031, 0.054, 0.62),
        ],
        ab=True,
    )


def _run_b(folder: Path) -> Path:
    return _write_run(
        folder,
        name="hand-made-audit-reweighted",
        group_metrics=[
            _group_metric(
                "hatesonar", "aae", "false_positive_rate", 0.290, 0.252, 0.331, 520, 151
            ),
            _group_metric(
                "hatesonar", "sae", "false_positive_rate", 0.240, 0.216, 0.265, 1200, 288
            ),
            _group_metric("toy", "aae", "false_positive_rate", 0.330, 0.290, 0.372, 520, 172),
            _group_metric("toy", "sae", "false_positive_rate", 0.320, 0.294, 0.347, 1200, 384),
        ],  # fmt: skip
        comparisons=[
            _comparison("hatesonar", "aae", 0.290, 0.240, 0.050, 0.004, 0.096, 0.03),
            _comparison("toy", "aae", 0.330, 0.320, 0.010, -0.032, 0.052, 0.64),
        ],
        ab=False,
    )


@pytest.fixture
def run_a(tmp_path: Path) -> Path:
    return _run_a(tmp_path / "run-a")


@pytest.fixture
def run_b(tmp_path: Path) -> Path:
    return _run_b(tmp_path / "run-b")


# --- the browser and the server -----------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.fail(
            f"Chromium or chromedriver not found at {CHROMIUM}, {CHROMEDRIVER}: {INSTALL_HINT}"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {INSTALL_HINT}")

    profile = tempfile.mkdtemp(prefix="fairaudit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1400,1200",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def serve_app() -> Iterator[Callable[[list[Path]], str]]:
    """Start the dashboard for run folders on a free port in a thread; yield its URL."""
    from werkzeug.serving import make_server

    servers = []

    def start(run_dirs: list[Path]) -> str:
        app = create_app(run_dirs)
        server = make_server("127.0.0.1", 0, app.server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _wait(driver: Any, condition: Callable[[Any], Any], what: str) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        # The callback replaces the tab's content, so an element found a moment ago may be gone.
        return WebDriverWait(
            driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition)
    except TimeoutException:
        logs = driver.get_log("browser")
        pytest.fail(f"timed out waiting for {what}; browser log: {logs}")


def _text(driver: Any, css: str) -> str:
    """The visible text of the first element matching ``css``, or "" when there is none."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(5):
        try:
            elements = driver.find_elements(By.CSS_SELECTOR, css)
            return elements[0].text if elements else ""
        except StaleElementReferenceException:
            continue
    return ""


def _rendered_graph(driver: Any, graph_id: str) -> None:
    from selenium.webdriver.common.by import By

    _wait(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{graph_id} .main-svg .scatterlayer"),
        f"the figure #{graph_id} to render",
    )


def _open_tab(driver: Any, tab: str, view_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, f"tab-{tab}").click()
    _wait(driver, lambda d: d.find_elements(By.ID, view_id), f"the tab {tab}")


def _choose_model(driver: Any, model: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "model-selector").click()
    options = _wait(
        driver,
        lambda d: [
            o for o in d.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == model
        ],
        f"the option {model!r} of the model selector",
    )
    options[0].click()


# --- tests --------------------------------------------------------------------------------


def test_overview_shows_figure_values_and_undefined_metric_then_filters_by_model(
    browser: Any, serve_app: Callable[[list[Path]], str], run_a: Path
) -> None:
    browser.get(serve_app([run_a]))
    _rendered_graph(browser, "fpr-figure")
    _wait(browser, lambda d: "0.412" in _text(d, "#group-table"), "the group table")

    header = _text(browser, "#run-header-A")
    assert "hand-made-audit" in header
    assert "0.05 (95% intervals)" in header
    assert "hatesonar held-out 30%: rows unseen in training" in header
    assert "hatesonar: score 1 - P(neither)" in header and "0.5" in header

    table = _text(browser, "#group-table")
    assert "0.412 [0.371, 0.455]" in table
    assert "0.201 [0.179, 0.225]" in table
    assert "n/a – no gold toxic items" in table
    assert "0.333 [0.293, 0.376]" in table
    assert "0.211 [0.166, 0.256]" in _text(browser, "#comparison-table")
    # The figure's two hatesonar points carry the hand-made estimates.
    assert "hatesonar" in _text(browser, "#fpr-figure") and "toy" in _text(browser, "#fpr-figure")

    _choose_model(browser, "toy")
    _wait(browser, lambda d: "0.412" not in _text(d, "#group-table"), "the table to filter")
    table = _text(browser, "#group-table")
    assert "0.333 [0.293, 0.376]" in table
    assert "0.322 [0.296, 0.349]" in table
    assert "hatesonar" not in table and "n/a" not in table
    assert "0.011 [-0.031, 0.054]" in _text(browser, "#comparison-table")
    assert "0.211" not in _text(browser, "#comparison-table")
    _rendered_graph(browser, "fpr-figure")
    assert "hatesonar" not in _text(browser, "#fpr-figure")


def test_before_after_tab_shows_verdict_gap_and_per_group_changes(
    browser: Any, serve_app: Callable[[list[Path]], str], run_a: Path
) -> None:
    browser.get(serve_app([run_a]))
    _rendered_graph(browser, "fpr-figure")

    _open_tab(browser, "before-after", "view-before-after")
    _wait(browser, lambda d: VERDICT in _text(d, "#verdicts-A"), "the verdict")
    assert "kamiran_calders" in _text(browser, "#verdicts-A")
    summary = _text(browser, "#ab-summary")
    assert "0.211 → 0.050" in summary
    assert "-0.161 [-0.220, -0.102]" in summary
    changes = _text(browser, "#ab-fpr-table")
    assert "-0.122 [-0.170, -0.075]" in changes
    assert "0.039 [0.010, 0.068]" in changes
    _rendered_graph(browser, "ab-change-figure")


def test_robustness_tab_shows_only_the_tables_present_and_filters_by_model(
    browser: Any, serve_app: Callable[[list[Path]], str], run_a: Path
) -> None:
    browser.get(serve_app([run_a]))
    _rendered_graph(browser, "fpr-figure")

    _open_tab(browser, "robustness", "view-robustness")
    _rendered_graph(browser, "threshold-sensitivity-figure")
    table = _text(browser, "#threshold-sensitivity-table")
    assert "0.211 [0.166, 0.256]" in table and "0.011 [-0.031, 0.054]" in table
    view = _text(browser, "#view-robustness")
    assert "Label bias" not in view and "Bias AUC" not in view

    _choose_model(browser, "hatesonar")
    _wait(
        browser,
        lambda d: "0.011" not in _text(d, "#threshold-sensitivity-table"),
        "the threshold table to filter",
    )
    assert "0.250 [0.180, 0.320]" in _text(browser, "#threshold-sensitivity-table")


def test_two_run_folders_compare_run_a_with_run_b(
    browser: Any, serve_app: Callable[[list[Path]], str], run_a: Path, run_b: Path
) -> None:
    browser.get(serve_app([run_a, run_b]))
    _rendered_graph(browser, "fpr-figure-A")
    _rendered_graph(browser, "fpr-figure-B")
    assert "0.290 [0.252, 0.331]" in _text(browser, "#group-table-B")

    _open_tab(browser, "before-after", "view-before-after")
    _rendered_graph(browser, "pair-fpr-figure")
    gaps = _text(browser, "#pair-gap-table")
    assert "0.211 [0.166, 0.256]" in gaps
    assert "0.050 [0.004, 0.096]" in gaps
    assert "-0.161" in gaps
    assert "A · hatesonar" in _text(browser, "#pair-group-table")
    assert "0.240 [0.216, 0.265]" in _text(browser, "#pair-group-table")
    assert VERDICT in _text(browser, "#verdicts-A")


def test_before_after_without_ab_data_says_so(
    browser: Any, serve_app: Callable[[list[Path]], str], run_b: Path
) -> None:
    browser.get(serve_app([run_b]))
    _rendered_graph(browser, "fpr-figure")
    _open_tab(browser, "before-after", "view-before-after")
    assert "holds no A/B comparison" in _text(browser, "#view-before-after")


# --- without a browser --------------------------------------------------------------------


def test_page_loads_no_asset_from_another_host(run_a: Path) -> None:
    app = create_app([run_a])
    page = app.server.test_client().get("/").get_data(as_text=True)
    assert "_dash-component-suites" in page
    assert "http://" not in page and "https://" not in page.replace("https://www.w3.org", ""), (
        "the page must work offline"
    )


def test_create_app_takes_one_or_two_run_folders(run_a: Path) -> None:
    with pytest.raises(ValueError, match="one or two run folders"):
        create_app([])
    with pytest.raises(ValueError, match="one or two run folders"):
        create_app([run_a, run_a, run_a])


def test_run_pair_gap_table_keeps_each_runs_interval() -> None:
    def comparisons(difference: float, low: float, high: float, reason: Any = None) -> Any:
        return pd.DataFrame(
            [
                {
                    "model": "m",
                    "group": "aae",
                    "reference": "sae",
                    "metric": "false_positive_rate",
                    "difference": difference,
                    "ci_low": low,
                    "ci_high": high,
                    "significant": True,
                    "undefined_reason": reason,
                }
            ]
        )

    table = figures.run_pair_gap_table(
        comparisons(0.211, 0.166, 0.256), comparisons(0.050, 0.004, 0.096)
    )
    assert table.loc[0, "Gap A [interval]"] == "0.211 [0.166, 0.256]"
    assert table.loc[0, "Gap B [interval]"] == "0.050 [0.004, 0.096]"
    assert table.loc[0, "Change B − A (point)"] == "-0.161"

    undefined = figures.run_pair_gap_table(
        comparisons(0.211, 0.166, 0.256), comparisons(NAN, NAN, NAN, "no_negatives")
    )
    assert undefined.loc[0, "Gap B [interval]"] == "n/a – no negatives"
    assert undefined.loc[0, "Change B − A (point)"].startswith("n/a – ")


def test_ab_change_figure_plots_change_with_its_interval() -> None:
    ab = pd.DataFrame(
        {
            "scheme": ["s", "s"],
            "group": ["aae", "sae"],
            "metric": ["false_positive_rate"] * 2,
            "estimate_a": [0.412, 0.201],
            "estimate_b": [0.290, 0.240],
            "change": [-0.122, NAN],
            "ci_low": [-0.170, NAN],
            "ci_high": [-0.075, NAN],
        }
    )
    (trace,) = figures.ab_change_figure(ab).data
    assert list(trace.x) == ["aae"]  # an undefined change is not plotted as 0
    assert trace.y[0] == pytest.approx(-0.122)
    assert trace.error_y.array[0] == pytest.approx(0.047)
    assert trace.error_y.arrayminus[0] == pytest.approx(0.048)
