"""Candles in a distilled set's own feature space: the set's feature pipeline rebuilt from its
JSON header (feature options, scaler, labeller, target scale, task) and applied to candles,
and the checks that candles are of the set's market and extend the very candles it was
distilled from.

::

    rows = artifact_rows(artifact.meta, candles, since=last_seen(artifact.meta))   # the new rows
    rows.X, rows.y, rows.regime, rows.times

Points kept from a parent and points distilled from these rows then mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.candles import Candles
from ..features import FEATURE_DEFAULTS, Standardizer, make_features, valid_rows
from ..regimes import TrendVolatilityLabeller
from .artifact import ArtifactError, fingerprint_candles
from .lineage import last_seen

__all__ = ["ArtifactMismatchError", "Rows", "artifact_pipeline", "artifact_rows", "warm_start", "LABEL_WARMUPS",
           "check_market", "verify_reference"]


class ArtifactMismatchError(ArtifactError):
    """The artifact was distilled from another market (symbol) or candle interval than the
    candles given to update it."""


@dataclass
class Rows:
    """Usable rows of candles in the artifact's feature space."""

    X: np.ndarray
    y: np.ndarray  # the artifact's task: scaled returns or 0/1 direction
    regime: np.ndarray
    times: pd.DatetimeIndex

    def select(self, mask) -> "Rows":
        return Rows(self.X[mask], self.y[mask], self.regime[mask], self.times[mask])

    def __len__(self) -> int:
        return len(self.X)


def artifact_pipeline(meta: dict):
    """``(labeller, scaler, feature names, target scale, task, feature options)`` rebuilt from a
    set's header; :class:`~distillbt.distill.artifact.ArtifactError` when it cannot be."""
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


def artifact_rows(meta: dict, candles: Candles, since=None) -> Rows:
    """Usable rows of ``candles`` (from ``since`` on; earlier candles serve as warm-up)."""
    labeller, scaler, names, target_scale, task, options = artifact_pipeline(meta)
    frame = candles.frame
    if since is not None:
        first = int(frame.index.searchsorted(pd.Timestamp(since)))
        frame = frame.iloc[warm_start(labeller, options, first):]
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
    return Rows(X=scaler.transform(features.X.to_numpy()[ok]), y=y,
                regime=labels.to_numpy(dtype=object)[ok].astype(str), times=features.X.index[ok])


#: Candles of warm-up before the first new row, in labeller warm-ups: the labeller's
#: exponential averages and its forward filter carry memory beyond their nominal warm-up, so
#: new rows labelled from a shorter history would now and then be named differently than from
#: the whole series.
LABEL_WARMUPS = 4


def warm_start(labeller, options: dict, first: int) -> int:
    """Where to start computing features and labels so that row ``first`` on comes out as it
    would from the whole series: the features' longest window and several labeller warm-ups
    before it, at a multiple of the labeller's filter block (its blocks then fall where they
    fall on the whole series)."""
    windows = max(max(v) if isinstance(v, (list, tuple)) else int(v) for v in options.values())
    start = max(0, first - LABEL_WARMUPS * labeller.warmup - windows - 1)
    step = int(getattr(labeller, "block", 1) or 1)
    return start - start % step


def check_market(meta: dict, candles: Candles) -> None:
    """Raise :class:`ArtifactMismatchError` unless ``candles`` are of the set's symbol and interval."""
    symbol, timeframe = meta.get("symbol"), meta.get("timeframe")
    if symbol is not None and symbol != candles.symbol:
        raise ArtifactMismatchError(f"the distilled set is of {symbol}, the candles are of {candles.symbol}: "
                                    "an update must use the same market")
    if timeframe is not None and timeframe != candles.timeframe:
        raise ArtifactMismatchError(f"the distilled set is of {timeframe} candles, these are {candles.timeframe}: "
                                    "an update must use the same interval")


def verify_reference(meta: dict, candles: Candles) -> bool | None:
    """Whether ``candles`` begin with the very candles the artifact was distilled from (their
    fingerprint), None when that cannot be told (the source's last candle is unknown)."""
    frame = candles.frame
    last = (meta.get("data_range") or {}).get("last_candle") or (meta.get("reference") or {}).get("last_candle")
    if last is not None:
        stop = int(frame.index.searchsorted(pd.Timestamp(last), side="right"))
        return fingerprint_candles(frame.iloc[:stop]) == meta.get("fingerprint")
    try:
        stop = int(frame.index.searchsorted(last_seen(meta), side="right"))
    except ArtifactError:
        return None
    return any(fingerprint_candles(frame.iloc[:stop + k]) == meta.get("fingerprint") for k in range(0, 4))
