"""Errors for bad input and warnings for statistical caveats.

Every error that reaches the user names what is wrong and where (file, row, column) so that the
command line can print it as one line and exit non-zero, without a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "FairauditError",
    "InputError",
    "ConfigError",
    "ModelError",
    "FairauditWarning",
    "SmallGroupWarning",
    "UndefinedMetricWarning",
    "DegenerateDataWarning",
    "InSampleWarning",
    "ExcludedRowsWarning",
]


class FairauditError(Exception):
    """Base class of every error fairaudit raises on purpose."""


class InputError(FairauditError):
    """Bad input data: the message names the file, and where known the row and column.

    Parameters
    ----------
    message
        What is wrong, in plain words.
    file
        The input file.
    row
        1-based data row (the header is row 0), or an id, where one row is at fault.
    column
        The column at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | str | None = None,
        column: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.detail = message
        where = []
        if self.file is not None:
            where.append(self.file)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(FairauditError):
    """An invalid or inconsistent run configuration."""


class ModelError(FairauditError):
    """A toxicity model that cannot load or that returned unusable scores."""


class FairauditWarning(UserWarning):
    """Base class of fairaudit's statistical caveats."""


class SmallGroupWarning(FairauditWarning):
    """A group is too small to judge: its interval is wide and it is kept out of headlines."""


class UndefinedMetricWarning(FairauditWarning):
    """A metric is undefined for a group (for example no positives); it is reported as NaN."""


class DegenerateDataWarning(FairauditWarning):
    """The data make a family of results degenerate (for example nothing is flagged)."""


class InSampleWarning(FairauditWarning):
    """A model is audited on data it was trained on, so its figures are in-sample."""


class ExcludedRowsWarning(FairauditWarning):
    """Rows were left out of the audit (no gold label, or no group in drop mode); listed."""
