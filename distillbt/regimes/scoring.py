"""Scoring a labeller against known regimes (the sample market's): agreement of the names,
and after the best renaming."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ..errors import InputError
from .names import REGIME_NAMES

__all__ = ["regime_agreement"]


def regime_agreement(true, predicted) -> dict:
    """How well predicted regime labels agree with known ones (the sample market's).

    Rows where either label is missing (the labeller's warm-up) are left out.

    Parameters
    ----------
    true, predicted : Series or array-like of regime names
        Aligned one-to-one (same length; Series are aligned by position, not by index).

    Returns
    -------
    dict
        ``raw``: share of rows whose names match; ``mapped``: share after the best one-to-one
        renaming of predicted labels (Hungarian assignment on the confusion matrix — equal to
        ``raw`` when the names already mean what they say); ``mapping``: predicted name →
        true name used for ``mapped``; ``confusion``: DataFrame of counts, rows = true,
        columns = predicted, over :data:`REGIME_NAMES`; ``rows``: rows compared.
    """
    t = pd.Categorical(np.asarray(true, dtype=object), categories=REGIME_NAMES)
    p = pd.Categorical(np.asarray(predicted, dtype=object), categories=REGIME_NAMES)
    if len(t) != len(p):
        raise InputError(f"true has {len(t)} labels but predicted has {len(p)}")
    both = (t.codes >= 0) & (p.codes >= 0)
    if not both.any():
        raise InputError("no row has both a true and a predicted regime name")
    k = len(REGIME_NAMES)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (t.codes[both], p.codes[both]), 1)
    rows, cols = linear_sum_assignment(-counts)
    total = int(counts.sum())
    return {
        "raw": float(np.trace(counts) / total),
        "mapped": float(counts[rows, cols].sum() / total),
        "mapping": {REGIME_NAMES[c]: REGIME_NAMES[r] for r, c in zip(rows, cols, strict=True)},
        "confusion": pd.DataFrame(counts, index=pd.Index(REGIME_NAMES, name="true"),
                                  columns=pd.Index(REGIME_NAMES, name="predicted")),
        "rows": total,
    }
