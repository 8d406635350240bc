"""The rule labeller: trend × volatility rules on causal rolling statistics.

:class:`RuleLabeller` (the default before the regime filter, whose EM it starts) computes four
rolling statistics at every candle, each from the window of candles ending at it (``r`` is
the 1-bar log return, ``σ_w`` the standard deviation of ``r`` over the last ``w`` bars, ``p``
the log close):

=============== =============================================================================
``trend``       ``(p[t] - p[t-W]) / (σ_W · sqrt(W))`` with ``W = trend_window``: the move over
                the window in units of the noise expected over it (a t-statistic)
``log_vol``     ``log σ_v`` with ``v = vol_window``: the current volatility
``drawdown``    ``(p[t] - max p over the last L bars) / (σ_L · sqrt(L))`` with
                ``L = long_vol_window``: how far below its recent high the price is
``range``       ``(max p - min p over the last L bars) / (σ_L · sqrt(L))``: how wide the
                recent range is compared with a random walk of the same volatility
=============== =============================================================================

:meth:`~RuleLabeller.fit` learns one threshold per statistic from the *training* candles
alone (it never sees the period it will label):

- *high volatility* starts where the turbulent component of a two-component Gaussian mixture
  fitted to the training ``log_vol`` (:func:`mixture_split`) becomes the more likely one,
  kept between the 65 % and 95 % training quantiles (so a unimodal volatility still gives
  5–35 % high-volatility candles); setting ``high_vol_share`` instead uses a plain quantile:
  that share of training candles;
- among those, the ``crash_share`` with the deepest ``drawdown`` set the crash threshold;
- among the other (calm) candles, the ``bull_share`` with the strongest ``trend`` set the
  bull threshold, the ``bear_share`` with the weakest the bear threshold, and the
  ``range_share`` with the narrowest ``range`` the range-bound threshold.

:meth:`~RuleLabeller.predict` then names each candle, first rule that applies:

1. ``crash``: high volatility and a drawdown at or below the crash threshold;
2. ``volatile``: high volatility;
3. ``sideways``: a range-bound market whose ``|trend|`` is below ``range_trend_factor``
   times the larger (in absolute value) of the bull and bear thresholds — a narrow range
   needs an unusually strong move before it counts as a trend;
4. ``bull``: trend above the bull threshold; ``bear``: trend below the bear threshold;
5. ``sideways`` otherwise.

Warm-up: the first ``max(trend_window, vol_window, long_vol_window)`` candles of the series
given to ``predict`` have no full window; they are labelled missing (NaN), never guessed.
Predict over the whole history and slice the period you need, rather than predicting a
period on its own (which would cost it a warm-up).

Why a mixture rather than a fixed share, how the defaults were chosen and how well it agrees
with the sample market's regimes: ``docs/regimes.md``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._params import ParamsMixin
from ..errors import InputError
from ..features import ohlcv_frame
from .formats import LEGACY_RULE_FORMAT, RULE_FORMAT, number_or_none, plain
from .names import BEAR, BULL, CRASH, REGIME_NAMES, SIDEWAYS, VOLATILE

__all__ = ["RuleLabeller", "MIN_FIT_ROWS", "mixture_split"]

_STATISTICS = ("trend", "log_vol", "drawdown", "range")
_THRESHOLDS = ("high_vol", "crash_drawdown", "bull_trend", "bear_trend", "narrow_range")
_WINDOWS = ("trend_window", "vol_window", "long_vol_window")
_SHARES = ("high_vol_share", "crash_share", "bull_share", "bear_share", "range_share")
#: Fewest complete (post-warm-up) training candles fit accepts: quantiles of fewer are noise.
MIN_FIT_ROWS = 100
#: Bounds of the mixture split of the volatility, as training quantiles.
_MIXTURE_QUANTILES = (0.65, 0.95)


class RuleLabeller(ParamsMixin):
    """Name each candle bull, bear, sideways, volatile or crash from causal rolling statistics.

    The statistics, thresholds and rules are described in the module docstring.

    Parameters
    ----------
    trend_window : int
        Bars of the trend statistic.
    vol_window : int
        Bars of the current volatility.
    long_vol_window : int
        Bars of the drawdown and range statistics (and of the volatility that scales them).
    high_vol_share : float, optional
        Share of training candles with the highest volatility called high volatility. Default
        None: the two-component mixture split described in the module docstring.
    crash_share : float
        Share of the high-volatility training candles with the deepest drawdown that sets the
        crash threshold.
    bull_share, bear_share : float
        Shares of the calm training candles with the strongest rising / falling trend that set
        the bull / bear thresholds (``bull_share + bear_share < 1``).
    range_share : float
        Share of the calm training candles with the narrowest range called range-bound;
        0 switches the range rule off.
    range_trend_factor : float
        How much stronger than the usual threshold a trend must be to count in a range-bound
        market (≥ 1).

    Attributes
    ----------
    thresholds_ : dict of str to float
        ``high_vol`` (log volatility), ``crash_drawdown``, ``bull_trend``, ``bear_trend``,
        ``narrow_range`` (None when ``range_share`` is 0: the range rule is off).
    train_shares_ : dict of str to float
        Share of each regime among the labelled training candles (a sanity check).
    n_train_ : int
        Training candles with complete statistics (after the warm-up).
    """

    _repr_changed_only = True

    def __init__(
        self,
        *,
        trend_window: int = 768,
        vol_window: int = 96,
        long_vol_window: int = 960,
        high_vol_share: float | None = None,
        crash_share: float = 0.15,
        bull_share: float = 0.35,
        bear_share: float = 0.25,
        range_share: float = 0.35,
        range_trend_factor: float = 2.0,
    ):
        self.trend_window = trend_window
        self.vol_window = vol_window
        self.long_vol_window = long_vol_window
        self.high_vol_share = high_vol_share
        self.crash_share = crash_share
        self.bull_share = bull_share
        self.bear_share = bear_share
        self.range_share = range_share
        self.range_trend_factor = range_trend_factor

    # ------------------------------------------------------------------ sklearn protocol

    @property
    def warmup(self) -> int:
        """Leading candles of a series that get no label: the longest window."""
        self._check_params()
        return max(self.trend_window, self.vol_window, self.long_vol_window)

    # ------------------------------------------------------------------ work

    def statistics(self, candles_or_frame) -> pd.DataFrame:
        """The causal rolling statistics ``trend log_vol drawdown range``, one row per candle.

        NaN during the warm-up (and where the volatility is 0: frozen prices).
        """
        self._check_params()
        frame = ohlcv_frame(candles_or_frame)
        log_close = pd.Series(np.log(frame["close"].to_numpy()))
        r = log_close.diff()
        tw, vw, lw = self.trend_window, self.vol_window, self.long_vol_window
        with np.errstate(divide="ignore", invalid="ignore"):
            trend = log_close.diff(tw) / (r.rolling(tw).std() * math.sqrt(tw))
            log_vol = np.log(r.rolling(vw).std())
            noise = r.rolling(lw).std() * math.sqrt(lw)
            high = log_close.rolling(lw).max()
            drawdown = (log_close - high) / noise
            width = (high - log_close.rolling(lw).min()) / noise
        stats = pd.DataFrame(
            {"trend": trend.to_numpy(), "log_vol": log_vol.to_numpy(),
             "drawdown": drawdown.to_numpy(), "range": width.to_numpy()},
            index=frame.index,
        )
        return stats.where(np.isfinite(stats))

    def fit(self, candles_or_frame, y=None) -> RuleLabeller:
        """Learn the thresholds from the training candles (``y`` is ignored).

        Pass the training period only: nothing after it may influence the thresholds.

        Raises
        ------
        InputError
            Bad parameters, input that is not candles, or fewer than ``MIN_FIT_ROWS`` (100)
            candles after the warm-up.
        """
        return self.fit_statistics(self.statistics(candles_or_frame))

    def fit_statistics(self, stats: pd.DataFrame) -> RuleLabeller:
        """:meth:`fit` from :meth:`statistics` already computed on the training candles."""
        complete = stats.notna().all(axis=1).to_numpy()
        n = int(complete.sum())
        if n < MIN_FIT_ROWS:
            raise InputError(
                f"{len(stats)} candles leave {n} after the {self.warmup}-candle warm-up; "
                f"fitting needs at least {MIN_FIT_ROWS}"
            )
        s = {name: stats[name].to_numpy()[complete] for name in _STATISTICS}
        if self.high_vol_share is None:
            high_vol = float(np.clip(mixture_split(s["log_vol"]),
                                     *np.quantile(s["log_vol"], _MIXTURE_QUANTILES)))
        else:
            high_vol = float(np.quantile(s["log_vol"], 1 - self.high_vol_share))
        hot = s["log_vol"] > high_vol
        calm = ~hot
        if hot.sum() == 0 or calm.sum() == 0:
            # Only when the volatility takes a single value (e.g. a constant-step series).
            raise InputError("the training volatility does not vary: cannot learn a threshold")
        self.thresholds_ = {
            "high_vol": high_vol,
            "crash_drawdown": float(np.quantile(s["drawdown"][hot], self.crash_share)),
            "bull_trend": float(np.quantile(s["trend"][calm], 1 - self.bull_share)),
            "bear_trend": float(np.quantile(s["trend"][calm], self.bear_share)),
            # None when range_share is 0: the rule is off (JSON has no infinity to say so).
            "narrow_range": (float(np.quantile(s["range"][calm], self.range_share))
                             if self.range_share > 0 else None),
        }
        codes = self._codes(stats[complete])
        counts = np.bincount(codes, minlength=len(REGIME_NAMES))
        self.train_shares_ = {
            name: float(c / n) for name, c in zip(REGIME_NAMES, counts, strict=True)
        }
        self.n_train_ = n
        return self

    def predict(self, candles_or_frame) -> pd.Series:
        """Regime name of every candle: categorical over ``REGIME_NAMES``, NaN in the warm-up.

        Causal: the label of a candle depends only on it and the candles before it.
        """
        self._check_fitted()
        return self.predict_statistics(self.statistics(candles_or_frame))

    def predict_statistics(self, stats: pd.DataFrame) -> pd.Series:
        """:meth:`predict` from :meth:`statistics` already computed on the candles."""
        codes = np.full(len(stats), -1, dtype=np.int8)
        complete = stats.notna().all(axis=1).to_numpy()
        codes[complete] = self._codes(stats[complete])
        return pd.Series(
            pd.Categorical.from_codes(codes, categories=REGIME_NAMES),
            index=stats.index,
            name="regime",
        )

    def fit_predict(self, candles_or_frame, y=None) -> pd.Series:
        """``fit(candles).predict(candles)``: labels of the training period itself."""
        return self.fit(candles_or_frame).predict(candles_or_frame)

    def _codes(self, stats: pd.DataFrame) -> np.ndarray:
        th = self.thresholds_
        trend = stats["trend"].to_numpy()
        hot = stats["log_vol"].to_numpy() > th["high_vol"]
        codes = np.full(len(stats), SIDEWAYS, dtype=np.int8)
        codes[trend > th["bull_trend"]] = BULL
        codes[trend < th["bear_trend"]] = BEAR
        if th["narrow_range"] is not None:
            needed = self.range_trend_factor * max(abs(th["bull_trend"]), abs(th["bear_trend"]))
            narrow = stats["range"].to_numpy() < th["narrow_range"]
            codes[narrow & (np.abs(trend) < needed)] = SIDEWAYS
        codes[hot] = VOLATILE
        codes[hot & (stats["drawdown"].to_numpy() <= th["crash_drawdown"])] = CRASH
        return codes

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict:
        """Plain, JSON-able description of the fitted labeller (no pickle).

        ``{"format", "regimes", "params", "thresholds", "train_shares", "n_train"}``;
        :meth:`from_dict` rebuilds a labeller that predicts identically.
        """
        self._check_fitted()
        return {
            "format": RULE_FORMAT,
            "regimes": list(REGIME_NAMES),
            "params": {k: plain(v) for k, v in self.get_params().items()},
            "thresholds": {k: None if v is None else float(v) for k, v in self.thresholds_.items()},
            "train_shares": dict(self.train_shares_),
            "n_train": int(self.n_train_),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> RuleLabeller:
        """Rebuild a fitted labeller from :meth:`to_dict` output.

        Raises InputError when the dictionary is not such output (wrong format, missing or
        non-numeric thresholds, other regime names).
        """
        if (not isinstance(data, Mapping)
                or data.get("format") not in (RULE_FORMAT, LEGACY_RULE_FORMAT)):
            raise InputError(f"not a saved RuleLabeller (expected format {RULE_FORMAT!r})")
        regimes = data.get("regimes")
        if not isinstance(regimes, (list, tuple)) or list(regimes) != list(REGIME_NAMES):
            raise InputError(
                f"saved regimes {data.get('regimes')} differ from {list(REGIME_NAMES)}"
            )
        try:
            labeller = cls(**dict(data["params"]))
            thresholds = {k: number_or_none(data["thresholds"][k], k) for k in _THRESHOLDS}
            shares = {k: float(data["train_shares"][k]) for k in REGIME_NAMES}
            n_train = int(data["n_train"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"saved RuleLabeller is incomplete or malformed: {exc}"
            ) from None
        labeller._check_params()
        if any(v is None or not math.isfinite(v) for k, v in thresholds.items()
               if k != "narrow_range"):
            raise InputError("saved RuleLabeller has missing or non-finite thresholds")
        if (thresholds["narrow_range"] is None) != (labeller.range_share == 0):
            raise InputError(
                "saved RuleLabeller: narrow_range does not match range_share"
            )
        labeller.thresholds_ = thresholds
        labeller.train_shares_ = shares
        labeller.n_train_ = n_train
        return labeller

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> None:
        for name in _WINDOWS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
                raise InputError(f"{name} must be an integer >= 2, not {value!r}")
        for name in _SHARES:
            value = getattr(self, name)
            if name == "high_vol_share" and value is None:
                continue  # the mixture split
            low_ok = name == "range_share"  # 0 switches the range rule off
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not (0 <= value < 1 if low_ok else 0 < value < 1)):
                bounds = "in [0, 1)" if low_ok else "strictly between 0 and 1"
                raise InputError(f"{name} must be a number {bounds}, not {value!r}")
        if self.bull_share + self.bear_share >= 1:
            total = self.bull_share + self.bear_share
            raise InputError(f"bull_share + bear_share must be below 1, not {total:g}")
        factor = self.range_trend_factor
        if (isinstance(factor, bool) or not isinstance(factor, numbers.Real)
                or not math.isfinite(factor) or factor < 1):
            raise InputError(f"range_trend_factor must be a number >= 1, not {factor!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "thresholds_"):
            raise InputError(f"this {type(self).__name__} is not fitted yet: call fit() first")


def mixture_split(x: np.ndarray, *, bins: int = 512, max_iter: int = 500) -> float:
    """Where the upper component of a 2-Gaussian mixture of ``x`` becomes the more likely.

    EM on a 512-bin histogram (the bins are far narrower than either component, and it keeps
    a million-candle fit to milliseconds), started from a calm bulk at the 30 % quantile and
    a turbulent tail at the 95 %. Deterministic. Returns the upper mean when the components
    never cross between the means (then the caller's bounds decide).
    """
    counts, edges = np.histogram(x, bins=bins)
    keep = counts > 0
    c, n = ((edges[1:] + edges[:-1]) / 2)[keep], counts[keep].astype("float64")
    mean = np.quantile(x, [0.3, 0.95])
    sd = np.full(2, max(float(x.std()) / 2, 1e-12))
    weight = np.array([0.8, 0.2])
    for _ in range(max_iter):
        log_p = np.log(weight) - np.log(sd) - 0.5 * ((c[:, None] - mean) / sd) ** 2
        resp = np.exp(log_p - log_p.max(axis=1, keepdims=True))
        resp *= n[:, None] / resp.sum(axis=1, keepdims=True)
        mass = resp.sum(axis=0)
        if (mass <= 0).any():
            break  # one component emptied: no second cluster
        new_mean = (resp * c[:, None]).sum(axis=0) / mass
        sd = np.sqrt((resp * (c[:, None] - new_mean) ** 2).sum(axis=0) / mass).clip(1e-12)
        weight = mass / n.sum()
        done = np.abs(new_mean - mean).max() < 1e-9 * max(1.0, float(np.abs(mean).max()))
        mean = new_mean
        if done:
            break
    lo, hi = np.sort(mean)
    order = np.argsort(mean)
    grid = np.linspace(lo, hi, 4001)
    log_p = (np.log(weight[order]) - np.log(sd[order])
             - 0.5 * ((grid[:, None] - mean[order]) / sd[order]) ** 2)
    upper = log_p[:, 1] > log_p[:, 0]
    return float(grid[np.argmax(upper)]) if upper.any() else float(hi)
