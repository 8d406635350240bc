"""Market regimes: causal labellers fitted on the training period, and how to score them.

::

    labeller = TrendVolatilityLabeller().fit(candles_train)      # training candles only
    labels = labeller.predict(candles)                           # causal, one per candle
    spec = labeller.to_dict()                                     # JSON-able, for the artifact
    same = TrendVolatilityLabeller.from_dict(spec)
    regime_agreement(candles.true_regimes, labels)                # sample market only

The default labeller
--------------------
:class:`TrendVolatilityLabeller` is a five-state hidden Markov model filtered forward in time.
Each candle gives two observations, computed from it and earlier candles only:

- ``log_vol``: log of an exponential average (span ``vol_span``) of the high-low (Parkinson)
  variance — the range measures volatility far less noisily than close-to-close returns;
- ``scaled_return``: the log return over the previous candle's volatility, whose mean in a
  regime is ``ret_mean + ret_reversion × displacement`` — ``displacement`` being the previous
  close's distance from an exponential average of log closes (span ``anchor_span``): a
  trending regime has a drift, a range pulls the price back towards where it has been.

Per regime, ``log_vol`` is Gaussian and ``scaled_return`` Gaussian around that mean (one
spread shared by the regimes, so no state can become a bin for outliers). Regimes may switch
every ``block`` bars with learned transition probabilities. Because ``log_vol`` is an average
over many bars, its log-likelihood is down-weighted (``vol_weight``) so the filter does not
count the same evidence again at every bar.

:meth:`~TrendVolatilityLabeller.fit` (training candles only) runs EM (Baum-Welch over blocks,
from the labels of :class:`RuleLabeller` on the same candles), then names the states by what
they look like: the two most volatile are turbulent (the more volatile and faster-falling one
is ``crash``, the other ``volatile``); of the three calm ones the one with the strongest pull
back to the anchor is ``sideways``, then the higher mean return ``bull`` and the lower
``bear``. Forward-backward smoothing is used only inside the training period.
:meth:`~TrendVolatilityLabeller.predict` runs the forward filter alone: the label of candle
``t`` is the most probable regime given candles up to ``t`` (the belief at the start of its
block, from earlier blocks, times the likelihood of the block's candles up to ``t``). The first
``anchor_span`` candles are the warm-up, labelled missing.

Measured (``python benchmarks/bench_regimes.py``): fitted on the first 60 % of 500k bars of the
sample market, scored on the last 40 %, seeds 1–5: agreement 0.738 ± 0.009 (the same after
the best renaming), against 0.600 ± 0.024 for the rule labeller and 0.26–0.28 for chance.
Defaults were chosen on seeds 101–105 with 200k bars (fit on 120k), where it is less steady:
0.688 ± 0.096 (0.710 after renaming); on seed 105 EM's two turbulent states do not separate the
crash (0.51). The weakest regime is the crash (recall ≈ 0.36, half of it labelled volatile):
crashes are short and, apart from their first fall, look like volatile stretches.

Cost: each bar reduces to eight numbers (``n s s² z z² d d² z·d``) whose sums over a block are
the block's sufficient statistics, so every log-likelihood, bar or block, is one small matrix
product and the M-step one weighted sum. The forward and backward recursions over blocks run
vectorised in groups (:func:`_scan`, :func:`_chain`): a few hundred numpy steps instead of one
per block, still causal bit for bit. The fitted model is the same as a step-by-step
implementation up to rounding (labels identical on the benchmark seeds). On 1M bars of the
shared 2-core machine under load, fit on 600k takes 4–5 s and predict 0.6–0.8 s (medians).

The rule labeller
-----------------
:class:`RuleLabeller` (the default before the filter, which starts its EM) computes four
rolling statistics at every candle, each from
the window of candles ending at it (``r`` is the 1-bar log return, ``σ_w`` the standard
deviation of ``r`` over the last ``w`` bars, ``p`` the log close):

=============== =============================================================================
``trend``       ``(p[t] - p[t-W]) / (σ_W · sqrt(W))`` with ``W = trend_window``: the move over
                the window in units of the noise expected over it (a t-statistic)
``log_vol``     ``log σ_v`` with ``v = vol_window``: the current volatility
``drawdown``    ``(p[t] - max p over the last L bars) / (σ_L · sqrt(L))`` with
                ``L = long_vol_window``: how far below its recent high the price is
``range``       ``(max p - min p over the last L bars) / (σ_L · sqrt(L))``: how wide the
                recent range is compared with a random walk of the same volatility
=============== =============================================================================

:meth:`~RuleLabeller.fit` learns one threshold per statistic from the
*training* candles alone (it never sees the period it will label):

- *high volatility* starts where the training ``log_vol`` distribution passes from its calm
  to its turbulent part: the point between the two means where the turbulent component of a
  two-component Gaussian mixture fitted to it becomes the more likely one. The mixture adapts
  to how much of the training period was turbulent (a fixed share does not, and a training
  period with more or less turbulence than the share then mislabels the calm/turbulent
  boundary); the threshold is kept between the 65 % and 95 % training quantiles, so a
  unimodal volatility (no turbulent cluster) still gives 5–35 % high-volatility candles.
  Setting ``high_vol_share`` instead uses a plain quantile: that share of training candles;
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

Defaults were chosen on validation seeds of the sample market (101–112, 200k bars of 15m,
fitted on the first 60 %, scored on the last 40 %: 0.583 ± 0.056 agreement), never on the
seeds the benchmark and the tests report (1–5, ``benchmarks/bench_regimes.py``). Over the
flat optimum, windows and shares matter little (±1 point); what limits agreement is that
bull, bear and sideways stretches differ only slightly in drift and volatility, and that a
causal window recognises a new regime only after it has seen enough of it.

Regimes are only known on the sample market; on real candles the label shares are what can
be checked.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from ._params import ParamsMixin
from .data.sample import REGIMES
from .errors import InputError
from .features import ohlcv_frame

__all__ = ["REGIME_NAMES", "RuleLabeller", "TrendVolatilityLabeller", "regime_agreement"]

#: The regime names every labeller uses, in this order (same as the sample market's).
REGIME_NAMES: tuple[str, ...] = REGIMES

_BULL, _BEAR, _SIDEWAYS, _VOLATILE, _CRASH = (REGIME_NAMES.index(n) for n in
                                              ("bull", "bear", "sideways", "volatile", "crash"))
_STATISTICS = ("trend", "log_vol", "drawdown", "range")
_THRESHOLDS = ("high_vol", "crash_drawdown", "bull_trend", "bear_trend", "narrow_range")
_WINDOWS = ("trend_window", "vol_window", "long_vol_window")
_SHARES = ("high_vol_share", "crash_share", "bull_share", "bear_share", "range_share")
#: Fewest complete (post-warm-up) training candles fit accepts: quantiles of fewer are noise.
MIN_FIT_ROWS = 100
_FORMAT = "distillbt.RuleLabeller/1"
#: What the rule labeller was called (and saved as) before the filter became the default.
_LEGACY_FORMAT = "distillbt.TrendVolatilityLabeller/1"
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
        return self._fit_statistics(self.statistics(candles_or_frame))

    def _fit_statistics(self, stats: pd.DataFrame) -> RuleLabeller:
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
            high_vol = float(np.clip(_mixture_split(s["log_vol"]),
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
        return self._predict_statistics(self.statistics(candles_or_frame))

    def _predict_statistics(self, stats: pd.DataFrame) -> pd.Series:
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
        codes = np.full(len(stats), _SIDEWAYS, dtype=np.int8)
        codes[trend > th["bull_trend"]] = _BULL
        codes[trend < th["bear_trend"]] = _BEAR
        if th["narrow_range"] is not None:
            needed = self.range_trend_factor * max(abs(th["bull_trend"]), abs(th["bear_trend"]))
            narrow = stats["range"].to_numpy() < th["narrow_range"]
            codes[narrow & (np.abs(trend) < needed)] = _SIDEWAYS
        codes[hot] = _VOLATILE
        codes[hot & (stats["drawdown"].to_numpy() <= th["crash_drawdown"])] = _CRASH
        return codes

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict:
        """Plain, JSON-able description of the fitted labeller (no pickle).

        ``{"format", "regimes", "params", "thresholds", "train_shares", "n_train"}``;
        :meth:`from_dict` rebuilds a labeller that predicts identically.
        """
        self._check_fitted()
        return {
            "format": _FORMAT,
            "regimes": list(REGIME_NAMES),
            "params": {k: _plain(v) for k, v in self.get_params().items()},
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
        if not isinstance(data, Mapping) or data.get("format") not in (_FORMAT, _LEGACY_FORMAT):
            raise InputError(f"not a saved RuleLabeller (expected format {_FORMAT!r})")
        regimes = data.get("regimes")
        if not isinstance(regimes, (list, tuple)) or list(regimes) != list(REGIME_NAMES):
            raise InputError(
                f"saved regimes {data.get('regimes')} differ from {list(REGIME_NAMES)}"
            )
        try:
            labeller = cls(**dict(data["params"]))
            thresholds = {k: _number_or_none(data["thresholds"][k], k) for k in _THRESHOLDS}
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


_FILTER_FORMAT = "distillbt.TrendVolatilityLabeller/2"
_FILTER_STATE = ("vol_mean", "vol_sd", "ret_mean", "ret_reversion")
_FILTER_SCALARS = ("vol_span", "anchor_span", "block", "n_iter")
_FILTER_POSITIVE = ("vol_weight", "return_weight", "mean_duration")
#: Floor of a state's log-volatility spread: keeps a near-empty state from collapsing onto
#: one value (an infinite likelihood).
_MIN_VOL_SD = 1e-3
#: Share of the starting responsibilities spread evenly over all states, so a regime the rule
#: labeller never named in the training period still starts with some weight.
_INIT_SMOOTHING = 0.02
#: Per-bar features whose sums over a block are the block's sufficient statistics: the count
#: of bars with observations, and log_vol (s), scaled_return (z), displacement (d) moments.
_FEATURES = ("n", "s", "ss", "z", "zz", "d", "dd", "zd")
_N, _S, _SS, _Z, _ZZ, _D, _DD, _ZD = range(len(_FEATURES))
#: Steps per group of the vectorised forward / backward recursion (:func:`_chain`).
_SCAN_CHUNK = 32
#: Steps between rescalings of the running products in :func:`_scan`.
_RESCALE = 8


class TrendVolatilityLabeller(ParamsMixin):
    """Name each candle bull, bear, sideways, volatile or crash with a causal regime filter.

    A five-state hidden Markov model on two per-candle observations, fitted by EM on the
    training candles and applied with the forward filter only (module docstring, "The
    default labeller").

    Parameters
    ----------
    vol_span : int
        Span (bars) of the exponential average of the high-low variance whose log is the
        volatility observation.
    anchor_span : int
        Span (bars) of the exponential average of the log close that the return observation's
        mean-reversion term measures the displacement from; also the warm-up.
    block : int
        Regimes may switch only every ``block`` bars (the filter's time step); labels are still
        one per candle and use the candles within the current block up to that candle.
    vol_weight, return_weight : float
        Weights of the two observations' log-likelihoods. The volatility observation is an
        average over about ``vol_span`` bars, so consecutive values are far from independent;
        a weight well below 1 keeps the filter from counting the same evidence many times.
    mean_duration : float
        Regime duration (bars) the transition probabilities start from before EM.
    n_iter : int
        Most EM iterations (it stops earlier once the state means stop moving).

    Attributes
    ----------
    vol_mean_, vol_sd_ : ndarray of shape (5,)
        Log volatility of each regime (in ``REGIME_NAMES`` order).
    ret_mean_, ret_reversion_ : ndarray of shape (5,)
        Mean of the volatility-scaled return, and its slope on the displacement from the anchor.
    ret_sd_ : float
        Spread of the scaled return around that mean (shared by the regimes).
    transition_ : ndarray of shape (5, 5)
        Probability of going from regime i (row) to j in one block.
    start_ : ndarray of shape (5,)
        Regime shares of the training period (the filter's starting belief).
    train_shares_ : dict of str to float
        Share of each regime among the training candles, as the fitted filter labels them.
    n_train_, n_iter_ : int
        Training candles after the warm-up; EM iterations run.
    """

    _repr_changed_only = True

    def __init__(
        self,
        *,
        vol_span: int = 16,
        anchor_span: int = 400,
        block: int = 16,
        vol_weight: float = 0.01,
        return_weight: float = 1.0,
        mean_duration: float = 1000.0,
        n_iter: int = 15,
    ):
        self.vol_span = vol_span
        self.anchor_span = anchor_span
        self.block = block
        self.vol_weight = vol_weight
        self.return_weight = return_weight
        self.mean_duration = mean_duration
        self.n_iter = n_iter

    @property
    def warmup(self) -> int:
        """Leading candles of a series that get no label: the anchor's span."""
        self._check_params()
        return max(self.anchor_span, self.vol_span)

    # ------------------------------------------------------------------ observations

    def statistics(self, candles_or_frame) -> pd.DataFrame:
        """The causal observations ``log_vol scaled_return displacement``, one row per candle.

        ``log_vol``: log of the exponentially averaged high-low (Parkinson) volatility up to
        the candle; ``scaled_return``: the candle's log return over the previous candle's
        ``exp(log_vol)``; ``displacement``: the previous close's distance from the exponential
        average of log closes, in the same units. NaN in the warm-up and where undefined.
        """
        self._check_params()
        frame = ohlcv_frame(candles_or_frame)
        return pd.DataFrame(self._observations(frame), index=frame.index,
                            columns=["log_vol", "scaled_return", "displacement"])

    def _observations(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`statistics` as a bars × 3 array (for a frame from ``ohlcv_frame``)."""
        log_close = np.log(frame["close"].to_numpy())
        with np.errstate(divide="ignore", invalid="ignore"):
            # The high-low range measures volatility far less noisily than the close-to-close
            # return, so the filter can tell a regime's volatility level from its wander.
            hl = np.log(frame["high"].to_numpy() / frame["low"].to_numpy()) ** 2 / (4 * math.log(2))
            log_vol = 0.5 * np.log(pd.Series(hl).ewm(span=self.vol_span).mean().to_numpy())
            prev_vol = np.exp(np.concatenate(([np.nan], log_vol[:-1])))
            r = np.diff(log_close, prepend=np.nan)
            anchor = pd.Series(log_close).ewm(span=self.anchor_span).mean().to_numpy()
            away = np.concatenate(([np.nan], (log_close - anchor)[:-1]))
            obs = np.empty((len(frame), 3))
            obs[:, 0] = log_vol
            np.divide(r, prev_vol, out=obs[:, 1])
            np.divide(away, prev_vol, out=obs[:, 2])
        obs[~np.isfinite(obs)] = np.nan
        obs[: self.warmup] = np.nan
        return obs

    # ------------------------------------------------------------------ work

    def fit(self, candles_or_frame, y=None) -> TrendVolatilityLabeller:
        """Fit the regimes' observation model and transitions to the training candles.

        EM (Baum-Welch over blocks of ``block`` bars) started from the labels of
        :class:`RuleLabeller` fitted on the same candles; then the states are named by their
        volatility and mean return. Forward-backward smoothing is used here, inside the
        training period only; :meth:`predict` filters forward. ``y`` is ignored.

        Raises
        ------
        InputError
            Bad parameters, input that is not candles, or too few candles after the warm-ups.
        """
        self._check_params()
        frame = ohlcv_frame(candles_or_frame)
        all_obs = self._observations(frame)
        rule = RuleLabeller()
        try:
            rule_stats = rule.statistics(frame)  # computed once, for its fit and its labels
            start_labels = rule._fit_statistics(rule_stats)._predict_statistics(rule_stats)
        except InputError as exc:
            raise InputError(f"cannot start the regime filter: {exc}") from None
        start_labels = start_labels.cat.codes.to_numpy()
        first = max(self.warmup, rule.warmup)
        obs = all_obs[first:]
        start_labels = start_labels[first:]
        k = len(REGIME_NAMES)
        nb = len(obs) // self.block
        if nb < 2 or np.isfinite(obs).all(axis=1).sum() < MIN_FIT_ROWS:
            raise InputError(
                f"{len(frame)} candles leave {len(obs)} after the {first}-candle warm-up; "
                f"fitting needs at least {max(MIN_FIT_ROWS, 2 * self.block)}"
            )
        # One column per block: the block's sums of the bar features (its sufficient statistics).
        sums = (_bar_features(obs[: nb * self.block])
                .reshape(len(_FEATURES), nb, self.block).sum(axis=2))
        # Start from the rule labels: a block's responsibilities are the shares of its bars'
        # labels (a missing label counts as the last regime), smoothed towards uniform.
        codes = start_labels[: nb * self.block].astype(np.int64) % k
        blocks = np.repeat(np.arange(nb), self.block)
        shares = np.bincount(blocks * k + codes, minlength=nb * k).reshape(nb, k) / self.block
        resp = (1 - _INIT_SMOOTHING) * shares + _INIT_SMOOTHING / k
        self._m_step(sums, resp)
        start = resp.mean(axis=0)
        stay = np.full(k, max(0.0, 1 - self.block / self.mean_duration))
        transition = np.diag(stay) + np.outer(1 - stay, start)
        self.n_iter_ = 0
        for _ in range(self.n_iter):
            lik = np.exp(_shift((self._loglik_coef().T @ sums).T))
            alpha, beta = _forward_backward(lik, transition, start)
            post = alpha * beta
            post /= post.sum(axis=1, keepdims=True)
            # Expected transitions: Σ_t ξ_t(i, j), ξ_t(i, j) = α_t(i) A_ij g_{t+1}(j) / (α_t · A g_{t+1})
            # with g = lik ⊙ β, summed without forming the (blocks, k, k) array.
            g = lik[1:] * beta[1:]
            norm = np.einsum("ti,ti->t", alpha[:-1], g @ transition.T)
            transition = transition * ((alpha[:-1] / norm[:, None]).T @ g) + 1e-12
            transition /= transition.sum(axis=1, keepdims=True)
            start = post.mean(axis=0)
            before = self.vol_mean_.copy()
            self._m_step(sums, post)
            self.n_iter_ += 1
            if np.abs(self.vol_mean_ - before).max() < 1e-4:
                break
        self.transition_, self.start_ = transition, start
        self._name_states()
        labels = self._filter_codes(obs)
        counts = np.bincount(labels[labels >= 0], minlength=k)
        self.train_shares_ = {n: float(c / counts.sum()) for n, c in zip(REGIME_NAMES, counts, strict=True)}
        self.n_train_ = int(np.isfinite(obs).all(axis=1).sum())
        return self

    def predict(self, candles_or_frame) -> pd.Series:
        """Regime name of every candle: categorical over ``REGIME_NAMES``, NaN in the warm-up.

        Causal: the label of a candle depends only on it and the candles before it (the
        forward filter, never a backward pass).
        """
        self._check_fitted()
        self._check_params()
        frame = ohlcv_frame(candles_or_frame)
        obs = self._observations(frame)
        codes = np.full(len(obs), -1, dtype=np.int8)
        first = self.warmup
        if len(obs) > first:
            codes[first:] = self._filter_codes(obs[first:])
        return pd.Series(pd.Categorical.from_codes(codes, categories=REGIME_NAMES),
                         index=frame.index, name="regime")

    def fit_predict(self, candles_or_frame, y=None) -> pd.Series:
        """``fit(candles).predict(candles)``: labels of the training period itself."""
        return self.fit(candles_or_frame).predict(candles_or_frame)

    def predict_proba(self, candles_or_frame) -> pd.DataFrame:
        """Filtered probability of each regime per candle (columns ``REGIME_NAMES``); causal."""
        self._check_fitted()
        self._check_params()
        frame = ohlcv_frame(candles_or_frame)
        obs = self._observations(frame)
        out = np.full((len(obs), len(REGIME_NAMES)), np.nan)
        first = self.warmup
        if len(obs) > first:
            log_post = self._filter_log_posterior(obs[first:]).T
            post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
            out[first:] = post / post.sum(axis=1, keepdims=True)
        return pd.DataFrame(out, index=frame.index, columns=list(REGIME_NAMES))

    # ------------------------------------------------------------------ model

    def _loglik_coef(self) -> np.ndarray:
        """Coefficients ``C`` (8 × k) of the weighted log-likelihood: ``Cᵀ @ _bar_features(obs)``
        is every bar's under every regime (0, no evidence, where an observation is missing),
        and ``Cᵀ`` times a block's sums of those features is the block's."""
        m, sd = self.vol_mean_, self.vol_sd_
        a, c, r = self.ret_mean_, self.ret_reversion_, self.ret_sd_
        vw, rw = self.vol_weight, self.return_weight
        coef = np.empty((len(_FEATURES), len(m)))
        # vol: -(s - m)² / 2sd² - log sd;  ret: -(z - a - c·d)² / 2r² - log r, expanded.
        coef[_N] = vw * (-0.5 * m**2 / sd**2 - np.log(sd)) + rw * (-0.5 * a**2 / r**2 - math.log(r))
        coef[_S] = vw * m / sd**2
        coef[_SS] = -0.5 * vw / sd**2
        coef[_Z] = rw * a / r**2
        coef[_ZZ] = np.full(len(m), -0.5 * rw / r**2)
        coef[_D] = -rw * a * c / r**2
        coef[_DD] = -0.5 * rw * c**2 / r**2
        coef[_ZD] = rw * c / r**2
        return coef

    def _m_step(self, sums: np.ndarray, post: np.ndarray) -> None:
        """Maximise over the state parameters given the block responsibilities ``post``
        (blocks × k) and the blocks' feature sums ``sums`` (8 × blocks)."""
        w = (sums @ post).T  # (k, 8): each state's responsibility-weighted feature sums
        n = np.maximum(w[:, _N], 1e-9)
        mean = w[:, _S] / n
        var = w[:, _SS] / n - mean**2
        self.vol_mean_ = mean
        self.vol_sd_ = np.sqrt(np.maximum(var, _MIN_VOL_SD**2))
        a, c = np.zeros(len(n)), np.zeros(len(n))
        for j in range(len(n)):
            gram = np.array([[w[j, _N], w[j, _D]], [w[j, _D], w[j, _DD]]])
            rhs = np.array([w[j, _Z], w[j, _ZD]])
            a[j], c[j] = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        self.ret_mean_, self.ret_reversion_ = a, c
        # Σ_t post · Σ_block (z - a - c·d)², from the weighted sums.
        resid = (w[:, _ZZ] - 2 * a * w[:, _Z] - 2 * c * w[:, _ZD] + a**2 * w[:, _N]
                 + 2 * a * c * w[:, _D] + c**2 * w[:, _DD]).sum()
        self.ret_sd_ = float(math.sqrt(max(resid / n.sum(), 1e-12)))

    def _name_states(self) -> None:
        """Reorder the fitted states into ``REGIME_NAMES`` order, by what they look like.

        The two most volatile states are the turbulent ones — the one more volatile and
        falling faster is the crash; of the three calm ones, the one whose returns revert
        hardest towards the anchor is sideways, then the higher mean return is bull, the
        lower bear.
        """
        by_vol = np.argsort(self.vol_mean_)
        calm, hot = by_vol[:3], by_vol[3:]
        # A range is what pulls the price back: the calm state whose returns lean hardest
        # against the displacement from the anchor (the most negative reversion slope).
        ranging = calm[np.argmin(self.ret_reversion_[calm])]
        trending = calm[calm != ranging]
        trending = trending[np.argsort(self.ret_mean_[trending])]
        # The crash is the turbulent state that is more violent: higher log volatility and a
        # lower mean scaled return, weighed one for one (a crash's recovery can leave its mean
        # return near the volatile regime's, its volatility then decides; and vice versa).
        hot = hot[np.argsort(self.ret_mean_[hot] - self.vol_mean_[hot])]
        order = np.empty(len(REGIME_NAMES), dtype=int)
        order[[_BEAR, _BULL]] = trending
        order[_SIDEWAYS] = ranging
        order[[_CRASH, _VOLATILE]] = hot
        for name in _FILTER_STATE:
            setattr(self, name + "_", getattr(self, name + "_")[order])
        self.transition_ = self.transition_[np.ix_(order, order)]
        self.start_ = self.start_[order]

    def _filter_log_posterior(self, obs: np.ndarray) -> np.ndarray:
        """Log of the (unnormalised) filtered regime probabilities: k × bars of ``obs``.

        Block b's belief before its first bar is the forward filter over blocks < b; a bar's
        posterior adds the log-likelihoods of the block's bars up to and including it.
        """
        k, b, t = len(REGIME_NAMES), self.block, len(obs)
        nb = -(-t // b)
        feats = _bar_features(obs, width=nb * b)  # padding: bars without evidence
        # k × blocks × bars: each bar's log-likelihood summed over its block up to it.
        log_post = (self._loglik_coef().T @ feats).reshape(k, nb, b)
        del feats
        np.cumsum(log_post, axis=2, out=log_post)
        alpha = _forward(np.exp(_shift(log_post[:, :, -1].T)), self.transition_, self.start_)
        prior = np.empty((k, nb))  # k × blocks: the belief entering each block
        prior[:, 0] = self.start_ @ self.transition_
        prior[:, 1:] = self.transition_.T @ alpha[:-1].T
        with np.errstate(divide="ignore"):
            log_post += np.log(prior)[:, :, None]
        return log_post.reshape(k, nb * b)[:, :t]

    def _filter_codes(self, obs: np.ndarray) -> np.ndarray:
        log_post = self._filter_log_posterior(obs)
        # argmax over the k rows (the first on ties), without moving the state axis last
        best, codes = log_post[0].copy(), np.zeros(log_post.shape[1], dtype=np.int8)
        for j in range(1, len(log_post)):
            better = log_post[j] > best
            codes[better] = j
            np.maximum(best, log_post[j], out=best)
        return codes

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict:
        """Plain, JSON-able description of the fitted labeller (no pickle).

        ``{"format", "regimes", "params", "state", "train_shares", "n_train"}``;
        :meth:`from_dict` rebuilds a labeller that predicts identically.
        """
        self._check_fitted()
        return {
            "format": _FILTER_FORMAT,
            "regimes": list(REGIME_NAMES),
            "params": {k: _plain(v) for k, v in self.get_params().items()},
            "state": {
                **{k: [float(v) for v in getattr(self, k + "_")] for k in _FILTER_STATE},
                "ret_sd": float(self.ret_sd_),
                "transition": [[float(v) for v in row] for row in self.transition_],
                "start": [float(v) for v in self.start_],
                "n_iter": int(self.n_iter_),
            },
            "train_shares": dict(self.train_shares_),
            "n_train": int(self.n_train_),
        }

    @classmethod
    def from_dict(cls, data: Mapping):
        """Rebuild a fitted labeller from :meth:`to_dict` output.

        A dictionary saved by the earlier rule-based default (format
        ``distillbt.TrendVolatilityLabeller/1``) gives back that :class:`RuleLabeller`.
        Raises InputError when the dictionary is not such output.
        """
        if isinstance(data, Mapping) and data.get("format") in (_FORMAT, _LEGACY_FORMAT):
            return RuleLabeller.from_dict(data)
        if not isinstance(data, Mapping) or data.get("format") != _FILTER_FORMAT:
            raise InputError(f"not a saved TrendVolatilityLabeller (expected format {_FILTER_FORMAT!r})")
        regimes = data.get("regimes")
        if not isinstance(regimes, (list, tuple)) or list(regimes) != list(REGIME_NAMES):
            raise InputError(f"saved regimes {data.get('regimes')} differ from {list(REGIME_NAMES)}")
        k = len(REGIME_NAMES)
        try:
            labeller = cls(**dict(data["params"]))
            state = data["state"]
            arrays = {name: np.array(state[name], dtype="float64") for name in _FILTER_STATE}
            ret_sd = float(state["ret_sd"])
            transition = np.array(state["transition"], dtype="float64")
            start = np.array(state["start"], dtype="float64")
            n_iter = int(state["n_iter"])
            shares = {name: float(data["train_shares"][name]) for name in REGIME_NAMES}
            n_train = int(data["n_train"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"saved TrendVolatilityLabeller is incomplete or malformed: {exc}") from None
        labeller._check_params()
        if (any(a.shape != (k,) for a in arrays.values()) or transition.shape != (k, k)
                or start.shape != (k,)):
            raise InputError("saved TrendVolatilityLabeller is malformed: wrong array shapes")
        values = [*arrays.values(), transition, start, np.array([ret_sd])]
        if not all(np.isfinite(v).all() for v in values) or ret_sd <= 0 or (arrays["vol_sd"] <= 0).any():
            raise InputError("saved TrendVolatilityLabeller is malformed: non-finite or non-positive values")
        for name, value in arrays.items():
            setattr(labeller, name + "_", value)
        labeller.ret_sd_, labeller.transition_, labeller.start_ = ret_sd, transition, start
        labeller.n_iter_, labeller.train_shares_, labeller.n_train_ = n_iter, shares, n_train
        return labeller

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> None:
        for name in _FILTER_SCALARS:
            value = getattr(self, name)
            minimum = 1 if name in ("block", "n_iter") else 2
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise InputError(f"{name} must be an integer >= {minimum}, not {value!r}")
        for name in _FILTER_POSITIVE:
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value) or value <= 0):
                raise InputError(f"{name} must be a positive number, not {value!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "transition_"):
            raise InputError(f"this {type(self).__name__} is not fitted yet: call fit() first")


def _bar_features(obs: np.ndarray, width: int | None = None) -> np.ndarray:
    """Per bar ``n s s² z z² d d² z·d`` (rows :data:`_FEATURES`, one column per bar: 8 × T)
    from the observations ``s z d`` (log_vol, scaled_return, displacement); a column of zeros
    where one is missing, and for the padding up to ``width`` columns."""
    t = len(obs)
    ok = np.isfinite(obs).all(axis=1)
    f = np.empty((len(_FEATURES), t if width is None else width))
    f[:, t:] = 0.0
    f[_N, :t] = ok
    for col, row in ((0, _S), (1, _Z), (2, _D)):
        f[row, :t] = obs[:, col]
        f[row, :t][~ok] = 0.0
    np.multiply(f[_S], f[_S], out=f[_SS])
    np.multiply(f[_Z], f[_Z], out=f[_ZZ])
    np.multiply(f[_D], f[_D], out=f[_DD])
    np.multiply(f[_Z], f[_D], out=f[_ZD])
    return f


def _shift(log_lik: np.ndarray) -> np.ndarray:
    """Rows shifted so their maximum is 0: exp() then neither overflows nor underflows all."""
    return log_lik - log_lik.max(axis=1, keepdims=True)


def _chain(m: np.ndarray, v0: np.ndarray, chunk: int = _SCAN_CHUNK) -> np.ndarray:
    """``u_0 = v0``, ``u_c ∝ u_{c-1} @ m[c-1]`` (rows summing to 1): ``len(m) + 1`` rows.

    ``m`` may have a leading axis of independent sequences (``m``: s × n × k × k, ``v0``: s × k,
    result s × (n + 1) × k). Vectorised, and causal bit for bit: ``u_c`` is built from
    ``m[:c]`` only, and every operation is per matrix or per row, so changing later matrices
    leaves earlier rows unchanged. Sequences longer than ``2 · chunk`` are cut into groups of
    ``chunk`` steps: (1) the product over each group, all groups at once, step by step
    (rescaled to a largest entry of 1: only directions matter); (2) the vector at the start of
    each group, by the same recursion over the groups' products; (3) all groups at once from
    their starting vectors. Python loops of about ``4 · chunk`` steps per level instead of n.
    """
    if m.ndim == 3:
        return _chain(m[None], v0[None], chunk)[0]
    s, n, k, _ = m.shape
    out = np.empty((s, n + 1, k))
    out[:, 0] = v0 / v0.sum(axis=1, keepdims=True)
    if n <= 2 * chunk:
        for c in range(n):
            u = (out[:, c, None, :] @ m[:, c])[:, 0]
            out[:, c + 1] = u / u.sum(axis=1, keepdims=True)
        return out
    g = -(-n // chunk)
    steps = np.broadcast_to(np.eye(k), (s, g * chunk, k, k)).copy()
    steps[:, :n] = m
    steps = steps.reshape(s, g, chunk, k, k)
    total = np.broadcast_to(np.eye(k), (s, g, k, k)).copy()
    for i in range(chunk):
        total = total @ steps[:, :, i]
        total /= total.max(axis=(2, 3), keepdims=True)
    u = _chain(total[:, :-1], out[:, 0], chunk)  # (s, g, k): the vector entering each group
    res = np.empty((s, g, chunk, k))
    for i in range(chunk):
        u = (u[:, :, None, :] @ steps[:, :, i])[:, :, 0]
        u /= u.sum(axis=2, keepdims=True)
        res[:, :, i] = u
    out[:, 1:] = res.reshape(s, g * chunk, k)[:, :n]
    return out


def _scan(lik: np.ndarray, mat: np.ndarray, init: np.ndarray, chunk: int = 2 * _SCAN_CHUNK) -> np.ndarray:
    """``v_t ∝ lik_t ⊙ (v_{t-1} @ mat)`` for every t, ``v_{-1} = init``; rows sum to 1.

    For s independent sequences at once: ``lik`` s × T × k, ``mat`` s × k × k, ``init`` s × k.
    :func:`_chain` with the step matrices ``mat · diag(lik_t)``, cheaper for that form: the
    product over each group of ``chunk`` steps, all groups at once, takes one small matrix
    product per step (the k unit vectors of every group through ``mat``, then scaled by
    ``lik``); the vectors entering the groups come from :func:`_chain` over the groups'
    products; then all groups run their steps at once. Causal bit for bit, like :func:`_chain`.

    The running products and vectors are rescaled every ``_RESCALE`` steps only: ``lik`` rows
    have a largest entry of 1 (:func:`_shift`) and the transition entries are at least about
    1e-12, so they cannot shrink by more than ~1e-12 per step (~1e-96 between rescalings, far
    above the smallest float64); rows of the result are normalised at the end.
    """
    s, t, k = lik.shape
    n = max(1, -(-t // chunk))
    steps = np.ones((s, n * chunk, k))
    steps[:, :t] = lik
    steps = steps.reshape(s, n, chunk, k)
    total = np.broadcast_to(np.eye(k), (s, n, k, k)).copy()  # total[., c, b]: image of unit vector b
    for i in range(chunk):
        total = (total.reshape(s, n * k, k) @ mat).reshape(s, n, k, k) * steps[:, :, i, None, :]
        if i % _RESCALE == _RESCALE - 1 or i == chunk - 1:
            total /= total.max(axis=(2, 3), keepdims=True)
    v = _chain(total[:, :-1], init)  # (s, n, k): the vector entering each group
    out = np.empty((s, n, chunk, k))
    for i in range(chunk):
        v = steps[:, :, i] * (v @ mat)
        out[:, :, i] = v
        if i % _RESCALE == _RESCALE - 1:
            v = v / v.sum(axis=2, keepdims=True)
    out /= out.sum(axis=3, keepdims=True)
    return out.reshape(s, n * chunk, k)[:, :t]


def _forward(lik: np.ndarray, transition: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Filtered state probabilities after each block: α_t ∝ lik_t ⊙ (Aᵀ α_{t-1}), α_{-1} = start."""
    return _scan(lik[None], transition[None], start[None])[0]


def _forward_backward(lik: np.ndarray, transition: np.ndarray, start: np.ndarray):
    """Filtered probabilities α (as :func:`_forward`) and backward messages β_t ∝ A (lik_{t+1}
    ⊙ β_{t+1}), β_last = 1, in one :func:`_scan` of two sequences.

    With g_t = lik_t ⊙ β_t, run backwards g_t = lik_t ⊙ (A g_{t+1}), g_last ∝ lik_last: a scan
    over the reversed blocks with ``mat = Aᵀ`` from ones (A·1 = 1); then β_t = A g_{t+1}.
    """
    k = lik.shape[1]
    both = _scan(np.stack([lik, lik[::-1]]), np.stack([transition, transition.T]),
                 np.stack([start, np.ones(k)]))
    alpha, g = both[0], both[1][::-1]
    beta = np.ones_like(lik)
    b = g[1:] @ transition.T
    beta[:-1] = b / b.sum(axis=1, keepdims=True)
    return alpha, beta


def _mixture_split(x: np.ndarray, *, bins: int = 512, max_iter: int = 500) -> float:
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


def _number_or_none(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"threshold {name} is {value!r}, not a number")
    return float(value)


def _plain(value):
    """numpy scalars to Python numbers, so json.dumps accepts them."""
    return value.item() if isinstance(value, np.generic) else value


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
