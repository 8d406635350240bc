"""Has the market moved away from what a distilled set was distilled from? The regime policy's
two block-permutation tests (:func:`regime_shift`) and the per-block statistics they run on
(:class:`BlockStats`, stored in a set's header by :func:`reference_statistics`).

Rows (standardised features and regime names, in time order) are grouped in consecutive
*blocks* of ``block`` rows, and blocks — not rows — are permuted between "old" and "new",
because candles are strongly dependent:

- *regime mix*: chi-square divergence of the new from the old regime shares (relative to the
  pooled shares; the total variation distance is reported too), permuting runs of blocks as
  long as the shares' integrated autocorrelation time (``share_memory``);
- *per regime*: the largest, over features, of the standardised mean difference and the
  absolute log ratio of standard deviations, its null the permutation distribution of that
  maximum; Bonferroni over the regimes tested.

The reasoning behind each choice, and what it was checked on, is in ``docs/update.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .array_codec import decode_array, encode_array
from .artifact import ArtifactError

__all__ = ["BlockStats", "MAX_REFERENCE_BLOCKS", "reference_statistics", "stored_reference", "regime_shift"]


def _blocks(n: int, block: int) -> np.ndarray:
    """Block index of each of ``n`` consecutive rows (a short last block joins the one before)."""
    ids = np.arange(n) // block
    if n > block and n % block and n % block < block // 2:
        ids[ids == ids[-1]] = ids[-1] - 1
    return ids


def _permutations(n_old: int, n_new: int, n_perm: int, rng) -> np.ndarray:
    """``n_perm + 1`` assignments of the blocks to "new" (row 0: the observed one), each of the
    others a uniformly random choice of ``n_new`` of the ``n_old + n_new`` blocks."""
    n = n_old + n_new
    out = np.zeros((n_perm + 1, n), dtype=bool)
    out[0, n_old:] = True
    chosen = np.argsort(rng.random((n_perm, n)), axis=1)[:, :n_new]
    np.put_along_axis(out[1:], chosen, True, axis=1)
    return out


def share_memory(counts: np.ndarray, max_lag: int | None = None) -> float:
    """Integrated autocorrelation time, in blocks, of the regime shares of consecutive blocks
    (``counts``: blocks × regimes, in time order): 1 + 2 Σ ρ_k over the initial run of positive
    autocorrelations (Geyer's initial positive sequence), the largest over regimes. Regimes
    last longer than a block, so neighbouring blocks' mixes are alike; the mix test permutes
    runs of this many blocks (1 when there are too few blocks to tell)."""
    total = counts.sum(axis=1)
    shares = counts[total > 0] / total[total > 0, None]
    m = len(shares)
    if m < 16:
        return 1.0
    x = shares - shares.mean(axis=0)
    var = (x**2).sum(axis=0)
    tau = 1.0
    for j in np.flatnonzero(var > 0):
        acc = 1.0
        for k in range(1, max_lag or m // 4):
            rho = float((x[:-k, j] * x[k:, j]).sum() / var[j])
            if rho <= 0:
                break
            acc += 2 * rho
        tau = max(tau, acc)
    return tau


def _merge_blocks(values: np.ndarray, size: int) -> np.ndarray:
    """Sums over runs of ``size`` consecutive blocks (axis 0); a short last run joins the one
    before, as in :func:`_blocks`."""
    if size <= 1:
        return values
    return np.add.reduceat(values, np.arange(0, len(values), size)[: max(1, len(values) // size)], axis=0)


class BlockStats:
    """Sufficient statistics of rows grouped in consecutive blocks, per regime: ``n`` (blocks ×
    regimes) rows, ``s1``/``s2`` (blocks × regimes × features) sums of the features and of
    their squares. All the regime policy's tests need of a period; what an artifact stores of
    the rows it was distilled from (``meta["reference"]``), so that an update computes the
    features of the new candles only."""

    def __init__(self, names, n, s1, s2, block: int, first=None, last=None):
        self.names = [str(r) for r in names]
        self.n, self.s1, self.s2 = n, s1, s2
        self.block, self.first, self.last = int(block), first, last

    @property
    def blocks(self) -> int:
        return int(self.n.shape[0])

    @property
    def rows(self) -> int:
        return int(self.n.sum())

    def count(self, regime) -> int:
        return int(self.n[:, self.names.index(regime)].sum()) if regime in self.names else 0

    @classmethod
    def from_rows(cls, X, regime, block: int, times=None) -> "BlockStats":
        X = np.asarray(X, dtype="float64")
        regime = np.asarray(regime).astype(str)
        names = sorted(set(regime))
        if len(X) == 0:
            d = X.shape[1] if X.ndim == 2 else 0
            return cls(names, np.zeros((0, len(names))), np.zeros((0, len(names), d)),
                       np.zeros((0, len(names), d)), block)
        ids = _blocks(len(X), block)
        n_blocks, R, d = int(ids[-1]) + 1, len(names), X.shape[1]
        cell = ids * R + np.searchsorted(names, regime)
        order = np.argsort(cell, kind="stable")
        sorted_cells = cell[order]
        starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
        Xo = X[order]
        n = np.bincount(cell, minlength=n_blocks * R).astype("float64")
        s1, s2 = np.zeros((n_blocks * R, d)), np.zeros((n_blocks * R, d))
        s1[sorted_cells[starts]] = np.add.reduceat(Xo, starts, axis=0)
        s2[sorted_cells[starts]] = np.add.reduceat(Xo**2, starts, axis=0)
        first = last = None
        if times is not None and len(times):
            first, last = pd.Timestamp(times[0]).isoformat(), pd.Timestamp(times[-1]).isoformat()
        return cls(names, n.reshape(n_blocks, R), s1.reshape(n_blocks, R, d), s2.reshape(n_blocks, R, d),
                   block, first, last)

    def reindex(self, names) -> "BlockStats":
        """The same blocks over regimes ``names`` (zeros for regimes it has no rows of)."""
        names = [str(r) for r in names]
        B, d = self.blocks, self.s1.shape[2]
        n, s1, s2 = np.zeros((B, len(names))), np.zeros((B, len(names), d)), np.zeros((B, len(names), d))
        for j, r in enumerate(names):
            if r in self.names:
                k = self.names.index(r)
                n[:, j], s1[:, j], s2[:, j] = self.n[:, k], self.s1[:, k], self.s2[:, k]
        return BlockStats(names, n, s1, s2, self.block, self.first, self.last)

    def only(self, keep) -> "BlockStats":
        """The rows of regimes ``keep`` only; blocks left empty are dropped."""
        names = [r for r in self.names if r in set(map(str, keep)) and self.count(r)]
        out = self.reindex(names)
        full = out.n.sum(axis=1) > 0
        return BlockStats(names, out.n[full], out.s1[full], out.s2[full], self.block, self.first, self.last)

    @staticmethod
    def concat(a: "BlockStats", b: "BlockStats") -> "BlockStats":
        """``a``'s blocks, then ``b``'s (a reference made of several periods)."""
        names = sorted(set(a.names) | set(b.names))
        a, b = a.reindex(names), b.reindex(names)
        firsts = [t for t in (a.first, b.first) if t]
        lasts = [t for t in (a.last, b.last) if t]
        return BlockStats(names, np.concatenate([a.n, b.n]), np.concatenate([a.s1, b.s1]),
                           np.concatenate([a.s2, b.s2]), a.block,
                           min(firsts, key=pd.Timestamp) if firsts else None,
                           max(lasts, key=pd.Timestamp) if lasts else None)

    def to_json(self) -> dict:
        """JSON-able, compact: only the (block, regime) cells holding rows, arrays as base64 of
        their little-endian bytes (data, never a pickle)."""
        cells = np.flatnonzero(self.n.ravel() > 0)
        d = self.s1.shape[2]
        return {"block": self.block, "blocks": self.blocks, "rows": self.rows, "regimes": self.names,
                "first": self.first, "last": self.last, "features": d,
                "cells": encode_array(cells.astype("<i4")), "n": encode_array(self.n.ravel()[cells].astype("<i4")),
                "s1": encode_array(self.s1.reshape(-1, d)[cells].astype("<f8")),
                "s2": encode_array(self.s2.reshape(-1, d)[cells].astype("<f8"))}

    @classmethod
    def from_json(cls, data: dict) -> "BlockStats":
        try:
            names, B, d = list(data["regimes"]), int(data["blocks"]), int(data["features"])
            cells = decode_array(data["cells"]).astype(np.intp)
            n, s1, s2 = np.zeros(B * len(names)), np.zeros((B * len(names), d)), np.zeros((B * len(names), d))
            n[cells] = decode_array(data["n"])
            s1[cells] = decode_array(data["s1"]).reshape(len(cells), d)
            s2[cells] = decode_array(data["s2"]).reshape(len(cells), d)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ArtifactError(f"the distilled set's reference statistics are corrupt: {error!r}") from None
        return cls(names, n.reshape(B, len(names)), s1.reshape(B, len(names), d), s2.reshape(B, len(names), d),
                   int(data["block"]), data.get("first"), data.get("last"))


#: Most blocks an artifact keeps as its reference: its header must not grow with the history
#: (256 blocks of the default 400 rows: the latest ~100k training rows; the JSON's size, and
#: the command that measures it, are in ``docs/update.md``).
MAX_REFERENCE_BLOCKS = 256


def reference_statistics(X, regime, block: int, times=None, last_candle=None, *,
                         max_blocks: int = MAX_REFERENCE_BLOCKS) -> dict:
    """What an artifact stores of the rows it is distilled from for the regime policy
    (``meta["reference"]``): per-block, per-regime counts and feature sums of the latest
    ``max_blocks`` blocks (on the same block grid as all the rows), JSON-able, and the time of
    the last source candle (``last_candle``: what the candles' fingerprint covers)."""
    start = max(0, (len(X) - max_blocks * block) // block * block)
    X, regime = X[start:], np.asarray(regime)[start:]
    times = times[start:] if times is not None else None
    out = BlockStats.from_rows(X, regime, block, times).to_json()
    if last_candle is not None:
        out["last_candle"] = pd.Timestamp(last_candle).isoformat()
    return out


def stored_reference(meta: dict, block: int) -> BlockStats | None:
    """The artifact's reference statistics, if it has them at this block size and feature count."""
    data = meta.get("reference")
    if not isinstance(data, dict) or int(data.get("block", -1)) != int(block) or \
            int(data.get("features", -1)) != len(meta.get("feature_names") or []):
        return None
    return BlockStats.from_json(data)


def regime_shift(old, new, *, block: int, alpha: float = 0.01, n_permutations: int = 1999,
                 min_rows: int = 200, seed: int = 0, feature_names=None) -> dict:
    """The two block-permutation tests of the regime policy (module docstring).

    ``old`` and ``new``: rows (features ``X`` and ``regime`` names, in time order) or their
    per-block statistics (what an artifact stores of its source rows). ``block`` rows per
    block; ``alpha`` the level (the per-regime tests each at ``alpha / regimes tested``);
    ``n_permutations`` resamplings (a p-value: 1 + the resamplings at least as extreme, over 1 + their number); a
    regime with fewer than ``min_rows`` new rows, or rows in fewer than two blocks of either
    period, is not tested. Returns ``{"mix": {...}, "regimes": {name: {...}}}`` with the
    statistics, p-values, thresholds and decisions: the mix ``changed`` when p < ``alpha`` or
    a regime appears that ``old`` lacks; a regime's ``status`` is ``changed``, ``unchanged``,
    ``not tested`` or ``new``.
    """
    rng = np.random.default_rng(seed)
    old = old if isinstance(old, BlockStats) else BlockStats.from_rows(old.X, old.regime, block)
    new = new if isinstance(new, BlockStats) else BlockStats.from_rows(new.X, new.regime, block)
    names = sorted(set(old.names) | set(new.names))
    old, new = old.reindex(names), new.reindex(names)
    n_bo, n_bn = old.blocks, new.blocks
    assign = _permutations(n_bo, n_bn, n_permutations, rng)
    A = assign.astype(float)

    # regime mix: how the shares of the two groups of blocks differ. Regimes outlast
    # a block, so runs of blocks as long as the shares' memory are permuted instead.
    memory = max(share_memory(old.n), share_memory(new.n))
    run = max(1, int(np.ceil(memory)))
    old_runs, new_runs = _merge_blocks(old.n, run), _merge_blocks(new.n, run)
    counts = np.concatenate([old_runs, new_runs])
    A_mix = _permutations(len(old_runs), len(new_runs), n_permutations, rng).astype(float)
    new_tot, all_tot = A_mix @ counts, counts.sum(axis=0)
    old_tot = all_tot - new_tot
    p_new = new_tot / new_tot.sum(axis=1, keepdims=True)
    p_old = old_tot / old_tot.sum(axis=1, keepdims=True)
    tv = 0.5 * float(np.abs(p_new[0] - p_old[0]).sum())  # reported beside the test statistic
    # the test statistic: chi-square divergence from the pooled shares, so that a rare regime
    # becoming common (crashes) counts as much as the big regimes' ordinary swings
    pooled = all_tot / all_tot.sum()
    chi2 = ((p_new - p_old) ** 2 / np.where(pooled > 0, pooled, 1.0)).sum(axis=1)
    mix = {
        "tv": tv, "chi2": float(chi2[0]),
        "p_value": float((1 + (chi2[1:] >= chi2[0]).sum()) / (1 + n_permutations)),
        "threshold": float(np.quantile(chi2[1:], 1 - alpha)), "alpha": alpha,
        "block": block * run, "blocks_old": len(old_runs), "blocks_new": len(new_runs),
        "share_memory_blocks": round(memory, 2),
        "old_shares": {r: float(v) for r, v in zip(names, p_old[0])},
        "new_shares": {r: float(v) for r, v in zip(names, p_new[0])},
        "unknown_regimes": [r for j, r in enumerate(names) if old.n[:, j].sum() == 0 and new.n[:, j].sum() > 0],
    }
    mix["changed"] = bool(mix["p_value"] < alpha or mix["unknown_regimes"])

    # per regime: max over features of the standardised mean difference and the log sd ratio
    results, tested = {}, []
    for j, r in enumerate(names):
        n_old_r, n_new_r = int(old.n[:, j].sum()), int(new.n[:, j].sum())
        blocks_new_r, blocks_old_r = int((new.n[:, j] > 0).sum()), int((old.n[:, j] > 0).sum())
        base = {"rows_old": n_old_r, "rows_new": n_new_r, "blocks_old": blocks_old_r, "blocks_new": blocks_new_r}
        if n_old_r == 0:
            results[r] = {**base, "status": "new", "why": "not in the artifact's source period"}
            continue
        if n_new_r < min_rows or blocks_new_r < 2 or blocks_old_r < 2:
            results[r] = {**base, "status": "not tested",
                          "why": f"too few rows to test (new {n_new_r} in {blocks_new_r} blocks, old in "
                                 f"{blocks_old_r}; need {min_rows} new rows and 2 blocks each)"}
            continue
        n_b = np.concatenate([old.n[:, j], new.n[:, j]])
        s1 = np.concatenate([old.s1[:, j], new.s1[:, j]])
        s2 = np.concatenate([old.s2[:, j], new.s2[:, j]])
        nn, n1, n2 = A @ n_b, A @ s1, A @ s2
        no, o1, o2 = n_b.sum() - nn, s1.sum(0) - n1, s2.sum(0) - n2
        ok = (nn >= 2) & (no >= 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            mn, mo = n1 / nn[:, None], o1 / no[:, None]
            vn = np.maximum(n2 / nn[:, None] - mn**2, 1e-12)
            vo = np.maximum(o2 / no[:, None] - mo**2, 1e-12)
            d_mean = np.abs(mn - mo) / np.sqrt(0.5 * (vn + vo))
            d_sd = 0.5 * np.abs(np.log(vn / vo))
        per_feature = np.maximum(d_mean, d_sd)
        stat = np.where(ok, per_feature.max(axis=1), -np.inf)
        worst = int(np.argmax(per_feature[0]))
        null = stat[1:][np.isfinite(stat[1:])]
        results[r] = {**base, "statistic": float(stat[0]),
                      "p_value": float((1 + (null >= stat[0]).sum()) / (1 + len(null))),
                      "feature": (feature_names[worst] if feature_names is not None else worst),
                      "mean_shift": float(d_mean[0, worst]), "sd_log_ratio": float(d_sd[0, worst])}
        tested.append(r)
    for r in tested:
        results[r]["alpha"] = alpha / len(tested)
        changed = results[r]["p_value"] < results[r]["alpha"]
        results[r]["status"] = "changed" if changed else "unchanged"
    return {"mix": mix, "regimes": results}
