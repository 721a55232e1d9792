"""Findings in words: the main result of a run in one sentence per model, and its caveats.

Takes the run's tables (as the pipeline returns them or as read from a run folder) and returns
plain sentences built from the numbers; nothing here computes a statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fairaudit.figures import format_p_value

__all__ = ["main_findings", "caveats"]


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def main_findings(
    tables: Mapping[str, pd.DataFrame], manifest: Mapping[str, Any], *, group: str = "aae"
) -> list[str]:
    """One sentence per model: the FPR of ``group`` against the reference group, its test,
    and, where the run has them, what lexical controls and the labels themselves add."""
    reference = manifest.get("reference_group", "sae")
    alpha = manifest.get("alpha", 0.05)
    metrics = tables["group_metrics"]
    comparisons = tables["comparisons"]
    sentences = []
    for model in metrics["model"].drop_duplicates():
        fpr = metrics[(metrics["model"] == model) & (metrics["metric"] == "false_positive_rate")]
        fpr = fpr.set_index("group")
        row = comparisons[
            (comparisons["model"] == model)
            & (comparisons["metric"] == "false_positive_rate")
            & (comparisons["group"] == group)
        ]
        if group not in fpr.index or reference not in fpr.index or row.empty:
            sentences.append(f"{model}: no {group} vs {reference} comparison in this run.")
            continue
        test = row.iloc[0]
        a, r = fpr.loc[group], fpr.loc[reference]
        verdict = (
            "a significant difference"
            if bool(test["significant"]) is True
            else "no significant difference"
        )
        sentence = (
            f"{model}: on gold non-toxic items it flags {_pct(a['estimate'])} of {group} "
            f"[{_pct(a['ci_low'])}, {_pct(a['ci_high'])}] vs {_pct(r['estimate'])} of "
            f"{reference} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]: {verdict} at alpha "
            f"{alpha} (difference {100 * test['difference']:+.1f} points "
            f"[{100 * test['ci_low']:+.1f}, {100 * test['ci_high']:+.1f}], {test['method']}, "
            f"Holm p = {format_p_value(test['p_adjusted'])})"
        )
        regression = tables.get("regression")
        if regression is not None and "specification" in regression.columns:
            terms = regression[
                (regression["model"] == model) & (regression["group"] == group)
            ].set_index("specification")
            if {"without_controls", "with_controls"} <= set(terms.index):
                before = terms.loc["without_controls", "odds_ratio"]
                after = terms.loc["with_controls", "odds_ratio"]
                used = terms.loc["with_controls", "controls"]
                if isinstance(used, str) and used.strip():
                    sentence += (
                        f"; with {used.replace('_', ' ')} as controls the {group} odds ratio "
                        f"of being flagged goes from {before:.2f} to {after:.2f}"
                    )
                else:
                    sentence += (
                        "; no lexical control could be fitted (none varies in these data), "
                        f"so the {group} odds ratio {before:.2f} is unadjusted for profanity"
                    )
        sentences.append(sentence + ".")
    label_bias = tables.get("label_bias")
    if label_bias is not None and {group, reference} <= set(label_bias["group"]):
        by_group = label_bias.set_index("group")
        harmful = by_group["majority_harmful_share"]
        agreement = by_group["krippendorff_alpha"]
        sentences.append(
            f"Labels: annotators' majority called {_pct(harmful[group])} of {group} items "
            f"harmful vs {_pct(harmful[reference])} of {reference}, with agreement "
            f"(Krippendorff's alpha) {agreement[group]:.2f} vs {agreement[reference]:.2f}: "
            "the gold labels may carry the same bias."
        )
    return sentences


def caveats(tables: Mapping[str, pd.DataFrame], manifest: Mapping[str, Any]) -> list[str]:
    """The run's warnings, in-sample notes and small groups, as plain lines."""
    lines = list(manifest.get("warnings", []))
    for model in manifest.get("models", []):
        for note in model.get("notes", []):
            said = note.removeprefix("in-sample:").strip()
            if note.startswith("in-sample:") and said not in lines:
                lines.append(f"{model['name']}: {note}")
        if model.get("skipped"):
            lines.append(f"{model['name']} was skipped: {model['skipped']}")
    metrics = tables["group_metrics"]
    small = metrics[(metrics["metric"] == "false_positive_rate") & metrics["small_group"]]
    for row in small.itertuples():
        lines.append(
            f"{row.model}: group {row.group} has only {int(row.n)} gold non-toxic items; "
            "it is kept out of the headline"
        )
    return lines
