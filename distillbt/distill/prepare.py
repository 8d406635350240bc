"""From candles to the training data every distiller and evaluation uses — without leakage.

Features are causal (row t uses candles up to t); the split is chronological with an embargo
row between periods (the last training target uses the next candle's close); the scaler and
the regime labeller are fitted on the training period only, then applied everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..data.candles import Candles
from ..errors import InputError
from ..features import (FEATURE_DEFAULTS, Standardizer, chronological_split, feature_options_key, make_features,
                        split_at, valid_rows)
from ..regimes import TrendVolatilityLabeller
from .artifact import fingerprint_candles

__all__ = ["PreparedData", "prepare", "PERIODS", "DEFAULT_FRACTIONS", "SCREEN_FRACTIONS", "SCREEN_PERIODS"]

#: The parts of a chronological split, in time order.
PERIODS = ("train", "validation", "test")
#: Fractions of the usable candles in each part for ``distill``, ``evaluate`` and ``update``:
#: most of the history trains the distiller; validation chooses (e.g. the MLP's decay), test
#: only scores.
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)
#: The screen's split of the same three parts: training (distillation, model fits), screening
#: (every configuration scored, validation backtests) and holdout (survivors only, nothing
#: selected on it) — a longer screening period, so ranks rest on more bars.
SCREEN_FRACTIONS = (0.5, 0.3, 0.2)
#: The screen's name of each part (its summary and report say training/screening/holdout).
SCREEN_PERIODS = {"training": "train", "screening": "validation", "holdout": "test"}


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Standardised features, targets and regime labels of every usable candle, split in time.

    ``X`` is standardised with training statistics; ``target`` is the log return over the
    next ``horizon`` candles (1: the next candle's); ``direction`` its sign (1 up, 0 not up); ``regime`` the labeller's name (fitted on
    the training period). ``parts`` maps ``train``/``validation``/``test`` to row slices.
    ``target_scale`` is the training standard deviation of ``target``: regression distillers
    see ``target / target_scale``.
    """

    X: np.ndarray
    target: np.ndarray
    direction: np.ndarray
    regime: np.ndarray
    times: pd.DatetimeIndex
    feature_names: tuple[str, ...]
    parts: dict
    scaler: Standardizer
    labeller: TrendVolatilityLabeller
    target_scale: float
    candles: Candles
    fractions: tuple[float, ...]
    horizon: int = 1
    #: The calendar times the parts start at after the first (``prepare(boundaries=…)``), or None.
    boundaries: tuple | None = None
    #: The ``make_features`` options ``X`` was computed with (the defaults and what was asked).
    feature_options: dict = field(default_factory=lambda: dict(FEATURE_DEFAULTS))
    #: The labeller's regime of every candle (categorical, missing in its warm-up): what
    #: ``prepare(like=…)`` reuses instead of labelling the candles again.
    candle_regimes: pd.Series | None = field(default=None, repr=False)

    def period(self, name: str) -> slice:
        return self.parts[name]

    def y(self, task: str, part: str = "train") -> np.ndarray:
        """Targets for ``task``: scaled returns (regression) or 0/1 direction (classification)."""
        rows = self.parts[part]
        return self.target[rows] / self.target_scale if task == "regression" else self.direction[rows]

    @property
    def n_train_candles(self) -> int:
        """Candles in the training period (what a distilled set compresses)."""
        start, end = self.times[self.parts["train"]][[0, -1]]
        return int(((self.candles.frame.index >= start) & (self.candles.frame.index <= end)).sum())

    def split_info(self) -> dict:
        return {
            name: {"first": self.times[s][0].isoformat(), "last": self.times[s][-1].isoformat(),
                   "rows": int(s.stop - s.start)}
            for name, s in self.parts.items()
        }

    def metadata(self) -> dict:
        """What a distilled set must carry to be used and trusted (JSON-able)."""
        return {
            "feature_names": list(self.feature_names),
            "feature_options": {k: list(v) if isinstance(v, (tuple, list)) else v
                                for k, v in self.feature_options.items()},
            "source": self.candles.source,
            "symbol": self.candles.symbol,
            "timeframe": self.candles.timeframe,
            "synthetic": self.candles.synthetic,
            "fingerprint": fingerprint_candles(self.candles.frame),
            "split": {"fractions": list(self.fractions), **self.split_info()},
            "scaler": {"mean": self.scaler.mean_.tolist(), "scale": self.scaler.scale_.tolist()},
            "target_scale": self.target_scale,
            "labeller": self.labeller.to_dict(),
            "n_source_candles": self.n_train_candles,
            "horizon": self.horizon,
        }


def prepare(candles: Candles, *, fractions=DEFAULT_FRACTIONS, labeller=None,
            feature_options: dict | None = None, horizon: int = 1, boundaries=None,
            like: PreparedData | None = None) -> PreparedData:
    """Features, targets and regimes of ``candles``, split in time, fitted on training only.

    ``fractions`` are the train/validation/test shares of the usable rows (in time order).
    ``labeller`` defaults to :class:`~distillbt.regimes.TrendVolatilityLabeller`;
    ``feature_options`` go to :func:`~distillbt.features.make_features`. ``horizon``: candles
    ahead of the target (the log return from ``close[t]`` to ``close[t + horizon]``); the
    embargo between periods is as long, so no training target reaches the next period.
    ``boundaries``: the times the later parts start at instead of ``fractions`` (one calendar
    split shared by the instruments of a basket; the embargo is taken from the end of each
    earlier part); ``fractions`` then records the shares that gives.

    ``like``: a preparation of the same candles to share the split and the regimes with (the
    screen's, for the sets of other horizons and feature windows): its parts' start times are
    the ``boundaries``, and its labeller and labels are reused instead of fitting and labelling
    again — valid because its training period ends no later than this one's embargo begins
    (``like.horizon`` must not exceed ``horizon``). ``labeller``, ``fractions`` and
    ``boundaries`` are then ignored. With ``like``'s feature options its rows, features and
    scaler are reused too, and only the targets and the embargo change.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise InputError(f"horizon must be an integer >= 1, not {horizon!r}")
    horizon = int(horizon)
    if like is not None:
        boundaries = _shared_split(like, candles, horizon)
        if feature_options_key(like.feature_options) == feature_options_key(feature_options):
            return _with_horizon(like, horizon, boundaries)
    features = make_features(candles, **(feature_options or {}))
    if horizon > 1:
        log_close = np.log(candles.frame["close"].to_numpy(dtype="float64"))
        ahead = np.full(len(log_close), np.nan)
        ahead[:-horizon] = log_close[horizon:] - log_close[:-horizon]
        features = replace(features, target=pd.Series(ahead, index=features.target.index, name="target"),
                           direction=pd.Series(np.where(np.isnan(ahead), np.nan, (ahead > 0).astype("float64")),
                                               index=features.target.index, name="direction"))
    ok = valid_rows(features)
    if ok.sum() < 3 * len(fractions):
        raise InputError(f"only {int(ok.sum())} usable candles after the feature warm-up "
                         f"({features.warmup} rows): too few to split")
    # The labeller is fitted on the training period's candles: find where that period ends
    # before labelling (split boundaries on the usable rows, with one embargo row).
    def split(rows_ok):
        if boundaries is not None:
            return dict(zip(PERIODS, split_at(features.X.index[rows_ok], boundaries, gap=horizon)))
        return dict(zip(PERIODS, chronological_split(int(rows_ok.sum()), fractions=fractions, gap=horizon)))

    parts = split(ok)
    times_ok = features.X.index[ok]
    train_end = times_ok[parts["train"].stop - 1]
    frame = candles.frame
    if like is not None:
        labeller, regimes = like.labeller, like.candle_regimes
    else:
        labeller = (labeller or TrendVolatilityLabeller()).fit(frame.loc[:train_end])
        regimes = labeller.predict(frame).astype("category")
    labels = regimes.reindex(features.X.index)
    ok &= labels.notna().to_numpy()
    # Rows dropped for a missing label all lie in the warm-up: re-split on what is left.
    parts = split(ok)
    if boundaries is not None:
        sizes = np.array([p.stop - p.start for p in parts.values()], dtype="float64")
        fractions = tuple(float(x) for x in sizes / sizes.sum())

    X_all = features.X.to_numpy()[ok]
    scaler = Standardizer().fit(X_all[parts["train"]])
    target = features.target.to_numpy()[ok]
    scale = float(np.std(target[parts["train"]]))
    if not scale > 0:
        raise InputError("the training period's returns are all equal: nothing to learn")
    return PreparedData(
        X=scaler.transform(X_all), target=target, direction=features.direction.to_numpy()[ok],
        regime=labels.to_numpy(dtype=object)[ok], times=features.X.index[ok],
        feature_names=tuple(features.names), parts=parts, scaler=scaler, labeller=labeller,
        target_scale=scale, candles=candles, fractions=tuple(fractions), horizon=horizon,
        boundaries=None if boundaries is None else tuple(pd.Timestamp(t) for t in boundaries),
        feature_options={**FEATURE_DEFAULTS, **(feature_options or {})}, candle_regimes=regimes,
    )


def _with_horizon(like: PreparedData, horizon: int, boundaries) -> PreparedData:
    """``like`` with ``horizon``-candle targets: its rows whose target lies inside the candles,
    split at ``boundaries`` with a ``horizon``-row embargo; features, scaler and regimes as
    ``like``'s (its scaler's training rows end no later than this embargo)."""
    close = np.log(like.candles.frame["close"].to_numpy(dtype="float64"))
    at = like.candles.frame.index.get_indexer(like.times)
    keep = at + horizon < len(close)
    target = close[at[keep] + horizon] - close[at[keep]]
    times = like.times[keep]
    parts = dict(zip(PERIODS, split_at(times, boundaries, gap=horizon)))
    scale = float(np.std(target[parts["train"]]))
    if not scale > 0:
        raise InputError("the training period's returns are all equal: nothing to learn")
    sizes = np.array([p.stop - p.start for p in parts.values()], dtype="float64")
    return replace(like, X=like.X[keep], target=target, direction=(target > 0).astype("float64"),
                   regime=like.regime[keep], times=times, parts=parts, target_scale=scale,
                   fractions=tuple(float(x) for x in sizes / sizes.sum()), horizon=horizon,
                   boundaries=tuple(pd.Timestamp(t) for t in boundaries))


def _shared_split(like: PreparedData, candles: Candles, horizon: int) -> tuple:
    """The times ``like``'s later parts start at, after checking that its labeller may serve a
    preparation of ``candles`` with ``horizon``."""
    if like.candle_regimes is None or not like.candles.frame.index.equals(candles.frame.index):
        raise InputError("prepare(like=...) needs a preparation of the same candles")
    if like.horizon > horizon:
        raise InputError(f"prepare(like=...): its horizon {like.horizon} exceeds {horizon}: its labeller saw "
                         f"candles past this training period")
    if like.boundaries is not None:
        return like.boundaries
    return tuple(like.times[like.parts[name].start] for name in PERIODS[1:])
