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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["DistilledSet", "ArtifactError", "FORMAT_VERSION", "fingerprint_candles",
           "raw_candle_bytes"]

FORMAT_VERSION = 1
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

    @property
    def size(self) -> int:
        return len(self.X)

    @property
    def payload_bytes(self) -> int:
        """Bytes of the distilled numbers themselves: X, y and weight as float64, regime as uint8."""
        return self.X.size * 8 + self.y.size * 8 + self.weight.size * 8 + self.regime.size

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

    # -- persistence ----------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the set atomically to ``path`` (``.npz``); returns the path written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(self.meta.get("regimes") or sorted({str(r) for r in self.regime}))
        codes = np.array([names.index(str(r)) for r in self.regime], dtype="uint8")
        header = {**self.meta, "regimes": names, "format_version": FORMAT_VERSION,
                  "payload_bytes": self.payload_bytes, "compression_ratio": self.compression_ratio}
        arrays = {"X": self.X.astype("float64"), "y": self.y.astype("float64"),
                  "weight": self.weight.astype("float64"), "regime": codes,
                  "meta": np.array(json.dumps(header, default=_json_default))}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez_compressed(handle, **arrays)
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
                meta = json.loads(str(data["meta"]))
        except ArtifactError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as error:
            raise ArtifactError(f"{path}: corrupt distilled-set file ({_first_line(error)})") from error
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ArtifactError(
                f"{path}: distilled-set format {version!r} is newer than this distillbt reads "
                f"({FORMAT_VERSION}); upgrade distillbt"
            )
        X, y, weight, codes = (arrays[k] for k in _ARRAYS)
        names = meta.get("regimes", [])
        if not (X.ndim == 2 and len(X) == len(y) == len(weight) == len(codes)) or (
            len(codes) and codes.max() >= len(names)
        ):
            raise ArtifactError(f"{path}: inconsistent array shapes in distilled set")
        return cls(X=X, y=y, weight=weight, regime=np.array([names[c] for c in codes], dtype=object),
                   meta=meta)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
