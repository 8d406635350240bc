"""Keep a distilled set fresh: periodic, incremental and regime-triggered updates, lineage, and
multi-horizon sets.

::

    new, report = update(DistilledSet.load("set.npz"), candles, policy="regime")
    print("\\n".join(report.summary_lines()))
    new.save("set-updated.npz")

Every policy works in the artifact's own feature space: features are computed with its
``feature_options``, standardised with its scaler, regimes named by its labeller and
regression targets divided by its ``target_scale`` — all stored in the header as JSON — so
points kept from the parent and points distilled now mean the same thing, and a model fitted
on the result standardises candles the way the points were. Method, configuration and the
seed of each regime's job are the parent's (``SeedSequence(seed).spawn`` in the parent's
regime order, as :func:`~distillbt.distill.runner.distill` does).

*New candles* are the usable rows (complete features and target) after the last row the
artifact has seen (``meta["data_range"]["last"]``; for a set straight from ``distill``, the
last row of its test period). None: nothing is done and the artifact comes back unchanged.

Policies
--------
``periodic``
    Re-distil every regime from scratch on the *window*: the usable rows of the latest
    ``window`` candles (default: as many candles as the artifact was distilled from). This is
    the full re-distillation the two cheaper policies are measured against.
``incremental``
    The same window, but each regime's points start from the parent's points of that regime
    and run only ``steps`` matching iterations (gradient, distribution and KIP distillers take
    ``init_points``/``init_targets``). Closed-form and coreset methods (exact-linear,
    k-medoids, herding, random, full) have nothing to warm-start: they are recomputed on the
    window, which is what ``periodic`` does. The report gives the relative distance of the
    least-squares coefficients fitted on the parent, on the new set, and — with
    ``compare=True``, which also runs ``periodic`` — on the full re-distillation, to those
    fitted on the window's real rows, and the time of both.
``regime``
    Compare the new rows with the rows the artifact was distilled from (each regime's source
    period) with two block-permutation tests. Candles are strongly dependent (a regime lasts
    hundreds of candles, volatility clusters), so rows are grouped in consecutive *blocks*
    (default: the labeller's warm-up, 400 candles) and blocks, not rows, are permuted between
    "old" and "new": the thresholds grow as the number of blocks falls, which is how the tests
    account for sample size. The tests need only each block's per-regime row count and sums of
    the features and of their squares: ``distill`` stores those of the training rows in the
    header (``meta["reference"]``, JSON, base64 arrays), and every update stores those of its
    child's source rows, so only the new candles' features are computed (with their warm-up:
    the features' longest window and four labeller warm-ups, so the new rows get the labels
    the whole series would give them). A set without them (or tested at another ``block``)
    has its source rows recomputed from ``candles``. ``candles`` must include the source
    period all the same: their fingerprint up to the set's last candle is checked.

    - *Regime mix*: chi-square divergence between the old and the new shares of the regimes
      (relative to the pooled shares, so a rare regime turning common weighs as much as the
      common ones' swings; the total variation distance is reported too); p-value from ``n_permutations`` permutations of *runs* of blocks. A regime
      lasts longer than a block, so the mixes of neighbouring blocks are alike and permuting
      single blocks would call most resamplings of the same market "changed"; a run is as
      many blocks as the integrated autocorrelation time of the blocks' regime shares
      (``share_memory_blocks`` in the report). A significant change
      (p < ``alpha``), or a regime the artifact does not know, re-weights the regimes (with
      ``frequency`` weighting) to the new shares. It re-distils nothing: a regime's points
      describe that regime, not how often it occurs.
    - *Per regime*: the statistic is the largest, over features, of the standardised mean
      difference ``|m_new − m_old| / s_pooled`` and the log ratio of standard deviations
      ``|log(s_new / s_old)|``; its permutation distribution is the distribution of that
      maximum (the max-statistic correction for testing all features at once), and the
      regimes tested are Bonferroni-corrected (p < ``alpha / regimes tested``). Regimes with
      fewer than ``min_rows`` new rows, or new rows in fewer than two blocks, are not tested
      and kept.

    - *Outgrown*: when the mix changed, a regime whose new rows are ``grow`` times (default 2)
      its source rows or more is re-distilled as well, tested or not: its points came from a
      sample much smaller than the one there is now (typically a rare regime, such as crashes,
      that the new candles visit often — its feature test has little power with so few old
      blocks). ``grow=None`` turns this off.

    Only the regimes that changed (or outgrew their source) are re-distilled, from their new
    rows; the others' points (and, when the mix did not change, their weights) stay
    byte-identical.

Lineage
-------
Each update appends to ``meta["lineage"]`` (a list, oldest first): the parent's
:meth:`~distillbt.distill.artifact.DistilledSet.content_fingerprint`, the policy, the new
candles' range and fingerprint, the window, what was re-distilled or kept, when, and how long
it took. Sets without lineage (distilled directly, or by older versions) load as before.

Multi-horizon
-------------
:func:`distill_horizons` resamples the base candles (:func:`~distillbt.data.resample.resample_candles`)
to several intervals, prepares and distils each, and stores one part per interval in one
artifact (``DistilledSet.part``); ``part_for(timeframe)`` gives back the single-horizon set
a model strategy fits on (the screen picks the part of the candles it screens).
"""

from __future__ import annotations

import base64
import datetime as _dt
import time
from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..data.candles import Candles
from ..errors import InputError
from ..features import FEATURE_DEFAULTS, Standardizer, make_features, valid_rows
from ..regimes import TrendVolatilityLabeller
from .artifact import ArtifactError, DistilledSet, fingerprint_candles
from .kernel import ridge_solution
from .registry import method_class
from .runner import _backend

__all__ = ["POLICIES", "UpdateReport", "ArtifactMismatchError", "update", "distill_horizons",
           "regime_shift", "reference_statistics", "WARM_STARTABLE"]

POLICIES = ("periodic", "incremental", "regime")
#: Methods whose ``fit`` accepts ``init_points``/``init_targets`` and the option counting
#: their iterations (what ``steps`` sets).
WARM_STARTABLE = {"gradient": "n_outer", "distribution": "n_iter", "kernel": "n_iter"}
_FROM_SCRATCH = ("size", "task", "random_state")


class ArtifactMismatchError(ArtifactError):
    """The artifact was distilled from another market (symbol) or candle interval than the
    candles given to update it."""


@dataclass
class UpdateReport:
    """What an update did and why, with timings (JSON-able through :meth:`to_dict`)."""

    policy: str
    action: str  # "none", "redistilled", "fine-tuned", "partial", "reweighted", "checked"
    reason: str
    new_rows: int = 0
    new_range: dict = field(default_factory=dict)
    window: dict = field(default_factory=dict)
    regimes: dict = field(default_factory=dict)
    mix: dict = field(default_factory=dict)
    closeness: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    redistilled: list = field(default_factory=list)
    kept: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def summary_lines(self) -> list[str]:
        lines = [f"policy:      {self.policy} → {self.action}: {self.reason}"]
        if self.new_rows:
            lines.append(f"new rows:    {self.new_rows} ({self.new_range.get('first')} → "
                         f"{self.new_range.get('last')})")
        if self.window:
            lines.append(f"window:      {self.window.get('rows')} rows ({self.window.get('first')} → "
                         f"{self.window.get('last')})")
        if self.mix:
            m = self.mix
            lines.append(f"regime mix:  TV {m['tv']:.3f}, chi-square {m['chi2']:.3f}, block-permutation p "
                         f"{m['p_value']:.4f} (threshold {m['threshold']:.3f} at alpha {m['alpha']}; "
                         f"{m['blocks_old']}+{m['blocks_new']} blocks of {m['block']} rows) → "
                         f"{'CHANGED' if m['changed'] else 'unchanged'}")
            lines.append("             old " + " ".join(f"{k} {v:.3f}" for k, v in m["old_shares"].items()))
            lines.append("             new " + " ".join(f"{k} {v:.3f}" for k, v in m["new_shares"].items()))
            lines.append(f"reference:   {'fingerprint verified' if m.get('reference_verified') else 'not verified'}")
        for name, r in self.regimes.items():
            if "p_value" in r:
                lines.append(f"  {name:<9} {r['status']:<12} stat {r['statistic']:.3f} (worst: {r['feature']}), "
                             f"p {r['p_value']:.4f} vs {r['alpha']:.4f}; rows old {r['rows_old']} new {r['rows_new']}")
            else:
                lines.append(f"  {name:<9} {r['status']:<12} {r.get('why', '')}")
        for key, value in self.closeness.items():
            lines.append(f"closeness:   {key} {value:.4g}" if isinstance(value, float) else f"closeness:   {key} {value}")
        lines.append("time:        " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        return lines


# -- the artifact's feature pipeline, on new candles ---------------------------------------
@dataclass
class _Rows:
    """Usable rows of candles in the artifact's feature space."""

    X: np.ndarray
    y: np.ndarray  # the artifact's task: scaled returns or 0/1 direction
    regime: np.ndarray
    times: pd.DatetimeIndex

    def select(self, mask) -> "_Rows":
        return _Rows(self.X[mask], self.y[mask], self.regime[mask], self.times[mask])

    def __len__(self) -> int:
        return len(self.X)


def _pipeline(meta: dict):
    try:
        labeller = TrendVolatilityLabeller.from_dict(meta["labeller"])
        scaler = Standardizer()
        scaler.mean_ = np.asarray(meta["scaler"]["mean"], dtype="float64")
        scaler.scale_ = np.asarray(meta["scaler"]["scale"], dtype="float64")
        scaler.n_features_in_ = len(scaler.mean_)
        names = list(meta["feature_names"])
        target_scale = float(meta.get("target_scale") or 1.0)
        task = meta["task"]
    except (KeyError, TypeError, ValueError) as error:
        raise ArtifactError(f"the distilled set's header cannot rebuild its features and labels: "
                            f"{error!r}") from None
    options = dict(meta.get("feature_options") or FEATURE_DEFAULTS)
    return labeller, scaler, names, target_scale, task, options


def _rows(meta: dict, candles: Candles, since=None) -> _Rows:
    """Usable rows of ``candles`` (from ``since`` on; earlier candles serve as warm-up)."""
    labeller, scaler, names, target_scale, task, options = _pipeline(meta)
    frame = candles.frame
    if since is not None:
        first = int(frame.index.searchsorted(pd.Timestamp(since)))
        frame = frame.iloc[_warm_start(labeller, options, first):]
    features = make_features(frame, **options)
    if list(features.names) != names:
        raise ArtifactError("the distilled set's feature names differ from the features distillbt "
                            "computes now: re-distil it")
    ok = valid_rows(features)
    labels = labeller.predict(frame).reindex(features.X.index)
    ok &= labels.notna().to_numpy()
    if since is not None:
        ok &= (features.X.index >= pd.Timestamp(since))
    target = features.target.to_numpy()[ok]
    y = target / target_scale if task == "regression" else features.direction.to_numpy()[ok]
    return _Rows(X=scaler.transform(features.X.to_numpy()[ok]), y=y,
                 regime=labels.to_numpy(dtype=object)[ok].astype(str), times=features.X.index[ok])


#: Candles of warm-up before the first new row, in labeller warm-ups: the labeller's
#: exponential averages and its forward filter carry memory beyond their nominal warm-up, so
#: new rows labelled from a shorter history would now and then be named differently than from
#: the whole series.
_LABEL_WARMUPS = 4


def _warm_start(labeller, options: dict, first: int) -> int:
    """Where to start computing features and labels so that row ``first`` on comes out as it
    would from the whole series: the features' longest window and several labeller warm-ups
    before it, at a multiple of the labeller's filter block (its blocks then fall where they
    fall on the whole series)."""
    windows = max(max(v) if isinstance(v, (list, tuple)) else int(v) for v in options.values())
    start = max(0, first - _LABEL_WARMUPS * labeller.warmup - windows - 1)
    step = int(getattr(labeller, "block", 1) or 1)
    return start - start % step


def _last_seen(meta: dict) -> pd.Timestamp:
    rng = meta.get("data_range") or {}
    if rng.get("last"):
        return pd.Timestamp(rng["last"])
    split = meta.get("split") or {}
    for part in ("test", "validation", "train"):
        if part in split:
            return pd.Timestamp(split[part]["last"])
    raise ArtifactError("the distilled set's header has no split or data range: cannot tell which candles are new")


def _regime_sources(meta: dict) -> dict:
    """Each regime's source period ``{"first", "last"}``: the training period unless updated."""
    sources = dict(meta.get("regime_sources") or {})
    train = (meta.get("split") or {}).get("train")
    for name in meta.get("regimes") or []:
        if name not in sources and train:
            sources[name] = {"first": train["first"], "last": train["last"]}
    return sources


def _check_market(meta: dict, candles: Candles) -> None:
    symbol, timeframe = meta.get("symbol"), meta.get("timeframe")
    if symbol is not None and symbol != candles.symbol:
        raise ArtifactMismatchError(f"the distilled set is of {symbol}, the candles are of {candles.symbol}: "
                                    "an update must use the same market")
    if timeframe is not None and timeframe != candles.timeframe:
        raise ArtifactMismatchError(f"the distilled set is of {timeframe} candles, these are {candles.timeframe}: "
                                    "an update must use the same interval")


def _verify_reference(meta: dict, candles: Candles) -> bool | None:
    """Whether ``candles`` begin with the very candles the artifact was distilled from (their
    fingerprint), None when that cannot be told (the source's last candle is unknown)."""
    frame = candles.frame
    last = (meta.get("data_range") or {}).get("last_candle") or (meta.get("reference") or {}).get("last_candle")
    if last is not None:
        stop = int(frame.index.searchsorted(pd.Timestamp(last), side="right"))
        return fingerprint_candles(frame.iloc[:stop]) == meta.get("fingerprint")
    try:
        stop = int(frame.index.searchsorted(_last_seen(meta), side="right"))
    except ArtifactError:
        return None
    return any(fingerprint_candles(frame.iloc[:stop + k]) == meta.get("fingerprint") for k in range(0, 4))


# -- distillation jobs ----------------------------------------------------------------------
def _seeds(seed: int, names: list[str]) -> dict:
    states = np.random.SeedSequence(seed).spawn(len(names))
    return {r: int(s.generate_state(1)[0]) for r, s in zip(names, states)}


def _job(method, kwargs, X, y, init):
    started = time.perf_counter()
    cls = method_class(method)
    distiller = cls(**kwargs)
    if init is None:
        distiller.fit(X, y)
    else:
        distiller.fit(X, y, init_points=init[0], init_targets=init[1])
    return {"X": distiller.X_, "y": distiller.y_, "weight": distiller.weight_, "n_iter": distiller.n_iter_,
            "converged": distiller.converged_, "seconds": time.perf_counter() - started}


def _run_jobs(specs: dict, *, n_jobs, backend, progress, desc):
    """``specs``: regime → (method, kwargs, X, y, init). Returns regime → result."""
    names = list(specs)
    jobs = [joblib.delayed(_job)(*specs[r]) for r in names]
    if not jobs:
        return {}
    if backend != "dask" and (len(jobs) == 1 or n_jobs == 1):
        # nothing to run in parallel: in this process (no worker start-up, no data shipped)
        return {r: _job(*specs[r]) for r in tqdm(names, disable=not progress, desc=desc, unit="regime",
                                                  leave=False)}
    with _backend(backend, n_jobs, None):
        results = list(tqdm(joblib.Parallel(return_as="generator")(jobs), total=len(jobs),
                            disable=not progress, desc=desc, unit="regime", leave=False))
    return dict(zip(names, results))


def _kwargs(meta: dict, size: int, seed: int, extra: dict | None = None) -> dict:
    config = {k: v for k, v in (meta.get("config") or {}).items() if k not in _FROM_SCRATCH}
    cls = method_class(meta["method"])
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    base = {k: v for k, v in {"size": size, "task": meta["task"], "random_state": seed}.items() if k in accepted}
    return {**config, **base, **(extra or {})}


def _points_of(parent: DistilledSet) -> dict:
    regimes = np.asarray(parent.regime).astype(str)
    return {r: np.flatnonzero(regimes == r) for r in dict.fromkeys(regimes)}


def _ridge_coef(X, y, w) -> np.ndarray:
    intercept, coef = ridge_solution(X, y, w / w.sum(), 1e-6)
    return np.append(intercept, coef)


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _assemble(parent: DistilledSet, parts: dict, regime_weight: dict, meta: dict) -> DistilledSet:
    """A set from per-regime ``(X, y, weight)`` parts in the parent's regime order, new last."""
    order = [r for r in (parent.meta.get("regimes") or []) if r in parts] + \
            [r for r in parts if r not in (parent.meta.get("regimes") or [])]
    meta = {**meta, "regimes": order}
    return DistilledSet(
        X=np.concatenate([parts[r][0] for r in order]),
        y=np.concatenate([parts[r][1] for r in order]),
        weight=np.concatenate([parts[r][2] if regime_weight is None or regime_weight.get(r) is None
                               else parts[r][2] / parts[r][2].sum() * regime_weight[r] for r in order]),
        regime=np.concatenate([np.full(len(parts[r][0]), r, dtype=object) for r in order]),
        meta=meta,
        # the parent's episodes stay: training-period windows, still before any later screen
        episodes=parent.episodes,
    )


# -- the tests of the regime policy ----------------------------------------------------------
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


def _share_memory(counts: np.ndarray, max_lag: int | None = None) -> float:
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


class _BlockStats:
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
    def from_rows(cls, X, regime, block: int, times=None) -> "_BlockStats":
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

    def reindex(self, names) -> "_BlockStats":
        """The same blocks over regimes ``names`` (zeros for regimes it has no rows of)."""
        names = [str(r) for r in names]
        B, d = self.blocks, self.s1.shape[2]
        n, s1, s2 = np.zeros((B, len(names))), np.zeros((B, len(names), d)), np.zeros((B, len(names), d))
        for j, r in enumerate(names):
            if r in self.names:
                k = self.names.index(r)
                n[:, j], s1[:, j], s2[:, j] = self.n[:, k], self.s1[:, k], self.s2[:, k]
        return _BlockStats(names, n, s1, s2, self.block, self.first, self.last)

    def only(self, keep) -> "_BlockStats":
        """The rows of regimes ``keep`` only; blocks left empty are dropped."""
        names = [r for r in self.names if r in set(map(str, keep)) and self.count(r)]
        out = self.reindex(names)
        full = out.n.sum(axis=1) > 0
        return _BlockStats(names, out.n[full], out.s1[full], out.s2[full], self.block, self.first, self.last)

    @staticmethod
    def concat(a: "_BlockStats", b: "_BlockStats") -> "_BlockStats":
        """``a``'s blocks, then ``b``'s (a reference made of several periods)."""
        names = sorted(set(a.names) | set(b.names))
        a, b = a.reindex(names), b.reindex(names)
        firsts = [t for t in (a.first, b.first) if t]
        lasts = [t for t in (a.last, b.last) if t]
        return _BlockStats(names, np.concatenate([a.n, b.n]), np.concatenate([a.s1, b.s1]),
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
                "cells": _encode(cells.astype("<i4")), "n": _encode(self.n.ravel()[cells].astype("<i4")),
                "s1": _encode(self.s1.reshape(-1, d)[cells].astype("<f8")),
                "s2": _encode(self.s2.reshape(-1, d)[cells].astype("<f8"))}

    @classmethod
    def from_json(cls, data: dict) -> "_BlockStats":
        try:
            names, B, d = list(data["regimes"]), int(data["blocks"]), int(data["features"])
            cells = _decode(data["cells"]).astype(np.intp)
            n, s1, s2 = np.zeros(B * len(names)), np.zeros((B * len(names), d)), np.zeros((B * len(names), d))
            n[cells] = _decode(data["n"])
            s1[cells] = _decode(data["s1"]).reshape(len(cells), d)
            s2[cells] = _decode(data["s2"]).reshape(len(cells), d)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ArtifactError(f"the distilled set's reference statistics are corrupt: {error!r}") from None
        return cls(names, n.reshape(B, len(names)), s1.reshape(B, len(names), d), s2.reshape(B, len(names), d),
                   int(data["block"]), data.get("first"), data.get("last"))


def _encode(values: np.ndarray) -> dict:
    values = np.ascontiguousarray(values)
    return {"dtype": values.dtype.str, "shape": list(values.shape),
            "data": base64.b64encode(values.tobytes()).decode("ascii")}


def _decode(data: dict) -> np.ndarray:
    dtype = np.dtype(data["dtype"])
    if dtype.kind not in "iuf" or dtype.hasobject:
        raise ValueError(f"unexpected dtype {data['dtype']!r}")
    return np.frombuffer(base64.b64decode(data["data"], validate=True), dtype=dtype).reshape(data["shape"])


#: Most blocks an artifact keeps as its reference: its header must not grow with the history
#: (256 blocks of the default 400 rows: the latest ~100k training rows, ~150 kB of JSON).
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
    out = _BlockStats.from_rows(X, regime, block, times).to_json()
    if last_candle is not None:
        out["last_candle"] = pd.Timestamp(last_candle).isoformat()
    return out


def _stored_reference(meta: dict, block: int) -> _BlockStats | None:
    """The artifact's reference statistics, if it has them at this block size and feature count."""
    data = meta.get("reference")
    if not isinstance(data, dict) or int(data.get("block", -1)) != int(block) or \
            int(data.get("features", -1)) != len(meta.get("feature_names") or []):
        return None
    return _BlockStats.from_json(data)


def regime_shift(old, new, *, block: int, alpha: float = 0.01, n_permutations: int = 1999,
                 min_rows: int = 200, seed: int = 0, feature_names=None) -> dict:
    """The two block-permutation tests of the regime policy (module docstring).

    ``old`` and ``new``: rows (features ``X`` and ``regime`` names, in time order) or their
    per-block statistics (what an artifact stores of its source rows). Returns ``{"mix":
    {...}, "regimes": {name: {...}}}`` with the statistics, p-values, thresholds and decisions.
    """
    rng = np.random.default_rng(seed)
    old = old if isinstance(old, _BlockStats) else _BlockStats.from_rows(old.X, old.regime, block)
    new = new if isinstance(new, _BlockStats) else _BlockStats.from_rows(new.X, new.regime, block)
    names = sorted(set(old.names) | set(new.names))
    old, new = old.reindex(names), new.reindex(names)
    n_bo, n_bn = old.blocks, new.blocks
    assign = _permutations(n_bo, n_bn, n_permutations, rng)
    A = assign.astype(float)

    # regime mix: how the shares of the two groups of blocks differ. Regimes outlast
    # a block, so runs of blocks as long as the shares' memory are permuted instead.
    memory = max(_share_memory(old.n), _share_memory(new.n))
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


# -- the update -------------------------------------------------------------------------------
def update(
    artifact: DistilledSet,
    candles: Candles,
    *,
    policy: str = "regime",
    window: int | None = None,
    steps: int = 20,
    seed: int | None = None,
    alpha: float = 0.01,
    block: int | None = None,
    n_permutations: int = 1999,
    min_rows: int = 200,
    grow: float | None = 2.0,
    compare: bool = False,
    verify: bool = True,
    n_jobs: int = 1,
    backend: str = "loky",
    progress: bool = False,
) -> tuple[DistilledSet, UpdateReport]:
    """Update ``artifact`` with ``candles`` by ``policy`` (module docstring).

    Parameters
    ----------
    artifact : DistilledSet
        The parent; never modified. A multi-horizon set is updated part by part (``candles``
        are resampled to each part's interval).
    candles : Candles
        The same market and interval as the artifact, including the candles after it (and,
        for ``policy="regime"``, the period it was distilled from).
    window : int, optional
        Candles of the rolling window of ``periodic`` and ``incremental`` (default: as many
        as the artifact was distilled from).
    steps : int
        Matching iterations of ``incremental``.
    seed : int, optional
        Seed of the distillation jobs (default: the artifact's) and of the permutations.
    alpha, block, n_permutations, min_rows
        The regime policy's tests: level, rows per block (default: the labeller's longest
        window), permutations, fewest new rows to test a regime.
    grow : float, optional
        Regime policy: when the mix changed, also re-distil a regime with ``grow`` times its
        source rows or more among the new rows (None: never).
    compare : bool
        ``incremental`` only: also run the full re-distillation (``periodic``) and report
        how close and how much slower it is.
    verify : bool
        ``regime`` only: refuse candles whose part up to the set's last candle does not have
        the set's fingerprint (other candles than it was distilled from). Candles that begin
        earlier than the set's source fail this check too: pass False then.

    Returns
    -------
    (DistilledSet, UpdateReport)
        With no new candles, the artifact itself and a report saying so.

    Raises
    ------
    ArtifactMismatchError
        Another symbol or candle interval.
    InputError
        Unknown policy, bad options, or (regime policy) candles that lack the artifact's
        source period.
    """
    # The work here is on small matrices (features × blocks, points × features): one BLAS
    # thread, as each joblib worker gets, is fastest; several oversubscribe a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        return _update(artifact, candles, policy=policy, window=window, steps=steps, seed=seed, alpha=alpha,
                       block=block, n_permutations=n_permutations, min_rows=min_rows, grow=grow, compare=compare,
                       verify=verify, n_jobs=n_jobs, backend=backend, progress=progress)


def _update(
    artifact: DistilledSet,
    candles: Candles,
    *,
    policy, window, steps, seed, alpha, block, n_permutations, min_rows, grow, compare, verify, n_jobs, backend,
    progress,
) -> tuple[DistilledSet, UpdateReport]:
    if policy not in POLICIES:
        raise InputError(f"unknown update policy {policy!r}: choose one of {', '.join(POLICIES)}")
    if artifact.part is not None:
        return _update_horizons(artifact, candles, policy=policy, window=window, steps=steps, seed=seed,
                                alpha=alpha, block=block, n_permutations=n_permutations, min_rows=min_rows,
                                grow=grow, compare=compare, verify=verify, n_jobs=n_jobs, backend=backend, progress=progress)
    for name, value, low in (("steps", steps, 1), ("n_permutations", n_permutations, 19), ("min_rows", min_rows, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name} must be an integer >= {low}, not {value!r}")
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2):
        raise InputError(f"window must be a number of candles >= 2, not {window!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, not {alpha!r}")
    if grow is not None and (isinstance(grow, bool) or not isinstance(grow, (int, float, np.number))
                             or not grow >= 1):
        raise InputError(f"grow must be a number >= 1 (or None), not {grow!r}")
    meta = artifact.meta
    _check_market(meta, candles)
    for key in ("method", "task"):
        if key not in meta:
            raise ArtifactError(f"the distilled set's header lacks {key!r}: cannot update it")
    started = time.perf_counter()
    seed = int(meta.get("seed", 0) if seed is None else seed)
    last_seen = _last_seen(meta)
    timings = {}

    t0 = time.perf_counter()
    after = last_seen + pd.Timedelta(1, "ns")
    rows = None
    if policy == "regime":
        new = _rows(meta, candles, since=after)
    else:
        # one pass over the window and the new candles: the window's rows, the new ones among them
        window = int(window or meta.get("n_source_candles") or len(candles))
        frame = candles.frame
        early = frame.index[max(0, len(frame) - window - 2)]
        rows = _rows(meta, candles, since=min(early, after))
        new = rows.select(rows.times >= after)
    timings["features"] = time.perf_counter() - t0
    if len(new) == 0:
        report = UpdateReport(policy=policy, action="none",
                              reason=f"no new candles after {last_seen.isoformat()}: the set is unchanged",
                              timings={"total": time.perf_counter() - started})
        return artifact, report
    new_range = {"first": new.times[0].isoformat(), "last": new.times[-1].isoformat(), "rows": len(new)}

    if policy == "regime":
        result, report = _regime_update(artifact, candles, new, seed=seed, alpha=alpha, block=block,
                                        n_permutations=n_permutations, min_rows=min_rows, grow=grow, n_jobs=n_jobs,
                                        backend=backend, progress=progress, timings=timings, verify=verify)
    else:
        result, report = _window_update(artifact, candles, new, rows, policy=policy, window=window, steps=steps,
                                        seed=seed, compare=compare, n_jobs=n_jobs, backend=backend,
                                        progress=progress, timings=timings)
    report.new_rows, report.new_range = len(new), new_range
    timings["total"] = time.perf_counter() - started
    if result is not artifact:
        entry = {
            "parent": artifact.content_fingerprint(), "policy": policy, "action": report.action,
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "data": {**new_range, "candles_fingerprint": fingerprint_candles(candles.frame)},
            "window": report.window or None, "redistilled": report.redistilled, "kept": report.kept,
            "reweighted": bool(report.mix.get("changed")) if report.mix else None,
            "seed": seed, "seconds": timings["total"],
        }
        lineage = list(artifact.meta.get("lineage") or []) + [entry]
        first = (artifact.meta.get("data_range") or {}).get("first") or \
            (artifact.meta.get("split") or {}).get("train", {}).get("first")
        result.meta.update({
            "lineage": lineage, "seconds": timings["total"],
            "fingerprint": fingerprint_candles(candles.frame.loc[:new.times[-1]]),
            "data_range": {"first": first, "last": new.times[-1].isoformat(),
                           "last_candle": new.times[-1].isoformat()},
            "feature_options": dict(artifact.meta.get("feature_options") or FEATURE_DEFAULTS),
        })
        result.meta["feature_options"] = {k: list(v) if isinstance(v, tuple) else v
                                          for k, v in result.meta["feature_options"].items()}
    return result, report


def _reference_block(meta: dict) -> int:
    """Rows per block of the artifact's stored reference statistics (the regime policy's default)."""
    ref = meta.get("reference")
    if isinstance(ref, dict) and ref.get("block"):
        return int(ref["block"])
    return int(_pipeline(meta)[0].warmup)


def _meta_after(parent: DistilledSet, *, sources: dict, jobs: list, n_source: int, reference=None) -> dict:
    meta = {k: v for k, v in parent.meta.items() if k not in ("payload_bytes", "compression_ratio", "format_version")}
    firsts = [pd.Timestamp(s["first"]) for s in sources.values()]
    lasts = [pd.Timestamp(s["last"]) for s in sources.values()]
    split = dict(meta.get("split") or {})
    split["train"] = {"first": min(firsts).isoformat(), "last": max(lasts).isoformat(),
                      "rows": int(sum(s.get("rows", 0) for s in sources.values()))}
    # validation/test periods belonged to the parent's data, not to the update's
    split = {k: v for k, v in split.items() if k in ("train", "fractions")}
    meta.update({"split": split, "regime_sources": sources, "jobs": jobs, "n_source_candles": int(n_source)})
    if reference is not None:
        meta["reference"] = reference.to_json()
    return meta


def _window_update(parent, candles, new, rows, *, policy, window, steps, seed, compare, n_jobs, backend,
                   progress, timings):
    meta = parent.meta
    window = int(window or meta.get("n_source_candles") or len(candles))
    frame = candles.frame
    stop = int(frame.index.searchsorted(new.times[-1], side="right"))
    start_time = frame.index[max(0, stop - window)]
    pool = rows.select((rows.times >= start_time) & (rows.times <= new.times[-1]))
    names = sorted(set(pool.regime), key=lambda r: -int((pool.regime == r).sum())) if meta.get("per_regime", True) \
        else ["all"]
    labels = pool.regime if meta.get("per_regime", True) else np.full(len(pool), "all")
    counts = {r: int((labels == r).sum()) for r in names}
    have = _points_of(parent)
    parent_order = list(meta.get("regimes") or [])
    seeds = _seeds(seed, parent_order + [r for r in names if r not in parent_order])
    method = meta["method"]
    warm = policy == "incremental" and method in WARM_STARTABLE

    def specs(incremental):
        out = {}
        for r in names:
            rows = labels == r
            size = len(have[r]) if r in have else max(1, parent.size // max(len(have), 1))
            size = min(size, counts[r]) if method != "exact-linear" else size
            init, extra = None, None
            if incremental and r in have and size == len(have[r]):
                init = (parent.X[have[r]], parent.y[have[r]])
                extra = {WARM_STARTABLE[method]: steps}
            out[r] = (method, _kwargs(meta, size, seeds[r], extra), pool.X[rows], pool.y[rows], init)
        return out

    def run(incremental, desc):
        t = time.perf_counter()
        results = _run_jobs(specs(incremental), n_jobs=n_jobs, backend=backend, progress=progress, desc=desc)
        return results, time.perf_counter() - t

    results, seconds = run(warm, f"update {policy}")
    timings["distil"] = seconds
    total = sum(counts.values())
    weighting = meta.get("weighting", "frequency")
    regime_weight = {r: counts[r] / total if weighting == "frequency" else 1 / len(names) for r in names}
    window_info = {"first": pool.times[0].isoformat(), "last": pool.times[-1].isoformat(), "rows": len(pool),
                   "candles": int(stop - frame.index.searchsorted(start_time))}
    sources = {r: {"first": window_info["first"], "last": window_info["last"], "rows": counts[r]} for r in names}
    jobs = [{"regime": r, "points": len(res["X"]), "training_rows": counts[r], "n_iter": res["n_iter"],
             "converged": res["converged"], "seconds": res["seconds"],
             "warm_start": bool(warm and r in have)} for r, res in results.items()]
    block = _reference_block(meta)
    new_meta = _meta_after(parent, sources=sources, jobs=jobs, n_source=window_info["candles"],
                           reference=_BlockStats.from_rows(pool.X, pool.regime, block, pool.times))
    new_meta["regimes"] = names

    def build(res):
        return _assemble(parent, {r: (v["X"], v["y"], v["weight"]) for r, v in res.items()}, regime_weight,
                         new_meta)

    result = build(results)
    if policy == "periodic":
        action, reason = "redistilled", f"re-distilled every regime from scratch on the latest {window} candles"
    elif warm:
        action, reason = "fine-tuned", (f"warm-started each regime from the parent's points, {steps} "
                                        f"{WARM_STARTABLE[method]} iterations on the latest {window} candles")
    else:
        action, reason = "redistilled", (f"{method} has nothing to warm-start (closed-form or a coreset): "
                                         f"recomputed on the latest {window} candles")
    # closeness: least-squares coefficients of each set against those of the window's real rows
    w_real = np.array([regime_weight[r] / counts[r] for r in labels]) if counts else None
    real = _ridge_coef(pool.X, pool.y.astype(float), w_real)
    closeness = {"parent_coef_rel_error": _rel(_ridge_coef(parent.X, parent.y, parent.weight), real),
                 "updated_coef_rel_error": _rel(_ridge_coef(result.X, result.y, result.weight), real)}
    if compare and policy == "incremental":
        full_results, full_seconds = run(False, "full re-distillation")
        full = build(full_results)
        closeness.update({
            "full_coef_rel_error": _rel(_ridge_coef(full.X, full.y, full.weight), real),
            "updated_vs_full_coef_rel_distance": _rel(_ridge_coef(result.X, result.y, result.weight),
                                                      _ridge_coef(full.X, full.y, full.weight)),
            "full_seconds": full_seconds, "speedup": full_seconds / max(seconds, 1e-9),
        })
    report = UpdateReport(policy=policy, action=action, reason=reason, window=window_info,
                          closeness=closeness, timings=timings, redistilled=names, kept=[])
    return result, report


def _regime_update(parent, candles, new, *, seed, alpha, block, n_permutations, min_rows, grow, n_jobs, backend,
                   progress, timings, verify=True):
    meta = parent.meta
    if not meta.get("per_regime", True):
        raise InputError("the regime policy needs a set distilled per regime (--per-regime); "
                         "use --policy periodic or incremental")
    labeller = _pipeline(meta)[0]
    block = int(block or labeller.warmup)
    sources = _regime_sources(meta)
    if not sources:
        raise ArtifactError("the distilled set's header names no source period: cannot compare regimes")
    t0 = time.perf_counter()
    first = min(pd.Timestamp(s["first"]) for s in sources.values())
    if candles.frame.index[0] > first:
        raise InputError(f"the regime policy compares the new candles with those the set was distilled from "
                         f"({first.isoformat()} on): give candles that include that period")
    verified = _verify_reference(meta, candles)
    if verified is False and verify:
        raise ArtifactMismatchError(
            "the candles up to the set's last one are not those it was distilled from (fingerprint differs): "
            "give the same series, extended (the same file or cache entry, starting where it started)")
    reference = _stored_reference(meta, block)
    if reference is None:
        # a set without stored statistics (or tested at another block size): recompute its rows
        history = _rows(meta, candles, since=first)
        keep = np.zeros(len(history), dtype=bool)
        for r, s in sources.items():
            keep |= (history.regime == r) & (history.times >= pd.Timestamp(s["first"])) & \
                    (history.times <= pd.Timestamp(s["last"]))
        # rows of regimes the set does not know, inside its overall source period, count for the mix
        span = (history.times >= first) & (history.times <= max(pd.Timestamp(s["last"]) for s in sources.values()))
        old = history.select(keep | (span & ~np.isin(history.regime, list(sources))))
        reference = _BlockStats.from_rows(old.X, old.regime, block, old.times)
    timings["features"] += time.perf_counter() - t0
    if reference.rows == 0:
        raise InputError("the candles hold none of the rows the set was distilled from: the regime policy "
                         "needs that period to compare with")
    new_stats = _BlockStats.from_rows(new.X, new.regime, block, new.times)

    t0 = time.perf_counter()
    tests = regime_shift(reference, new_stats, block=block, alpha=alpha, n_permutations=n_permutations, min_rows=min_rows,
                         seed=seed, feature_names=list(meta["feature_names"]))
    timings["detect"] = time.perf_counter() - t0
    regimes, mix = tests["regimes"], tests["mix"]
    have = _points_of(parent)
    changed = [r for r, v in regimes.items() if v["status"] == "changed" and r in have]
    appeared = [r for r, v in regimes.items() if v["status"] == "new" and (new.regime == r).sum() > 0]
    outgrown = []
    trained_on = {j.get("regime"): j.get("training_rows") for j in meta.get("jobs") or []}
    if grow is not None and mix["changed"]:
        for r, v in regimes.items():
            # the rows its points were distilled from (the reference keeps only the latest blocks)
            source_rows = int((sources.get(r) or {}).get("rows") or trained_on.get(r) or v["rows_old"])
            if r in have and r not in changed and v["rows_new"] >= max(min_rows, grow * source_rows):
                v["status"] = "outgrown"
                v["why"] = (f"{v['rows_new']} new rows, {v['rows_new'] / max(source_rows, 1):.1f}x its "
                            f"{source_rows} source rows, and the mix changed: re-distilled from the larger sample")
                outgrown.append(r)
    redo = changed + appeared + outgrown
    for r in regimes:
        if r in have and r not in redo:
            regimes[r].setdefault("why", "")
    mix["reference_verified"] = verified

    parent_order = list(meta.get("regimes") or [])
    seeds = _seeds(seed, parent_order + [r for r in redo if r not in parent_order])
    method = meta["method"]
    specs = {}
    for r in redo:
        rows = new.regime == r
        size = len(have[r]) if r in have else max(1, parent.size // max(len(have), 1))
        size = min(size, int(rows.sum())) if method != "exact-linear" else size
        specs[r] = (method, _kwargs(meta, size, seeds[r]), new.X[rows], new.y[rows], None)
    t0 = time.perf_counter()
    results = _run_jobs(specs, n_jobs=n_jobs, backend=backend, progress=progress, desc="update regime")
    timings["distil"] = time.perf_counter() - t0

    if not redo and not mix["changed"]:
        report = UpdateReport(
            policy="regime", action="checked", reason="no regime changed and the regime mix did not change: "
            "points and weights unchanged", regimes=regimes, mix=mix, timings=timings, kept=list(have))
        result = DistilledSet(X=parent.X, y=parent.y, weight=parent.weight, regime=parent.regime,
                              episodes=parent.episodes,
                              meta={k: v for k, v in meta.items()
                                    if k not in ("payload_bytes", "compression_ratio", "format_version")})
        return result, report

    # weights: the new shares when the mix changed (frequency weighting), else the parent's
    weighting = meta.get("weighting", "frequency")
    names = [r for r in parent_order if r in have] + [r for r in redo if r not in have]
    parts, regime_weight = {}, {}
    for r in names:
        if r in results:
            parts[r] = (results[r]["X"], results[r]["y"], results[r]["weight"])
        else:
            idx = have[r]
            parts[r] = (parent.X[idx], parent.y[idx], parent.weight[idx])
        if mix["changed"] or r not in have:
            if weighting == "frequency":
                regime_weight[r] = mix["new_shares"].get(r, 0.0)
            else:
                regime_weight[r] = 1.0 / len(names)
        else:
            regime_weight[r] = float(parent.weight[have[r]].sum())
    if not mix["changed"]:
        # re-distilled regimes keep their share; kept regimes keep their exact weights
        regime_weight = {r: (None if r not in results else regime_weight[r]) for r in names}
    else:
        total = sum(regime_weight.values())
        regime_weight = {r: v / total for r, v in regime_weight.items()}
    new_sources = {r: sources[r] for r in names if r in sources and r not in results}
    for r in results:
        new_sources[r] = {"first": new.times[0].isoformat(), "last": new.times[-1].isoformat(),
                          "rows": int((new.regime == r).sum())}
    jobs = [j for j in (meta.get("jobs") or []) if j.get("regime") in names and j.get("regime") not in results]
    jobs += [{"regime": r, "points": len(res["X"]), "training_rows": int((new.regime == r).sum()),
              "n_iter": res["n_iter"], "converged": res["converged"], "seconds": res["seconds"]}
             for r, res in results.items()]
    # the reference of the next update: the kept regimes' source rows, the re-distilled ones' new rows
    new_meta = _meta_after(parent, sources=new_sources, jobs=jobs,
                           n_source=int(meta.get("n_source_candles") or 0) + len(new),
                           reference=_BlockStats.concat(reference.only([r for r in reference.names if r not in results]),
                                                        new_stats.only(list(results))))
    result = _assemble(parent, parts, regime_weight, new_meta)
    if mix["changed"]:
        # kept regimes: their points and their weights within the regime are the parent's
        for r in names:
            if r not in results:
                regimes.setdefault(r, {})["why"] = "points kept; weight set to the new share"
    kept = [r for r in names if r not in results]
    why = []
    if changed:
        why.append("feature distribution changed in " + ", ".join(changed))
    if appeared:
        why.append("new regime(s) " + ", ".join(appeared))
    if outgrown:
        why.append("outgrew their source rows: " + ", ".join(outgrown))
    if mix["changed"]:
        why.append(f"regime mix changed (chi-square {mix['chi2']:.3f}, TV {mix['tv']:.3f}, p {mix['p_value']:.4f})")
    action = "partial" if redo else "reweighted"
    report = UpdateReport(policy="regime", action=action,
                          reason="; ".join(why) + (f": re-distilled {', '.join(redo)}, kept {', '.join(kept) or '-'}"
                                                   if redo else ": weights updated, points kept"),
                          regimes=regimes, mix=mix, timings=timings, redistilled=redo, kept=kept)
    return result, report


def _update_horizons(artifact, candles, **options):
    from ..data.resample import resample_candles

    parts, reports = {}, {}
    for tf in artifact.timeframes:
        part = artifact.part_for(tf)
        parts[tf], reports[tf] = update(part, resample_candles(candles, tf), **options)
    first = next(iter(reports.values()))
    report = UpdateReport(policy=first.policy, action=",".join(f"{tf}:{r.action}" for tf, r in reports.items()),
                          reason="; ".join(f"{tf}: {r.reason}" for tf, r in reports.items()),
                          new_rows=sum(r.new_rows for r in reports.values()),
                          regimes={f"{tf}/{k}": v for tf, r in reports.items() for k, v in r.regimes.items()},
                          timings={"total": sum(r.timings.get("total", 0.0) for r in reports.values())},
                          redistilled=[f"{tf}/{x}" for tf, r in reports.items() for x in r.redistilled],
                          kept=[f"{tf}/{x}" for tf, r in reports.items() for x in r.kept])
    if all(r.action == "none" for r in reports.values()):
        return artifact, report
    keep = {k: v for k, v in artifact.meta.items() if k not in ("horizons", "timeframes", "regimes",
                                                                 "n_source_candles", "payload_bytes",
                                                                 "compression_ratio", "format_version")}
    combined = DistilledSet.combine_horizons(parts, meta=keep)
    combined.meta["lineage"] = list(artifact.meta.get("lineage") or []) + [{
        "parent": artifact.content_fingerprint(), "policy": first.policy, "action": report.action,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "data": {"first": candles.start.isoformat(), "last": candles.end.isoformat(),
                 "candles_fingerprint": fingerprint_candles(candles.frame)},
        "parts": {tf: r.action for tf, r in reports.items()}}]
    return combined, report


# -- multi-horizon distillation ---------------------------------------------------------------
def distill_horizons(candles: Candles, timeframes, *, progress: bool = False, fractions=None,
                     **distill_options) -> DistilledSet:
    """Distil ``candles`` resampled to each of ``timeframes`` into one multi-horizon set.

    Each interval is prepared on its own (features, split, scaler and labeller on its own
    candles) and distilled with ``distill_options`` (those of
    :func:`~distillbt.distill.runner.distill`); every part weighs the same in the set.
    """
    from ..data.resample import resample_candles
    from .prepare import DEFAULT_FRACTIONS, prepare
    from .runner import distill

    timeframes = [str(tf).strip() for tf in timeframes if str(tf).strip()]
    if not timeframes:
        raise InputError("give at least one timeframe")
    if len(set(timeframes)) != len(timeframes):
        raise InputError(f"timeframes repeat: {', '.join(timeframes)}")
    sets = {}
    for tf in tqdm(timeframes, disable=not progress, desc="horizons", unit="timeframe", leave=False):
        resampled = resample_candles(candles, tf)
        try:
            data = prepare(resampled, fractions=fractions or DEFAULT_FRACTIONS)
        except InputError as error:
            raise InputError(f"{tf}: {len(resampled)} candles after resampling: {error}") from None
        sets[tf] = distill(data, progress=False, **distill_options)
        sets[tf].meta["feature_options"] = {k: list(v) for k, v in FEATURE_DEFAULTS.items()}
    return DistilledSet.combine_horizons(
        sets, meta={"timeframe": candles.timeframe, "fingerprint": fingerprint_candles(candles.frame),
                    "seconds": sum(s.meta.get("seconds", 0.0) for s in sets.values())})
