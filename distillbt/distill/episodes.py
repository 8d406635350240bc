"""Distilled episodes: a few regime-representative candle windows of the training period.

::

    eps = select_episodes(candles, start=0, stop=250_000, length=500, warmup=400,
                          budget_bars=5_000, pool_factor=4, summary_names=[...], seed=0)
    eps.n, eps.bars, eps.regime_names[eps.regimes]       # ordered: any prefix is a smaller set
    arrays = eps.to_arrays(); same = Episodes.from_arrays(arrays)   # numpy only, no pickle
    eps = training_episodes(prepare(candles), n=6)   # what ``distill --episodes 6`` stores

Plain strategies' surrogates (:mod:`distillbt.surrogate`) are trained on a strategy's own
decisions over these windows. A distilled set can carry them (``DistilledSet.episodes``,
stored in its ``.npz`` as plain arrays), and ``screen --distilled`` then uses them instead of
choosing its own.

How they are chosen
-------------------
1. The training period is cut into non-overlapping candidate windows of ``length`` scored bars
   (a seeded offset), each with the ``warmup`` bars before it; each window gets the regime
   most of its bars carry (``TrendVolatilityLabeller`` fitted on the training period, windows
   scaled down on short histories).
2. Each window is summarised by the mean and standard deviation, over its bars, of indicator
   bank columns (the kinds the configurations use, at their periods), standardised.
3. Per regime, kernel herding (RBF kernel, median-distance bandwidth) orders the windows so
   that every prefix matches the regime's mean embedding of those summaries: the first few
   cover the joint distribution of the features, later ones fill in what is missing.
4. Regimes share the episodes in proportion to the square root of their share of bars (rare
   regimes such as crashes keep a voice), at least one each; the regimes' lists are
   interleaved so that **every prefix of the result is itself a balanced selection** — the
   base set is the first ``budget_bars / length`` episodes, escalation takes the next ones.
   ``weights(n)`` gives each regime its share of training bars, split equally between its
   episodes among the first ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.candles import COLUMNS
from ..errors import InputError
from ..indicators import IndicatorBank

__all__ = ["Episodes", "select_episodes", "training_episodes", "DEFAULT_EPISODE_WARMUP"]

#: Warm-up bars stored before each episode by default: the most the surrogate feeds any
#: configuration (its longest indicator window + 10 bars, capped there).
DEFAULT_EPISODE_WARMUP = 1000


@dataclass
class Episodes:
    """Candle windows (warm-up + scored bars) in selection order.

    ``source_start[i]`` is the candle index (in the series they came from) of episode ``i``'s
    first scored bar; its stored rows are ``rows(i)`` = ``warmup`` bars before it then
    ``length[i]`` scored bars. ``time_ns`` and ``ohlcv`` (columns open, high, low, close,
    volume) hold every episode's rows back to back; ``offsets[i]:offsets[i+1]`` are episode
    ``i``'s.
    """

    source_start: np.ndarray
    length: np.ndarray
    warmup: np.ndarray
    regimes: np.ndarray
    regime_share: np.ndarray
    regime_names: tuple
    time_ns: np.ndarray
    ohlcv: np.ndarray
    offsets: np.ndarray

    @property
    def n(self) -> int:
        return len(self.source_start)

    @property
    def bars(self) -> int:
        """Scored bars over all episodes."""
        return int(self.length.sum())

    def rows(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def frame(self, i: int) -> pd.DataFrame:
        """Episode ``i``'s candles (warm-up included) as a UTC-indexed OHLCV frame."""
        r = self.rows(i)
        index = pd.DatetimeIndex(pd.to_datetime(self.time_ns[r], utc=True))
        return pd.DataFrame(self.ohlcv[r], index=index, columns=list(COLUMNS))

    def weights(self, n: int | None = None) -> np.ndarray:
        """Weights of the first ``n`` episodes: each regime's share of training bars, split
        equally between its episodes in that prefix; sums to 1."""
        n = self.n if n is None else int(n)
        reg = self.regimes[:n]
        share = self.regime_share[:n].astype(float)
        counts = np.bincount(reg, minlength=len(self.regime_names))[reg]
        w = share / counts
        return w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / max(n, 1))

    def subset(self, index) -> Episodes:
        index = np.asarray(index, dtype=int)
        parts = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=int)
        sizes = [len(p) for p in parts]
        return Episodes(self.source_start[index], self.length[index], self.warmup[index],
                        self.regimes[index], self.regime_share[index], self.regime_names,
                        self.time_ns[rows], self.ohlcv[rows],
                        np.concatenate(([0], np.cumsum(sizes))).astype(np.int64))

    def extended(self, other: Episodes) -> Episodes:
        """These episodes followed by ``other``'s (indices of these ones unchanged)."""
        return Episodes(np.concatenate((self.source_start, other.source_start)),
                        np.concatenate((self.length, other.length)), np.concatenate((self.warmup, other.warmup)),
                        np.concatenate((self.regimes, other.regimes)),
                        np.concatenate((self.regime_share, other.regime_share)), self.regime_names,
                        np.concatenate((self.time_ns, other.time_ns)), np.concatenate((self.ohlcv, other.ohlcv)),
                        np.concatenate((self.offsets, self.offsets[-1] + other.offsets[1:])).astype(np.int64))

    def first_scored_ns(self) -> np.ndarray:
        """Time (ns since the epoch, UTC) of each episode's first scored bar."""
        return self.time_ns[self.offsets[:-1] + self.warmup]

    def located_in(self, frame: pd.DataFrame) -> Episodes:
        """A copy whose ``source_start`` are positions in ``frame`` (matched by time; -1 where
        the time is not there): episodes stored with a distilled set, used on other candles."""
        index = pd.DatetimeIndex(frame.index).as_unit("ns")
        where = index.get_indexer(pd.DatetimeIndex(pd.to_datetime(self.first_scored_ns(), utc=True)).as_unit("ns"))
        return Episodes(where.astype(np.int64), self.length, self.warmup, self.regimes, self.regime_share,
                        self.regime_names, self.time_ns, self.ohlcv, self.offsets)

    def summary(self) -> dict:
        """JSON-able description (what a distilled set's header says of its episodes)."""
        first = pd.to_datetime(self.time_ns[0], utc=True).isoformat() if self.n else None
        last = pd.to_datetime(self.time_ns[-1], utc=True).isoformat() if self.n else None
        return {"n": self.n, "scored_bars": self.bars, "stored_bars": int(len(self.ohlcv)),
                "length": [int(v) for v in np.unique(self.length)], "warmup": int(self.warmup.max(initial=0)),
                "regimes": [self.regime_names[r] for r in self.regimes], "first": first, "last": last,
                "bytes": int(sum(a.nbytes for a in self.to_arrays().values()))}

    def to_arrays(self, prefix: str = "episodes_") -> dict:
        """Plain numpy arrays (no objects): store them in an ``.npz`` beside other arrays."""
        names = np.array(self.regime_names, dtype=np.str_)
        return {f"{prefix}{k}": v for k, v in (
            ("source_start", self.source_start.astype(np.int64)),
            ("length", self.length.astype(np.int64)), ("warmup", self.warmup.astype(np.int64)),
            ("regimes", self.regimes.astype(np.int16)), ("regime_share", self.regime_share.astype(np.float64)),
            ("regime_names", names), ("time_ns", self.time_ns.astype(np.int64)),
            ("ohlcv", self.ohlcv.astype(np.float64)), ("offsets", self.offsets.astype(np.int64)),
            ("weights", self.weights()))}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "episodes_") -> Episodes:
        try:
            get = lambda k: np.asarray(arrays[f"{prefix}{k}"])  # noqa: E731
            eps = cls(get("source_start"), get("length"), get("warmup"), get("regimes").astype(int),
                      get("regime_share"), tuple(str(x) for x in get("regime_names")),
                      get("time_ns"), get("ohlcv"), get("offsets"))
        except KeyError as exc:
            raise InputError(f"episode arrays are missing {exc.args[0]!r}") from None
        if eps.ohlcv.ndim != 2 or eps.ohlcv.shape[1] != 5 or len(eps.offsets) != eps.n + 1 \
                or eps.offsets[-1] != len(eps.ohlcv) or len(eps.time_ns) != len(eps.ohlcv) \
                or not len(eps.length) == len(eps.warmup) == len(eps.regimes) == len(eps.regime_share) == eps.n \
                or not np.array_equal(np.diff(eps.offsets), eps.warmup + eps.length) \
                or (eps.n and not 0 <= eps.regimes.min() <= eps.regimes.max() < len(eps.regime_names)):
            raise InputError("episode arrays are inconsistent (shapes or offsets)")
        return eps


def _labels(frame: pd.DataFrame, start: int, stop: int) -> tuple[np.ndarray, tuple]:
    """Regime code per candle of ``frame[:stop]`` (-1 unlabelled) from a labeller fitted on
    ``[start, stop)``; windows shrink on short histories so that most bars get a label."""
    from ..regimes import TrendVolatilityLabeller

    n = stop - start
    scale = min(1.0, n / 40_000)
    kw = dict(trend_window=max(48, int(768 * scale)), vol_window=max(16, int(96 * scale)),
              long_vol_window=max(60, int(960 * scale)))
    try:
        try:
            labeller = TrendVolatilityLabeller(**kw)
        except TypeError:  # the labeller's parameters changed: its defaults, then
            labeller = TrendVolatilityLabeller()
        labeller = labeller.fit(frame.iloc[start:stop])
        labels = labeller.predict(frame.iloc[:stop])
    except Exception:  # noqa: BLE001 - too little or too flat data: one regime, said so
        return np.zeros(stop, dtype=int), ("all",)
    # Through the categorical codes: converting every label to a string first took longer
    # than labelling.
    labels = pd.Categorical(labels)
    raw = np.asarray(labels.codes, dtype=int)
    used = np.unique(raw[raw >= 0])
    names = tuple(sorted(str(labels.categories[c]) for c in used))
    if not names:
        return np.zeros(stop, dtype=int), ("all",)
    remap = np.full(len(labels.categories), -1)
    remap[used] = [names.index(str(labels.categories[c])) for c in used]
    return np.where(raw >= 0, remap[raw], -1), names


def _herding(Z: np.ndarray, k: int) -> list[int]:
    """Kernel herding order of the rows of ``Z`` (first ``k``)."""
    m = len(Z)
    if m == 0 or k <= 0:
        return []
    sq = (Z**2).sum(1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0.0)
    med = np.median(D[np.triu_indices(m, 1)]) if m > 1 else 1.0
    K = np.exp(-D / (med if med > 0 else 1.0))
    mu = K.mean(axis=1)
    acc = np.zeros(m)
    chosen: list[int] = []
    free = np.ones(m, dtype=bool)
    for t in range(min(k, m)):
        score = np.where(free, mu - acc / (t + 1), -np.inf)
        i = int(np.argmax(score))
        chosen.append(i)
        free[i] = False
        acc += K[i]
    return chosen


def windows_as_episodes(candles, starts, *, length: int, warmup: int, regime_names=("all",)) -> Episodes:
    """Episodes at given candle positions (first scored bar ``starts[i]``; ``warmup`` bars
    before each, fewer at the very start of the data): the windows escalation picks."""
    frame = candles.frame if hasattr(candles, "frame") else candles
    src = frame[list(COLUMNS)].to_numpy(dtype=np.float64)
    ns = pd.DatetimeIndex(frame.index).as_unit("ns").asi8
    rows, warm, sizes = [], [], []
    for s in starts:
        s = int(s)
        w = min(int(warmup), s)
        rows.append(np.arange(s - w, s + length))
        warm.append(w)
        sizes.append(w + length)
    rows_all = np.concatenate(rows) if rows else np.zeros(0, dtype=int)
    k = len(sizes)
    return Episodes(np.asarray(starts, dtype=np.int64), np.full(k, length, dtype=np.int64),
                    np.asarray(warm, dtype=np.int64), np.zeros(k, dtype=int), np.zeros(k),
                    tuple(regime_names), ns[rows_all], src[rows_all],
                    np.concatenate(([0], np.cumsum(sizes))).astype(np.int64))


def select_episodes(candles, *, start: int, stop: int, length: int, warmup: int, budget_bars: int,
                    pool_factor: float = 4.0, summary_names=None, seed: int = 0) -> tuple[Episodes, int]:
    """Choose episodes from candles ``[start, stop)`` (the training period); see the module.

    Returns ``(episodes, n_base)``: the ordered pool (``pool_factor`` times the base budget,
    as many as fit) and how many of its first episodes make the base budget of
    ``budget_bars`` scored bars.
    """
    frame = candles.frame if hasattr(candles, "frame") else candles
    if not (0 <= start < stop <= len(frame)):
        raise InputError(f"episode period [{start}, {stop}) is outside the {len(frame)} candles")
    length, warmup = int(length), int(warmup)
    if length < 2 or warmup < 0:
        raise InputError("episode length must be >= 2 and warm-up >= 0")
    rng = np.random.default_rng(seed)
    first = start + warmup
    if stop - first < length:
        # A short history: one episode as long as what there is.
        length = max(2, stop - first)
        if stop - first < 2:
            raise InputError(f"the training period ({stop - start} candles) is too short for "
                             f"episodes with {warmup} warm-up bars")
    offset = int(rng.integers(0, max(1, min(length, stop - first - length + 1))))
    starts = np.arange(first + offset, stop - length + 1, length)
    if len(starts) == 0:
        starts = np.array([first])
    codes, names = _labels(frame, start, stop)

    # Window summaries: mean and std of bank columns over each window's scored bars.
    names_ = list(summary_names or ["ret:1", "rsi:14", "sma_dist:20", "sma_dist:100", "bb_z:20",
                                    "vol:20", "dc_up:20", "dc_lo:20", "mom:20", "macd_hist"])
    lo = max(0, start - 0)
    X = IndicatorBank(names_).transform(frame.iloc[lo:stop]).astype(np.float64)
    idx = (starts[:, None] - lo) + np.arange(length)[None, :]
    W = X[idx]  # (windows, length, columns)
    with np.errstate(invalid="ignore"):
        summary = np.concatenate([np.nanmean(W, axis=1), np.nanstd(W, axis=1)], axis=1)
    summary = np.nan_to_num(summary)
    sd = summary.std(axis=0)
    Z = (summary - summary.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    win_codes = np.full(len(starts), -1)
    for i, s in enumerate(starts):
        seg = codes[s:s + length]
        seg = seg[seg >= 0]
        if len(seg):
            win_codes[i] = int(np.bincount(seg, minlength=len(names)).argmax())
    if (win_codes < 0).all():
        win_codes[:] = 0
    else:
        win_codes[win_codes < 0] = np.bincount(win_codes[win_codes >= 0]).argmax()

    labelled = codes[start:stop]
    labelled = labelled[labelled >= 0]
    share = np.bincount(labelled, minlength=len(names)) / max(len(labelled), 1) if len(labelled) \
        else np.full(len(names), 1.0 / len(names))
    n_base = max(1, math.ceil(budget_bars / length))
    n_pool = min(len(starts), max(n_base, int(math.ceil(n_base * pool_factor))))
    present = [r for r in range(len(names)) if (win_codes == r).any()]
    root = np.array([math.sqrt(max(share[r], 1e-9)) for r in present])
    quota = {r: (root[i] / root.sum()) for i, r in enumerate(present)}

    # Per regime herding order, interleaved by fractional rank so every prefix is balanced.
    keyed = []
    for r in present:
        members = np.flatnonzero(win_codes == r)
        order = _herding(Z[members], len(members))
        for rank, j in enumerate(order):
            # the first episode of every regime comes first (at least one each), then by quota
            keyed.append((0 if rank == 0 else 1, (rank + 0.5) / quota[r], r, int(members[j])))
    keyed.sort()
    chosen = [k[3] for k in keyed[:n_pool]]

    # Store rows [s - warmup, s + length) (fewer warm-up bars at the very start of the data).
    src = frame[list(COLUMNS)].to_numpy(dtype=np.float64)
    ns = pd.DatetimeIndex(frame.index).as_unit("ns").asi8
    rows, warm, sizes = [], [], []
    for j in chosen:
        s = int(starts[j])
        w = min(warmup, s)
        rows.append(np.arange(s - w, s + length))
        warm.append(w)
        sizes.append(w + length)
    rows_all = np.concatenate(rows)
    eps = Episodes(
        source_start=starts[chosen].astype(np.int64), length=np.full(len(chosen), length, dtype=np.int64),
        warmup=np.asarray(warm, dtype=np.int64), regimes=win_codes[chosen].astype(int),
        regime_share=share[win_codes[chosen]], regime_names=tuple(names),
        time_ns=ns[rows_all], ohlcv=src[rows_all],
        offsets=np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
    )
    return eps, min(n_base, eps.n)


def training_episodes(data, *, n: int = 6, length: int = 400, warmup: int = DEFAULT_EPISODE_WARMUP,
                      source_bars: int | None = 120_000, seed: int = 0) -> Episodes:
    """The first ``n`` episodes :func:`select_episodes` orders from the training period of
    ``data`` (a :class:`~distillbt.distill.prepare.PreparedData`) — its last ``source_bars``
    candles (None: all), up to the candle of its last training row — with ``warmup`` bars
    before each; window summaries at generic indicator periods (the screen, which knows the
    configurations, uses theirs when it chooses episodes itself). What ``distill --episodes``
    stores with a distilled set: the base episodes of plain strategies' surrogates."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"the number of episodes must be an integer >= 1, not {n!r}")
    frame = data.candles.frame
    train = data.parts["train"]
    stop = int(frame.index.get_loc(data.times[train][-1])) + 1
    start = 0 if source_bars is None else max(0, stop - int(source_bars))
    eps, _ = select_episodes(frame, start=start, stop=stop, length=length, warmup=warmup,
                             budget_bars=int(n) * int(length), pool_factor=1.0, seed=seed)
    return eps.subset(np.arange(min(int(n), eps.n)))
