"""Resume a screen: each configuration's results, kept on disk and reused while nothing that
shapes them has changed.

::

    python -m distillbt screen strategies/     # screens everything, keeps each configuration's result
    # ... edit strategies/sma_cross.py ...
    python -m distillbt screen strategies/     # screens only sma_cross.py's configurations again
    python -m distillbt screen strategies/ --no-cache

From Python: ``screen(folder, candles, cache=True)`` (the default cache directory) or
``cache="path/to/cache-dir"``; the default ``cache=False`` stores and reuses nothing.

Where
-----
``screens/`` under the data cache directory (``--cache-dir``, else ``$DISTILLBT_CACHE_DIR``,
else the per-user cache: :func:`distillbt.data.cache.default_cache_dir`), one small JSON file
per entry: ``screens/scores/<key>.json`` and ``screens/backtests/<key>.json``. Delete the
folder to forget everything.

Two levels
----------
- **scores** — what the screen's scorers give a configuration (``path``, ``screen_score``,
  ``trust``, ``notes``, ``distilled_by``, a fallback's full backtest, a failure's one-line
  ``error``) with the return summary the overfitting statistics read (and, for plain
  strategies backtested in full, the screening equity the report draws). Configurations
  found here are not scored again; when every model configuration is found, nothing is
  distilled.
- **backtests** — every full backtest the screen runs through
  :meth:`~distillbt.scorers.ScreenRun.backtest` (validation, survivors on the screening and
  holdout periods, ``plain="full"``): only the missing ones run. A result kept with its equity
  serves a request without it too.

A failed backtest is never kept (it runs again next time); a configuration whose scoring
failed is remembered failed until something in its key changes (``--no-cache`` retries it).

What a key covers (SHA-256 of canonical JSON)
---------------------------------------------
- the configuration: its strategy file's bytes and those of the helper files beside it
  (``_*.py``, which discovery leaves for strategies to import), the class name and the params;
- the data: source, symbol, timeframe, length, first and last times and a SHA-256 of every
  candle's time and OHLCV (:func:`~distillbt.distill.artifact.fingerprint_candles`);
- the periods (candle positions), and the options that change scores, passed by the screen as
  one dict (``cash``, ``commission``, ``seed``, ``objective`` — with the source of a
  ``MODULE:FUNCTION`` objective's module —, ``slippage``, ``fraction``, ``fractions``…; a
  new option is one more key there); its ``"model"`` group (distillation method, size,
  per-regime, horizons, a given distilled set's content) counts for model configurations
  only, its ``"plain"`` group (``plain``, ``min_speedup``, given episodes) for plain ones;
- a model configuration's distillation need (:class:`~distillbt.distilled_sets.SetNeed`:
  each need's set is distilled on its own, whatever else the batch needs);
- distillbt itself: its version and a SHA-256 of its source files, and the versions of the
  libraries scores go through (Backtrader, NumPy, pandas, SciPy, scikit-learn).

Not seen: modules a strategy imports from elsewhere (a package of your own) — run with
``--no-cache`` after changing one.

Exact, except for one thing: model configurations and full backtests give what a fresh screen
gives, but plain strategies' surrogates learn from base episodes the plain configurations of a
batch share (chosen for the batch's warm-ups and windows; a short history sends the batch to
full backtests as a whole: :class:`~distillbt.surrogate.api.PlainSurrogates`). Plain
configurations screened again with fewer others can therefore learn from other episodes than
a screen of the whole folder would — their scores are estimates either way, with their trust
and escalation, and every record's ``path`` says how it was scored —; ``--no-cache`` gives
the whole folder's screen.

Entries
-------
JSON; numeric arrays as the base64 of their zlib-compressed bytes (exact), timestamps as
integer nanoseconds, a full backtest's ``times`` as positions in the candles, tuples kept. A
write goes to a temporary file beside the entry and is renamed over it (``os.replace``): a
crash leaves the entry absent or whole, never half written (a power cut can leave an empty
file, which is read as damaged). A damaged entry — truncated, not JSON, another key — is
ignored with a warning and computed again; the cache never stops a screen: when it cannot
be written, the screen goes on without it (one warning).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
import time
import zlib
from dataclasses import asdict
from functools import lru_cache
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .baseline import is_model
from .data.cache import default_cache_dir
from .distill.artifact import fingerprint_candles
from .errors import first_line
from .objectives import DEFAULT_OBJECTIVE
from .records import PATHS

__all__ = ["ResultCache", "SCREENS_DIR", "SCORE_FIELDS", "FORMAT_VERSION", "code_fingerprint"]

log = logging.getLogger(__name__)

#: The folder under the data cache directory.
SCREENS_DIR = "screens"
#: Version of the entries' layout (an entry of another version is ignored).
FORMAT_VERSION = 1
#: The record fields the scorers fill: what a scores entry restores.
SCORE_FIELDS = ("path", "screen_score", "error", "notes", "distilled_by", "trust", "full_score", "full_stats",
                "full_seconds", "full_warmup_bars")
#: Libraries whose versions are part of every key.
_LIBRARIES = ("backtrader", "numpy", "pandas", "scipy", "scikit-learn")
#: Temporary files older than this (a crashed write) are removed when a cache opens.
_STALE_TEMP_SECONDS = 3600.0
_TAG = "__distillbt__"


class _Unencodable(TypeError):
    """A value an entry cannot hold (the entry is then not written)."""


class ResultCache:
    """The per-configuration results of screens on one market (:mod:`distillbt.result_cache`).

    ``directory``: the data cache directory (its ``screens/`` folder holds the entries);
    ``candles`` and ``periods`` (name → candle positions ``(start, stop)``) of the screen;
    ``options``: what changes scores (module docstring); ``distilled``: the caller's distilled set(s), if any.

    :meth:`restore` fills the records (and the run's return summaries) of the configurations
    screened before and :meth:`store` keeps the others'; :meth:`lookup_backtests` and
    :meth:`store_backtests` do the same for full backtests (used by
    :meth:`~distillbt.scorers.ScreenRun.backtest`)."""

    def __init__(self, directory, candles, periods: dict, *, options: dict, distilled=None):
        self.root = Path(directory) / SCREENS_DIR
        self.candles = candles
        self.periods = {name: [int(a), int(b)] for name, (a, b) in periods.items()}
        self.options = dict(options)
        self.writable = True
        self.restored: set = set()
        self.keys: dict = {}             # configuration name -> scores key
        self._files: dict = {}           # strategy file -> digest
        self._data: dict = {}            # id(candles) -> (candles, fingerprint)
        self._objective = _objective_digest(self.options.get("objective"))
        given = _distilled_digest(distilled)
        self._groups = {"model": {**self.options.get("model", {}), "distilled": given},
                        "plain": {**self.options.get("plain", {}), "distilled": given}}
        # the objective is keyed by its digest (a user function's source too): not twice
        self._common = {k: v for k, v in self.options.items() if k not in ("model", "plain", "objective")}
        self._remove_stale_temporaries()

    @classmethod
    def at(cls, where, candles, periods: dict, *, options: dict, distilled=None) -> ResultCache | None:
        """The cache ``where`` says: None for False/None (no cache), the default cache
        directory for True, else that directory."""
        if where is None or where is False:
            return None
        directory = default_cache_dir() if where is True else Path(where)
        return cls(directory, candles, periods, options=options, distilled=distilled)

    # -- scores ------------------------------------------------------------------------------
    def restore(self, run, records, configs, *, needs: dict) -> set:
        """Fill the records (and ``run.summaries`` / ``run.curves``) of the configurations
        found; returns their names. ``needs``: each model configuration's
        :class:`~distillbt.distilled_sets.SetNeed`. Records that already carry an error are
        left alone."""
        self.keys = {}
        for record, config in zip(records, configs):
            if record.error is not None:
                continue
            if is_model(config):
                if config.name not in needs:
                    continue
                extra = {"kind": "model", "need": asdict(needs[config.name])}
            else:
                extra = {"kind": "plain"}
            key = self._scores_key(config, extra)
            if key is not None:
                self.keys[config.name] = key
        found = {}
        for name, key in self.keys.items():
            entry = self._read("scores", key)
            if entry is not None:
                try:
                    found[name] = _score_entry(entry)
                except Exception as error:  # noqa: BLE001 - a damaged entry is computed again, never fatal
                    self._damaged(self._path("scores", key), error)
        plain = [c.name for r, c in zip(records, configs) if r.error is None and not is_model(c)]
        again = sum(name not in found for name in plain)
        if 0 < again < len(plain) and self.options.get("plain", {}).get("plain", "surrogate") == "surrogate":
            log.info("screen cache: %d of %d plain configurations screened again; their surrogates learn from "
                     "episodes chosen for those %d (a whole-folder screen, --no-cache, may choose others)",
                     again, len(plain), again)
        by_name = {r.name: r for r in records}
        for name, (fields, summary, curve) in found.items():
            record = by_name[name]
            for field_name, value in fields.items():
                setattr(record, field_name, value)
            if summary is not None:
                run.summaries[name] = summary
            if curve is not None:
                run.curves[name] = curve
        self.restored = set(found)
        return set(found)

    def store(self, run, records) -> int:
        """Keep what the scorers gave the configurations :meth:`restore` did not find (call it
        right after scoring, before validation fills full backtests in); returns how many."""
        stored = 0
        for record in records:
            key = self.keys.get(record.name)
            if key is None or record.name in self.restored or (record.error is None and not record.scored):
                continue
            value = {"record": {f: getattr(record, f) for f in SCORE_FIELDS if getattr(record, f) is not None},
                     "summary": run.summaries.get(record.name), "curve": run.curves.get(record.name)}
            stored += self._write("scores", key, value)
        return stored

    # -- full backtests ----------------------------------------------------------------------
    def lookup_backtests(self, jobs) -> list:
        """A result per :class:`~distillbt.backtest.BacktestJob` (None where none is kept)."""
        out = []
        for job in jobs:
            result = None
            for with_equity in ((True,) if job.record_equity else (False, True)):
                key = self._backtest_key(job, with_equity)
                result = self._read("backtests", key) if key else None
                if result is not None:
                    if not isinstance(result, dict) or "score" not in result:
                        self._damaged(self._path("backtests", key), ValueError("not a backtest result"))
                        result = None
                        continue
                    if not job.record_equity:
                        result.update(equity=None, times=None, positions=None)
                    break
            out.append(result)
        return out

    def store_backtests(self, jobs, results) -> int:
        """Keep the results of ``jobs`` that did not fail; returns how many."""
        stored = 0
        for job, result in zip(jobs, results):
            key = self._backtest_key(job, job.record_equity)
            if key and not result.get("error"):
                stored += self._write("backtests", key, result)
        return stored

    # -- keys --------------------------------------------------------------------------------
    def _scores_key(self, config, extra: dict) -> str | None:
        strategy = self._strategy_digest(config)
        if strategy is None:
            return None
        group = self._groups[extra["kind"]]
        return _digest({"level": "scores", "code": code_fingerprint(), "strategy": strategy,
                        "class": config.strategy.name, "params": config.params, "data": self._data_of(self.candles),
                        "periods": self.periods, "options": self._common, "objective": self._objective,
                        "group": group, **extra})

    def _backtest_key(self, job, with_equity: bool) -> str | None:
        strategy = self._strategy_digest(job.configuration)
        if strategy is None or job.fitted is not None:
            return None
        return _digest({"level": "backtests", "code": code_fingerprint(), "strategy": strategy,
                        "class": job.configuration.strategy.name, "params": job.configuration.params,
                        "data": self._data_of(job.candles), "start": _ns(job.start), "end": _ns(job.end),
                        "warmup_bars": int(job.warmup_bars), "fit_until": job.fit_until, "cash": job.cash,
                        "commission": job.commission, "objective": _objective_digest(job.objective),
                        "slippage": job.slippage, "fraction": job.fraction, "record_equity": bool(with_equity)})

    def _strategy_digest(self, config) -> str | None:
        spec = config.strategy
        file = spec.file
        if file is None:
            origin = getattr(find_spec(spec.module), "origin", None) if _importable(spec.module) else None
            file = origin if origin and origin.endswith(".py") else None
        if file is None:
            return None
        if file not in self._files:
            path = Path(file)
            try:
                digest = hashlib.sha256(path.read_bytes())
                for helper in sorted(path.parent.glob("_*.py")):
                    digest.update(helper.name.encode() + b"\0" + helper.read_bytes())
                self._files[file] = digest.hexdigest()
            except OSError:
                self._files[file] = None
        return self._files[file]

    def _data_of(self, candles) -> dict:
        held = self._data.get(id(candles))
        if held is None or held[0] is not candles:
            index = candles.frame.index
            fingerprint = {"source": candles.source, "symbol": candles.symbol, "timeframe": candles.timeframe,
                           "candles": len(index), "first": _ns(index[0]) if len(index) else None,
                           "last": _ns(index[-1]) if len(index) else None,
                           "sha256": fingerprint_candles(candles.frame)}
            held = self._data[id(candles)] = (candles, fingerprint)
        return held[1]

    # -- entries -----------------------------------------------------------------------------
    def _path(self, level: str, key: str) -> Path:
        return self.root / level / f"{key}.json"

    def _read(self, level: str, key: str):
        path = self._path(level, key)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            self._damaged(path, error)
            return None
        try:
            payload = json.loads(text)
            if not (isinstance(payload, dict) and payload.get("format") == FORMAT_VERSION
                    and payload.get("level") == level and payload.get("key") == key):
                raise ValueError("not an entry of this key and format")
            return _decode(payload["value"], self.candles.frame.index)
        except Exception as error:  # noqa: BLE001 - a damaged entry is computed again, never fatal
            self._damaged(path, error)
            return None

    def _write(self, level: str, key: str, value) -> int:
        if not self.writable:
            return 0
        path = self._path(level, key)
        try:
            text = json.dumps({"format": FORMAT_VERSION, "level": level, "key": key,
                               "written_at": pd.Timestamp.now(tz="UTC").isoformat(),
                               "value": _encode(value, self.candles.frame.index)})
        except (_Unencodable, ValueError) as error:
            log.debug("screen cache: not keeping %s (%s)", path.name, first_line(error))
            return 0
        try:
            _atomic_write_text(path, text)
        except OSError as error:
            self.writable = False
            log.warning("cannot write the screen cache under %s (%s); going on without keeping results",
                        self.root, first_line(error))
            return 0
        return 1

    def _damaged(self, path: Path, error: BaseException) -> None:
        log.warning("ignoring a damaged screen cache entry %s (%s); computing it again", path,
                    first_line(error, with_type=True, limit=120))

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        for level in ("scores", "backtests"):
            try:
                with os.scandir(self.root / level) as entries:
                    for entry in entries:
                        if entry.name.startswith(".") and entry.name.endswith(".tmp") and \
                                now - entry.stat().st_mtime > _STALE_TEMP_SECONDS:
                            os.unlink(entry.path)
            except OSError:
                continue


@lru_cache(maxsize=1)
def code_fingerprint() -> dict:
    """distillbt's version and a SHA-256 of its source files, and the versions of the
    libraries scores go through: a screen's results from other code are not reused. Computed
    once per process (the code a process runs does not change under it)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"distillbt": __version__, "source": digest.hexdigest(), "libraries": versions}


def _score_entry(value) -> tuple:
    """``(fields, summary, curve)`` of a scores entry; ValueError when it is not one."""
    fields = dict(value["record"])
    unknown = set(fields) - set(SCORE_FIELDS)
    if unknown or fields.get("path") not in PATHS:
        raise ValueError(f"unexpected record fields {sorted(unknown)} or path {fields.get('path')!r}")
    if fields.get("notes") is not None:
        fields["notes"] = tuple(fields["notes"])
    summary, curve = value.get("summary"), value.get("curve")
    if summary is not None and not {"n_obs", "sharpe", "skew", "kurtosis", "block_returns"} <= set(summary):
        raise ValueError("incomplete return summary")
    return fields, summary, curve


def _digest(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":"),
                                     default=_key_default).encode()).hexdigest()


def _key_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return str(value)
    return repr(value)


def _ns(moment):
    return None if moment is None else int(pd.Timestamp(moment).as_unit("ns").value)


def _importable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _objective_digest(objective):
    """A built-in objective's name (None: the default's); ``MODULE:FUNCTION`` with the SHA-256
    of its module's file."""
    if objective is None or ":" not in str(objective):
        return DEFAULT_OBJECTIVE if objective is None else str(objective).strip()
    module = str(objective).partition(":")[0]
    try:
        origin = find_spec(module).origin
        return {"objective": objective, "sha256": hashlib.sha256(Path(origin).read_bytes()).hexdigest()}
    except (ImportError, ValueError, AttributeError, TypeError, OSError):
        return {"objective": objective, "sha256": None}


def _distilled_digest(distilled):
    """The content of the caller's distilled set(s) and their stored episodes (None: none)."""
    if distilled is None:
        return None
    sets = distilled if isinstance(distilled, dict) else {"": distilled}
    out = {}
    for name, dset in sorted(sets.items(), key=lambda item: str(item[0])):
        digest = hashlib.sha256(dset.content_fingerprint().encode())
        episodes = getattr(dset, "episodes", None)
        if episodes is not None:
            for values in (episodes.source_start, episodes.length, episodes.warmup, episodes.time_ns,
                           episodes.ohlcv):
                digest.update(np.ascontiguousarray(values).tobytes())
        out[str(name)] = digest.hexdigest()
    return out


# -- the entries' JSON -----------------------------------------------------------------------
def _encode(value, index: pd.DatetimeIndex):
    """``value`` as JSON-able data (see the module docstring); :class:`_Unencodable` for an
    object an entry cannot hold."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.generic):
        return _encode(value.item(), index)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _Unencodable("a mapping with keys other than text")
        if _TAG in value:
            raise _Unencodable(f"a mapping with the key {_TAG}")
        return {k: _encode(v, index) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v, index) for v in value]
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [_encode(v, index) for v in value]}
    if isinstance(value, pd.Timestamp):
        return {_TAG: "timestamp", "ns": _ns(value), "tz": None if value.tz is None else str(value.tz)}
    if isinstance(value, pd.DatetimeIndex):
        return _encode_times(value, index)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf" or value.dtype.hasobject:
            raise _Unencodable(f"an array of {value.dtype}")
        data = np.ascontiguousarray(value)
        return {_TAG: "array", "dtype": data.dtype.str, "shape": list(data.shape),
                "zlib": base64.b64encode(zlib.compress(data.tobytes(), 1)).decode("ascii")}
    raise _Unencodable(f"a {type(value).__name__}")


def _encode_times(times: pd.DatetimeIndex, index: pd.DatetimeIndex):
    # A backtest's times are a run of the candles' own: two positions instead of the times.
    if len(times) and times.tz is not None and index.tz is not None:
        first = index.searchsorted(times[0])
        stop = first + len(times)
        if stop <= len(index) and index[first] == times[0] and index[stop - 1] == times[-1] and \
                index[first:stop].equals(times):
            return {_TAG: "candle_times", "start": int(first), "stop": int(stop)}
    return {_TAG: "times", "ns": _encode(times.as_unit("ns").asi8, index),
            "tz": None if times.tz is None else str(times.tz)}


def _decode(value, index: pd.DatetimeIndex):
    if isinstance(value, list):
        return [_decode(v, index) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {k: _decode(v, index) for k, v in value.items()}
    if tag == "tuple":
        return tuple(_decode(v, index) for v in value["items"])
    if tag == "timestamp":
        return pd.Timestamp(int(value["ns"]), unit="ns", tz=value["tz"])
    if tag == "array":
        dtype = np.dtype(value["dtype"])
        if dtype.kind not in "biuf":
            raise ValueError(f"unexpected dtype {value['dtype']!r}")
        raw = zlib.decompress(base64.b64decode(value["zlib"], validate=True))
        return np.frombuffer(raw, dtype=dtype).reshape(value["shape"]).copy()
    if tag == "candle_times":
        start, stop = int(value["start"]), int(value["stop"])
        if not 0 <= start <= stop <= len(index):
            raise ValueError("times outside the candles")
        return index[start:stop]
    if tag == "times":
        return pd.DatetimeIndex(pd.to_datetime(_decode(value["ns"], index), unit="ns", utc=value["tz"] is not None))
    raise ValueError(f"unknown tag {tag!r}")


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
