"""Fast screening of unmodified (plain) Backtrader strategies through learned surrogates.

The pieces, in the order the screen uses them:

- :mod:`distillbt.distill.episodes` — distilled episodes: regime-representative candle windows
  of the training period, ordered so that any prefix is a balanced smaller set; numpy-only
  serialisation, so a distilled set can carry them;
- :mod:`distillbt.indicators` — the causal indicator bank, with Backtrader's exact definitions;
- :mod:`.recorder` — an analyzer that records the position the real strategy holds at each bar;
- :mod:`.model` — the per-configuration surrogate (a shallow tree on bank + state) and the walk
  that carries the state through a whole period;
- :mod:`.plan` — what each configuration's surrogate needs (periods, columns, warm-up);
- :mod:`.columns` — the bank columns of the screening period and of the episodes, shared;
- :mod:`.trust` — fitting a surrogate and measuring how far it can be trusted;
- :mod:`.escalation` — where a configuration not trusted yet gets its next episodes;
- :mod:`.api` — :func:`screen_plain`: the stages over a batch (:class:`PlainSurrogates`), with
  the full-backtest fallback;
- :mod:`.halving` — the successive-halving baseline.
"""

from .._lazy import lazy_attributes

# Loaded on first use: the recording workers import only ``.recorder`` (Backtrader), not the
# learners and scipy, which cost them about a second at start-up.
_LAZY = {
    "screen_plain": ".api", "PlainScreen": ".api", "PlainSurrogates": ".api",
    "plan_configuration": ".plan", "full_warmup": ".plan", "ConfigPlan": ".plan",
    "fit_and_trust": ".trust", "is_trusted": ".trust", "failed_checks": ".trust",
    "successive_halving": ".halving",
    "Episodes": "..distill.episodes", "select_episodes": "..distill.episodes",
    "IndicatorBank": "..indicators", "feature_names_for": "..indicators", "periods_of": "..indicators",
    "PositionSurrogate": ".model", "carry_states": ".model",
    "PositionRecorder": ".recorder", "record_episodes": ".recorder",
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
