"""fairaudit: audit toxicity and moderation models for dialect bias, and help fix it.

Stages, one module each: :mod:`fairaudit.corpus` (read and validate), :mod:`fairaudit.dialect`
(:mod:`fairaudit.twitteraae` and :mod:`fairaudit.markers`), :mod:`fairaudit.scoring` (models),
:mod:`fairaudit.disparity` (statistics), :mod:`fairaudit.reweighting` (sample weights),
:mod:`fairaudit.report` with :mod:`fairaudit.figures`; :mod:`fairaudit.pipeline` runs them all
into a run folder (:mod:`fairaudit.runfolder`).
"""

from __future__ import annotations

__version__ = "0.1.0"
