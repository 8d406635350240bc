"""The distilled-set artifact: one ``.npz`` file of arrays plus a JSON header, never a pickle.

Arrays: ``X`` (points × features, in the standardised feature space), ``y`` (targets),
``weight`` (sums to 1), ``regime`` (index into ``meta["regimes"]``). The JSON header holds
everything needed to use and to trust them: feature names, the scaler's statistics, the
regime labeller, method and configuration, seed, the fingerprint of the source candles and of
the split, sizes and the compression ratio. Loading uses ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, first_line
from .episodes import Episodes

__all__ = ["DistilledSet", "ArtifactError", "FORMAT_VERSION", "PRECISIONS", "fingerprint_candles",
           "raw_candle_bytes"]

# Optional, additive header keys (format 1 files without them still load):
# ``lineage`` — a list, oldest first, of updates this set went through (parent fingerprint,
# policy, data range, time...; see :mod:`distillbt.distill.update`); ``timeframes`` and
# ``horizons`` with the optional ``part`` array — a multi-horizon set, one part per candle
# interval (``part`` codes index ``meta["timeframes"]``; ``meta["horizons"][tf]`` is that
# part's own header: scaler, labeller, split...); ``episodes`` with the ``episodes_*`` arrays —
# candle windows of the training period for plain strategies' surrogates
# (:mod:`distillbt.distill.episodes`; not counted in the payload, their bytes are in the header).

FORMAT_VERSION = 1
#: Float types a set can be stored in (see :meth:`DistilledSet.with_precision`).
PRECISIONS = ("float64", "float32", "float16")
_ARRAYS = ("X", "y", "weight", "regime")


class ArtifactError(InputError):
    """A distilled-set file is missing, corrupt, or of a format this version cannot read."""


def fingerprint_candles(frame: pd.DataFrame) -> str:
    """SHA-256 of the candles' times and values: changes if any candle changes."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(frame.index.asi8).tobytes())
    digest.update(np.ascontiguousarray(frame[["open", "high", "low", "close", "volume"]]
                                       .to_numpy(dtype="float64")).tobytes())
    return digest.hexdigest()


def raw_candle_bytes(n_candles: int) -> int:
    """Bytes of ``n_candles`` as raw float64 time + OHLCV (6 × 8 bytes a candle)."""
    return int(n_candles) * 6 * 8


@dataclass(eq=False)
class DistilledSet:
    """A distilled training set and its provenance.

    ``X`` (M × d, standardised features), ``y`` (M), ``weight`` (M, sums to 1), ``regime``
    (M, names). ``meta`` is JSON-able: ``feature_names``, ``task``, ``method``, ``config``,
    ``seed``, ``source``, ``fingerprint``, ``split``, ``scaler`` (``mean``/``scale``),
    ``target_scale``, ``labeller``, ``regimes``, ``n_source_candles``, ``seconds``...
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    regime: np.ndarray
    meta: dict = field(default_factory=dict)
    #: Multi-horizon sets only: the candle interval (``"15m"``...) of each point, else None.
    part: np.ndarray | None = None
    #: Optional candle windows of the training period (``distill --episodes``): the base
    #: episodes plain strategies' surrogates learn from. Not part of :attr:`payload_bytes`.
    episodes: Episodes | None = None

    @property
    def size(self) -> int:
        return len(self.X)

    @property
    def precision(self) -> str:
        """The float type the numbers are stored in (``meta["precision"]``, default float64)."""
        return self.meta.get("precision", "float64")

    @property
    def payload_bytes(self) -> int:
        """Bytes of the distilled numbers as stored: X, y and weight in :attr:`precision`,
        regime (and part) codes as uint8. The npz's own zip compression is not counted."""
        itemsize = np.dtype(self.precision).itemsize
        parts = 0 if self.part is None else len(self.part)
        return (self.X.size + self.y.size + self.weight.size) * itemsize + self.regime.size + parts

    def with_precision(self, precision: str) -> "DistilledSet":
        """A copy whose numbers are rounded to ``precision`` (float64, float32 or float16), as
        :meth:`save` will store them; arrays stay float64 in memory so every consumer computes
        as before. float16 keeps ~3 significant digits: enough for standardised features of a
        few dozen points (measure it: ``benchmarks/bench_compression.py``), not for the exact
        linear limit's 1e-6 agreement."""
        if precision not in PRECISIONS:
            raise ArtifactError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")

        def rounded(values):
            return np.asarray(values).astype(precision).astype("float64")

        return replace(self, X=rounded(self.X), y=rounded(self.y), weight=rounded(self.weight),
                       meta={**self.meta, "precision": precision})

    @property
    def compression_ratio(self) -> float:
        """Raw float64 time+OHLCV bytes of the source candles over :attr:`payload_bytes`."""
        return raw_candle_bytes(self.meta.get("n_source_candles", 0)) / max(self.payload_bytes, 1)

    def summary(self) -> dict:
        counts = pd.Series(self.regime).value_counts().to_dict() if self.size else {}
        return {
            "method": self.meta.get("method"),
            "task": self.meta.get("task"),
            "points": self.size,
            "features": self.X.shape[1] if self.X.ndim == 2 else 0,
            "points_per_regime": {str(k): int(v) for k, v in counts.items()},
            "source_candles": self.meta.get("n_source_candles"),
            "payload_bytes": self.payload_bytes,
            "compression_ratio": round(self.compression_ratio, 1),
            "seconds": self.meta.get("seconds"),
        }

    @property
    def lineage(self) -> list:
        """Updates this set went through, oldest first (empty for a set distilled directly)."""
        return list(self.meta.get("lineage") or [])

    def content_fingerprint(self) -> str:
        """SHA-256 of the points, targets, weights, regimes (and parts) and the header: what a
        child set records as its parent."""
        digest = hashlib.sha256()
        for values in (self.X, self.y, self.weight):
            digest.update(np.ascontiguousarray(values, dtype="float64").tobytes())
        for labels in (self.regime, self.part if self.part is not None else ()):
            digest.update("\x1f".join(map(str, labels)).encode())
        meta = {k: v for k, v in self.meta.items()
                if k not in ("payload_bytes", "compression_ratio", "format_version", "precision")}
        digest.update(json.dumps(meta, sort_keys=True, default=_json_default).encode())
        return digest.hexdigest()

    @property
    def timeframes(self) -> list:
        """Candle intervals of the parts (one entry for a single-horizon set)."""
        if self.part is None:
            return [self.meta.get("timeframe")]
        return list(self.meta.get("timeframes") or [])

    def part_for(self, timeframe: str) -> "DistilledSet":
        """The single-horizon set of ``timeframe`` (the set itself when it has no parts and its
        timeframe matches). :class:`ArtifactError` when no part has that interval."""
        if self.part is None:
            own = self.meta.get("timeframe")
            if own not in (None, timeframe):
                raise ArtifactError(f"the distilled set is of {own} candles, not {timeframe}")
            return self
        if timeframe not in self.timeframes:
            raise ArtifactError(f"the multi-horizon distilled set has no {timeframe} part "
                                f"(it has {', '.join(self.timeframes)})")
        mask = np.asarray(self.part == timeframe)
        weight = self.weight[mask]
        return DistilledSet(X=self.X[mask], y=self.y[mask], weight=weight / weight.sum(),
                            regime=self.regime[mask], meta=dict(self.meta["horizons"][timeframe]))

    @classmethod
    def combine_horizons(cls, sets: dict, meta: dict | None = None) -> "DistilledSet":
        """One multi-horizon set from ``{timeframe: single-horizon set}`` (parts weigh equally)."""
        if not sets:
            raise ArtifactError("no parts to combine")
        names = sorted({str(r) for s in sets.values() for r in (s.meta.get("regimes") or s.regime)})
        first = next(iter(sets.values()))
        common = {k: first.meta.get(k) for k in ("method", "task", "seed", "per_regime", "weighting",
                                                 "source", "symbol", "synthetic")}
        header = {**common, **(meta or {}), "regimes": names, "timeframes": list(sets),
                  "horizons": {tf: dict(s.meta) for tf, s in sets.items()},
                  "n_source_candles": sum(int(s.meta.get("n_source_candles") or 0) for s in sets.values())}
        return cls(
            X=np.concatenate([s.X for s in sets.values()]),
            y=np.concatenate([s.y for s in sets.values()]),
            weight=np.concatenate([s.weight / s.weight.sum() / len(sets) for s in sets.values()]),
            regime=np.concatenate([np.asarray(s.regime, dtype=object) for s in sets.values()]),
            meta=header,
            part=np.concatenate([np.full(s.size, tf, dtype=object) for tf, s in sets.items()]),
        )

    # -- persistence ----------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the set atomically to ``path`` (``.npz``); returns the path written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(self.meta.get("regimes") or sorted({str(r) for r in self.regime}))
        codes = np.array([names.index(str(r)) for r in self.regime], dtype="uint8")
        header = {**self.meta, "regimes": names, "format_version": FORMAT_VERSION,
                  "payload_bytes": self.payload_bytes, "compression_ratio": self.compression_ratio}
        if self.episodes is not None:
            header["episodes"] = self.episodes.summary()
        precision = self.precision
        if precision not in PRECISIONS:
            raise ArtifactError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        arrays = {"X": self.X.astype(precision), "y": self.y.astype(precision),
                  "weight": self.weight.astype(precision), "regime": codes,
                  "meta": np.array(json.dumps(header, default=_json_default))}
        if self.part is not None:
            parts = list(self.meta.get("timeframes") or [])
            arrays["part"] = np.array([parts.index(str(p)) for p in self.part], dtype="uint8")
        if self.episodes is not None:
            arrays.update(self.episodes.to_arrays())
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only; a saved set is an ordinary file
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> "DistilledSet":
        """Read a set written by :meth:`save`; :class:`ArtifactError` if it cannot be trusted."""
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path}: no such distilled-set file")
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in (*_ARRAYS, "meta") if k not in data.files]
                if missing:
                    raise ArtifactError(f"{path}: not a distilled set (missing {', '.join(missing)})")
                arrays = {k: data[k] for k in _ARRAYS}
                part_codes = data["part"] if "part" in data.files else None
                episodes = None
                if any(k.startswith("episodes_") for k in data.files):
                    try:
                        episodes = Episodes.from_arrays({k: data[k] for k in data.files if k.startswith("episodes_")})
                    except InputError as error:
                        raise ArtifactError(f"{path}: corrupt episodes in distilled set ({error})") from None
                meta = json.loads(str(data["meta"]))
        except ArtifactError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as error:
            raise ArtifactError(f"{path}: corrupt distilled-set file ({first_line(error)})") from error
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ArtifactError(
                f"{path}: distilled-set format {version!r} is newer than this distillbt reads "
                f"({FORMAT_VERSION}); upgrade distillbt"
            )
        X, y, weight, codes = (arrays[k] for k in _ARRAYS)
        if not all(str(a.dtype) in PRECISIONS for a in (X, y, weight)) or codes.dtype != np.uint8:
            raise ArtifactError(f"{path}: unexpected array types in distilled set")
        # Computation is float64 whatever the storage; the header remembers the storage.
        meta["precision"] = str(X.dtype)
        X, y, weight = (a.astype("float64") for a in (X, y, weight))
        names = meta.get("regimes", [])
        if not (X.ndim == 2 and len(X) == len(y) == len(weight) == len(codes)) or (
            len(codes) and codes.max() >= len(names)
        ):
            raise ArtifactError(f"{path}: inconsistent array shapes in distilled set")
        part = None
        if part_codes is not None:
            parts = meta.get("timeframes") or []
            if len(part_codes) != len(X) or (len(part_codes) and part_codes.max() >= len(parts)):
                raise ArtifactError(f"{path}: inconsistent parts in multi-horizon distilled set")
            part = np.array([parts[c] for c in part_codes], dtype=object)
        return cls(X=X, y=y, weight=weight, regime=np.array([names[c] for c in codes], dtype=object),
                   meta=meta, part=part, episodes=episodes)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
