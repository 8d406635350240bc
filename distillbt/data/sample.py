"""The embedded sample market: a seeded simulator of a regime-switching market.

It is the default data source when no exchange data is cached, and the one market whose
regimes are known, so tests can check the regime labeller against them. Everything built from
it is labelled synthetic (``Candles.synthetic``, a ``source`` starting with ``"sample"``);
every headline figure measured on it must also be measured on real candles.

The model
---------
All quantities are per bar. ``σ₀`` is the calm volatility of one bar: 0.25 % for 15-minute
bars, scaled by the square root of the bar length for other timeframes (0.065 % for 1m, 2.4 %
for 1d). Drifts are given in units of ``σ₀`` so that a regime looks the same on every
timeframe (regime durations are counted in bars too).

**Regimes** follow a semi-Markov chain over ``bull bear sideways volatile crash``. At each
switch the next regime ``k`` is drawn with probability ∝ ``share_k / mean_bars_k`` (the same
regime may be drawn again) and lasts a geometric number of bars with mean ``mean_bars_k``;
the first regime is drawn ∝ ``share_k``. Geometric durations are memoryless, so the chain is
stationary from the first bar and the long-run fraction of bars in regime ``k`` is exactly
``share_k``. Over a finite sample the fraction varies: with the defaults one segment lasts
about 1,150 bars, so 100k bars hold only ~90 segments.

**Volatility** of bar ``t`` is ``σ_t = σ₀ · exp(a_t + h_t)``:

- ``a_t`` is the log of the regime's volatility level (bull 1, bear 1.25, sideways 0.8,
  volatile 2.5, crash 3.5 × σ₀) passed through a fast AR(1) filter (coefficient 0.9, half-life
  ≈ 7 bars): a new regime's volatility arrives within a few bars instead of in one jump;
- ``h_t`` is a stochastic log-volatility AR(1) (persistence 0.99, stationary s.d. 0.3) that
  runs through the whole series, across regime boundaries: volatility clustering.

**Returns** (log) are ``r_t = μ_t + u_t`` where ``u_t = φ_k u_{t-1} + σ_t ε_t``, ``ε_t`` is
Student-t with 5 degrees of freedom scaled to unit variance (fat tails), and ``u`` carries
over segment boundaries. The small AR(1) coefficient ``φ_k`` is the learnable short-horizon
predictability: momentum (+0.06) in bull, bear and crash, reversal (−0.02) in sideways and
volatile. Over the whole series the lag-1 rank correlation of returns is about +0.025 (a
linear model on lagged returns, momentum and moving-average distances scores about the same
out of sample); within trend episodes it is about 0.06, within crashes about 0.09 (the crash
drift adds to it). The drift ``μ_t`` depends on the regime:

- bull ``+0.045 σ₀``, bear ``−0.03 σ₀`` per bar (a bull segment of average length rises about
  two standard deviations of its own noise: visible, not certain);
- sideways: the log price is an Ornstein-Uhlenbeck process around the price at which the
  segment began (half-life 200 bars), driven by ``u``: a range that holds;
- volatile: no drift, only large moves;
- crash-and-recover: the first 30 % of the episode falls at ``−σ₀`` per bar (a 300-bar
  episode on 15m bars loses ~20 %), the rest wins back half of the fall.

With the default shares these drifts nearly cancel over the long run. What is left (and any
imbalance from custom shares) is held in check by a weak pull of the log price towards the
starting price (half-life 100k bars), applied as a constant drift within each non-sideways
segment from the price at which it began. Over 1M bars prices stay within a few orders of
magnitude of ``start_price``, while a 100k-bar sample is still dominated by its trends.

**Volume** is ``V₀ · exp(0.7 (a_t + h_t) + z_t + 0.4 (|ε_t| − E|ε|))``: a regime level (it
follows the volatility level: high in volatile and crash regimes, low in sideways ones),
``z_t`` an AR(1) (persistence 0.95, stationary s.d. 0.3), and a response to the size of the
bar's move relative to its volatility (big moves come with volume). ``V₀`` is 300 units per
15 minutes, proportional to the bar length.

**Candles**: close is ``start_price · exp(r_1 + … + r_t)``, open is the previous close (no
gap; crypto trades around the clock). High and low are the extremes of a Brownian bridge from
0 to ``r_t`` with variance ``σ_t²``. Its maximum ``M`` satisfies
``P(M > m) = exp(−2m(m − r)/σ²)`` for ``m ≥ max(0, r)``, so
``M = (r + sqrt(r² + 2σ²E))/2`` with ``E`` a standard exponential variate; the minimum is the
mirror image with an independent ``E``. Then ``high = open · exp(M)`` and
``low = open · exp(min)``, clamped against float rounding so that every candle invariant holds
exactly. The index is UTC, one candle every ``timeframe`` from ``start``, no gaps.

Everything is drawn from one ``numpy.random.default_rng(seed)``: the same arguments give the
same candles on every run, and nothing touches global random state.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from ..errors import InputError
from .candles import Candles, validate_candles
from .timeframes import timeframe_ms

__all__ = ["REGIMES", "DEFAULT_REGIME_SHARES", "DEFAULT_MEAN_REGIME_BARS", "sample_market", "continue_market",
           "sample_basket", "DEFAULT_MARKET_SHARE"]

#: Human names of the simulated regimes; also the categories of ``Candles.true_regimes``.
REGIMES: tuple[str, ...] = ("bull", "bear", "sideways", "volatile", "crash")

#: Long-run fraction of bars spent in each regime.
DEFAULT_REGIME_SHARES: Mapping[str, float] = MappingProxyType(
    {"bull": 0.30, "bear": 0.20, "sideways": 0.30, "volatile": 0.15, "crash": 0.05}
)

#: Mean length of one regime episode, in bars.
DEFAULT_MEAN_REGIME_BARS: Mapping[str, float] = MappingProxyType(
    {"bull": 2000.0, "bear": 2000.0, "sideways": 1500.0, "volatile": 600.0, "crash": 300.0}
)


@dataclass(frozen=True)
class _Regime:
    vol: float  # volatility level, in units of σ₀
    drift: float  # drift per bar, in units of σ₀ (crash: the fall phase)
    ar: float  # AR(1) coefficient of the return noise


_PARAMS = {
    "bull": _Regime(vol=1.0, drift=0.045, ar=0.06),
    "bear": _Regime(vol=1.25, drift=-0.03, ar=0.06),
    "sideways": _Regime(vol=0.8, drift=0.0, ar=-0.02),
    "volatile": _Regime(vol=2.5, drift=0.0, ar=-0.02),
    "crash": _Regime(vol=3.5, drift=-1.0, ar=0.06),
}
_SIDEWAYS, _CRASH = REGIMES.index("sideways"), REGIMES.index("crash")

_BAR_15M_MS = 900_000
_CALM_VOL_15M = 0.0025
_VOLUME_15M = 300.0

_T_DF = 5.0
_LEVEL_SMOOTHING = 0.9
_LOGVOL_PERSISTENCE = 0.99
_LOGVOL_SD = 0.3
_SIDEWAYS_HALF_LIFE = 200.0
_ANCHOR_HALF_LIFE = 100_000.0
_CRASH_FALL_SHARE = 0.3
_CRASH_RECOVERY = 0.5

_VOLUME_VOL_ELASTICITY = 0.7
_VOLUME_PERSISTENCE = 0.95
_VOLUME_SD = 0.3
_VOLUME_SHOCK_RESPONSE = 0.4
# E|ε| for a Student-t variate scaled to unit variance: centres the volume response at zero.
_MEAN_ABS_SHOCK = (
    2 * math.sqrt(_T_DF) * math.gamma((_T_DF + 1) / 2)
    / (math.sqrt(math.pi) * (_T_DF - 1) * math.gamma(_T_DF / 2))
) / math.sqrt(_T_DF / (_T_DF - 2))


def sample_market(
    *,
    bars: int = 100_000,
    timeframe: str = "15m",
    seed: int = 7,
    start: str = "2020-01-01",
    regime_shares: Mapping[str, float] | None = None,
    mean_regime_bars: Mapping[str, float] | None = None,
    start_price: float = 20_000.0,
    regime_params: Mapping[str, Mapping[str, float]] | None = None,
) -> Candles:
    """Simulate ``bars`` candles of the sample market (the model is in the module docstring).

    Parameters
    ----------
    bars : int
        Number of candles (at least 2).
    timeframe : str
        Candle interval (``"15m"``, ``"1h"``...); sets the volatility and volume per bar.
    seed : int
        Seed of the ``numpy.random.default_rng`` generator; same arguments, same candles.
    start : str
        Open time of the first candle (naive times are UTC).
    regime_shares : mapping, optional
        Long-run fraction of bars per regime name; regimes left out never occur. Normalised to
        sum to 1. Default :data:`DEFAULT_REGIME_SHARES`.
    mean_regime_bars : mapping, optional
        Mean episode length in bars (≥ 1) per regime name; regimes left out keep
        :data:`DEFAULT_MEAN_REGIME_BARS`.
    start_price : float
        Open of the first candle, also the level the price is weakly pulled back to.
    regime_params : mapping, optional
        Per regime name, overrides of its ``vol`` (level, in units of σ₀), ``drift`` (per
        bar, in units of σ₀) or ``ar`` (AR(1) coefficient of the noise): a market whose
        regimes behave differently — e.g. to plant a regime change in a later segment.

    Returns
    -------
    Candles
        Symbol ``SAMPLE/USD``, ``synthetic=True``, and ``true_regimes``: the regime name of
        every candle (categorical with categories :data:`REGIMES`).

    Raises
    ------
    InputError
        For a bad argument (:class:`~distillbt.errors.UnknownTimeframeError` for the timeframe).
    """
    bar_ms = timeframe_ms(timeframe)
    _check_int("bars", bars, minimum=2)
    _check_int("seed", seed, minimum=0)
    if (isinstance(start_price, bool) or not isinstance(start_price, numbers.Real)
            or not math.isfinite(start_price) or start_price <= 0):
        raise InputError(f"start_price must be a positive finite number, not {start_price!r}")
    shares = _shares(regime_shares)
    mean_bars = _mean_bars(mean_regime_bars)
    params = _regime_params(regime_params)
    index = _index(start, bars, bar_ms)

    rng = np.random.default_rng(seed)
    scale = math.sqrt(bar_ms / _BAR_15M_MS)
    codes, lengths = _regime_segments(rng, bars, shares, mean_bars)
    regime = np.repeat(codes, lengths)

    log_vol = _log_volatility(rng, regime, params)
    sigma = _CALM_VOL_15M * scale * np.exp(log_vol)
    shocks = rng.standard_t(_T_DF, bars) / math.sqrt(_T_DF / (_T_DF - 2))
    returns = _returns(codes, lengths, sigma * shocks, _CALM_VOL_15M * scale, params)

    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([float(start_price)], close[:-1]))
    high, low = _high_low(rng, open_, close, returns, sigma)
    volume = _volume(rng, log_vol, shocks, _VOLUME_15M * bar_ms / _BAR_15M_MS)

    frame = pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=index,
    )
    true_regimes = pd.Series(
        pd.Categorical.from_codes(regime, categories=REGIMES), index=index, name="regime"
    )
    return validate_candles(
        frame,
        symbol="SAMPLE/USD",
        source=f"sample(seed={seed}, bars={bars})",
        timeframe=timeframe,
        synthetic=True,
        true_regimes=true_regimes,
    )


def continue_market(old: Candles, bars: int, *, seed: int, **options) -> Candles:
    """``old`` followed by ``bars`` new candles of the sample market (seed ``seed``), starting one
    interval after its last candle at its last close; ``options`` go to :func:`sample_market`
    (e.g. ``regime_shares`` or ``regime_params`` to plant a change of market). For trying the
    updates of a distilled set on fresh candles."""
    step = old.frame.index[1] - old.frame.index[0]
    new = sample_market(bars=bars, seed=seed, start=str(old.end + step),
                        start_price=float(old.frame["close"].iloc[-1]), **options)
    return validate_candles(pd.concat([old.frame, new.frame]), symbol=old.symbol,
                            source=f"{old.source}+{new.source}", timeframe=old.timeframe, synthetic=True)


def _check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, not {value!r}")


def _per_regime(name: str, given: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(given) - set(REGIMES))
    if unknown:
        raise InputError(f"{name}: unknown regime(s) {unknown}; known: {list(REGIMES)}")
    values = {}
    for key, value in given.items():
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name}[{key!r}] must be a number, not {value!r}") from None
        if not math.isfinite(values[key]):
            raise InputError(f"{name}[{key!r}] must be finite, not {value!r}")
    return values


def _shares(given: Mapping[str, float] | None) -> np.ndarray:
    values = _per_regime("regime_shares", DEFAULT_REGIME_SHARES if given is None else given)
    shares = np.array([values.get(name, 0.0) for name in REGIMES])
    if (shares < 0).any() or shares.sum() <= 0:
        raise InputError(
            f"regime_shares must be non-negative with a positive sum, not {values}"
        )
    return shares / shares.sum()


def _mean_bars(given: Mapping[str, float] | None) -> np.ndarray:
    values = {**DEFAULT_MEAN_REGIME_BARS, **_per_regime("mean_regime_bars", given or {})}
    mean_bars = np.array([values[name] for name in REGIMES])
    if (mean_bars < 1).any():
        raise InputError(f"mean_regime_bars must all be >= 1 bar, not {values}")
    return mean_bars


def _index(start: str, bars: int, bar_ms: int) -> pd.DatetimeIndex:
    try:
        first = pd.Timestamp(start)
        if first is pd.NaT:
            raise ValueError("not a timestamp")
        first = first.tz_localize("UTC") if first.tz is None else first.tz_convert("UTC")
        index = pd.date_range(first, periods=bars, freq=pd.Timedelta(milliseconds=bar_ms))
        # The candle contract stores nanoseconds, which end in 2262.
        return index.as_unit("ns").rename("time")
    except (TypeError, ValueError, OverflowError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise InputError(f"cannot build {bars} timestamps from start={start!r}: {exc}") from None


def _regime_segments(
    rng: np.random.Generator, bars: int, shares: np.ndarray, mean_bars: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Regime code and length of each segment of the semi-Markov chain, covering ``bars``."""
    rate = shares / mean_bars
    jump = rate / rate.sum()
    mean_segment = 1.0 / rate.sum()
    codes, lengths, total = [], [], 0
    while total < bars:
        # Draw in batches sized to cover what is left, so one batch nearly always suffices.
        n = int(1.2 * (bars - total) / mean_segment) + 16
        batch = rng.choice(len(REGIMES), size=n, p=jump)
        if not codes:
            batch[0] = rng.choice(len(REGIMES), p=shares)  # stationary start
        codes.append(batch)
        lengths.append(rng.geometric(1.0 / mean_bars[batch]))
        total += int(lengths[-1].sum())
    codes, lengths = np.concatenate(codes), np.concatenate(lengths)
    n = int(np.searchsorted(np.cumsum(lengths), bars)) + 1
    codes, lengths = codes[:n].astype(np.int8), lengths[:n].copy()
    lengths[-1] -= int(lengths.sum()) - bars
    return codes, lengths


def _regime_params(given) -> dict:
    if not given:
        return _PARAMS
    unknown = sorted(set(given) - set(REGIMES))
    if unknown:
        raise InputError(f"regime_params: unknown regime(s) {unknown}; known: {list(REGIMES)}")
    out = dict(_PARAMS)
    for name, changes in given.items():
        values = {}
        for key, value in dict(changes).items():
            if key not in ("vol", "drift", "ar"):
                raise InputError(f"regime_params[{name!r}]: unknown parameter {key!r} (vol, drift, ar)")
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise InputError(f"regime_params[{name!r}][{key!r}] must be a finite number, not {value!r}")
            values[key] = float(value)
        if values.get("vol", 1.0) <= 0 or not -1 < values.get("ar", 0.0) < 1:
            raise InputError(f"regime_params[{name!r}]: vol must be positive and ar in (-1, 1)")
        out[name] = _Regime(**{**out[name].__dict__, **values})
    return out


def _log_volatility(rng: np.random.Generator, regime: np.ndarray, params=_PARAMS) -> np.ndarray:
    """``a_t + h_t``: the smoothed regime level plus the persistent stochastic component."""
    level = np.log([params[name].vol for name in REGIMES])[regime]
    lam = _LEVEL_SMOOTHING
    level, _ = lfilter([1 - lam], [1, -lam], level, zi=[lam * level[0]])
    psi = _LOGVOL_PERSISTENCE
    noise = rng.normal(0.0, _LOGVOL_SD * math.sqrt(1 - psi**2), len(regime))
    h0 = rng.normal(0.0, _LOGVOL_SD)  # stationary start
    h, _ = lfilter([1.0], [1, -psi], noise, zi=[psi * h0])
    return level + h


def _returns(
    codes: np.ndarray, lengths: np.ndarray, noise: np.ndarray, unit: float, params=_PARAMS
) -> np.ndarray:
    """Log returns, one regime segment at a time; ``unit`` is σ₀ in log-return terms."""
    sideways_keep = 0.5 ** (1 / _SIDEWAYS_HALF_LIFE)
    anchor_pull = math.log(2) / _ANCHOR_HALF_LIFE
    returns = np.empty_like(noise)
    log_price = 0.0  # relative to the start price, which is also the anchor
    u_last = 0.0
    stop = np.cumsum(lengths)
    for code, length, end in zip(codes, lengths, stop, strict=True):
        regime = params[REGIMES[code]]
        seg = slice(end - length, end)
        u, _ = lfilter([1.0], [1, -regime.ar], noise[seg], zi=[regime.ar * u_last])
        if code == _SIDEWAYS:
            x, _ = lfilter([1.0], [1, -sideways_keep], u, zi=[0.0])
            r = np.diff(x, prepend=0.0)
        else:
            r = u + (_drift(code, length, regime, unit) - anchor_pull * log_price)
        returns[seg] = r
        log_price += float(r.sum())
        u_last = u[-1]
    return returns


def _drift(code: int, length: int, regime: _Regime, unit: float) -> np.ndarray | float:
    if code != _CRASH:
        return regime.drift * unit
    fall = max(1, round(_CRASH_FALL_SHARE * length))
    drift = np.full(length, regime.drift * unit)
    if length > fall:
        drift[fall:] = -_CRASH_RECOVERY * regime.drift * unit * fall / (length - fall)
    return drift


def _high_low(
    rng: np.random.Generator,
    open_: np.ndarray,
    close: np.ndarray,
    returns: np.ndarray,
    sigma: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """High and low from the extremes of a Brownian bridge from 0 to the bar's return."""
    var2 = 2 * sigma**2
    r2 = returns**2
    up = 0.5 * (returns + np.sqrt(r2 + var2 * rng.standard_exponential(len(returns))))
    down = 0.5 * (returns - np.sqrt(r2 + var2 * rng.standard_exponential(len(returns))))
    # exp() and the products round; the clamps make the candle invariants exact.
    high = np.maximum(open_ * np.exp(up), np.maximum(open_, close))
    low = np.minimum(open_ * np.exp(down), np.minimum(open_, close))
    return high, low


def _volume(
    rng: np.random.Generator, log_vol: np.ndarray, shocks: np.ndarray, base: float
) -> np.ndarray:
    rho = _VOLUME_PERSISTENCE
    noise = rng.normal(0.0, _VOLUME_SD * math.sqrt(1 - rho**2), len(shocks))
    z0 = rng.normal(0.0, _VOLUME_SD)
    z, _ = lfilter([1.0], [1, -rho], noise, zi=[rho * z0])
    response = _VOLUME_SHOCK_RESPONSE * (np.abs(shocks) - _MEAN_ABS_SHOCK)
    return base * np.exp(_VOLUME_VOL_ELASTICITY * log_vol + z + response)


#: Default share of each basket instrument's shock variance that comes from the common market
#: factor (see :func:`sample_basket`).
DEFAULT_MARKET_SHARE = 0.6


def sample_basket(
    instruments: int,
    *,
    bars: int = 100_000,
    timeframe: str = "15m",
    seed: int = 7,
    start: str = "2020-01-01",
    start_price: float = 20_000.0,
    market_share: float = DEFAULT_MARKET_SHARE,
    regime_shares: Mapping[str, float] | None = None,
    mean_regime_bars: Mapping[str, float] | None = None,
) -> list[Candles]:
    """``instruments`` sample markets that move together like pairs of one exchange.

    The market factor — one regime path, one stochastic log-volatility ``h_m`` and one series
    of shocks ``ε_m`` — is drawn once; each instrument draws its own ``h_i``, ``ε_i``, candle
    shapes, volume and start price, and uses

    - the market's regimes (bull, bear, crash... hit every instrument at once, with the same
      drift per bar in units of σ₀; ``true_regimes`` is the same for all),
    - log-volatility ``level + √s·h_m + √(1−s)·h_i`` (volatility clusters market-wide),
    - shocks ``√s·ε_m + √(1−s)·ε_i`` (unit variance),

    with ``s = market_share``; the rest is the single market's model (module docstring). The
    shocks' correlation is ``s``; the log returns' is a little lower because volatilities
    differ (the sideways range and the AR(1) act on each instrument's own path): with the
    default ``s = 0.6`` the pairwise correlation of 15-minute log returns is 0.56–0.60 (4
    instruments × 20k bars, seeds 0–4; Spearman about 0.54; tests keep it in 0.4–0.9), like liquid crypto pairs against each
    other; ``s = 0`` gives independent instruments in the same regimes, ``s`` near 1 clones.

    Randomness: ``numpy.random.SeedSequence(seed).spawn(instruments + 1)``, the first child
    for the factor, child ``i + 1`` for instrument ``i`` — instrument ``i`` is the same
    whatever ``instruments`` is. Symbols are ``SAMPLE01/USD``, ``SAMPLE02/USD``... (zero-padded
    to the width of ``instruments``), ``synthetic=True``. For one plain market use
    :func:`sample_market`. Raises :class:`~distillbt.errors.InputError` for a bad argument.
    """
    _check_int("instruments", instruments, minimum=1)
    bar_ms = timeframe_ms(timeframe)
    _check_int("bars", bars, minimum=2)
    _check_int("seed", seed, minimum=0)
    if (isinstance(market_share, bool) or not isinstance(market_share, numbers.Real)
            or not 0 <= market_share <= 1):
        raise InputError(f"market_share must be a number in [0, 1], not {market_share!r}")
    if (isinstance(start_price, bool) or not isinstance(start_price, numbers.Real)
            or not math.isfinite(start_price) or start_price <= 0):
        raise InputError(f"start_price must be a positive finite number, not {start_price!r}")
    shares = _shares(regime_shares)
    mean_bars = _mean_bars(mean_regime_bars)
    index = _index(start, bars, bar_ms)
    scale = math.sqrt(bar_ms / _BAR_15M_MS)
    unit = _CALM_VOL_15M * scale
    t_scale = math.sqrt(_T_DF / (_T_DF - 2))

    children = np.random.SeedSequence(seed).spawn(instruments + 1)
    market = np.random.default_rng(children[0])
    codes, lengths = _regime_segments(market, bars, shares, mean_bars)
    regime = np.repeat(codes, lengths)
    level = _smoothed_level(regime, _PARAMS)
    h_market = _log_volatility(market, regime, _PARAMS) - level
    shocks_market = market.standard_t(_T_DF, bars) / t_scale
    true_regimes = pd.Series(
        pd.Categorical.from_codes(regime, categories=REGIMES), index=index, name="regime"
    )
    w_market, w_own = math.sqrt(market_share), math.sqrt(1.0 - market_share)
    width = len(str(instruments))
    basket = []
    for i in range(instruments):
        rng = np.random.default_rng(children[i + 1])
        price0 = float(start_price) * 10.0 ** -rng.uniform(0.0, 3.0)  # pairs differ in price level
        log_vol = level + w_market * h_market + w_own * (_log_volatility(rng, regime, _PARAMS) - level)
        sigma = unit * np.exp(log_vol)
        shocks = w_market * shocks_market + w_own * rng.standard_t(_T_DF, bars) / t_scale
        returns = _returns(codes, lengths, sigma * shocks, unit, _PARAMS)
        close = price0 * np.exp(np.cumsum(returns))
        open_ = np.concatenate(([price0], close[:-1]))
        high, low = _high_low(rng, open_, close, returns, sigma)
        volume = _volume(rng, log_vol, shocks, _VOLUME_15M * bar_ms / _BAR_15M_MS)
        frame = pd.DataFrame(
            {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
        )
        name = f"SAMPLE{i + 1:0{width}d}"
        basket.append(validate_candles(
            frame, symbol=f"{name}/USD", timeframe=timeframe, synthetic=True, true_regimes=true_regimes,
            source=f"sample(seed={seed}, bars={bars}, instrument {i + 1} of {instruments})",
        ))
    return basket


def _smoothed_level(regime: np.ndarray, params=_PARAMS) -> np.ndarray:
    """``a_t``: the regime's log-volatility level through the fast AR(1) filter (the
    deterministic part of :func:`_log_volatility`)."""
    level = np.log([params[name].vol for name in REGIMES])[regime]
    lam = _LEVEL_SMOOTHING
    level, _ = lfilter([1 - lam], [1, -lam], level, zi=[lam * level[0]])
    return level
