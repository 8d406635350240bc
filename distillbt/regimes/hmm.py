"""The regime filter: :class:`TrendVolatilityLabeller`, the default labeller, a five-state
hidden Markov model fitted by EM and applied with the forward filter only.

Each candle gives two observations, computed from it and earlier candles only:

- ``log_vol``: log of an exponential average (span ``vol_span``) of the high-low (Parkinson)
  variance;
- ``scaled_return``: the log return over the previous candle's volatility, whose mean in a
  regime is ``ret_mean + ret_reversion × displacement`` — ``displacement`` being the previous
  close's distance from an exponential average of log closes (span ``anchor_span``): a
  trending regime has a drift, a range pulls the price back towards where it has been.

Per regime, ``log_vol`` is Gaussian and ``scaled_return`` Gaussian around that mean (one
spread shared by the regimes). Regimes may switch every ``block`` bars with learned transition
probabilities. The log-likelihood of ``log_vol`` is weighted by ``vol_weight`` (it is an
average over many bars, so consecutive values carry mostly the same evidence).

:meth:`~TrendVolatilityLabeller.fit` (training candles only) runs EM (Baum-Welch over blocks,
from the labels of :class:`~distillbt.regimes.RuleLabeller` on the same candles), then names
the states by what they look like: the two most volatile are turbulent (the more volatile and
faster-falling one is ``crash``, the other ``volatile``); of the three calm ones the one with
the strongest pull back to the anchor is ``sideways``, then the higher mean return ``bull``
and the lower ``bear``. Forward-backward smoothing is used only inside the training period.
:meth:`~TrendVolatilityLabeller.predict` runs the forward filter alone: the label of candle
``t`` is the most probable regime given candles up to ``t`` (the belief at the start of its
block, from earlier blocks, times the likelihood of the block's candles up to ``t``). The first
``warmup`` (``max(anchor_span, vol_span)``) candles are labelled missing.

Each bar reduces to eight numbers (``n s s² z z² d d² z·d``, :func:`_bar_features`) whose sums
over a block are the block's sufficient statistics, so every log-likelihood, bar or block, is
one small matrix product and the M-step one weighted sum; the recursions over blocks are in
:mod:`distillbt.regimes.recursions`. Why this model, how well it agrees with the sample
market's regimes and what it costs: ``docs/regimes.md``.
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
from .formats import FILTER_FORMAT, LEGACY_RULE_FORMAT, RULE_FORMAT, plain
from .names import BEAR, BULL, CRASH, REGIME_NAMES, SIDEWAYS, VOLATILE
from .recursions import forward, forward_backward, shift_max_to_zero
from .rules import MIN_FIT_ROWS, RuleLabeller

__all__ = ["TrendVolatilityLabeller"]

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


class TrendVolatilityLabeller(ParamsMixin):
    """Name each candle bull, bear, sideways, volatile or crash with a causal regime filter.

    A five-state hidden Markov model on two per-candle observations, fitted by EM on the
    training candles and applied with the forward filter only (the model is described in the
    module docstring).

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
            start_labels = rule.fit_statistics(rule_stats).predict_statistics(rule_stats)
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
            lik = np.exp(shift_max_to_zero((self._loglik_coef().T @ sums).T))
            alpha, beta = forward_backward(lik, transition, start)
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
        order[[BEAR, BULL]] = trending
        order[SIDEWAYS] = ranging
        order[[CRASH, VOLATILE]] = hot
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
        alpha = forward(np.exp(shift_max_to_zero(log_post[:, :, -1].T)),
                        self.transition_, self.start_)
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
            "format": FILTER_FORMAT,
            "regimes": list(REGIME_NAMES),
            "params": {k: plain(v) for k, v in self.get_params().items()},
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
        if isinstance(data, Mapping) and data.get("format") in (RULE_FORMAT, LEGACY_RULE_FORMAT):
            return RuleLabeller.from_dict(data)
        if not isinstance(data, Mapping) or data.get("format") != FILTER_FORMAT:
            raise InputError(f"not a saved TrendVolatilityLabeller (expected format {FILTER_FORMAT!r})")
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
