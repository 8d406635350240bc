"""Fast screening of unmodified (plain) Backtrader strategies through learned surrogates.

The pieces, in the order the screen uses them:

- :mod:`distillbt.distill.episodes` — distilled episodes: regime-representative candle windows
  of the training period, ordered so that any prefix is a balanced smaller set; numpy-only
  serialisation, so a distilled set can carry them;
- :mod:`distillbt.indicators` — the causal indicator bank, with Backtrader's exact definitions;
- :mod:`.recorder` — an analyzer that records the position the real strategy holds at each bar;
- :mod:`.model` — the per-configuration surrogate (a shallow tree on bank + state) and the walk
  that carries the state through a whole period;
- :mod:`.api` — :func:`screen_plain` (trust, escalation, full-backtest fallback) and the
  successive-halving baseline.
"""

from .api import PlainScreen, full_warmup, plan_configuration, screen_plain, successive_halving
from ..distill.episodes import Episodes, select_episodes
from ..indicators import IndicatorBank, feature_names_for, periods_of
from .model import PositionSurrogate, carry_states
from .recorder import PositionRecorder, record_episodes

__all__ = ["screen_plain", "PlainScreen", "plan_configuration", "full_warmup", "successive_halving",
           "Episodes", "select_episodes", "IndicatorBank", "feature_names_for", "periods_of",
           "PositionSurrogate", "carry_states", "PositionRecorder", "record_episodes"]
