"""The fast half of :func:`distillbt.screen.screen`: model configurations fitted on distilled
points and run vectorised over the screening period, in parallel over configurations.

Configurations are cut into chunks of at most :data:`CHUNK` (about four per worker,
:func:`chunk_size`) that keep configurations sharing a fitted model (same ``fit_key``)
together, so each model is fitted once per chunk; models fitted on many rows (agnostic sets,
training candles) get chunks of their own and go first, so the workers finish together. Features are
computed once in the calling process for every distinct feature set. The chunks run in threads
of this process on this machine (``prefer="threads"``, :meth:`~distillbt.executor.Executor.imap`:
fits and runs spend their time in numpy and compiled scikit-learn code, which release the GIL,
so no worker process is started, imported into or sent the data); on Dask, on the cluster,
which is sent the features once.
A worker returns, per configuration, a few numbers and a :func:`~distillbt.stats.return_summary`
— never the equity curve — so memory does not grow with bars × configurations.
"""

from __future__ import annotations

import time
from contextlib import suppress
from itertools import groupby

from .capture import captured
from .distilled_sets import ROWS_METHOD
from .errors import first_line
from .executor import using
from .features import make_features, ohlcv_frame
from .objectives import bars_per_year, objective_score
from .stats import return_summary

#: Most configurations per task: small enough that a chunk's curves never pile up in a worker
#: and progress moves, large enough that a fitted model is reused by its rule variants.
CHUNK = 16


def screen_vectorised(configs, sets: dict | None, candles, *, set_of: dict | None = None, cash: float,
                      commission: float, start: int, stop: int, n_jobs: int = 1,
                      backend: str = "loky", progress=None, feature_cache: dict | None = None,
                      scheduler: str | None = None, executor=None, objective: str | None = None,
                      slippage: float = 0.0) -> list[dict]:
    """One outcome per configuration, in order: ``score``, ``final_value``, ``notes``,
    ``error`` (one line, the batch goes on), ``returns`` (a return summary) and ``seconds``
    (its run and its share of its model's fit, in the worker); ``score`` is
    the ``objective``'s (:mod:`distillbt.objectives`) of the equity, fills with ``slippage``.

    ``sets``: key → distilled set, ``set_of``: configuration name → the key of the set its
    model is fitted on (:mod:`distillbt.distilled_sets`); ``sets`` None fits each model on the real
    candles before ``start`` instead (what a full backtest does: the replica that checks the
    two executions agree), as does the key :data:`~distillbt.distilled_sets.ROWS_METHOD`
    (path-dependent estimators). ``progress``: a tqdm bar to advance (or None). ``feature_cache``:
    a dict of feature tables by options, filled here and reused by a later call on the same
    candles and ``stop``. Chunks run on ``executor``, else the active one, else one made from
    ``n_jobs``, ``backend`` and ``scheduler`` (:func:`distillbt.executor.using`).
    """
    frame = ohlcv_frame(candles).iloc[:stop]
    # a multi-horizon set gives each model the part of the traded interval (or all of them)
    timeframe = getattr(candles, "timeframe", None)
    feature_tables = {} if feature_cache is None else feature_cache
    with captured("feature_spec"):  # the strategies' hooks run here, in this process
        keys = [_options_key(config) for config in configs]
    for options in keys:
        if options is not None and options not in feature_tables:
            feature_tables[options] = make_features(frame, **dict(options)).X
    arguments = dict(frame=frame, sets=sets, feature_tables=feature_tables, set_of=set_of or {},
                     cash=cash, commission=commission, start=start, timeframe=timeframe,
                     objective=objective, slippage=slippage)
    by_position = {}
    with using(executor, n_jobs=n_jobs, backend=backend, scheduler=scheduler) as ex:
        ex.require_strategy_files(configs)
        chunks = _chunks(configs, size=chunk_size(len(configs), ex.workers),
                         fit_rows=lambda config: _fit_rows(config, sets, set_of or {}, start))
        for chunk_outcomes in ex.imap(_run_chunk, [(chunk,) for chunk in chunks], kwargs=arguments,
                                      label="vectorised", prefer="threads"):
            for position, outcome in chunk_outcomes:
                by_position[position] = outcome
            if progress is not None:
                progress.update(len(chunk_outcomes))
    return [by_position[i] for i in range(len(configs))]


def _options_key(config):
    """The feature options of a configuration as a hashable key (None if it cannot be read:
    its own run reports why)."""
    try:
        _, options = config.strategy.cls.configure(config.params).feature_spec()
    except Exception:  # noqa: BLE001 - reported per configuration by the run itself
        return None
    return tuple(sorted(options.items()))


def _fit_group(item):
    position, config = item
    try:
        return (config.strategy.name, repr(config.strategy.cls.fit_key(config.params)))
    except Exception:  # noqa: BLE001 - a configuration that cannot say its key runs alone
        return (config.strategy.name, f"#{position}")


def chunk_size(n_configs: int, workers: int) -> int:
    """Configurations per chunk: at most :data:`CHUNK`, and small enough that every worker gets
    about four chunks — costs differ a lot between estimators, and a few large chunks leave
    workers idle while one finishes the heaviest."""
    return max(1, min(CHUNK, -(-n_configs // (4 * max(1, workers)))))


#: Rows (points, or candles) from which a model's fit is a task of its own: such fits cost from
#: a tenth of a second to seconds, and two in one task leave the other workers idle at the end.
HEAVY_FIT_ROWS = 1_000


def _fit_rows(config, sets: dict | None, set_of: dict, start: int) -> int:
    """The rows a configuration's model is fitted on: its set's points, or the candles before
    ``start`` (no set, or the training rows)."""
    dset = None if sets is None else sets.get(set_of.get(config.name))
    return start if dset is None else len(dset.X)


def _chunks(configs, size: int = CHUNK, fit_rows=None) -> list[list]:
    """Chunks of about ``size`` configurations, the costliest fits first; the configurations of
    one fitted model stay in one chunk up to :data:`CHUNK` (splitting them would fit the model
    again). ``fit_rows(config)``: the rows its model is fitted on — a model fitted on
    :data:`HEAVY_FIT_ROWS` or more gets chunks of its own, so the heavy fits spread over the
    workers and start first (None: every fit light)."""
    groups = [list(group) for _, group in groupby(sorted(enumerate(configs), key=_fit_group), key=_fit_group)]
    rows = [fit_rows(group[0][1]) if fit_rows is not None else 0 for group in groups]
    chunks, current = [], []
    for i in sorted(range(len(groups)), key=lambda i: -rows[i]):  # stable: equal costs keep their order
        group, heavy = groups[i], rows[i] >= HEAVY_FIT_ROWS
        if current and (heavy or len(current) + len(group) > size):
            chunks.append(current)
            current = []
        for start in range(0, len(group), CHUNK):
            piece = group[start:start + CHUNK]
            if heavy or len(piece) >= size:
                chunks.append(piece)
            else:
                current.extend(piece)
    if current:
        chunks.append(current)
    return chunks


def _run_chunk(chunk, *, frame, sets, feature_tables, set_of, cash, commission, start, timeframe=None,
               objective=None, slippage=0.0):
    models, signals = {}, {}  # rule variants of one fitted model share its predictions
    fit_seconds, sharing = {}, {}
    for _, config in chunk:  # how many configurations share each fit: each pays its share
        with suppress(Exception):
            key = (config.strategy.cls, config.strategy.cls.fit_key(config.params))
            sharing[key] = sharing.get(key, 0) + 1
    per_year = bars_per_year(timeframe, frame.index)
    outcomes = []
    for position, config in chunk:
        outcome = {"score": None, "final_value": None, "notes": None, "error": None, "returns": None,
                   "seconds": None}
        began = time.perf_counter()
        key = None
        try:
            cls = config.strategy.cls
            key = (cls, cls.fit_key(config.params))  # two strategies can share params
            table = feature_tables.get(_options_key(config))
            if key not in models:
                on_candles = sets is None or set_of.get(config.name) == ROWS_METHOD
                models[key] = (cls.fit_model(frame, params=config.params, end=start, feature_set=table) if on_candles
                               else cls.fit_model_on_distilled(sets[set_of[config.name]], params=config.params,
                                                               timeframe=timeframe))
                fit_seconds[key] = time.perf_counter() - began
                began = time.perf_counter()
            fitted = models[key]
            result = cls.vectorised(frame, fitted, params=config.params, cash=cash, commission=commission,
                                    start=start, end=len(frame), feature_set=table, slippage=slippage,
                                    signals=signals)
            score = objective_score(objective, result["equity"], cash=cash, bars_per_year=per_year)
            outcome.update(score=score, final_value=float(result["final_value"]),
                           notes=fitted.notes or None, returns=return_summary(result["equity"]))
        except Exception as error:  # noqa: BLE001 - one bad configuration must not stop the batch
            outcome["error"] = first_line(error, with_type=True)
        outcome["seconds"] = time.perf_counter() - began + fit_seconds.get(key, 0.0) / sharing.get(key, 1)
        outcomes.append((position, outcome))
    return outcomes
