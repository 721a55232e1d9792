"""Humans in the loop: export rule spans to Label Studio, import annotations, agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from fairaudit.cli import app

runner = CliRunner()

TEXTS = [
    "she be working late every day fr",
    "we finna eat 🍗\r\nwho coming",
    "I have been waiting all week for this",
    "he ain't never told nobody",
    "y'all coming to the party tonight?",
    "Be careful driving home, the roads are icy.",
    "my brother drive a truck",
    "they BEEN knew about it",
    "the meeting is at noon tomorrow",
    "she done finished the whole cake",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("hil")
    corpus = pd.DataFrame(
        {
            "id": [f"u{i}" for i in range(len(TEXTS))],
            "text": TEXTS,
            "gold": [0, 0, 0, 1, 0, 0, 1, 0, 0, 0],
            "score": [0.7, 0.2, 0.1, 0.9, 0.4, 0.1, 0.8, 0.3, 0.1, 0.2],
        }
    )
    corpus.to_json(folder / "corpus.jsonl", orient="records", lines=True, force_ascii=False)
    (folder / "config.yaml").write_text(
        f"""
name: hil
data_dir: {data_dir}
corpus:
  path: {folder / "corpus.jsonl"}
  columns: {{id: id, text: text, gold_label: gold, keep: [score]}}
models:
  - {{name: given, kind: column, column: score}}
audit: {{min_negatives: 1}}
"""
    )
    out = folder / "run"
    result = runner.invoke(app, ["run", str(folder / "config.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_export_import_and_agreement(run_dir: Path, tmp_path: Path) -> None:
    tasks_path = tmp_path / "tasks.json"
    result = runner.invoke(
        app,
        [
            "markers",
            "export",
            str(run_dir),
            "--out",
            str(tasks_path),
            "--strategy",
            "random",
            "--n",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    tasks = json.loads(tasks_path.read_text())
    assert len(tasks) == 10
    spans = pd.read_parquet(run_dir / "spans.parquet")
    assert sum(len(t["predictions"][0]["result"]) for t in tasks) == len(spans)

    # Two annotators: ann1 accepts every prediction; ann2 drops every finna span and adds none.
    for task in tasks:
        predicted = task["predictions"][0]["result"]
        task["annotations"] = [
            {"completed_by": 1, "result": predicted},
            {
                "completed_by": 2,
                "result": [r for r in predicted if r["value"]["labels"] != ["finna"]],
            },
        ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks, ensure_ascii=False))
    human = tmp_path / "human.parquet"
    result = runner.invoke(
        app, ["markers", "import", str(export), "--run", str(run_dir), "--out", str(human)]
    )
    assert result.exit_code == 0, result.output
    layer = pd.read_parquet(human)
    imported = layer[layer["source"] != "annotated_item"]
    texts = {t["data"]["id"]: t["data"]["text"] for t in tasks}
    for row in imported.itertuples():
        assert texts[row.id][row.start : row.end] == row.text  # Python offsets, CRLF kept

    result = runner.invoke(
        app, ["markers", "agreement", str(run_dir), "--human", str(human), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    table = pd.DataFrame(json.loads(result.output))
    cohen = table[table["statistic"] == "cohen_kappa"].set_index(["marker", "rater_a", "rater_b"])

    ids = sorted(texts)
    finna_items = set(spans.loc[spans["marker"] == "finna", "id"])
    assert finna_items, "the corpus has a finna item"
    rule = [int(i in finna_items) for i in ids]
    ann2 = [0 for _ in ids]
    expected = cohen_kappa_score(rule, ann2, labels=[0, 1])  # one constant rater: defined, 0
    pair = {("finna", "human:2", "rule"), ("finna", "rule", "human:2")} & set(cohen.index)
    assert len(pair) == 1
    row = cohen.loc[pair.pop()]
    assert row["estimate"] == pytest.approx(expected)
    habitual = cohen.loc[[k for k in cohen.index if k[0] == "habitual_be" and "rule" in k[1:]]]
    assert (habitual["estimate"] == 1.0).all()
