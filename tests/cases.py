"""Locate the shared trap cases (``/work/shared/cases``) for the tests.

The folder is ``$FAIRAUDIT_CASES`` when set, else ``<repo>/../shared/cases``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cases_root() -> Path:
    """Return the folder that holds the numbered case folders."""
    configured = os.environ.get("FAIRAUDIT_CASES")
    return Path(configured) if configured else REPO.parent / "shared" / "cases"


def case_dir(prefix: str) -> Path:
    """Return the case folder whose name starts with ``prefix`` (for example ``"01"``)."""
    matches = sorted(cases_root().glob(f"{prefix}-*"))
    if len(matches) != 1:
        raise FileNotFoundError(f"expected one case folder {prefix}-* in {cases_root()}")
    return matches[0]
